package api

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/controltest"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestReplayAndDiscardProgress(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t, true)
	tenant := "t" + testenv.RandomID(6)
	key, _ := e.createTenant(t, tenant)
	other, _ := e.createTenant(t, "t"+testenv.RandomID(6))
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	q := dataplane.Pipeline{Tenant: tenant, Integration: "invoices"}
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, e.deadLetter(t, p, "m"+strconv.Itoa(i), dataplane.DeliverStage("archive"), "disk full", time.Now(), []byte("x")))
	}
	e.deadLetter(t, q, "q1", dataplane.StageProcess, "bad JSON", time.Now(), []byte("y"))

	progress := func(key, id string) response {
		t.Helper()
		return call(t, e.h, http.MethodGet, "/v1/dlq/replays/"+id, key, "")
	}
	await := func(id string) response {
		t.Helper()
		controltest.Wait(t, e.control, wire.DLQReplayWorkflowID(tenant, id), nil)
		res := progress(key, id)
		require.Equal(t, http.StatusOK, res.code, res.raw)
		return res
	}

	// One integration's dead letters: counted from the stream at once.
	res := callWith(t, e.h, http.MethodPost, "/v1/dlq/replay", key, `{"integration":"orders","max_messages":3}`,
		map[string]string{"Idempotency-Key": "first"})
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	require.Equal(t, "replay-first", res.body["replay_id"])
	got := await("replay-first")
	delete(got.body, "$schema")
	require.Equal(t, map[string]any{"replay_id": "replay-first", "state": "completed", "total": 3.0, "done": 3.0, "failed": 0.0}, got.body)

	// A filter the stream cannot count is scanned.
	res = call(t, e.h, http.MethodPost, "/v1/dlq/discard", key, `{"error":"DISK"}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	id := res.body["replay_id"].(string)
	require.Regexp(t, `^discard-[0-9a-f]{24}$`, id)
	got = await(id)
	require.Equal(t, "completed", got.body["state"])
	require.EqualValues(t, 2, got.body["total"])
	require.EqualValues(t, 2, got.body["done"])

	// By ID, including one that is gone.
	res = call(t, e.h, http.MethodPost, "/v1/dlq/discard", key, `{"ids":["`+strconv.FormatUint(seqs[0], 10)+`","999"]}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	got = await(res.body["replay_id"].(string))
	require.EqualValues(t, 0, got.body["total"])
	require.EqualValues(t, 0, got.body["done"])

	// Everything left: the invoices' dead letter.
	res = call(t, e.h, http.MethodPost, "/v1/dlq/replay", key, `{}`)
	require.Equal(t, http.StatusAccepted, res.code, res.raw)
	got = await(res.body["replay_id"].(string))
	require.EqualValues(t, 1, got.body["total"])
	require.EqualValues(t, 1, got.body["done"])

	// Another tenant's replay, unknown and malformed IDs are all 404.
	requireProblem(t, progress(other, "replay-first"), http.StatusNotFound)
	requireProblem(t, progress(key, "replay-unknown"), http.StatusNotFound)
	requireProblem(t, progress(key, "nothing"), http.StatusNotFound)
	requireProblem(t, progress(key, "replay-"), http.StatusNotFound)
	reader, _ := e.createKey(t, key, `["read"]`)
	requireProblem(t, progress(reader, "replay-first"), http.StatusForbidden)
	require401(t, progress("", "replay-first"))
}

func TestReplayProgressWithoutControlPlane(t *testing.T) {
	t.Parallel()
	e := newDLQEnv(t, false)
	key, _ := e.createTenant(t, "t"+testenv.RandomID(6))
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/dlq/replays/replay-x", key, ""), http.StatusServiceUnavailable)
}
