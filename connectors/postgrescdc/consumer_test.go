package postgrescdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const urlEnv = "VRSKY_TEST_POSTGRES_CDC_URL"

// source is a fresh database with the given schema and a connection to it.
type source struct {
	url  string
	conn *pgx.Conn
}

func newSource(t *testing.T, schema string) *source {
	t.Helper()
	url := testenv.Postgres(t)
	t.Setenv(urlEnv, url)
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	if schema != "" {
		_, err = conn.Exec(t.Context(), schema)
		require.NoError(t, err)
	}
	return &source{url: url, conn: conn}
}

func (s *source) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	_, err := s.conn.Exec(t.Context(), sql, args...)
	require.NoError(t, err)
}

// slot returns the slot's confirmed position and whether a connection uses
// it.
func (s *source) slot(t *testing.T, name string) (pglogrepl.LSN, bool) {
	t.Helper()
	var lsn pglogrepl.LSN
	var active bool
	err := s.conn.QueryRow(t.Context(), "SELECT confirmed_flush_lsn::text, active FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&lsn, &active)
	require.NoError(t, err)
	return lsn, active
}

func (s *source) waitSlot(t *testing.T, name string, active bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		// A slot being created is active before it has a consistent
		// point; changes are captured once it has one.
		err := s.conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active = $2 AND confirmed_flush_lsn IS NOT NULL", name, active).Scan(&n)
		return err == nil && n == 1
	}, 15*time.Second, 20*time.Millisecond, "slot %s active=%v", name, active)
}

// newConsumer builds a consumer of a random integration and drops its slot
// when the test ends (a database with a slot cannot be dropped).
func newConsumer(t *testing.T, src *source, cfg string) *Consumer {
	t.Helper()
	env := sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "cdc-" + testenv.RandomID(6), Egress: ownServer}
	c := buildWith(t, src, env, cfg)
	t.Cleanup(func() { dropSlot(t, src, c.cfg.slot) })
	return c
}

func buildWith(t *testing.T, src *source, env sdk.Env, cfg string) *Consumer {
	t.Helper()
	raw := map[string]any{}
	require.NoError(t, json.Unmarshal([]byte(cfg), &raw))
	raw["url"] = map[string]string{"env": urlEnv}
	b, err := json.Marshal(raw)
	require.NoError(t, err)
	built, err := Connector.Build(t.Context(), env, b)
	require.NoError(t, err)
	return built.(*Consumer)
}

func dropSlot(t *testing.T, src *source, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		_, err := src.conn.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", name)
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond) // still active: its connection is closing
	}
	t.Errorf("drop replication slot %s: timed out", name)
}

// recorder is a sink that keeps what it was given and what it acknowledged.
type recorder struct {
	mu        sync.Mutex
	calls     [][]sdk.Message // every Publish, acknowledged or not
	delivered []sdk.Message   // acknowledged
	// fail, when set, decides the outcome of the n-th call (from 0).
	fail func(n int) error
}

func (r *recorder) Publish(_ context.Context, msgs []sdk.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.calls)
	r.calls = append(r.calls, append([]sdk.Message(nil), msgs...))
	if r.fail != nil {
		if err := r.fail(n); err != nil {
			return err
		}
	}
	r.delivered = append(r.delivered, msgs...)
	return nil
}

func (r *recorder) acked() []sdk.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sdk.Message(nil), r.delivered...)
}

func (r *recorder) callSizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, c := range r.calls {
		out = append(out, len(c))
	}
	return out
}

func (r *recorder) waitAcked(t *testing.T, n int) []sdk.Message {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.acked()) >= n }, 20*time.Second, 20*time.Millisecond, "want %d messages", n)
	return r.acked()
}

// run starts c.Run and returns a function that stops it and returns its
// error, and a channel that gets Run's error when it returns by itself. The
// test's end stops it too.
func run(t *testing.T, c *Consumer, sink sdk.Sink) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	finished := make(chan struct{})
	var result error
	go func() {
		result = c.Run(ctx, sink)
		close(finished)
		ch <- result
	}()
	stop = func() error {
		cancel()
		select {
		case <-finished:
			return result
		case <-time.After(sdktest.Prompt * 5):
			return errors.New("Run did not return after its context was cancelled")
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("Run: %v", err)
		}
	})
	return stop, ch
}

