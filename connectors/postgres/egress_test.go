package postgres

import (
	"encoding/json"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// ownServer is the egress policy of a tenant whose database runs on a
// private address, as the tests' PostgreSQL does (on 127.0.0.1).
var ownServer = sdk.EgressPolicy{AllowPrivate: true}

// Attack: a tenant points the producer at the platform's own PostgreSQL
// (here the test's private server on 127.0.0.1).
func TestDSNToPlatformAddressIsRefused(t *testing.T) {
	database(t, ordersSchema)
	dsn := `{"url":{"env":"` + urlEnv + `"},"table":"orders"}`
	u, err := url.Parse(testenvURL(t))
	require.NoError(t, err)

	for name, policy := range map[string]sdk.EgressPolicy{
		"default":              {},
		"another host allowed": {AllowHosts: []string{"10.0.0.5:5432", "db.example.com"}},
		"another port allowed": {AllowHosts: []string{u.Hostname() + ":1"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "orders", Egress: policy}, json.RawMessage(dsn))
			require.True(t, ssrf.IsRefused(err), "%v", err)
			require.True(t, sdk.IsPermanent(err), "%v", err)
			require.ErrorContains(t, err, "the platform's egress policy for this tenant refuses it")
		})
	}

	// The admin allows the tenant exactly that server.
	for name, policy := range map[string]sdk.EgressPolicy{
		"host:port listed": {AllowHosts: []string{u.Host}},
		"allowPrivate":     ownServer,
	} {
		t.Run(name, func(t *testing.T) {
			inst, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "orders", Egress: policy}, json.RawMessage(dsn))
			require.NoError(t, err)
			require.NoError(t, inst.(sdk.Producer).Close(t.Context()))
		})
	}
}

// Attack: a DSN naming a metadata address, even with the widest policy.
func TestDSNToMetadataIsRefused(t *testing.T) {
	t.Setenv("VRSKY_TEST_POSTGRES_METADATA_URL", "postgres://u:p@169.254.169.254:5432/db?sslmode=disable")
	policy := sdk.EgressPolicy{AllowPrivate: true, AllowHosts: []string{"169.254.169.254"}}
	_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Egress: policy}, json.RawMessage(`{"url":{"env":"VRSKY_TEST_POSTGRES_METADATA_URL"},"table":"orders"}`))
	require.True(t, ssrf.IsRefused(err), "%v", err)
	require.ErrorContains(t, err, "never allowed")
}

func testenvURL(t *testing.T) string {
	t.Helper()
	v, ok := os.LookupEnv(urlEnv)
	require.True(t, ok)
	return v
}
