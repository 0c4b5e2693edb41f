package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/scaffold"
)

// runConnectorNew scaffolds a connector package: vrsky connector new NAME --kind KIND.
func runConnectorNew(args []string, stdout, stderr io.Writer) error {
	if slices.ContainsFunc(args[:min(len(args), 2)], isHelpArg) {
		// Before NAME: the flag set would not see it.
		args = []string{"new", "NAME", "-h"}
	}
	if len(args) < 2 || args[0] != "new" {
		return fmt.Errorf("%w: vrsky connector new NAME --kind consumer|converter|filter|producer", errUsage)
	}
	name := args[1]
	fs := flag.NewFlagSet("connector new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: vrsky connector new NAME [--kind KIND] [--dir DIR]\n\nScaffolds a connector package connectors/NAME with its tests.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	kind := fs.String("kind", "producer", "consumer, converter, filter or producer")
	dir := fs.String("dir", "connectors", "the repository's connectors directory")
	if err := fs.Parse(args[2:]); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	out, err := scaffold.Generate(scaffold.Options{Name: name, Kind: *kind, Dir: *dir})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %s\nnext:\n  1. add %s.Connector to Catalog() in connectors/registry.go\n  2. make it real: see docs/connector-tutorial.md\n  3. go test ./%s/\n", out, filepath.Base(out), out)
	return nil
}
