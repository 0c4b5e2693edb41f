package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/store"
)

// placementEnv is an API on a real control plane, and that control plane's
// client, to read what the tenants' TenantPlacement runs were sent.
func placementEnv(t *testing.T) (*authEnv, *control.Client) {
	t.Helper()
	var ctl *control.Client
	e := newAuthEnvWith(t, func(o *Options) { ctl = o.Control })
	return e, ctl
}

// placementRequests returns the requests the tenant's TenantPlacement run
// received, from its history (nil when no run exists).
func placementRequests(t *testing.T, ctl *control.Client, tenant string) []wire.PlacementRequest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := ctl.Temporal().DescribeWorkflowExecution(ctx, wire.TenantPlacementWorkflowID(tenant), ""); err != nil {
		return nil
	}
	var reqs []wire.PlacementRequest
	it := ctl.Temporal().GetWorkflowHistory(ctx, wire.TenantPlacementWorkflowID(tenant), "", false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		sig := ev.GetWorkflowExecutionSignaledEventAttributes()
		if sig == nil {
			continue
		}
		require.Equal(t, wire.PlacementSignal, sig.GetSignalName())
		payloads := sig.GetInput().GetPayloads()
		require.Len(t, payloads, 1)
		var req wire.PlacementRequest
		require.NoError(t, json.Unmarshal(payloads[0].GetData(), &req))
		reqs = append(reqs, req)
	}
	return reqs
}

// waitRequests waits until the tenant's TenantPlacement run received n
// requests, and returns them: a signal sent while the run's task is in
// flight reaches its history when that task ends.
func waitRequests(t *testing.T, ctl *control.Client, tenant string, n int) []wire.PlacementRequest {
	t.Helper()
	var reqs []wire.PlacementRequest
	require.Eventually(t, func() bool {
		reqs = placementRequests(t, ctl, tenant)
		return len(reqs) >= n
	}, 30*time.Second, 100*time.Millisecond, "the run received %d requests", n)
	return reqs
}

func TestAdminMovesATenant(t *testing.T) {
	t.Parallel()
	e, ctl := placementEnv(t)
	e.createTenant(t, "acme")
	e.createTenant(t, "globex")

	res := call(t, e.h, http.MethodPost, "/v1/tenants/acme/placement", e.adminKey, `{"placement":"dedicated","reason":"a big customer"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	require.Equal(t, "/v1/tenants/acme", res.header.Get("Location"))
	require.Equal(t, "dedicated", res.body["requested"])
	// The answer shows the placement as recorded now: shared until the
	// workflow records its first step.
	require.Contains(t, []any{"shared", "moving-to-dedicated"}, res.body["placement"].(map[string]any)["state"], res.raw)
	require.Equal(t, []wire.PlacementRequest{{Target: wire.PlacementDedicated, Forced: true, Reason: "a big customer"}},
		waitRequests(t, ctl, "acme", 1), "the tenant's run got the admin's forced request")
	require.Nil(t, placementRequests(t, ctl, "globex"), "another tenant's run is not touched")

	// Without a reason the history says who asked.
	res = call(t, e.h, http.MethodPost, "/v1/tenants/acme/placement", e.adminKey, `{"placement":"shared"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	reqs := waitRequests(t, ctl, "acme", 2)
	require.Len(t, reqs, 2)
	require.Equal(t, wire.PlacementRequest{Target: wire.PlacementShared, Forced: true, Reason: defaultPlacementReason}, reqs[1])
}

// The TenantPlacement workflow records its steps in PostgreSQL; the API
// shows them from there, without asking the control plane.
func TestTenantsShowTheirPlacement(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) { o.Control = nil })
	activeTenant(t, e.st, "acme")
	activeTenant(t, e.st, "globex")
	ctx := context.Background()

	// A tenant that never moved is on the shared cluster since its creation.
	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	placement := got.body["placement"].(map[string]any)
	require.Equal(t, map[string]any{"state": "shared", "step": "", "forced": false, "since": got.body["created_at"]}, placement)
	require.NotContains(t, got.body, "placement_history")

	require.NoError(t, e.st.SetPlacement(ctx, store.Placement{Tenant: "acme", Placement: store.PlacementMovingToDedicated, Step: "provision", Forced: true, Instance: []byte("sealed")}, "a big customer"))
	require.NoError(t, e.st.SetPlacement(ctx, store.Placement{Tenant: "acme", Placement: store.PlacementMovingToDedicated, Step: "copy-streams", Forced: true, Instance: []byte("sealed")}, "instance ready"))
	got = call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	placement = got.body["placement"].(map[string]any)
	require.Equal(t, "moving-to-dedicated", placement["state"])
	require.Equal(t, "copy-streams", placement["step"])
	require.Equal(t, true, placement["forced"])
	since, err := time.Parse(time.RFC3339Nano, placement["since"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), since, time.Minute)
	history := got.body["placement_history"].([]any)
	require.Len(t, history, 2)
	require.Equal(t, "copy-streams", history[0].(map[string]any)["step"], "newest first")
	require.Equal(t, "instance ready", history[0].(map[string]any)["reason"])
	require.Equal(t, "moving-to-dedicated", history[0].(map[string]any)["state"])
	require.Equal(t, "provision", history[1].(map[string]any)["step"])
	require.NotContains(t, got.raw, "sealed", "the instance never leaves the store")
	require.NotContains(t, got.raw, `"instance"`)

	list := call(t, e.h, http.MethodGet, "/v1/tenants", e.adminKey, "")
	require.Equal(t, http.StatusOK, list.code, list.raw)
	states := map[string]string{}
	for _, item := range list.body["items"].([]any) {
		tenant := item.(map[string]any)
		states[tenant["id"].(string)] = tenant["placement"].(map[string]any)["state"].(string)
		require.NotContains(t, tenant, "placement_history", "the list shows no history")
	}
	require.Equal(t, map[string]string{"acme": "moving-to-dedicated", "globex": "shared"}, states)

	// The history shown is the last 20; a deleted tenant keeps its own.
	for range 25 {
		require.NoError(t, e.st.SetPlacement(ctx, store.Placement{Tenant: "acme", Placement: store.PlacementDedicated, Forced: true}, "settled"))
	}
	require.NoError(t, e.st.DeleteTenant(ctx, "acme"))
	got = call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Len(t, got.body["placement_history"], placementHistoryShown)
	require.Equal(t, "dedicated", got.body["placement"].(map[string]any)["state"])
}

