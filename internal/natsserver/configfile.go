package natsserver

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/nats-io/nats-server/v2/server"
)

// RunConfigFile runs a NATS server from a nats-server configuration file,
// as the nats-server command does with -c: the file's options over the
// command's defaults, its logger, and the server until ctx ends, which
// shuts it down and waits for it. It returns nil after a shutdown and an
// error when the file does not load or the server cannot be created.
//
// The server does not watch signals itself (no reload on SIGHUP, no lame
// duck on SIGUSR2): the caller cancels ctx on SIGINT or SIGTERM. It is the
// body of `vrsky nats-server`, the process a dedicated tenant instance runs
// on this machine (internal/provision/local), and of the test binaries
// that stand in for that command.
func RunConfigFile(ctx context.Context, file string) error {
	if file == "" {
		return fmt.Errorf("nats-server: no configuration file given")
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	nothing := func() {}
	opts, err := server.ConfigureOptions(fs, []string{"-c", file}, nothing, nothing, nothing)
	if err != nil {
		return fmt.Errorf("nats-server configuration %s: %w", file, err)
	}
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("nats-server from %s: %w", file, err)
	}
	s.ConfigureLogger()
	s.Start()
	stopped := make(chan struct{})
	go func() { s.WaitForShutdown(); close(stopped) }()
	select {
	case <-ctx.Done():
		s.Shutdown()
		<-stopped
	case <-stopped:
	}
	return nil
}
