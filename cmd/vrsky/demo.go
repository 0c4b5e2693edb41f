//go:build !vrsky_production

package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/demo"
)

// runDemo runs one of the example integrations against a running vrsky dev:
// 1 webhook to Slack, 2 CSV files to PostgreSQL, 3 PostgreSQL CDC to a REST
// API, 4 order routing.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", cmp.Or(os.Getenv("VRSKY_DATA_DIR"), ".vrsky"), "data directory of a running vrsky dev [VRSKY_DATA_DIR]")
	tenant := fs.String("tenant", demo.DefaultTenant, "tenant to run the demo as; created on first use")
	apiAddr := fs.String("api-addr", demo.DefaultAPIAddr, "where demo 3's target API stand-in listens")
	var n int
	// The demo number may come before or after the flags.
	if len(args) > 0 {
		if v, err := strconv.Atoi(args[0]); err == nil {
			n, args = v, args[1:]
		}
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if n == 0 && fs.NArg() == 1 {
		v, err := strconv.Atoi(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("%w: vrsky demo N: %q is not a number", errUsage, fs.Arg(0))
		}
		n = v
	} else if fs.NArg() > 0 {
		return fmt.Errorf("%w: vrsky demo N [--data-dir DIR]: unexpected %q", errUsage, fs.Arg(0))
	}
	if _, err := demo.Lookup(n); err != nil {
		return fmt.Errorf("%w: vrsky demo N: %v", errUsage, err)
	}
	_, err := demo.RunWith(ctx, n, *dataDir, stdout, demo.Options{Tenant: *tenant, APIAddr: *apiAddr})
	return err
}
