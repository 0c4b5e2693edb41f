package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vrsky/vrsky/internal/apiclient"
	"github.com/vrsky/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/internal/spec"
)

// runApply stores an integration spec through the REST API, deploys it and
// waits until a runner reports it. With a dev stack's data directory and no
// key, it uses the stack's admin key to create the tenant on first use and
// keeps the tenant's key in DATA_DIR/keys/<tenant>.key.
func runApply(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "integration spec (YAML or JSON); - for standard input")
	tenant := fs.String("tenant", cmp.Or(os.Getenv("VRSKY_TENANT"), "default"), "tenant that owns the integration [VRSKY_TENANT]")
	dataDir := fs.String("data-dir", cmp.Or(os.Getenv("VRSKY_DATA_DIR"), ".vrsky"), "data directory of a running vrsky dev [VRSKY_DATA_DIR]")
	apiURL := fs.String("api", cmp.Or(os.Getenv("VRSKY_API_URL"), ""), "API base URL; default: the dev stack's [VRSKY_API_URL]")
	key := fs.String("key", os.Getenv("VRSKY_API_KEY"), "the tenant's API key; default: kept by a dev stack [VRSKY_API_KEY]")
	stop := fs.Bool("stop", false, "deploy the integration stopped")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for a runner to report the integration")
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
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client, err := tenantClient(ctx, *apiURL, *key, *dataDir, *tenant)
	if err != nil {
		return err
	}
	got, err := client.Deploy(ctx, in.Name, raw, "vrsky apply -f "+filepath.Base(*file), *stop)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "integration %s/%s version %d %s\n", *tenant, got.Name, got.Version, got.Status)
	if in.Consumer.Connector == "http-webhook" {
		fmt.Fprintf(stdout, "send messages: curl -X POST %s/v1/hooks/%s/%s -d '{...}'\n", client.Base, *tenant, got.Name)
	}
	return nil
}

// tenantClient returns an API client holding the tenant's key.
func tenantClient(ctx context.Context, apiURL, key, dataDir, tenant string) (*apiclient.Client, error) {
	if apiURL == "" {
		ep, err := devstack.ReadEndpoints(dataDir)
		if err != nil {
			return nil, err
		}
		apiURL = "http://" + ep.HTTP
	}
	if key != "" {
		return apiclient.New(apiURL, key), nil
	}
	admin, err := os.ReadFile(filepath.Join(dataDir, devstack.AdminKeyFile))
	if err != nil {
		return nil, fmt.Errorf("no --key given and no dev stack admin key in %s: %w", dataDir, err)
	}
	c, _, err := apiclient.EnsureTenant(ctx, apiclient.New(apiURL, string(admin)), tenant, filepath.Join(dataDir, "keys", tenant+".key"))
	return c, err
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
