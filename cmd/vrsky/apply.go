package main

import (
	"bytes"
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

	"go.yaml.in/yaml/v3"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
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
	target := addTenantFlags(fs)
	stop := fs.Bool("stop", false, "deploy the integration stopped")
	timeout := fs.Duration("timeout", 60*time.Second, "how long to wait for a runner to report the integration")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *file == "" {
		return fmt.Errorf("%w: vrsky apply -f FILE", errUsage)
	}
	raw, err := readSpec(*file)
	if err != nil {
		return err
	}
	if n, err := yamlDocuments(raw); err == nil && n > 1 {
		return fmt.Errorf("%s holds %d YAML documents; vrsky apply takes one integration spec a file: split it and apply each file", *file, n)
	}
	in, err := spec.ParseYAML(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	api, err := target.client(ctx)
	if err != nil {
		return err
	}
	got, err := api.Deploy(ctx, in.Name, raw, "vrsky apply -f "+filepath.Base(*file), *stop)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "integration %s/%s version %d %s\n", target.tenant, got.Name, got.Version, got.Status)
	if in.Consumer.Connector == "http-webhook" {
		fmt.Fprintf(stdout, "send messages: curl -X POST %s/v1/hooks/%s/%s -d '{...}'\n", api.Server(), target.tenant, got.Name)
	}
	return nil
}

// tenantFlags say which API a command calls and with which tenant's key:
// --api and --key, or a running dev stack's data directory, whose admin key
// creates the tenant on first use.
type tenantFlags struct {
	tenant, dataDir, apiURL, key string
}

// addTenantFlags registers --tenant, --data-dir, --api and --key on fs, with
// their VRSKY_… environment variables as defaults.
func addTenantFlags(fs *flag.FlagSet) *tenantFlags {
	f := &tenantFlags{}
	fs.StringVar(&f.tenant, "tenant", cmp.Or(os.Getenv("VRSKY_TENANT"), "default"), "tenant that owns the integration [VRSKY_TENANT]")
	fs.StringVar(&f.dataDir, "data-dir", cmp.Or(os.Getenv("VRSKY_DATA_DIR"), ".vrsky"), "data directory of a running vrsky dev [VRSKY_DATA_DIR]")
	fs.StringVar(&f.apiURL, "api", os.Getenv("VRSKY_API_URL"), "API base URL; default: the dev stack's [VRSKY_API_URL]")
	fs.StringVar(&f.key, "key", os.Getenv("VRSKY_API_KEY"), "the tenant's API key; default: kept by a dev stack [VRSKY_API_KEY]")
	return f
}

// client returns an API client holding the tenant's key. A tenant name the
// platform cannot hold is a usage error.
func (f *tenantFlags) client(ctx context.Context) (*client.API, error) {
	if !spec.ValidName(f.tenant) {
		return nil, fmt.Errorf("%w: invalid tenant name %q", errUsage, f.tenant)
	}
	apiURL := f.apiURL
	if apiURL == "" {
		var err error
		if apiURL, err = devAPIURL(f.dataDir); err != nil {
			return nil, err
		}
	}
	if f.key != "" {
		return client.New(apiURL, f.key)
	}
	adminKey, err := devAdminKey(f.dataDir)
	if err != nil {
		return nil, err
	}
	admin, err := client.New(apiURL, adminKey)
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(f.dataDir, "keys", f.tenant+".key")
	c, _, err := tenantkey.Ensure(ctx, admin, f.tenant, keyFile)
	return c, err
}

// adminClient returns an API client holding the platform admin key: --key,
// or the dev stack's.
func (f *tenantFlags) adminClient() (*client.API, error) {
	apiURL := f.apiURL
	if apiURL == "" {
		var err error
		if apiURL, err = devAPIURL(f.dataDir); err != nil {
			return nil, err
		}
	}
	key := f.key
	if key == "" {
		var err error
		if key, err = devAdminKey(f.dataDir); err != nil {
			return nil, err
		}
	}
	return client.New(apiURL, key)
}

// yamlDocuments counts the YAML documents in b.
func yamlDocuments(b []byte) (int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
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
