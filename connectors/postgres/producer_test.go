package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const urlEnv = "VRSKY_TEST_POSTGRES_PRODUCER_URL"

// database returns a fresh database with the given schema, its URL exported
// as urlEnv, and a connection to check results with.
func database(t testing.TB, schema string) *pgx.Conn {
	t.Helper()
	url := testenv.Postgres(t)
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv(urlEnv, url)
	} else {
		require.NoError(t, os.Setenv(urlEnv, url))
	}
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(context.Background(), schema)
	require.NoError(t, err)
	return conn
}

func newProducer(t testing.TB, cfg string) *Producer {
	t.Helper()
	p, err := build(context.Background(), sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "orders", Egress: ownServer}, json.RawMessage(cfg))
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func msgs(bodies ...string) []sdk.Message {
	out := make([]sdk.Message, len(bodies))
	for i, b := range bodies {
		out[i] = sdk.Message{ID: fmt.Sprintf("m%d", i), Body: []byte(b)}
	}
	return out
}

func query[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) []T {
	t.Helper()
	rows, err := conn.Query(t.Context(), sql, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	require.NoError(t, err)
	return out
}

const ordersSchema = `
CREATE TABLE orders (id text PRIMARY KEY, n int CHECK (n >= 0));
CREATE TABLE plain (a text, b int);
CREATE TABLE gen (a int, b int GENERATED ALWAYS AS (a * 2) STORED, c int GENERATED ALWAYS AS IDENTITY);
CREATE SCHEMA shop;
CREATE TABLE shop.items (sku text PRIMARY KEY, qty int);`

func TestConformance(t *testing.T) {
	database(t, ordersSchema)
	env := sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "orders", Egress: ownServer}
	url := `{"env":"` + urlEnv + `"}`
	sdktest.Conformance(t, Connector, env, json.RawMessage(`{"url":`+url+`,"table":"orders","mode":"upsert","key":["id"]}`), map[string]json.RawMessage{
		"no url":              json.RawMessage(`{"table":"orders"}`),
		"inline url":          json.RawMessage(`{"url":"postgres://u:p@h/db","table":"orders"}`),
		"unset env":           json.RawMessage(`{"url":{"env":"VRSKY_UNSET_FOR_TEST"},"table":"orders"}`),
		"not a url":           json.RawMessage(`{"url":{"env":"HOME"},"table":"orders"}`),
		"no table":            json.RawMessage(`{"url":` + url + `}`),
		"hostile table":       json.RawMessage(`{"url":` + url + `,"table":"orders; drop table x"}`),
		"quoted table":        json.RawMessage(`{"url":` + url + `,"table":"\"orders\""}`),
		"three part table":    json.RawMessage(`{"url":` + url + `,"table":"a.b.c"}`),
		"unknown table":       json.RawMessage(`{"url":` + url + `,"table":"nope"}`),
		"wrong case":          json.RawMessage(`{"url":` + url + `,"table":"Orders"}`),
		"unknown schema":      json.RawMessage(`{"url":` + url + `,"table":"nope.orders"}`),
		"bad mode":            json.RawMessage(`{"url":` + url + `,"table":"orders","mode":"merge"}`),
		"upsert without key":  json.RawMessage(`{"url":` + url + `,"table":"orders","mode":"upsert"}`),
		"key twice":           json.RawMessage(`{"url":` + url + `,"table":"orders","mode":"upsert","key":["id","id"]}`),
		"unknown key":         json.RawMessage(`{"url":` + url + `,"table":"orders","mode":"upsert","key":["nope"]}`),
		"key not unique":      json.RawMessage(`{"url":` + url + `,"table":"orders","mode":"upsert","key":["n"]}`),
		"idColumn not unique": json.RawMessage(`{"url":` + url + `,"table":"plain","idColumn":"a"}`),
		"unknown idColumn":    json.RawMessage(`{"url":` + url + `,"table":"orders","idColumn":"msg"}`),
		"hostile idColumn":    json.RawMessage(`{"url":` + url + `,"table":"orders","idColumn":"a\"b"}`),
		"unknown column":      json.RawMessage(`{"url":` + url + `,"table":"orders","columns":{"nope":"x"}}`),
		"hostile column":      json.RawMessage(`{"url":` + url + `,"table":"orders","columns":{"n) values (1); --":"x"}}`),
		"empty path segment":  json.RawMessage(`{"url":` + url + `,"table":"orders","columns":{"n":"a..b"}}`),
		"key not mapped":      json.RawMessage(`{"url":` + url + `,"table":"orders","mode":"upsert","key":["id"],"columns":{"n":"n"}}`),
		"idColumn mapped":     json.RawMessage(`{"url":` + url + `,"table":"orders","idColumn":"id","columns":{"id":"x"}}`),
		"generated column":    json.RawMessage(`{"url":` + url + `,"table":"gen","columns":{"b":"b"}}`),
		"identity column":     json.RawMessage(`{"url":` + url + `,"table":"gen","columns":{"c":"c"}}`),
	})
}