func changes(t *testing.T, msgs []sdk.Message) []Change {
	t.Helper()
	out := make([]Change, len(msgs))
	for i, m := range msgs {
		require.Equal(t, "application/json", m.ContentType)
		require.NoError(t, json.Unmarshal(m.Body, &out[i]), "%s", m.Body)
	}
	return out
}

func ids(msgs []sdk.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func lsnOf(t *testing.T, s string) pglogrepl.LSN {
	t.Helper()
	lsn, err := pglogrepl.ParseLSN(s)
	require.NoError(t, err)
	return lsn
}

func TestConformance(t *testing.T) {
	newSource(t, `CREATE TABLE orders (id int PRIMARY KEY); CREATE SCHEMA s; CREATE TABLE s.t (id int)`)
	env := sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "cdc-conformance", Egress: ownServer}
	url := `{"env":"` + urlEnv + `"}`
	sdktest.Conformance(t, Connector, env, json.RawMessage(`{"url":`+url+`,"tables":["orders","s.t"],"statusInterval":"1s"}`), map[string]json.RawMessage{
		"no url":            json.RawMessage(`{"tables":["orders"]}`),
		"inline url":        json.RawMessage(`{"url":"postgres://x","tables":["orders"]}`),
		"not a url":         json.RawMessage(`{"url":{"env":"HOME"},"tables":["orders"]}`),
		"no tables":         json.RawMessage(`{"url":` + url + `}`),
		"hostile table":     json.RawMessage(`{"url":` + url + `,"tables":["users; drop table x"]}`),
		"hostile schema":    json.RawMessage(`{"url":` + url + `,"tables":["a\".orders"]}`),
		"three parts":       json.RawMessage(`{"url":` + url + `,"tables":["a.b.c"]}`),
		"table twice":       json.RawMessage(`{"url":` + url + `,"tables":["orders","orders"]}`),
		"unknown table":     json.RawMessage(`{"url":` + url + `,"tables":["nope"]}`),
		"hostile pub":       json.RawMessage(`{"url":` + url + `,"tables":["orders"],"publication":"p'; drop"}`),
		"upper-case slot":   json.RawMessage(`{"url":` + url + `,"tables":["orders"],"slot":"Slot"}`),
		"hostile slot":      json.RawMessage(`{"url":` + url + `,"tables":["orders"],"slot":"s (x)"}`),
		"bad interval":      json.RawMessage(`{"url":` + url + `,"tables":["orders"],"statusInterval":"often"}`),
		"too short":         json.RawMessage(`{"url":` + url + `,"tables":["orders"],"statusInterval":"1ms"}`),
		"snapshot not bool": json.RawMessage(`{"url":` + url + `,"tables":["orders"],"snapshot":"yes"}`),
	})
}

func TestBuildErrorsAreClear(t *testing.T) {
	newSource(t, `CREATE TABLE orders (id int)`)
	url := `{"env":"` + urlEnv + `"}`
	for _, tt := range []struct{ cfg, want string }{
		{`{"url":` + url + `,"tables":["users; drop table x"]}`, `table "users; drop table x": want a letter`},
		{`{"url":` + url + `,"tables":["Orders"]}`, "table Orders: no such table"},
		{`{"url":` + url + `,"tables":[]}`, "tables: name at least one table"},
	} {
		_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Integration: "x", Egress: ownServer}, json.RawMessage(tt.cfg))
		require.ErrorContains(t, err, tt.want)
	}
	var cfg Config
	s, err := (&Config{URL: sdk.Secret{Env: "X"}, Tables: []string{"a"}}).settings(sdk.Env{LookupEnv: os.LookupEnv, Name: "Order-Sync"})
	require.NoError(t, err)
	require.Equal(t, "vrsky_Order_Sync", s.publication)
	require.Equal(t, "vrsky_order_sync", s.slot)
	require.Equal(t, DefaultStatusInterval, s.statusInterval)
	require.Error(t, cfg.Validate())
}

