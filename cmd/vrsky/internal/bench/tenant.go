package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
	"github.com/vrsky/vrsky/internal/natsauth"
)

// DatabaseSecret is the benchmark tenant's secret holding the URL of the
// stack's database, which the CDC scenario's integration reads
// ({secret: bench-database-url}).
const DatabaseSecret = "bench-database-url"

// tenantAPI is the stack's API as the benchmark uses it: with the platform
// admin key, and with the benchmark tenant's key when it was kept.
type tenantAPI struct {
	admin, tenant *client.API
	keyFile       string
}

// tenantConn makes sure the benchmark tenant exists on the stack — created
// through its API with the stack's admin key, which provisions the tenant's
// NATS account — and returns a connection to that account, where the
// benchmark integrations' streams live, and the API's clients. A stack
// without an admin key or NATS keys keeps every tenant in one account:
// platform is returned, and without an admin key no API client.
func (s *Stack) tenantConn(ctx context.Context, platform *nats.Conn) (*nats.Conn, *tenantAPI, error) {
	key, err := os.ReadFile(filepath.Join(s.DataDir, devstack.AdminKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return platform, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	admin, err := client.New("http://"+s.Endpoints.HTTP, string(key))
	if err != nil {
		return nil, nil, err
	}
	api := &tenantAPI{admin: admin, keyFile: filepath.Join(s.DataDir, "keys", Tenant+".key")}
	api.tenant, _, err = tenantkey.Ensure(ctx, api.admin, Tenant, api.keyFile)
	if err != nil && !errors.Is(err, tenantkey.ErrLost) { // lost key: the tenant exists, which is enough but for secrets
		return nil, nil, fmt.Errorf("benchmark tenant: %w", err)
	}
	keys, err := natsauth.LoadKeys(filepath.Join(s.DataDir, devstack.NATSKeysFile))
	if errors.Is(err, os.ErrNotExist) {
		return platform, api, nil
	}
	if err != nil {
		return nil, nil, err
	}
	creds, err := keys.TenantUser(Tenant, "vrsky-bench")
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(s.Endpoints.NATS, creds.Option(), nats.Name("vrsky-bench-tenant"))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the benchmark tenant's account: %w", err)
	}
	return nc, api, nil
}

// provisionDatabase lets the benchmark tenant's CDC integration reach the
// stack's database dbURL: it stores the URL as the tenant's secret
// DatabaseSecret (with the tenant's key) and sets the tenant's egress
// policy (with the admin key) to allow exactly the database's host:port,
// as the URL spells it. Connectors refuse loopback and private addresses
// unless the policy allows them. Without the API (a stack with no admin
// key) the stack's runner must resolve the secret itself.
func (a *tenantAPI) provisionDatabase(ctx context.Context, dbURL string) error {
	if a == nil {
		return nil
	}
	if a.tenant == nil {
		return fmt.Errorf("benchmark tenant %s: %w (%s): the CDC scenario stores the database URL as one of its secrets; bench on a fresh data directory",
			Tenant, tenantkey.ErrLost, a.keyFile)
	}
	u, err := url.Parse(dbURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the stack's database URL names no host:port the benchmark tenant could be allowed to reach")
	}
	pr, err := a.admin.UpdateTenantWithResponse(ctx, Tenant, client.TenantPatch{Egress: &client.EgressPolicy{AllowHosts: &[]string{u.Host}}})
	if err := client.Check("benchmark tenant: update tenant", pr, err, http.StatusOK); err != nil {
		return err
	}
	sr, err := a.tenant.PutSecretWithResponse(ctx, DatabaseSecret, client.PutSecretJSONRequestBody{Value: dbURL})
	if err := client.Check("benchmark tenant: store secret", sr, err, http.StatusOK, http.StatusCreated); err != nil {
		return err
	}
	return nil
}