func TestBuildErrorsAreClear(t *testing.T) {
	database(t, ordersSchema)
	url := `{"env":"` + urlEnv + `"}`
	tests := []struct {
		name, cfg, want string
	}{
		{"unknown table", `{"url":` + url + `,"table":"nope"}`, `table nope: no such table`},
		{"unknown column", `{"url":` + url + `,"table":"shop.items","columns":{"qtty":"q"}}`, `column "qtty": no such column`},
		{"hostile table", `{"url":` + url + `,"table":"users; drop table x"}`, `table "users; drop table x": want a letter`},
		{"hostile schema", `{"url":` + url + `,"table":"x\".y"}`, `table schema "x\""`},
		{"no unique index", `{"url":` + url + `,"table":"plain","key":["a"]}`, "no unique index or constraint on exactly (a)"},
		{"generated", `{"url":` + url + `,"table":"gen","columns":{"b":"b"}}`, "generated column"},
		{"secret leaves no trace", `{"url":{"env":"HOME"},"table":"orders"}`, "url env:HOME: not a valid connection string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv, Egress: ownServer}, json.RawMessage(tt.cfg))
			require.ErrorContains(t, err, tt.want)
		})
	}
	// A generated column is skipped when columns are mapped by name.
	p := newProducer(t, `{"url":`+url+`,"table":"gen"}`)
	require.NoError(t, p.Write(t.Context(), msgs(`{"a":2,"b":9,"c":9}`)))
}

func TestInsertBatchByCopy(t *testing.T) {
	conn := database(t, `
CREATE TABLE events (
  id bigserial PRIMARY KEY,
  name text NOT NULL,
  qty int,
  price numeric(10,2),
  code char(3),
  at timestamptz,
  active bool,
  tags text[],
  grid int[],
  payload jsonb,
  doc json,
  created text DEFAULT 'by default'
)`)
	p := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"events"}`)
	err := p.Write(t.Context(), msgs(
		`{"name":"a","qty":3,"price":9.99,"code":"abc","at":"2031-05-06T07:08:09Z","active":true,"tags":["x","y \"q\"",null],"grid":[[1,2],[3,4]],"payload":{"k":[1,{"z":null}],"big":123456789012345678901234567890},"doc":[1,"two"],"ignored":"not a column"}`,
		`{"name":"b","qty":null,"price":1e2,"created":"given"}`,
		`{"name":"c","payload":"just a string","active":false,"qty":-7}`,
	))
	var be *sdk.BatchError
	if errors.As(err, &be) {
		t.Fatalf("failed: %v", be.Failed)
	}
	require.NoError(t, err)

	type rec struct {
		Name    string
		Qty     *int32
		Price   *string
		Code    *string
		At      *string
		Active  *bool
		Tags    []*string
		Grid    [][]int32
		Payload *string
		Doc     *string
		Created string
	}
	rows, err := conn.Query(t.Context(), `SELECT name, qty, price::text, code, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), active, tags, grid, payload::text, doc::text, created FROM events ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rec])
	require.NoError(t, err)
	require.Len(t, got, 3)

	require.Equal(t, "a", got[0].Name)
	require.EqualValues(t, 3, *got[0].Qty)
	require.Equal(t, "9.99", *got[0].Price)
	require.Equal(t, "abc", *got[0].Code)
	require.Equal(t, "2031-05-06 07:08:09", *got[0].At)
	require.True(t, *got[0].Active)
	require.Len(t, got[0].Tags, 3)
	require.Equal(t, "x", *got[0].Tags[0])
	require.Equal(t, `y "q"`, *got[0].Tags[1])
	require.Nil(t, got[0].Tags[2])
	require.Equal(t, [][]int32{{1, 2}, {3, 4}}, got[0].Grid)
	require.JSONEq(t, `{"k":[1,{"z":null}],"big":123456789012345678901234567890}`, *got[0].Payload)
	require.Contains(t, *got[0].Payload, "123456789012345678901234567890", "big numbers stay exact")
	require.JSONEq(t, `[1,"two"]`, *got[0].Doc)
	require.Equal(t, "by default", got[0].Created, "a field the message lacks keeps the column default")

	require.Nil(t, got[1].Qty, "JSON null is NULL")
	require.Equal(t, "100.00", *got[1].Price)
	require.Equal(t, "given", got[1].Created)

	require.JSONEq(t, `"just a string"`, *got[2].Payload)
	require.False(t, *got[2].Active)
	require.EqualValues(t, -7, *got[2].Qty)
}