// Attack: anything but the platform admin, or a body that is not a move,
// moves nothing.
func TestMoveTenantRefusals(t *testing.T) {
	t.Parallel()
	e, ctl := placementEnv(t)
	secret, _ := e.createTenant(t, "acme")
	e.createTenant(t, "globex")
	ctx := context.Background()

	t.Run("keys", func(t *testing.T) {
		for name, key := range map[string]string{"none": "", "garbage": "garbage", "unknown admin": store.NewSecret("vrsky_admin_")} {
			t.Run(name, func(t *testing.T) {
				requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants/acme/placement", key, `{"placement":"dedicated"}`), http.StatusUnauthorized)
			})
		}
		// A tenant's key moves neither itself nor another, nor reads them.
		for _, id := range []string{"acme", "globex"} {
			requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants/"+id+"/placement", secret, `{"placement":"dedicated"}`), http.StatusForbidden)
			requireProblem(t, call(t, e.h, http.MethodGet, "/v1/tenants/"+id, secret, ""), http.StatusForbidden)
		}
	})

	t.Run("tenants", func(t *testing.T) {
		requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants/nobody/placement", e.adminKey, `{"placement":"dedicated"}`), http.StatusNotFound)
		requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants/NOT_VALID/placement", e.adminKey, `{"placement":"dedicated"}`), http.StatusNotFound)
		requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants/"+strings.Repeat("a", 64)+"/placement", e.adminKey, `{"placement":"dedicated"}`), http.StatusUnprocessableEntity)
		requireProblem(t, call(t, e.h, http.MethodPost, "/v1/tenants/..%2Facme/placement", e.adminKey, `{"placement":"dedicated"}`), http.StatusNotFound)

		// Only an active tenant moves.
		keyID, prefix, hash, _ := store.NewKey()
		_, err := e.st.BeginTenant(ctx, store.NewTenant{ID: "starting", Name: "Starting", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: []store.Scope{store.ScopeRead}})
		require.NoError(t, err)
		keyID, prefix, hash, _ = store.NewKey()
		_, err = e.st.BeginTenant(ctx, store.NewTenant{ID: "broken", Name: "Broken", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: []store.Scope{store.ScopeRead}})
		require.NoError(t, err)
		require.NoError(t, e.st.FailTenant(ctx, "broken", "no NATS"))
		activeTenant(t, e.st, "leaving")
		require.NoError(t, e.st.DeleteTenant(ctx, "leaving"))
		for id, status := range map[string]string{"starting": "provisioning", "broken": "failed", "leaving": "deleting"} {
			res := call(t, e.h, http.MethodPost, "/v1/tenants/"+id+"/placement", e.adminKey, `{"placement":"dedicated"}`)
			requireProblem(t, res, http.StatusConflict)
			require.Contains(t, res.body["detail"], status)
			require.Nil(t, placementRequests(t, ctl, id), "nothing was asked for %s", id)
		}
	})

	t.Run("bodies", func(t *testing.T) {
		for name, tc := range map[string]struct {
			body  string
			codes []int
		}{
			"not json":             {`placement=dedicated`, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}},
			"truncated":            {`{"placement":"dedi`, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}},
			"empty":                {`{}`, []int{http.StatusUnprocessableEntity}},
			"array":                {`["dedicated"]`, []int{http.StatusUnprocessableEntity}},
			"a state, not a place": {`{"placement":"moving-to-dedicated"}`, []int{http.StatusUnprocessableEntity}},
			"unknown":              {`{"placement":"elsewhere"}`, []int{http.StatusUnprocessableEntity}},
			"case":                 {`{"placement":"Dedicated"}`, []int{http.StatusUnprocessableEntity}},
			"number":               {`{"placement":1}`, []int{http.StatusUnprocessableEntity}},
			"injection":            {`{"placement":"dedicated'; DROP TABLE tenants; --"}`, []int{http.StatusUnprocessableEntity}},
			"long reason":          {`{"placement":"dedicated","reason":"` + strings.Repeat("x", MaxPlacementReason+1) + `"}`, []int{http.StatusUnprocessableEntity}},
			"control characters":   {`{"placement":"dedicated","reason":"line\nbreak\u0000"}`, []int{http.StatusUnprocessableEntity}},
			"mass assignment":      {`{"placement":"dedicated","tenant":"globex"}`, []int{http.StatusUnprocessableEntity}},
			"forced by the caller": {`{"placement":"dedicated","forced":false}`, []int{http.StatusUnprocessableEntity}},
			"oversize":             {`{"placement":"dedicated","reason":"` + strings.Repeat("x", maxPlacementBody) + `"}`, []int{http.StatusRequestEntityTooLarge}},
		} {
			t.Run(name, func(t *testing.T) {
				res := call(t, e.h, http.MethodPost, "/v1/tenants/acme/placement", e.adminKey, tc.body)
				require.Contains(t, tc.codes, res.code, res.raw)
				require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
			})
		}
		require.Nil(t, placementRequests(t, ctl, "acme"), "no refused body reached the control plane")
		require.Nil(t, placementRequests(t, ctl, "globex"))
		p, err := e.st.GetPlacement(ctx, "acme")
		require.NoError(t, err)
		require.Equal(t, store.PlacementShared, p.Placement)

		// 200 characters, not bytes, and any script.
		reason := strings.Repeat("é", MaxPlacementReason)
		res := call(t, e.h, http.MethodPost, "/v1/tenants/acme/placement", e.adminKey, `{"placement":"dedicated","reason":"`+reason+`"}`)
		require.Equal(t, http.StatusAccepted, res.code, res.raw)
		require.Equal(t, reason, waitRequests(t, ctl, "acme", 1)[0].Reason)
	})
}

func TestMoveTenantWithoutAControlPlane(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) { o.Control = nil })
	activeTenant(t, e.st, "acme")
	res := call(t, e.h, http.MethodPost, "/v1/tenants/acme/placement", e.adminKey, `{"placement":"dedicated"}`)
	requireProblem(t, res, http.StatusServiceUnavailable)
	require.Equal(t, "5", res.header.Get("Retry-After"))
	// Reading the placement needs only PostgreSQL.
	got := call(t, e.h, http.MethodGet, "/v1/tenants/acme", e.adminKey, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, "shared", got.body["placement"].(map[string]any)["state"])
}
