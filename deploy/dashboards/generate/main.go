// Command generate writes VRSky's Grafana dashboards as JSON:
//
//	go run ./dashboards/generate -out helm/vrsky/files/dashboards
//
// (run from deploy/; `go generate ./dashboards` does the same). It replaces
// the files it writes and leaves others alone.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vrsky/vrsky/deploy/dashboards"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "directory the dashboard JSON files are written to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		return fmt.Errorf("usage: generate -out DIR")
	}
	return dashboards.Write(*out)
}
