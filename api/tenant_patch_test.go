package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// patchEnv is an API whose egress policies are mirrored to a JetStream the
// test reads like a runner does.
func patchEnv(t *testing.T) (*authEnv, *dataplane.EgressPolicies) {
	t.Helper()
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(context.Background(), js)
	require.NoError(t, err)
	e := newAuthEnvWith(t, func(o *Options) { o.State = state })
	return e, &dataplane.EgressPolicies{JS: js}
}

func TestAdminSetsTenantEgress(t *testing.T) {
	t.Parallel()
	e, runner := patchEnv(t)
	secret, _ := e.createTenant(t, "acme")
	ctx := context.Background()

	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, map[string]any{}, got.body["egress"], "the default policy: public addresses only")

	res := call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{"egress":{"allowPrivate":true,"allowHosts":["erp.internal:443","10.0.0.5"]}}`)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	want := map[string]any{"allowPrivate": true, "allowHosts": []any{"erp.internal:443", "10.0.0.5"}}
	require.Equal(t, want, res.body["egress"])
	require.Equal(t, "Tenant acme", res.body["name"])
	got = call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, want, got.body["egress"])
	p, err := runner.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{AllowPrivate: true, AllowHosts: []string{"erp.internal:443", "10.0.0.5"}}, p, "the runners see what PostgreSQL holds")

	// A body without an egress section leaves the policy alone.
	res = call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{}`)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Equal(t, want, res.body["egress"])

	// Back to the default.
	res = call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{"egress":{}}`)
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Equal(t, map[string]any{}, res.body["egress"])
	p, err = runner.Policy(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, p)

	// Only the platform admin changes it; the tenant's own key cannot.
	res = call(t, e.h, http.MethodPatch, "/v1/tenants/acme", secret, `{"egress":{"allowPrivate":true}}`)
	require.Contains(t, []int{http.StatusForbidden, http.StatusUnauthorized}, res.code, res.raw)
	p, err = runner.Policy(ctx, "acme")
	require.NoError(t, err)
	require.False(t, p.AllowPrivate)

	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/nobody", e.adminKey, `{"egress":{}}`), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/NOT_VALID", e.adminKey, `{"egress":{}}`), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{"egres":{}}`), http.StatusUnprocessableEntity)
}

// Attack: an admin (or a script acting for a tenant) lists a metadata
// endpoint; the platform refuses to store it.
func TestEgressPolicyNeverListsMetadata(t *testing.T) {
	t.Parallel()
	e, runner := patchEnv(t)
	e.createTenant(t, "acme")
	for _, host := range []string{"169.254.169.254", "metadata.google.internal", "fd00:ec2::254", "[fd00:ec2::254]:80", "169.254.1.1:80", "fe80::1"} {
		t.Run(host, func(t *testing.T) {
			res := call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{"egress":{"allowHosts":["erp.internal","`+host+`"]}}`)
			requireProblem(t, res, http.StatusUnprocessableEntity)
			require.Contains(t, res.raw, "never allowed")
			require.Contains(t, res.raw, "body.egress.allowHosts[1]")
		})
	}
	for _, bad := range []string{`"http://erp.internal/"`, `""`, `"x:0"`} {
		res := call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{"egress":{"allowHosts":[`+bad+`]}}`)
		requireProblem(t, res, http.StatusUnprocessableEntity)
		require.Contains(t, res.raw, "allowHosts entry")
	}
	p, err := runner.Policy(context.Background(), "acme")
	require.NoError(t, err)
	require.Equal(t, sdk.EgressPolicy{}, p, "nothing was stored")
	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, map[string]any{}, got.body["egress"])
}

func TestEgressPatchNeedsTheRunnersCopy(t *testing.T) {
	t.Parallel()
	e := newAuthEnv(t) // no State: no NATS to mirror to
	e.createTenant(t, "acme")
	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, `{"egress":{"allowPrivate":true}}`), http.StatusServiceUnavailable)
	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, map[string]any{}, got.body["egress"])
}

func TestAdminSetsATenantsMessageRate(t *testing.T) {
	t.Parallel()
	e, runner := patchEnv(t)
	e.createTenant(t, "acme")
	ctx := context.Background()
	rates := &dataplane.IngressQuotas{JS: runner.JS}
	require.NoError(t, rates.Follow(ctx))

	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	limits := got.body["limits"].(map[string]any)
	require.NotContains(t, limits, "messages_per_second", "the platform's rate until told otherwise")

	limits["messages_per_second"] = 25
	body, err := json.Marshal(map[string]any{"limits": limits})
	require.NoError(t, err)
	res := call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, string(body))
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.EqualValues(t, 25, res.body["limits"].(map[string]any)["messages_per_second"])
	require.Eventually(t, func() bool { r, _ := rates.Rate("acme"); return r == 25 }, 5*time.Second, 10*time.Millisecond,
		"the ingress sees the new rate")

	limits["messages_per_second"] = -1
	body, _ = json.Marshal(map[string]any{"limits": limits})
	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, string(body)), http.StatusUnprocessableEntity)
	r, _ := rates.Rate("acme")
	require.Equal(t, 25.0, r, "a refused change changes nothing")
}

func TestAdminSetsATenantsLimitOfRememberedKeys(t *testing.T) {
	t.Parallel()
	e, runner := patchEnv(t)
	e.createTenant(t, "acme")
	ctx := context.Background()
	quotas := &dataplane.IngressQuotas{JS: runner.JS}
	require.NoError(t, quotas.Follow(ctx))

	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	limits := got.body["limits"].(map[string]any)
	require.NotContains(t, limits, "remembered_keys", "the platform's limit until told otherwise")

	limits["remembered_keys"] = 5_000_000
	limits["messages_per_second"] = 40
	body, err := json.Marshal(map[string]any{"limits": limits})
	require.NoError(t, err)
	res := call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, string(body))
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.EqualValues(t, 5_000_000, res.body["limits"].(map[string]any)["remembered_keys"])
	require.Eventually(t, func() bool {
		n, _ := quotas.RememberedKeys("acme")
		r, _ := quotas.Rate("acme")
		return n == 5_000_000 && r == 40
	}, 5*time.Second, 10*time.Millisecond, "the ingress sees both quotas")

	limits["remembered_keys"] = -1
	body, _ = json.Marshal(map[string]any{"limits": limits})
	requireProblem(t, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, string(body)), http.StatusUnprocessableEntity)

	delete(limits, "remembered_keys")
	body, _ = json.Marshal(map[string]any{"limits": limits})
	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodPatch, "/v1/tenants/acme", e.adminKey, string(body)).code)
	require.Eventually(t, func() bool { _, ok := quotas.RememberedKeys("acme"); return !ok }, 5*time.Second, 10*time.Millisecond,
		"back to the platform's limit")
}