func TestRedeliveredBatchAddsNoRows(t *testing.T) {
	conn := database(t, `
CREATE TABLE byid (msg_id text UNIQUE, v int);
CREATE TABLE bykey (k int PRIMARY KEY, v int);`)
	url := `{"env":"` + urlEnv + `"}`
	tests := []struct {
		name, cfg, table string
	}{
		{"idColumn", `{"url":` + url + `,"table":"byid","idColumn":"msg_id"}`, "byid"},
		{"key", `{"url":` + url + `,"table":"bykey","key":["k"]}`, "bykey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProducer(t, tt.cfg)
			batch := msgs(`{"k":1,"v":1}`, `{"k":2,"v":2}`, `{"k":3,"v":3}`)
			require.NoError(t, p.Write(t.Context(), batch))
			// The hot path redelivers the batch (the ack was lost), plus
			// one new message.
			require.NoError(t, p.Write(t.Context(), append(batch, sdk.Message{ID: "m9", Body: []byte(`{"k":9,"v":9}`)})))
			got := query[int32](t, conn, "SELECT v FROM "+tt.table+" ORDER BY v")
			require.Equal(t, []int32{1, 2, 3, 9}, got)
		})
	}
	ids := query[string](t, conn, "SELECT msg_id FROM byid ORDER BY msg_id")
	require.Equal(t, []string{"m0", "m1", "m2", "m9"}, ids, "the idColumn holds the message IDs")
}

