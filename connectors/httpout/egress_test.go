package httpout

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// tenantEnv moves the egress a test config asks for ("allowHosts",
// "allowPrivate") to where the platform keeps it, the tenant's policy in
// the Env, and returns the config without it.
func tenantEnv(t *testing.T, raw json.RawMessage) (json.RawMessage, sdk.Env) {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &m))
	env := sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "orders"}
	if v, ok := m["allowHosts"]; ok {
		require.NoError(t, json.Unmarshal(v, &env.Egress.AllowHosts))
		delete(m, "allowHosts")
	}
	if v, ok := m["allowPrivate"]; ok {
		require.NoError(t, json.Unmarshal(v, &env.Egress.AllowPrivate))
		delete(m, "allowPrivate")
	}
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out, env
}

// Attack: a tenant's config switches its own SSRF guard off.
func TestTenantConfigCannotSetEgress(t *testing.T) {
	tg := newTarget(t, nil)
	for name, raw := range map[string]string{
		"allowPrivate":       `{"url":"` + tg.srv.URL + `/hook","allowPrivate":true}`,
		"allowHosts":         `{"url":"` + tg.srv.URL + `/hook","allowHosts":["` + tg.host + `"]}`,
		"allowPrivate false": `{"url":"https://example.com/","allowPrivate":false}`,
	} {
		t.Run(name, func(t *testing.T) {
			for _, env := range []sdk.Env{{LookupEnv: os.LookupEnv, Tenant: "t1"}, {LookupEnv: os.LookupEnv, Tenant: "t1", Egress: sdk.EgressPolicy{AllowPrivate: true}}} {
				_, err := Connector.Build(t.Context(), env, json.RawMessage(raw))
				require.ErrorIs(t, err, ssrf.ErrTenantEgress)
				require.ErrorContains(t, err, "egress is the platform's decision")
				require.ErrorContains(t, err, "PATCH /v1/tenants/{id}")
			}
			var c Config
			require.ErrorIs(t, json.Unmarshal([]byte(raw), &c), ssrf.ErrTenantEgress)
		})
	}
	require.Empty(t, tg.requests())
	schema, err := sdk.ConfigSchema(Connector)
	require.NoError(t, err)
	require.NotContains(t, string(schema), "allowPrivate", "the form offers no egress option")
	require.NotContains(t, string(schema), "allowHosts")
}

// Attack: requests to the platform's own network, with the default policy.
func TestDefaultPolicyRefusesPlatformAddresses(t *testing.T) {
	tg := newTarget(t, nil)
	redirector := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, tg.srv.URL+"/internal", http.StatusFound)
	})
	port := tg.host[strings.LastIndex(tg.host, ":")+1:]
	tests := []struct {
		name   string
		url    string
		policy sdk.EgressPolicy
	}{
		{"loopback", tg.srv.URL + "/hook", sdk.EgressPolicy{}},
		{"metadata", "http://169.254.169.254/latest/meta-data/", sdk.EgressPolicy{}},
		{"IPv4-mapped IPv6 loopback", "http://[::ffff:127.0.0.1]:" + port + "/hook", sdk.EgressPolicy{}},
		{"localhost", "http://localhost:" + port + "/hook", sdk.EgressPolicy{}},
		// The redirecting host is allowed by name; where it sends the
		// request is not.
		{"redirect to loopback", redirector.srv.URL + "/hook", sdk.EgressPolicy{AllowHosts: []string{redirector.host}}},
		{"metadata with allowPrivate", "http://169.254.169.254/latest/meta-data/", sdk.EgressPolicy{AllowPrivate: true}},
		{"metadata listed by the admin", "http://169.254.169.254/latest/meta-data/", sdk.EgressPolicy{AllowHosts: []string{"169.254.169.254"}}},
		{"metadata name listed by the admin", "http://metadata.google.internal/computeMetadata/v1/", sdk.EgressPolicy{AllowHosts: []string{"metadata.google.internal"}}},
		{"AWS IPv6 metadata listed by the admin", "http://[fd00:ec2::254]/latest/meta-data/", sdk.EgressPolicy{AllowHosts: []string{"fd00:ec2::254"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "orders", Egress: tt.policy}
			raw := json.RawMessage(`{"url":"` + tt.url + `"}`)
			inst, err := Connector.Build(t.Context(), env, raw)
			if err == nil {
				// Only a redirect is caught after Build: when it is followed.
				p := inst.(sdk.Producer)
				t.Cleanup(func() { _ = p.Close(t.Context()) })
				var be *sdk.BatchError
				require.ErrorAs(t, p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)}), &be)
				err = be.Failed[0]
			}
			require.True(t, ssrf.IsRefused(err), "%v", err)
			require.True(t, sdk.IsPermanent(err), "%v", err)
		})
	}
	require.Empty(t, tg.requests(), "the platform's address was never reached")

	// The same loopback target, allowed by the tenant's policy.
	p := newProducer(t, tg.cfg(nil))
	require.NoError(t, p.Write(t.Context(), []sdk.Message{msg("m-2", `{}`)}))
	require.Len(t, tg.requests(), 1)
}
