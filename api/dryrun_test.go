package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const dryRunSpec = `{
	"name": "orders",
	"consumer": {"connector": "http-webhook", "config": {"signature": {"scheme": "github", "secret": {"secret": "hook"}}}},
	"steps": [
		{"connector": "json-transform", "config": {"set": {"total": "qty * price"}, "remove": ["secret"]}},
		{"connector": "filter", "config": {"keep": "total > 0"}},
		{"connector": "router", "config": {"routes": [{"when": "total > 100", "to": ["big", "archive"]}], "default": ["archive"]}}
	],
	"producers": {
		"big": {"connector": "slack", "config": {"webhookUrl": {"secret": "sales-slack"}, "text": "Big order {{ .id }}"}},
		"archive": {"connector": "file", "config": {"dir": "archive"}}
	}
}`

func dryRunBody(t *testing.T, spec string, msgs ...map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(msgs)
	require.NoError(t, err)
	return `{"spec": ` + spec + `, "messages": ` + string(raw) + `}`
}

func results(t *testing.T, res response) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range res.body["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func bodiesFor(r map[string]any, producer string) []string {
	var out []string
	list, _ := r["producers"].(map[string]any)[producer].([]any)
	for _, m := range list {
		out = append(out, m.(map[string]any)["body"].(string))
	}
	return out
}

func TestDryRunRunsStepsAndRoutingWithoutSideEffects(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, false, func(o *Options) {
		o.TenantEnvAllowed = func(name string) bool { return name == "SHOP_DATABASE_URL" }
	})
	key, _ := e.createTenant(t, "acme")
	ctx := context.Background()

	res := call(t, e.h, http.MethodPost, "/v1/integrations/test", key, dryRunBody(t, dryRunSpec,
		map[string]any{"body": `{"id": 1, "qty": 3, "price": 50, "secret": "x"}`,
			"headers": map[string]string{"Content-Type": "application/json", "X-Trace": "t1", "Authorization": "Bearer leak", "X-Hub-Signature-256": "sha256=00"}},
		map[string]any{"body": `{"id": 2, "qty": 1, "price": 5}`},
		map[string]any{"body": `{"id": 3, "qty": 0, "price": 5}`},
		map[string]any{"body": "{\"id\": 4, \"qty\": 1, \"price\": 500}\n\n{\"id\": 5, \"qty\": 2, \"price\": 1}\n",
			"headers": map[string]string{"content-type": "application/x-ndjson"}},
		map[string]any{"body": `not json`},
		map[string]any{"body": `{"id": 6, "qty": 1, "price": 1}`, "headers": map[string]string{"X-GitHub-Event": "ping"}},
	))
	require.Equal(t, http.StatusOK, res.code, res.raw)
	rs := results(t, res)
	require.Len(t, rs, 6)
	for i, r := range rs {
		require.EqualValues(t, i, r["index"])
	}

	// Converted, filtered and routed to both producers.
	require.Equal(t, false, rs[0]["filtered"])
	require.NotContains(t, rs[0], "error")
	require.Len(t, bodiesFor(rs[0], "big"), 1)
	require.JSONEq(t, `{"id": 1, "qty": 3, "price": 50, "total": 150}`, bodiesFor(rs[0], "big")[0])
	require.Equal(t, bodiesFor(rs[0], "big"), bodiesFor(rs[0], "archive"))
	headers := rs[0]["producers"].(map[string]any)["big"].([]any)[0].(map[string]any)["headers"]
	require.Equal(t, map[string]any{"x-trace": "t1"}, headers, "only X-… headers travel, never credentials or signatures")
	// The default route.
	require.Empty(t, bodiesFor(rs[1], "big"))
	require.Len(t, bodiesFor(rs[1], "archive"), 1)
	// Dropped by the filter.
	require.Equal(t, true, rs[2]["filtered"])
	require.Empty(t, rs[2]["producers"])
	// An NDJSON batch is one message per line.
	require.Len(t, bodiesFor(rs[3], "big"), 1)
	require.Len(t, bodiesFor(rs[3], "archive"), 2)
	// A body the steps cannot read fails as the hot path would dead-letter it.
	require.Contains(t, rs[4]["error"], "steps[0]")
	require.Empty(t, rs[4]["producers"])
	// The webhook consumer does not store pings.
	require.Equal(t, true, rs[5]["filtered"])

	// Nothing was stored or published, and no secret was needed.
	names := e.js.StreamNames(ctx)
	for name := range names.Name() {
		require.NotContains(t, name, "acme", "a dry run creates no stream")
	}
	list := call(t, e.h, http.MethodGet, "/v1/integrations", key, "")
	require.Empty(t, list.body["items"])
	require.Contains(t, e.logs.String(), "integration dry run")
}

