package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/internal/spec"
)

// runApply deploys an integration spec to a running stack by writing its
// desired state, then waits until a runner reports it running.
func runApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "integration spec (YAML or JSON); - for standard input")
	tenant := fs.String("tenant", env("VRSKY_TENANT", "default"), "tenant that owns the integration [VRSKY_TENANT]")
	dataDir := fs.String("data-dir", env("VRSKY_DATA_DIR", ".vrsky"), "data directory of a running vrsky dev [VRSKY_DATA_DIR]")
	natsURL := fs.String("nats", env("VRSKY_NATS_URL", ""), "NATS URL; default: the one in the data directory's endpoints.json [VRSKY_NATS_URL]")
	stop := fs.Bool("stop", false, "deploy the integration stopped")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for a runner to report the integration")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *file == "" {
		return fmt.Errorf("%w: vrsky apply -f FILE", errUsage)
	}
	raw, err := readSpec(*file)
	if err != nil {
		return err
	}
	in, err := spec.ParseYAML(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	if !spec.ValidName(*tenant) {
		return fmt.Errorf("%w: invalid tenant name %q", errUsage, *tenant)
	}
	httpAddr := ""
	if *natsURL == "" {
		ep, err := devstack.ReadEndpoints(*dataDir)
		if err != nil {
			return err
		}
		*natsURL, httpAddr = ep.NATS, ep.HTTP
	}
	nc, err := nats.Connect(*natsURL, nats.Name("vrsky-apply"))
	if err != nil {
		return fmt.Errorf("connect to nats at %s: %w", *natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	state, err := hotpath.OpenState(ctx, js)
	if err != nil {
		return err
	}
	p := hotpath.Pipeline{Tenant: *tenant, Integration: in.Name}
	prev, _, err := state.GetDesired(ctx, p)
	if err != nil {
		return err
	}
	d := hotpath.Desired{Tenant: *tenant, Integration: in.Name, Version: prev.Version + 1, Status: hotpath.DesiredRunning, Spec: in}
	if *stop {
		d.Status = hotpath.DesiredStopped
	}
	if err := state.PutDesired(ctx, d); err != nil {
		return err
	}
	deadline := time.Now().Add(*timeout)
	for {
		st, ok, err := state.GetStatus(ctx, p)
		if err != nil {
			return err
		}
		if ok && st.Version == d.Version {
			switch st.Status {
			case hotpath.StatusDegraded:
				return fmt.Errorf("integration %s version %d did not start: %s", p, d.Version, st.LastError)
			case d.Status:
				fmt.Fprintf(stdout, "integration %s version %d %s\n", p, d.Version, st.Status)
				if in.Consumer.Connector == hotpath.WebhookConnector && httpAddr != "" {
					fmt.Fprintf(stdout, "send messages: curl -X POST http://%s/v1/hooks/%s/%s -d '{...}'\n", httpAddr, p.Tenant, p.Integration)
				}
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("no runner reported the integration in time: is a runner running?")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readSpec(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(filepath.Clean(path))
		if err != nil {
			return nil, fmt.Errorf("read spec: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, spec.MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil, errors.New("read spec: empty")
	}
	return b, nil
}