func TestChangesArriveInOrderWithBeforeAndAfter(t *testing.T) {
	src := newSource(t, `
CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, doc jsonb, ok bool, at timestamptz, big bigint, f float8);
CREATE TABLE full_items (id int PRIMARY KEY, name text);
ALTER TABLE full_items REPLICA IDENTITY FULL;
CREATE TABLE other (x int);`)
	c := newConsumer(t, src, `{"tables":["items","public.full_items"]}`)
	sink := &recorder{}
	stop, _ := run(t, c, sink)
	src.waitSlot(t, c.cfg.slot, true)

	tx, err := src.conn.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), `INSERT INTO items VALUES (1, 'a', 1.50, '{"k":[1,"x"]}', true, '2031-05-06 07:08:09+00', 9007199254740993, 'NaN')`)
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), `INSERT INTO items (id, name, ok) VALUES (2, 'b', false)`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(t.Context()))
	src.exec(t, `INSERT INTO other VALUES (1)`)
	src.exec(t, `UPDATE items SET name = 'bb' WHERE id = 2`)
	src.exec(t, `UPDATE items SET id = 3 WHERE id = 2`)
	src.exec(t, `DELETE FROM items WHERE id = 1`)
	src.exec(t, `INSERT INTO full_items VALUES (1, 'x')`)
	src.exec(t, `UPDATE full_items SET name = 'y'`)
	src.exec(t, `DELETE FROM full_items`)

	got := sink.waitAcked(t, 8)
	require.Len(t, got, 8)
	ch := changes(t, got)
	type want struct {
		op, table     string
		before, after string
	}
	wants := []want{
		{OpInsert, "items", `null`, `{"id":1,"name":"a","price":1.50,"doc":{"k":[1,"x"]},"ok":true,"at":"2031-05-06 07:08:09+00","big":9007199254740993,"f":"NaN"}`},
		{OpInsert, "items", `null`, `{"id":2,"name":"b","price":null,"doc":null,"ok":false,"at":null,"big":null,"f":null}`},
		{OpUpdate, "items", `null`, `{"id":2,"name":"bb","price":null,"doc":null,"ok":false,"at":null,"big":null,"f":null}`},
		{OpUpdate, "items", `{"id":2}`, `{"id":3,"name":"bb","price":null,"doc":null,"ok":false,"at":null,"big":null,"f":null}`},
		{OpDelete, "items", `{"id":1}`, `null`},
		{OpInsert, "full_items", `null`, `{"id":1,"name":"x"}`},
		{OpUpdate, "full_items", `{"id":1,"name":"x"}`, `{"id":1,"name":"y"}`},
		{OpDelete, "full_items", `{"id":1,"name":"y"}`, `null`},
	}
	for i, w := range wants {
		var body struct {
			Before, After json.RawMessage
		}
		require.NoError(t, json.Unmarshal(got[i].Body, &body))
		require.Equal(t, w.op, ch[i].Op, "change %d", i)
		require.Equal(t, "public", ch[i].Schema)
		require.Equal(t, w.table, ch[i].Table)
		require.JSONEq(t, w.before, string(body.Before), "change %d before", i)
		require.JSONEq(t, w.after, string(body.After), "change %d after", i)
		require.NotNil(t, ch[i].CommitTime)
		require.Equal(t, "t1", got[i].Tenant)
		require.Equal(t, c.env.Integration, got[i].Integration)
	}
	require.Contains(t, string(got[0].Body), `"big":9007199254740993`, "big integers stay exact")

	// One transaction shares a commit LSN; the IDs number its changes.
	require.Equal(t, ch[0].CommitLSN, ch[1].CommitLSN)
	require.Equal(t, fmt.Sprintf("%s:%s:0", c.cfg.slot, ch[0].CommitLSN), got[0].ID)
	require.Equal(t, fmt.Sprintf("%s:%s:1", c.cfg.slot, ch[0].CommitLSN), got[1].ID)
	for i := 2; i < len(ch); i++ {
		require.Greater(t, lsnOf(t, ch[i].CommitLSN), lsnOf(t, ch[i-1].CommitLSN))
		require.Equal(t, fmt.Sprintf("%s:%s:0", c.cfg.slot, ch[i].CommitLSN), got[i].ID)
	}
	require.Equal(t, []int{2, 1, 1, 1, 1, 1, 1}, sink.callSizes(), "one Publish per transaction")

	// Acknowledged transactions are confirmed.
	require.Eventually(t, func() bool {
		lsn, _ := src.slot(t, c.cfg.slot)
		return lsn > lsnOf(t, ch[7].CommitLSN)
	}, 10*time.Second, 20*time.Millisecond)
	lag, err := c.Lag(t.Context())
	require.NoError(t, err)
	require.GreaterOrEqual(t, lag, int64(0))
	require.NoError(t, ignoreCancel(stop()))
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func TestFailedPublishIsNeitherConfirmedNorLost(t *testing.T) {
	src := newSource(t, `CREATE TABLE big (id int PRIMARY KEY, v text)`)
	c := newConsumer(t, src, `{"tables":["big"]}`)
	// The sink takes the first two chunks of the transaction and fails the
	// third.
	failing := &recorder{fail: func(n int) error {
		if n == 2 {
			return errors.New("jetstream unavailable")
		}
		return nil
	}}
	_, done := run(t, c, failing)
	src.waitSlot(t, c.cfg.slot, true)
	src.exec(t, `INSERT INTO big SELECT i, 'v' || i FROM generate_series(1, 1200) i`)

	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the sink failed")
	}
	require.ErrorContains(t, err, "jetstream unavailable")
	require.False(t, sdk.IsPermanent(err))
	require.Equal(t, []int{ChunkSize, ChunkSize, 200}, failing.callSizes(), "large transactions go in chunks")

	var attempted []sdk.Message
	for _, call := range failing.calls {
		attempted = append(attempted, call...)
	}
	commit := lsnOf(t, changes(t, attempted[:1])[0].CommitLSN)
	src.waitSlot(t, c.cfg.slot, false)
	confirmed, _ := src.slot(t, c.cfg.slot)
	require.Less(t, confirmed, commit, "the slot must not be confirmed past a transaction the sink did not take in full")
	lag, err := c.Lag(t.Context())
	require.NoError(t, err)
	require.Positive(t, lag)

	// The runner starts Run again: the whole transaction comes again, with
	// the same IDs, so JetStream drops the chunks it already had.
	sink := &recorder{}
	stop, _ := run(t, c, sink)
	got := sink.waitAcked(t, 1200)
	require.Equal(t, ids(attempted), ids(got))
	seen := map[string]bool{}
	for _, id := range ids(got) {
		require.False(t, seen[id], "IDs are unique within a transaction: %s", id)
		seen[id] = true
	}
	require.Eventually(t, func() bool {
		lsn, _ := src.slot(t, c.cfg.slot)
		return lsn > commit
	}, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, ignoreCancel(stop()))
}

