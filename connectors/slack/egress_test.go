package slack

import (
	"encoding/json"
	"os"
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
	f := newFakeSlack(t, nil)
	t.Setenv("VRSKY_TEST_SLACK_WEBHOOK", f.srv.URL+webhookPath)
	for name, raw := range map[string]string{
		"allowPrivate": `{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"hi","allowPrivate":true}`,
		"allowHosts":   `{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"hi","allowHosts":["` + f.host + `"]}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1"}, json.RawMessage(raw))
			require.ErrorIs(t, err, ssrf.ErrTenantEgress)
			require.ErrorContains(t, err, "egress is the platform's decision")
			var c Config
			require.ErrorIs(t, json.Unmarshal([]byte(raw), &c), ssrf.ErrTenantEgress)
		})
	}
	schema, err := sdk.ConfigSchema(Connector)
	require.NoError(t, err)
	require.NotContains(t, string(schema), "allowPrivate")
	require.NotContains(t, string(schema), "allowHosts")

	// With the default policy the loopback webhook is refused; the
	// tenant's policy, set by an admin, lets it through.
	raw := json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"hi"}`)
	_, err = Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1"}, raw)
	require.True(t, ssrf.IsRefused(err), "%v", err)
	require.ErrorContains(t, err, "the platform's egress policy for this tenant refuses it")
	inst, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Egress: sdk.EgressPolicy{AllowHosts: []string{f.host}}}, raw)
	require.NoError(t, err)
	p := inst.(sdk.Producer)
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	require.NoError(t, p.Write(t.Context(), []sdk.Message{msg("a", `{}`)}))
	require.Len(t, f.requests(), 1)

	// No policy opens a metadata endpoint.
	t.Setenv("VRSKY_TEST_SLACK_WEBHOOK", "http://169.254.169.254/services/x")
	_, err = Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Egress: sdk.EgressPolicy{AllowPrivate: true, AllowHosts: []string{"169.254.169.254"}}}, raw)
	require.True(t, ssrf.IsRefused(err), "%v", err)
	require.ErrorContains(t, err, "never allowed")
}
