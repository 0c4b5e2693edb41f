package file

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Output formats.
const (
	FormatNDJSON = "ndjson"
	FormatJSON   = "json"
	FormatCSV    = "csv"
)

// Defaults.
const (
	DefaultRotateBytes    = 64 << 20
	DefaultRotateInterval = time.Hour
)

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Config is the file producer's configuration.
type Config struct {
	// Dir is the directory files are written to, relative to the tenant's
	// file root; it is created when missing and can never leave the root.
	Dir string `json:"dir,omitempty" doc:"Directory relative to the tenant's file root; created when missing."`
	// Format is ndjson (the default: one JSON value per line), json (one
	// JSON array per file) or csv (header from the first message's sorted
	// top-level keys).
	Format string `json:"format,omitempty" enum:"ndjson,json,csv" doc:"ndjson (default), json or csv."`
	// Prefix starts every file name; the default is the integration's name.
	Prefix string `json:"prefix,omitempty" doc:"File name prefix; defaults to the integration name."`
	// RotateBytes finishes a file once it holds this many bytes (default
	// 64 MiB). The check runs before each batch, so a file may exceed it by
	// one batch.
	RotateBytes int64 `json:"rotateBytes,omitempty" doc:"Finish a file once it reaches this size; default 64 MiB."`
	// RotateInterval finishes a file once it is this old (a Go duration,
	// default 1h), checked before each batch and on Close.
	RotateInterval string `json:"rotateInterval,omitempty" doc:"Finish a file once it is this old (Go duration); default 1h."`
	// Sync fsyncs each batch before Write returns (default true). With
	// false, a crash of the machine can lose batches already acknowledged.
	Sync *bool `json:"sync,omitempty" doc:"fsync each batch before acknowledging it; default true."`
}

// settings is a validated Config with its defaults applied.
type settings struct {
	dir         string
	format      string
	prefix      string
	rotateBytes int64
	interval    time.Duration
	sync        bool
}

// Validate checks the config on its own; Build also checks it against the
// environment.
func (c *Config) Validate() error {
	_, err := c.settings(sdk.Env{Integration: "integration"})
	return err
}

func (c *Config) settings(env sdk.Env) (settings, error) {
	s := settings{
		dir:         c.Dir,
		format:      c.Format,
		prefix:      c.Prefix,
		rotateBytes: c.RotateBytes,
		interval:    DefaultRotateInterval,
		sync:        c.Sync == nil || *c.Sync,
	}
	var errs []error
	if err := checkDir(c.Dir); err != nil {
		errs = append(errs, err)
	}
	if s.dir == "" {
		s.dir = "."
	}
	switch s.format {
	case "":
		s.format = FormatNDJSON
	case FormatNDJSON, FormatJSON, FormatCSV:
	default:
		errs = append(errs, fmt.Errorf("format %q: want ndjson, json or csv", c.Format))
	}
	if s.prefix == "" {
		s.prefix = env.Integration
		if s.prefix == "" {
			s.prefix = env.Name
		}
	}
	if !prefixPattern.MatchString(s.prefix) {
		errs = append(errs, fmt.Errorf("prefix %q: want letters, digits, '.', '_' or '-' (at most 100), starting with a letter or digit", s.prefix))
	}
	switch {
	case s.rotateBytes == 0:
		s.rotateBytes = DefaultRotateBytes
	case s.rotateBytes < 0:
		errs = append(errs, fmt.Errorf("rotateBytes %d: must be positive", c.RotateBytes))
	}
	if c.RotateInterval != "" {
		d, err := time.ParseDuration(c.RotateInterval)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("rotateInterval: %w", err))
		case d <= 0:
			errs = append(errs, fmt.Errorf("rotateInterval %q: must be positive", c.RotateInterval))
		default:
			s.interval = d
		}
	}
	return s, errors.Join(errs...)
}

func checkDir(dir string) error {
	switch {
	case strings.ContainsRune(dir, 0):
		return fmt.Errorf("dir %q: contains a NUL byte", dir)
	case filepath.IsAbs(dir) || strings.HasPrefix(dir, "/") || strings.HasPrefix(dir, `\`):
		return fmt.Errorf("dir %q: must be relative to the file root, not absolute", dir)
	}
	for _, seg := range strings.FieldsFunc(dir, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return fmt.Errorf("dir %q: must not contain '..'", dir)
		}
	}
	return nil
}
