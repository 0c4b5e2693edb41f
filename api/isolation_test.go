package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/store"
)

// operation is one route of the OpenAPI document a tenant key can call.
type operation struct {
	id, method, path string
	scope            store.Scope
	// scopes are every scope that may call it (scope is the first).
	scopes []store.Scope
}

// tenantOperations reads the served OpenAPI document and returns every
// operation behind a tenant scope (not the platform admin's, not the
// unauthenticated ones).
func tenantOperations(t *testing.T, h http.Handler) []operation {
	t.Helper()
	res := call(t, h, http.MethodGet, "/openapi.json", "", "")
	require.Equal(t, http.StatusOK, res.code)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Security    []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.raw), &doc))
	var ops []operation
	for path, methods := range doc.Paths {
		for method, op := range methods {
			if len(op.Security) == 0 {
				continue
			}
			scope := store.Scope(op.Security[0][BearerScheme][0])
			if scope == store.ScopePlatformAdmin {
				continue
			}
			var scopes []store.Scope
			for _, req := range op.Security {
				scopes = append(scopes, store.Scope(req[BearerScheme][0]))
			}
			ops = append(ops, operation{id: op.OperationID, method: strings.ToUpper(method), path: path, scope: scope, scopes: scopes})
		}
	}
	// Operations on one object first: the collection operations (create)
	// may then make A objects with B's names without confusing the walk.
	slices.SortFunc(ops, func(a, b operation) int {
		if ca, cb := strings.Contains(a.path, "{"), strings.Contains(b.path, "{"); ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return strings.Compare(a.id, b.id)
	})
	return ops
}

// validBodies are request bodies that pass validation, so that what the
// handler answers is tested, not the schema.
var validBodies = map[string]string{
	"create-integration":            ordersJSON,
	"update-integration":            ordersJSON,
	"create-api-key":                `{"scopes":["read"]}`,
	"replay-dead-letters":           `{"integration":"orders"}`,
	"discard-dead-letters":          `{"integration":"orders"}`,
	"deploy-integration":            `{}`,
	"backfill-integration-schedule": `{"start":"2026-11-01T00:00:00Z","end":"2026-11-02T00:00:00Z"}`,
	"put-secret":                    `{"value":"alpha's value"}`,
}

// upserts create the caller's own object under the name in the path: with
// B's name, A gets its own object, and B's is untouched.
var upserts = map[string]bool{"put-secret": true}

var pathParam = regexp.MustCompile(`\{(\w+)\}`)

// TestEveryTenantRouteIsIsolated walks every tenant operation of the API:
// tenant A's key with tenant B's IDs gets 404 and changes nothing of B's; a
// key without the operation's scope gets 403; a revoked key gets 401 on the
// very next request.
func TestEveryTenantRouteIsIsolated(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t)
	keyA, keyIDA := e.createTenant(t, "alpha")
	keyB, keyIDB := e.createTenant(t, "beta")

	// B owns a running integration, a second key and a dead letter.
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPost, "/v1/integrations", keyB, ordersJSON).code)
	require.Equal(t, http.StatusAccepted, call(t, e.h, http.MethodPost, "/v1/integrations/orders/deploy", keyB, `{}`).code)
	e.awaitStatus(t, keyB, "orders", dataplane.StatusRunning)
	_, otherKeyB := e.createKey(t, keyB, `["read"]`)
	require.Equal(t, http.StatusCreated, call(t, e.h, http.MethodPut, "/v1/secrets/token", keyB, `{"value":"beta's value"}`).code)
	seq := (&dlqEnv{authEnv: e.authEnv, js: e.js}).deadLetter(t, dataplane.Pipeline{Tenant: "beta", Integration: "orders"},
		"m1", dataplane.StageProcess, "bad", time.Now(), []byte(`{"secret":"beta's"}`))
	ids := map[string]string{"integrationId": "orders", "keyId": otherKeyB, "messageId": strconv.FormatUint(seq, 10), "name": "token",
		"replayId": "replay-b1"}
	snapshot := func() string {
		var b strings.Builder
		for _, path := range []string{"/v1/integrations/orders", "/v1/integrations/orders/status", "/v1/integrations/orders/versions", "/v1/api-keys", "/v1/dlq", "/v1/secrets"} {
			res := call(t, e.h, http.MethodGet, path, keyB, "")
			require.Equal(t, http.StatusOK, res.code, path+" "+res.raw)
			b.WriteString(regexp.MustCompile(`"(last_used_at|updated_at)":"[^"]*"`).ReplaceAllString(res.raw, ""))
		}
		return b.String()
	}
	before := snapshot()

	ops := tenantOperations(t, e.h)
	require.GreaterOrEqual(t, len(ops), 15, "the walk found the tenant operations")
	t.Logf("%d tenant operations", len(ops))
	for _, op := range ops {
		path := pathParam.ReplaceAllStringFunc(op.path, func(m string) string {
			id, ok := ids[m[1:len(m)-1]]
			require.True(t, ok, "%s: no test ID for %s", op.id, m)
			return id
		})
		body := validBodies[op.id]
		res := call(t, e.h, op.method, path, keyA, body)
		if upserts[op.id] {
			require.Equal(t, http.StatusCreated, res.code, "%s %s with A's key makes A's own: %s", op.method, path, res.raw)
			continue
		}
		if path != op.path { // names one of B's objects
			require.Equal(t, http.StatusNotFound, res.code, "%s %s with A's key: %s", op.method, path, res.raw)
			continue
		}
		require.Less(t, res.code, 500, "%s %s: %s", op.method, path, res.raw)
		require.NotContains(t, res.raw, keyIDB, "%s %s shows B's key", op.method, path)
		require.NotContains(t, res.raw, "beta", "%s %s shows B's data", op.method, path)
	}
	require.Equal(t, before, snapshot(), "nothing of B's changed")

	// Scopes: a key without the operation's scope is refused before anything.
	keys := map[store.Scope]string{}
	for _, s := range []store.Scope{store.ScopeRead, store.ScopeWrite, store.ScopeDLQ} {
		keys[s], _ = e.createKey(t, keyA, `["`+string(s)+`"]`)
	}
	for _, op := range ops {
		path := pathParam.ReplaceAllString(op.path, "x")
		for s, key := range keys {
			if slices.Contains(op.scopes, s) {
				continue
			}
			res := call(t, e.h, op.method, path, key, validBodies[op.id])
			require.Equal(t, http.StatusForbidden, res.code, "%s %s with a %s key: %s", op.method, path, s, res.raw)
		}
	}

	// A key revokes only keys whose every scope it holds: not the wider
	// keyA with a write-only key. Revocation is effective at once, on
	// every route.
	require.Equal(t, http.StatusForbidden, call(t, e.h, http.MethodDelete, "/v1/api-keys/"+keyIDA, keys[store.ScopeWrite], "").code)
	require.Equal(t, http.StatusNoContent, call(t, e.h, http.MethodDelete, "/v1/api-keys/"+keyIDA, keyA, "").code)
	for _, op := range ops {
		res := call(t, e.h, op.method, pathParam.ReplaceAllString(op.path, "x"), keyA, validBodies[op.id])
		require401(t, res)
	}
}