func TestCrashBetweenPublishAndConfirm(t *testing.T) {
	src := newSource(t, `CREATE TABLE orders (id int PRIMARY KEY)`)
	c := newConsumer(t, src, `{"tables":["orders"]}`)
	sink := &recorder{}
	// The process dies right after the sink acknowledged the transaction,
	// before its position reached the server.
	c.afterPublish = func(context.Context) error { return errors.New("killed") }
	_, done := run(t, c, sink)
	src.waitSlot(t, c.cfg.slot, true)
	src.exec(t, `INSERT INTO orders SELECT generate_series(1, 3)`)
	select {
	case err := <-done:
		require.ErrorContains(t, err, "killed")
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop at the injected crash")
	}
	first := sink.acked()
	require.Len(t, first, 3)
	src.waitSlot(t, c.cfg.slot, false)
	confirmed, _ := src.slot(t, c.cfg.slot)
	require.Less(t, confirmed, lsnOf(t, changes(t, first)[0].CommitLSN))

	// After the restart the transaction is sent again with the same IDs,
	// and later commits follow.
	restarted := buildWith(t, src, c.env, `{"tables":["orders"]}`)
	stop, _ := run(t, restarted, sink)
	src.exec(t, `INSERT INTO orders VALUES (4)`)
	got := sink.waitAcked(t, 7)
	require.Equal(t, ids(first), ids(got[3:6]))
	rows := map[float64]bool{}
	unique := map[string]bool{}
	for i, ch := range changes(t, got) {
		var id float64
		require.NoError(t, json.Unmarshal(mustMarshal(t, ch.After["id"]), &id))
		rows[id] = true
		unique[got[i].ID] = true
	}
	require.Equal(t, map[float64]bool{1: true, 2: true, 3: true, 4: true}, rows, "no committed row is missing")
	require.Len(t, unique, 4, "duplicates share their IDs")
	require.NoError(t, ignoreCancel(stop()))
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func TestSnapshotEmitsExistingRowsOnce(t *testing.T) {
	src := newSource(t, `
CREATE TABLE a (id int PRIMARY KEY, name text);
CREATE TABLE b (id int PRIMARY KEY);
INSERT INTO a VALUES (1, 'one'), (2, NULL);
INSERT INTO b SELECT generate_series(1, 600);`)
	c := newConsumer(t, src, `{"tables":["a","b"],"snapshot":true,"statusInterval":"200ms"}`)

	// The first attempt dies during its snapshot: the next one must take
	// the snapshot again rather than resume from the slot.
	failing := &recorder{fail: func(n int) error {
		if n == 1 {
			return errors.New("sink down")
		}
		return nil
	}}
	_, done := run(t, c, failing)
	select {
	case err := <-done:
		require.ErrorContains(t, err, "sink down")
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the sink failed")
	}
	src.waitSlot(t, c.cfg.slot, false)
	src.exec(t, `INSERT INTO a VALUES (3, 'three')`) // after the failed snapshot

	sink := &recorder{}
	stop, _ := run(t, c, sink)
	got := sink.waitAcked(t, 603)
	require.Equal(t, []int{ChunkSize, 103}, sink.callSizes())
	ch := changes(t, got)
	for i, x := range ch {
		require.Equal(t, OpSnapshot, x.Op)
		require.Nil(t, x.Before)
		require.Nil(t, x.CommitTime)
		require.Equal(t, fmt.Sprintf("%s:%s:snapshot:%d", c.cfg.slot, x.CommitLSN, i), got[i].ID)
	}
	require.Equal(t, "a", ch[0].Table)
	require.Len(t, ch[0].After, 2)
	var aRows []string
	for _, x := range ch[:3] {
		aRows = append(aRows, string(mustMarshal(t, x.After)))
	}
	require.ElementsMatch(t, []string{`{"id":1,"name":"one"}`, `{"id":2,"name":null}`, `{"id":3,"name":"three"}`}, aRows)
	require.Equal(t, "b", ch[3].Table)

	src.exec(t, `INSERT INTO a VALUES (4, 'four')`)
	got = sink.waitAcked(t, 604)
	require.Equal(t, OpInsert, changes(t, got[603:])[0].Op)
	require.NoError(t, ignoreCancel(stop()))
	src.waitSlot(t, c.cfg.slot, false)

	// A later run resumes the stream and does not snapshot again.
	again := &recorder{}
	stop, _ = run(t, c, again)
	src.exec(t, `INSERT INTO a VALUES (5, 'five')`)
	got = again.waitAcked(t, 1)
	time.Sleep(300 * time.Millisecond)
	got = again.acked()
	require.Len(t, got, 1)
	require.Equal(t, OpInsert, changes(t, got)[0].Op)
	require.NoError(t, ignoreCancel(stop()))
}

func TestPublicationIsReusedAndExtended(t *testing.T) {
	src := newSource(t, `CREATE TABLE a (id int); CREATE TABLE b (id int)`)
	env := sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "cdc-" + testenv.RandomID(6), Egress: ownServer}
	first := buildWith(t, src, env, `{"tables":["a"]}`)
	t.Cleanup(func() { dropSlot(t, src, first.cfg.slot) })
	sink := &recorder{}
	stop, _ := run(t, first, sink)
	src.waitSlot(t, first.cfg.slot, true)
	src.exec(t, `INSERT INTO b VALUES (1)`) // not published yet
	src.exec(t, `INSERT INTO a VALUES (1)`)
	sink.waitAcked(t, 1)
	require.NoError(t, ignoreCancel(stop()))
	src.waitSlot(t, first.cfg.slot, false)

	// The integration now captures b too: same publication and slot.
	second := buildWith(t, src, env, `{"tables":["a","b"]}`)
	stop, _ = run(t, second, sink)
	src.waitSlot(t, first.cfg.slot, true)
	require.Eventually(t, func() bool {
		var n int
		_ = src.conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_publication_tables WHERE pubname = $1", second.cfg.publication).Scan(&n)
		return n == 2
	}, 10*time.Second, 20*time.Millisecond)
	src.exec(t, `INSERT INTO b VALUES (2)`)
	got := sink.waitAcked(t, 2)
	ch := changes(t, got)
	require.Equal(t, "b", ch[len(ch)-1].Table)
	require.JSONEq(t, `{"id":2}`, string(mustMarshal(t, ch[len(ch)-1].After)))
	require.NoError(t, ignoreCancel(stop()))
}

