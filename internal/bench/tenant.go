package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/vrsky/vrsky/internal/apiclient"
	"github.com/vrsky/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/internal/natsauth"
)

// tenantConn makes sure the benchmark tenant exists on the stack — created
// through its API with the stack's admin key, which provisions the tenant's
// NATS account — and returns a connection to that account, where the
// benchmark integrations' streams live. A stack without an admin key or
// NATS keys keeps every tenant in one account: platform is returned.
func (s *Stack) tenantConn(ctx context.Context, platform *nats.Conn) (*nats.Conn, error) {
	key, err := os.ReadFile(filepath.Join(s.DataDir, devstack.AdminKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return platform, nil
	}
	if err != nil {
		return nil, err
	}
	admin := apiclient.New("http://"+s.Endpoints.HTTP, strings.TrimSpace(string(key)))
	_, _, err = apiclient.EnsureTenant(ctx, admin, Tenant, filepath.Join(s.DataDir, "keys", Tenant+".key"))
	if err != nil && !errors.Is(err, apiclient.ErrTenantKeyLost) { // lost key: the tenant exists, which is enough
		return nil, fmt.Errorf("benchmark tenant: %w", err)
	}
	keys, err := natsauth.LoadKeys(filepath.Join(s.DataDir, devstack.NATSKeysFile))
	if errors.Is(err, os.ErrNotExist) {
		return platform, nil
	}
	if err != nil {
		return nil, err
	}
	creds, err := keys.TenantUser(Tenant, "vrsky-bench")
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.Endpoints.NATS, creds.Option(), nats.Name("vrsky-bench-tenant"))
	if err != nil {
		return nil, fmt.Errorf("connect to the benchmark tenant's account: %w", err)
	}
	return nc, nil
}
