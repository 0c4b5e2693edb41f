package postgrescdc

import (
	"encoding/json"
	"net/url"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
	"github.com/vrsky/vrsky/internal/testenv"
)

// ownServer is the egress policy of a tenant whose database runs on a
// private address, as the tests' PostgreSQL does (on 127.0.0.1).
var ownServer = sdk.EgressPolicy{AllowPrivate: true}

// Attack: a tenant points the CDC consumer at the platform's own
// PostgreSQL (here the test's private server on 127.0.0.1).
func TestDSNToPlatformAddressIsRefused(t *testing.T) {
	src := newSource(t, `CREATE TABLE orders (id int PRIMARY KEY)`)
	u, err := url.Parse(src.url)
	require.NoError(t, err)
	raw := json.RawMessage(`{"url":{"env":"` + urlEnv + `"},"tables":["orders"]}`)
	for name, policy := range map[string]sdk.EgressPolicy{
		"default":              {},
		"another host allowed": {AllowHosts: []string{"10.0.0.5:5432"}},
		"metadata listed":      {AllowHosts: []string{"169.254.169.254", "metadata.google.internal"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "cdc-" + testenv.RandomID(6), Egress: policy}, raw)
			require.True(t, ssrf.IsRefused(err), "%v", err)
			require.True(t, sdk.IsPermanent(err), "%v", err)
			require.ErrorContains(t, err, "the platform's egress policy for this tenant refuses it")
		})
	}

	// The admin allows the tenant exactly that server: the catalog and
	// the replication connections both go through.
	c := buildWith(t, src, sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "cdc-" + testenv.RandomID(6), Egress: sdk.EgressPolicy{AllowHosts: []string{u.Host}}}, `{"tables":["orders"]}`)
	conn, err := c.connectReplication(t.Context())
	require.NoError(t, err)
	require.NoError(t, conn.Close(t.Context()))

	// A replication connection of a consumer whose policy refuses the host.
	refused := &Consumer{url: src.url, guard: ssrf.New(sdk.EgressPolicy{})}
	_, err = refused.connectReplication(t.Context())
	require.True(t, ssrf.IsRefused(err), "%v", err)
}
