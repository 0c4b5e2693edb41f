//go:build !vrsky_production

package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/vrsky/vrsky/internal/natsserver"
)

// runNATSServer is the hidden `vrsky nats-server -c FILE`: a NATS server
// from a nats-server configuration file, as the nats-server binary runs
// it, until SIGINT or SIGTERM. It is the process of a tenant's dedicated
// instance under vrsky dev (internal/provision/local starts one per
// tenant), so that no second binary is needed. The production build
// leaves it out with the other embedded servers.
func runNATSServer(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: vrsky nats-server -c FILE\n\nRuns a NATS server from a nats-server configuration file until SIGINT or SIGTERM.\n\n")
		fs.PrintDefaults()
	}
	conf := fs.String("c", "", "the nats-server configuration file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *conf == "" {
		return fmt.Errorf("%w: vrsky nats-server -c FILE", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return natsserver.RunConfigFile(ctx, *conf)
}