func TestLagBeforeTheSlotExists(t *testing.T) {
	src := newSource(t, `CREATE TABLE a (id int)`)
	c := newConsumer(t, src, `{"tables":["a"]}`)
	_, err := c.Lag(t.Context())
	require.ErrorContains(t, err, "does not exist yet")
}

func TestTextToJSON(t *testing.T) {
	tests := []struct {
		oid  uint32
		text string
		want string
	}{
		{oidBool, "t", `true`},
		{oidBool, "f", `false`},
		{oidInt4, "-12", `-12`},
		{oidInt8, "9223372036854775807", `9223372036854775807`},
		{oidNumeric, "1.50", `1.50`},
		{oidNumeric, "NaN", `"NaN"`},
		{oidFloat8, "Infinity", `"Infinity"`},
		{oidFloat8, "-Infinity", `"-Infinity"`},
		{oidFloat8, "1e+300", `1e+300`},
		{oidNumeric, "1e999", `1e999`},
		{oidJSONB, `{"a":[1]}`, `{"a":[1]}`},
		{oidJSON, `not json`, `"not json"`},
		{25, "text", `"text"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(textToJSON(tt.oid, []byte(tt.text)))
		require.NoError(t, err)
		require.Equal(t, tt.want, string(got), "%d %s", tt.oid, tt.text)
	}
	require.False(t, isJSONNumber(nil))
}

func TestIdleSlotMovesPastOtherTablesWAL(t *testing.T) {
	src := newSource(t, `CREATE TABLE a (id int); CREATE TABLE other (v text)`)
	c := newConsumer(t, src, `{"tables":["a"],"statusInterval":"200ms"}`)
	sink := &recorder{}
	stop, _ := run(t, c, sink)
	src.waitSlot(t, c.cfg.slot, true)
	src.exec(t, `INSERT INTO other SELECT repeat('x', 100) FROM generate_series(1, 5000)`)
	var written pglogrepl.LSN
	require.NoError(t, src.conn.QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text").Scan(&written))
	// Nothing of a is owed, so the slot need not hold the WAL of other.
	require.Eventually(t, func() bool {
		lsn, _ := src.slot(t, c.cfg.slot)
		return lsn >= written
	}, 15*time.Second, 50*time.Millisecond)
	lag, err := c.Lag(t.Context())
	require.NoError(t, err)
	require.Less(t, lag, int64(64<<10))
	require.Empty(t, sink.acked())
	require.NoError(t, ignoreCancel(stop()))
}

// TestRetireDropsTheSlotAndItsOwnPublication: once its integration is gone,
// the consumer's slot no longer keeps the WAL; Retire waits for a running
// copy to let go, is idempotent, and leaves a publication it did not name.
func TestRetireDropsTheSlotAndItsOwnPublication(t *testing.T) {
	src := newSource(t, `CREATE TABLE a (id int)`)
	c := newConsumer(t, src, `{"tables":["a"]}`)
	stop, _ := run(t, c, &recorder{})
	src.waitSlot(t, c.cfg.slot, true)

	retired := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		retired <- c.Retire(ctx)
	}()
	time.Sleep(300 * time.Millisecond) // Retire waits for the running copy…
	require.NoError(t, ignoreCancel(stop()))
	require.NoError(t, <-retired) // …which lets go when it stops
	count := func(sql, name string) int {
		var n int
		require.NoError(t, src.conn.QueryRow(t.Context(), sql, name).Scan(&n))
		return n
	}
	require.Zero(t, count("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", c.cfg.slot))
	require.Zero(t, count("SELECT count(*) FROM pg_publication WHERE pubname = $1", c.cfg.publication))
	require.NoError(t, c.Retire(t.Context()), "twice")

	// A publication the user named is theirs: only the slot goes.
	src.exec(t, `CREATE PUBLICATION mine FOR TABLE a`)
	named := newConsumer(t, src, `{"tables":["a"],"publication":"mine"}`)
	stop, _ = run(t, named, &recorder{})
	src.waitSlot(t, named.cfg.slot, true)
	require.NoError(t, ignoreCancel(stop()))
	require.NoError(t, named.Retire(t.Context()))
	require.Zero(t, count("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", named.cfg.slot))
	require.Equal(t, 1, count("SELECT count(*) FROM pg_publication WHERE pubname = $1", "mine"))

	// A slot held for longer than the caller waits is reported.
	held := newConsumer(t, src, `{"tables":["a"]}`)
	run(t, held, &recorder{})
	src.waitSlot(t, held.cfg.slot, true)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	require.ErrorContains(t, held.Retire(ctx), "still in use")
}