func TestUpsertUpdates(t *testing.T) {
	conn := database(t, `CREATE TABLE stock (shop text, sku text, qty int, note text, msg text, PRIMARY KEY (shop, sku))`)
	p := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"stock","mode":"upsert","key":["sku","shop"],"idColumn":"msg"}`)
	require.NoError(t, p.Write(t.Context(), msgs(
		`{"shop":"s1","sku":"a","qty":1,"note":"first"}`,
		`{"shop":"s1","sku":"b","qty":2}`,
	)))
	require.NoError(t, p.Write(t.Context(), []sdk.Message{
		{ID: "u1", Body: []byte(`{"shop":"s1","sku":"a","qty":10}`)},
		{ID: "u2", Body: []byte(`{"shop":"s2","sku":"a","qty":5}`)},
		// The same key twice in a batch: the later message wins.
		{ID: "u3", Body: []byte(`{"shop":"s1","sku":"b","qty":20,"note":"x"}`)},
		{ID: "u4", Body: []byte(`{"shop":"s1","sku":"b","qty":21,"note":"y"}`)},
	}))
	type rec struct {
		Shop, Sku string
		Qty       int32
		Note      *string
		Msg       string
	}
	rows, err := conn.Query(t.Context(), "SELECT shop, sku, qty, note, msg FROM stock ORDER BY shop, sku")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rec])
	require.NoError(t, err)
	first, y := "first", "y"
	require.Equal(t, []rec{
		{"s1", "a", 10, &first, "u1"}, // note absent from the update: kept
		{"s1", "b", 21, &y, "u4"},
		{"s2", "a", 5, nil, "u2"},
	}, got)

	// A message without its key cannot be upserted.
	err = p.Write(t.Context(), msgs(`{"shop":"s1","qty":1}`, `{"shop":"s1","sku":null}`))
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	require.ErrorContains(t, be.Failed[0], `key column "sku" has no value`)
	require.True(t, sdk.IsPermanent(be.Failed[1]))
}

func TestColumnMappingWithDottedPaths(t *testing.T) {
	conn := database(t, `CREATE TABLE customers (name text, city text, total numeric, raw jsonb)`)
	p := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"customers","columns":{"name":"customer.name","city":"customer.address.city","total":"total","raw":"customer"}}`)
	require.NoError(t, p.Write(t.Context(), msgs(
		`{"customer":{"name":"Ada","address":{"city":"London"}},"total":12.5,"name":"not this one"}`,
		`{"customer":{"name":"Bob","address":"unknown"},"total":1}`,
	)))
	type rec struct {
		Name  string
		City  *string
		Total string
		Raw   string
	}
	rows, err := conn.Query(t.Context(), "SELECT name, city, total::text, raw::text FROM customers ORDER BY name")
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rec])
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "Ada", got[0].Name)
	require.Equal(t, "London", *got[0].City)
	require.Equal(t, "12.5", got[0].Total)
	require.JSONEq(t, `{"name":"Ada","address":{"city":"London"}}`, got[0].Raw)
	require.Equal(t, "Bob", got[1].Name)
	require.Nil(t, got[1].City, "a path through a non-object has no value")
}

func TestBadMessagesFailAloneAndGoodOnesCommit(t *testing.T) {
	conn := database(t, `
CREATE TABLE lines (id text PRIMARY KEY, qty int NOT NULL CHECK (qty > 0), code varchar(3));
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.id = 'trigger' THEN RAISE EXCEPTION 'refused by trigger'; END IF; RETURN NEW; END $$;
CREATE TRIGGER refuse BEFORE INSERT ON lines FOR EACH ROW EXECUTE FUNCTION refuse();`)
	p := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"lines","key":["id"]}`)
	batch := msgs(
		`{"id":"a","qty":1}`,
		`{"id":"b","qty":`, // malformed JSON
		`{"id":"c","qty":2}`,
		`{"id":"d","qty":-1}`, // violates the CHECK
		`{"id":"e","qty":"three"}`,
		`{"id":"f","qty":3,"code":"toolong"}`,
		`{"id":"g","qty":null}`,
		`{"id":"trigger","qty":5}`,
		`{"id":"nul\u0000byte","qty":5}`,
		`[1,2]`,
		`{"id":"h","qty":4}`,
	)
	err := p.Write(t.Context(), batch)
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	failed := make([]int, 0, len(be.Failed))
	for i, ferr := range be.Failed {
		failed = append(failed, i)
		require.True(t, sdk.IsPermanent(ferr), "message %d: %v", i, ferr)
		require.ErrorContains(t, ferr, batch[i].ID)
	}
	require.ElementsMatch(t, []int{1, 3, 4, 5, 6, 7, 8, 9}, failed)
	require.ErrorContains(t, be.Failed[1], "malformed JSON: line 1")
	require.ErrorContains(t, be.Failed[3], "check constraint")
	require.ErrorContains(t, be.Failed[7], "refused by trigger")
	require.ErrorContains(t, be.Failed[9], "want an object")

	require.Equal(t, []string{"a", "c", "h"}, query[string](t, conn, "SELECT id FROM lines ORDER BY id"))

	// Redelivering the good ones is harmless; the bad ones still fail.
	err = p.Write(t.Context(), batch)
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 8)
	require.Equal(t, []string{"a", "c", "h"}, query[string](t, conn, "SELECT id FROM lines ORDER BY id"))
}

func TestInfrastructureFailuresAreRetryable(t *testing.T) {
	conn := database(t, `CREATE TABLE t (a int)`)
	p := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"t"}`)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := p.Write(ctx, msgs(`{"a":1}`))
	require.Error(t, err)
	require.False(t, sdk.IsPermanent(err))

	// The table vanished under the producer: not the message's fault.
	_, err = conn.Exec(t.Context(), "DROP TABLE t")
	require.NoError(t, err)
	err = p.Write(t.Context(), msgs(`{"a":1}`))
	require.ErrorContains(t, err, "write 1 rows to t")
	require.False(t, sdk.IsPermanent(err))

	require.NoError(t, p.Close(t.Context()))
	err = p.Write(t.Context(), msgs(`{"a":1}`))
	require.Error(t, err)
	require.False(t, sdk.IsPermanent(err))
}

