package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/controltest"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
)

// dlqEnv is the API with the tenants' DLQ streams on a private NATS server
// and a Temporal server running DLQReplay on the real activities.
type dlqEnv struct {
	*authEnv
	js      jetstream.JetStream
	control *control.Client
}

func newDLQEnv(t *testing.T, withTemporal bool) *dlqEnv {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testenv.JetStream(t)

	st := store.New(pool)
	var c *control.Client
	if withTemporal {
		c = startControlPlane(t, st, js, nil)
	}
	admin := store.NewSecret("vrsky_admin_")
	logs := &syncBuffer{}
	srv := New(Options{
		Gatherer: prometheus.NewRegistry(), Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Auth: st, Store: st, AdminKeyHash: store.HashSecret(admin), Control: c, Accounts: dataplane.SharedAccount{JS: js},
	})
	return &dlqEnv{
		authEnv: &authEnv{noControl: c == nil, h: srv.Handler(), st: st, pool: pool, adminKey: admin, logs: logs},
		js:      js, control: c,
	}
}

// deadLetter stores a message in the tenant's DLQ as the hot path does when
// a stage gives up on it, and returns its DLQ sequence.
func (e *dlqEnv) deadLetter(t *testing.T, p dataplane.Pipeline, id, stage, reason string, at time.Time, body []byte) uint64 {
	t.Helper()
	ctx := context.Background()
	_, err := dataplane.EnsureStreams(ctx, e.js, p)
	require.NoError(t, err)
	subject := p.InSubject()
	if producer, ok := cutDeliver(stage); ok {
		subject = p.OutSubject(producer)
	}
	m := nats.NewMsg(p.DLQSubject())
	m.Header.Set(nats.MsgIdHdr, id+"/"+stage)
	m.Header.Set("Vrsky-Msg-Id", id)
	m.Header.Set("Vrsky-Content-Type", "application/json")
	m.Header.Set("Vrsky-Headers", `{"X-Trace":"abc"}`)
	m.Header.Set(dataplane.HeaderDLQReason, reason)
	m.Header.Set(dataplane.HeaderDLQStage, stage)
	m.Header.Set(dataplane.HeaderDLQAttempts, "4")
	m.Header.Set(dataplane.HeaderDLQSubject, subject)
	m.Header.Set(dataplane.HeaderDLQAt, at.UTC().Format(time.RFC3339Nano))
	m.Data = body
	ack, err := e.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	return ack.Sequence
}

func cutDeliver(stage string) (string, bool) {
	prefix := dataplane.DeliverStage("")
	if len(stage) > len(prefix) && stage[:len(prefix)] == prefix {
		return stage[len(prefix):], true
	}
	return "", false
}

func ids(res response) []string {
	var out []string
	for _, it := range res.body["items"].([]any) {
		out = append(out, it.(map[string]any)["message_id"].(string))
	}
	return out
}

