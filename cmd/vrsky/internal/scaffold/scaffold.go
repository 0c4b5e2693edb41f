// Package scaffold writes a new connector package from templates, so a
// connector author starts from code that builds, passes the conformance kit
// and shows where each rule of the SDK applies.
//
// It only creates files in a directory that does not exist yet; it never
// overwrites anything.
package scaffold

import (
	"bytes"
	"embed"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

//go:embed templates/*.tmpl
var templates embed.FS

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,40}$`)

// Kinds are the connector kinds a scaffold can be made for.
var Kinds = []string{"consumer", "converter", "filter", "producer"}

// Options name the new connector.
type Options struct {
	Name string // connector name, e.g. "sftp-upload"
	Kind string // consumer, converter, filter or producer
	// Dir is the connectors directory; the package goes to Dir/<package>.
	Dir string
}

type data struct {
	Name, Package, Kind, KindTitle, Type string
}

// Generate writes the package and returns its directory.
func Generate(opts Options) (string, error) {
	if !namePattern.MatchString(opts.Name) {
		return "", fmt.Errorf("connector name %q: lowercase letters, digits and hyphens, starting with a letter", opts.Name)
	}
	kindOK := false
	for _, k := range Kinds {
		kindOK = kindOK || k == opts.Kind
	}
	if !kindOK {
		return "", fmt.Errorf("kind %q: want one of %s", opts.Kind, strings.Join(Kinds, ", "))
	}
	d := data{
		Name:      opts.Name,
		Package:   strings.ReplaceAll(opts.Name, "-", ""),
		Kind:      opts.Kind,
		KindTitle: strings.ToUpper(opts.Kind[:1]) + opts.Kind[1:],
		Type:      strings.ToUpper(opts.Kind[:1]) + opts.Kind[1:],
	}
	dir := filepath.Join(opts.Dir, d.Package)
	if _, err := os.Stat(dir); err == nil {
		return "", fmt.Errorf("%s already exists; choose another name", dir)
	}
	files := map[string]string{
		"config.go.tmpl":         "config.go",
		"connector.go.tmpl":      d.Package + ".go",
		"connector_test.go.tmpl": d.Package + "_test.go",
	}
	tmpl, err := template.ParseFS(templates, "templates/*.tmpl")
	if err != nil {
		return "", fmt.Errorf("parse templates: %w", err)
	}
	rendered := make(map[string][]byte, len(files))
	for src, dst := range files {
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, src, d); err != nil {
			return "", fmt.Errorf("render %s: %w", dst, err)
		}
		code, err := format.Source(buf.Bytes())
		if err != nil {
			return "", fmt.Errorf("format %s: %w", dst, err)
		}
		rendered[dst] = code
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	for name, code := range rendered {
		if err := os.WriteFile(filepath.Join(dir, name), code, 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	return dir, nil
}