func TestSearchPathAndSchemaQualifiedNames(t *testing.T) {
	conn := database(t, ordersSchema+`; CREATE TABLE public.items (sku text)`)
	p := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"shop.items","mode":"upsert","key":["sku"]}`)
	require.NoError(t, p.Write(t.Context(), msgs(`{"sku":"a","qty":1}`)))
	require.Equal(t, []string{"a"}, query[string](t, conn, "SELECT sku FROM shop.items"))
	require.Empty(t, query[string](t, conn, "SELECT sku FROM public.items"))

	q := newProducer(t, `{"url":{"env":"`+urlEnv+`"},"table":"items"}`)
	require.NoError(t, q.Write(t.Context(), msgs(`{"sku":"p"}`)))
	require.Equal(t, []string{"p"}, query[string](t, conn, "SELECT sku FROM public.items"))
}

func TestTextValue(t *testing.T) {
	tests := []struct {
		v       any
		isArray bool
		want    string
	}{
		{"s", false, "s"},
		{true, false, "true"},
		{42, false, "42"},
		{1.5, false, "1.5"},
		{1e300, false, "1e+300"},
		{json.Number("12345678901234567890123"), false, "12345678901234567890123"},
		{map[string]any{"a": "<b>"}, false, `{"a":"<b>"}`},
		{[]any{1, "x"}, false, `[1,"x"]`},
		{[]any{1, "x\\y", nil, []any{true}, map[string]any{"k": 1}}, true, `{"1","x\\y",NULL,{"true"},"{\"k\":1}"}`},
	}
	for _, tt := range tests {
		got, err := textValue(tt.v, tt.isArray)
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
	}
	_, err := textValue(map[string]any{"f": func() {}}, false)
	require.Error(t, err)
}

func TestIsRowError(t *testing.T) {
	for code, want := range map[string]bool{
		"23505": true, "22P02": true, "P0001": true, "21000": true, "42804": true,
		"40001": false, "40P01": false, "08006": false, "42P01": false, "57P01": false,
	} {
		require.Equal(t, want, isRowError(fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code})), code)
	}
	require.False(t, isRowError(errors.New("plain")))
}

func TestConfigValidate(t *testing.T) {
	cfg := Config{URL: sdk.Secret{Env: "X"}, Table: "t"}
	require.NoError(t, cfg.Validate())
	bad := Config{Table: "a b", Mode: "x", Key: []string{"1k"}}
	err := bad.Validate()
	for _, want := range []string{"url", "table", "mode", "key column"} {
		require.ErrorContains(t, err, want)
	}
	require.True(t, strings.HasPrefix(quote("a\"b"), `"a""b"`))
}

// BenchmarkWrite measures insert throughput in batches of 500 rows with an
// idColumn (COPY + INSERT … ON CONFLICT DO NOTHING, one transaction each).
func BenchmarkWrite(b *testing.B) {
	database(b, `CREATE TABLE bench (msg_id text PRIMARY KEY, name text, qty int, price numeric, payload jsonb)`)
	p := newProducer(b, `{"url":{"env":"`+urlEnv+`"},"table":"bench","idColumn":"msg_id"}`)
	const size = 500
	body := []byte(`{"name":"widget","qty":3,"price":9.99,"payload":{"a":1,"b":[1,2,3],"c":"` + strings.Repeat("x", 800) + `"}}`)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		batch := make([]sdk.Message, size)
		for i := range batch {
			n++
			batch[i] = sdk.Message{ID: fmt.Sprintf("m%d", n), Body: body}
		}
		if err := p.Write(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "rows/s")
}