func TestListAndInspectDeadLetters(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t, false)
	tenant := "t" + testenv.RandomID(6)
	key, _ := e.createTenant(t, tenant)
	orders := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	invoices := dataplane.Pipeline{Tenant: tenant, Integration: "invoices"}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	e.deadLetter(t, orders, "m1", dataplane.DeliverStage("archive"), "disk full", base, []byte(`{"n":1}`))
	e.deadLetter(t, orders, "m2", dataplane.StageProcess, "bad JSON", base.Add(time.Hour), []byte{0xff, 0x00, 0x01})
	e.deadLetter(t, invoices, "m3", dataplane.DeliverStage("archive"), "HTTP 500", base.Add(2*time.Hour), []byte("x"))

	for _, tc := range []struct {
		name, query string
		want        []string
	}{
		{"all", "", []string{"m1", "m2", "m3"}},
		{"integration", "integration=orders", []string{"m1", "m2"}},
		{"producer", "producer=archive", []string{"m1", "m3"}},
		{"time", "since=" + url.QueryEscape(base.Add(time.Hour).Format(time.RFC3339)), []string{"m2", "m3"}},
		{"until", "until=" + url.QueryEscape(base.Add(time.Hour).Format(time.RFC3339)), []string{"m1"}},
		{"error", "error=DISK", []string{"m1"}},
		{"none", "integration=nothing", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, e.h, http.MethodGet, "/v1/dlq?"+tc.query, key, "")
			require.Equal(t, http.StatusOK, res.code, res.raw)
			require.Equal(t, tc.want, ids(res))
		})
	}

	// Pages follow the Link.
	first := call(t, e.h, http.MethodGet, "/v1/dlq?limit=2&producer=archive", key, "")
	require.Equal(t, http.StatusOK, first.code, first.raw)
	require.Equal(t, []string{"m1", "m3"}, ids(first))
	first = call(t, e.h, http.MethodGet, "/v1/dlq?limit=1", key, "")
	require.Equal(t, []string{"m1"}, ids(first))
	require.NotEmpty(t, first.body["next"])
	require.Contains(t, first.header.Get("Link"), `rel="next"`)
	second := call(t, e.h, http.MethodGet, "/v1/dlq?limit=1&cursor="+first.body["next"].(string), key, "")
	require.Equal(t, []string{"m2"}, ids(second))
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq?cursor=abc", key, ""), http.StatusUnprocessableEntity)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq?integration=Not_Valid", key, ""), http.StatusUnprocessableEntity)

	item := first.body["items"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{
		"id": item["id"], "message_id": "m1", "integration": "orders", "stage": "deliver-archive", "producer": "archive",
		"error": "disk full", "attempts": float64(4), "subject": orders.OutSubject("archive"), "at": base.Format(time.RFC3339),
		"content_type": "application/json", "headers": map[string]any{"X-Trace": "abc"}, "body_size": float64(7), "claim_checked": false,
	}, item)

	got := call(t, e.h, http.MethodGet, "/v1/dlq/"+item["id"].(string), key, "")
	require.Equal(t, http.StatusOK, got.code, got.raw)
	require.Equal(t, `{"n":1}`, got.body["body"])
	require.Equal(t, "utf-8", got.body["body_encoding"])
	require.Equal(t, "m1", got.body["message_id"])
	binary := call(t, e.h, http.MethodGet, "/v1/dlq/"+second.body["items"].([]any)[0].(map[string]any)["id"].(string), key, "")
	require.Equal(t, "/wAB", binary.body["body"])
	require.Equal(t, "base64", binary.body["body_encoding"])
	for _, id := range []string{"999", "0", "abc"} {
		requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq/"+id, key, ""), http.StatusNotFound)
	}

	// Without Temporal, replay and discard are unavailable.
	res := call(t, e.h, http.MethodPost, "/v1/dlq/replay", key, `{}`)
	requireProblem(t, res, http.StatusServiceUnavailable)
	require.NotEmpty(t, res.header.Get("Retry-After"))
}

func TestTenantsCannotReachEachOthersDeadLetters(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t, false)
	a, b := "t"+testenv.RandomID(6), "t"+testenv.RandomID(6)
	keyA, _ := e.createTenant(t, a)
	keyB, _ := e.createTenant(t, b)
	seq := e.deadLetter(t, dataplane.Pipeline{Tenant: a, Integration: "orders"}, "m1", dataplane.StageProcess, "bad", time.Now(), []byte("secret"))
	id := strconv.FormatUint(seq, 10)

	require.Equal(t, []string{"m1"}, ids(call(t, e.h, http.MethodGet, "/v1/dlq", keyA, "")))
	list := call(t, e.h, http.MethodGet, "/v1/dlq", keyB, "")
	require.Equal(t, http.StatusOK, list.code, list.raw)
	require.Empty(t, list.body["items"])
	require.Empty(t, ids(call(t, e.h, http.MethodGet, "/v1/dlq?integration=orders", keyB, "")))
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq/"+id, keyB, ""), http.StatusNotFound)
	// Tenant B's own DLQ exists and still does not hold A's letter.
	e.deadLetter(t, dataplane.Pipeline{Tenant: b, Integration: "orders"}, "b1", dataplane.StageProcess, "bad", time.Now(), []byte("x"))
	require.Equal(t, []string{"b1"}, ids(call(t, e.h, http.MethodGet, "/v1/dlq", keyB, "")))
	if seq != 1 {
		requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq/"+id, keyB, ""), http.StatusNotFound)
	}

	// A key without the dlq scope gets 403 on every DLQ operation.
	reader, _ := e.createKey(t, keyA, `["read","write"]`)
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/dlq", ""},
		{http.MethodGet, "/v1/dlq/" + id, ""},
		{http.MethodPost, "/v1/dlq/replay", "{}"},
		{http.MethodPost, "/v1/dlq/discard", "{}"},
	} {
		requireProblem(t, call(t, e.h, r.method, r.path, reader, r.body), http.StatusForbidden)
		require401(t, call(t, e.h, r.method, r.path, "", r.body))
	}
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq", e.adminKey, ""), http.StatusForbidden)
}

func TestReplayAndDiscardThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t, true)
	tenant := "t" + testenv.RandomID(6)
	key, _ := e.createTenant(t, tenant)
	other, _ := e.createTenant(t, "t"+testenv.RandomID(6))
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	e.deadLetter(t, p, "m1", dataplane.DeliverStage("archive"), "disk full", time.Now(), []byte("one"))
	s2 := e.deadLetter(t, p, "m2", dataplane.DeliverStage("archive"), "disk full", time.Now(), []byte("two"))
	s3 := e.deadLetter(t, p, "m3", dataplane.StageProcess, "bad JSON", time.Now(), []byte("three"))
	ctx := context.Background()

	// Tenant B's replay of everything touches none of A's dead letters.
	res := call(t, e.h, http.MethodPost, "/v1/dlq/replay", other, `{}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	e.awaitWorkflow(t, res.body["workflow_id"].(string))
	require.Len(t, ids(call(t, e.h, http.MethodGet, "/v1/dlq", key, "")), 3)

	res = callWith(t, e.h, http.MethodPost, "/v1/dlq/replay", key, `{"producer":"archive","error":"disk"}`,
		map[string]string{"Idempotency-Key": "r1"})
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	wfID := res.body["workflow_id"].(string)
	require.Equal(t, wire.DLQReplayWorkflowID(tenant, "replay-r1"), wfID)
	var out wire.DLQReplayResult
	controltest.Wait(t, e.control, wfID, &out)
	require.Equal(t, wire.DLQReplayResult{Replayed: 2}, out)

	// The same request again starts nothing new.
	again := callWith(t, e.h, http.MethodPost, "/v1/dlq/replay", key, `{"producer":"archive"}`,
		map[string]string{"Idempotency-Key": "r1"})
	require.Equal(t, http.StatusAccepted, again.code, again.raw)
	require.Equal(t, wfID, again.body["workflow_id"])

	stream, err := e.js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "m1 and m2 are back in their pipeline, once each")
	raw, err := stream.GetLastMsgForSubject(ctx, p.OutSubject("archive"))
	require.NoError(t, err)
	require.Equal(t, "two", string(raw.Data))
	require.Equal(t, "m2", raw.Header.Get("Vrsky-Msg-Id"))
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq/"+strconv.FormatUint(s2, 10), key, ""), http.StatusNotFound)
	require.Equal(t, []string{"m3"}, ids(call(t, e.h, http.MethodGet, "/v1/dlq", key, "")))

	// Discard by ID.
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/dlq/discard", key, `{"ids":["x"]}`), http.StatusUnprocessableEntity)
	requireProblem(t, call(t, e.h, http.MethodPost, "/v1/dlq/discard", key, `{"integration":"Not Valid"}`), http.StatusUnprocessableEntity)
	res = call(t, e.h, http.MethodPost, "/v1/dlq/discard", key, `{"ids":["`+strconv.FormatUint(s3, 10)+`"]}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	controltest.Wait(t, e.control, res.body["workflow_id"].(string), &out)
	require.Equal(t, wire.DLQReplayResult{Discarded: 1}, out)
	list := call(t, e.h, http.MethodGet, "/v1/dlq", key, "")
	require.Empty(t, list.body["items"])
	info, err = stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "discarding replays nothing")
}

func (e *dlqEnv) awaitWorkflow(t *testing.T, id string) {
	t.Helper()
	controltest.Wait(t, e.control, id, nil)
}