func TestDryRunRefusesSpecsExactlyAsCreateDoes(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, false, func(o *Options) {
		o.TenantEnvAllowed = func(name string) bool { return name == "SHOP_DATABASE_URL" }
	})
	key, _ := e.createTenant(t, "acme")
	msg := map[string]any{"body": `{}`}
	for _, tc := range []struct {
		name, spec string
	}{
		{"unknown config field", `{"name":"o","consumer":{"connector":"http-webhook"},"steps":[{"connector":"json-transform","config":{"sett":{}}}],"producers":{"a":{"connector":"file"}}}`},
		{"unknown connector", `{"name":"o","consumer":{"connector":"http-webhook"},"steps":[{"connector":"nope"}],"producers":{"a":{"connector":"file"}}}`},
		{"bad name", `{"name":"Not Valid","consumer":{"connector":"http-webhook"},"producers":{"a":{"connector":"file"}}}`},
		{"route to a missing producer", `{"name":"o","consumer":{"connector":"http-webhook"},"steps":[{"connector":"router","config":{"routes":[{"when":"true","to":["b"]}]}}],"producers":{"a":{"connector":"file"}}}`},
		{"an env var the operator does not allow", `{"name":"o","consumer":{"connector":"http-webhook"},` +
			`"producers":{"leak":{"connector":"http","config":{"url":"https://x.example","secretHeaders":{"X-Loot":{"env":"VRSKY_DATABASE_URL"}}}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created := call(t, e.h, http.MethodPost, "/v1/integrations", key, tc.spec)
			requireProblem(t, created, http.StatusUnprocessableEntity)
			dry := call(t, e.h, http.MethodPost, "/v1/integrations/test", key, dryRunBody(t, tc.spec, msg))
			requireProblem(t, dry, http.StatusUnprocessableEntity)
			var want []string
			for _, loc := range problemLocations(created) {
				want = append(want, "body.spec"+strings.TrimPrefix(loc, "body"))
			}
			require.NotEmpty(t, want)
			require.Equal(t, want, problemLocations(dry))
			require.Equal(t, created.body["detail"], dry.body["detail"])
			for i, d := range dry.body["errors"].([]any) {
				require.Equal(t, created.body["errors"].([]any)[i].(map[string]any)["message"], d.(map[string]any)["message"])
			}
		})
	}
	// The allowed variable passes both.
	allowed := `{"name":"o","consumer":{"connector":"http-webhook"},"producers":{"db":{"connector":"postgres","config":{"url":{"env":"SHOP_DATABASE_URL"},"table":"orders"}}}}`
	res := call(t, e.h, http.MethodPost, "/v1/integrations/test", key, dryRunBody(t, allowed, msg))
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.Len(t, bodiesFor(results(t, res)[0], "db"), 1)

	// An expression that does not compile is located at its step's config.
	bad := `{"name":"o","consumer":{"connector":"http-webhook"},"steps":[{"connector":"json-transform","config":{"set":{"x":"1 +"}}}],"producers":{"a":{"connector":"file"}}}`
	res = call(t, e.h, http.MethodPost, "/v1/integrations/test", key, dryRunBody(t, bad, msg))
	requireProblem(t, res, http.StatusUnprocessableEntity)
	require.Equal(t, []string{"body.spec.steps[0].config"}, problemLocations(res))
}

func TestDryRunIsBounded(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, false, nil)
	key, _ := e.createTenant(t, "acme")
	reader, _ := e.createKey(t, key, `["read"]`)
	spec := specNamed("orders", "out")

	// An expression that would loop for ever fails its message on the budget.
	loop := `{"name":"o","consumer":{"connector":"http-webhook"},"steps":[{"connector":"json-transform",` +
		`"config":{"set":{"x":"let r = 1..1000; sum(r, sum(r, sum(r, #)))"}}}],"producers":{"a":{"connector":"file"}}}`
	began := time.Now()
	res := call(t, e.h, http.MethodPost, "/v1/integrations/test", key, dryRunBody(t, loop, map[string]any{"body": `{}`}, map[string]any{"body": `{}`}))
	require.Equal(t, http.StatusOK, res.code, res.raw)
	for _, r := range results(t, res) {
		require.Contains(t, r["error"], "budget")
	}
	require.Less(t, time.Since(began), DryRunTimeout)

	many := make([]map[string]any, MaxDryRunMessages+1)
	for i := range many {
		many[i] = map[string]any{"body": "{}"}
	}
	big := strings.Repeat("x", MaxDryRunMessageBytes+1)
	manyHeaders := map[string]string{}
	for i := range 33 {
		manyHeaders[fmt.Sprintf("X-H%d", i)] = "v"
	}
	for _, tc := range []struct {
		name, body string
		code       int
		locations  []string
	}{
		{"no messages", `{"spec": ` + spec + `, "messages": []}`, 422, []string{"body.messages"}},
		{"too many messages", dryRunBody(t, spec, many...), 422, []string{"body.messages"}},
		{"a body over 1 MiB", dryRunBody(t, spec, map[string]any{"body": big}), 422, []string{"body.messages[0].body"}},
		{"too many headers", dryRunBody(t, spec, map[string]any{"body": "{}", "headers": manyHeaders}), 422, []string{"body.messages[0].headers"}},
		{"a header too long", dryRunBody(t, spec, map[string]any{"body": "{}", "headers": map[string]string{"X-A": strings.Repeat("v", 2000)}}), 422, []string{"body.messages[0].headers"}},
		{"no spec", `{"messages": [{"body": "{}"}]}`, 422, []string{"body.spec"}},
		{"a spec that is not an object", `{"spec": "orders", "messages": [{"body": "{}"}]}`, 422, []string{"body.spec"}},
		{"malformed JSON", `{"spec": {`, 422, []string{"body"}},
		{"unknown fields", `{"spec": ` + spec + `, "messages": [{"body": "{}"}], "publish": true}`, 422, []string{"body"}},
		{"trailing data", `{"spec": ` + spec + `, "messages": [{"body": "{}"}]} {}`, 422, []string{"body"}},
		{"a request over 16 MiB", `{"spec": ` + spec + `, "messages": [{"body": "` + strings.Repeat("x", MaxDryRunBytes) + `"}]}`, 413, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, e.h, http.MethodPost, "/v1/integrations/test", key, tc.body)
			requireProblem(t, res, tc.code)
			if tc.locations != nil {
				require.Equal(t, tc.locations, problemLocations(res))
			}
		})
	}
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/integrations/test", reader, dryRunBody(t, spec, map[string]any{"body": "{}"})), http.StatusForbidden)
	require401(t, call(t, e.h, http.MethodPost, "/v1/integrations/test", "", dryRunBody(t, spec, map[string]any{"body": "{}"})))
}
