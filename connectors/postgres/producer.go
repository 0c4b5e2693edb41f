// Package postgres holds the PostgreSQL producer: it writes each batch of
// JSON messages into one table, in one transaction, by COPY into a
// temporary staging table and one INSERT … SELECT … ON CONFLICT from it.
//
// Idempotency: a redelivered batch adds no duplicate rows when the config
// names an idColumn with a unique index (it receives the message ID) or key
// columns with a unique index; without either, insert mode appends every
// message it is given.
//
// This package must never format a user-supplied name into SQL: table and
// column names pass an allow-list, are checked against the catalog at Build
// and are quoted with pgx.Identifier.Sanitize; values travel only as COPY
// data or query parameters. It never acks and never retries: the commit of
// a batch's transaction is its durability point, and failures are returned
// as typed errors for the hot path to act on. It never connects to a host
// the tenant's egress policy refuses (ssrf.Guard.GuardPostgres), and never
// waits on a connect for ever.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// MaxConns is the size of a producer's connection pool: Write runs one batch
// at a time, so one connection does the work and one spares a reconnect.
const MaxConns = 2

// stagingTable is the temporary table a batch is copied into; it is dropped
// at the end of the batch's transaction.
var stagingTable = pgx.Identifier{"pg_temp", "vrsky_staging"}

// Connector registers the PostgreSQL producer.
var Connector = sdk.Connector{
	Name:      "postgres",
	Kind:      sdk.KindProducer,
	Summary:   "Insert or upsert JSON messages into a PostgreSQL table, one transaction per batch (COPY + INSERT … ON CONFLICT).",
	Example:   json.RawMessage(`{"url": {"secret": "orders-db-url"}, "table": "orders", "mode": "upsert", "key": ["id"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		return build(ctx, env, raw)
	},
}

// Producer writes batches into one table. Write must be called by one
// goroutine at a time; Close may be called at any time, more than once.
type Producer struct {
	cfg   settings
	pool  *pgxpool.Pool
	table string // quoted, schema-qualified target name
	cols  []column
	// conflict is the quoted conflict target, "" for a plain insert.
	conflict string
	// keyIdx are the indexes in cols of the key columns.
	keyIdx []int
	// idIdx is the index in cols of the idColumn, or -1.
	idIdx int

	closeOnce sync.Once
}

var _ sdk.Producer = (*Producer)(nil)

// column is one target column a message can fill.
type column struct {
	name string
	// cast is the column's type by its quoted, schema-qualified catalog
	// name ("pg_catalog"."bpchar"), which carries no type modifier: the
	// assignment applies the column's modifier, so a value too long fails
	// rather than being cut.
	cast    string
	isArray bool
	// isJSON marks json and jsonb columns: they get the value's JSON
	// encoding, so a JSON string stays a JSON string.
	isJSON bool
	// path is where the value is in the body; nil for the idColumn.
	path []string
}

func build(ctx context.Context, env sdk.Env, raw json.RawMessage) (*Producer, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	url, err := cfg.URL.Resolve(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("postgres: url: %w", err)
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The parse error may quote the connection string: leave it out.
		return nil, fmt.Errorf("postgres: url %s: not a valid connection string", cfg.URL)
	}
	// Every connection goes through the tenant's egress policy, checked
	// on each resolved address, and gives up on a silent server.
	ssrf.New(env.Egress).GuardPostgres(&pcfg.ConnConfig.Config)
	pcfg.MaxConns = MaxConns
	pcfg.MinConns = 0
	// Every statement is built per batch shape; run them unprepared so a
	// dropped and re-created staging table never meets a stale plan.
	pcfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	p := &Producer{cfg: s, pool: pool, idIdx: -1}
	if err := p.inspect(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: table %s: %w", s.target, err)
	}
	return p, nil
}

// catalogColumn is what the catalog says about one column.
type catalogColumn struct {
	cast       string
	isArray    bool
	isJSON     bool
	generated  bool
	alwaysIdty bool
}

// inspect resolves the table and checks every configured name against the
// catalog, then fixes the column list and conflict target.
func (p *Producer) inspect(ctx context.Context) error {
	var (
		oid    uint32
		schema string
	)
	err := p.pool.QueryRow(ctx, `
SELECT c.oid, n.nspname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND c.relkind IN ('r', 'p')
  AND (($2 = '' AND n.nspname = ANY (current_schemas(false))) OR n.nspname = $2)
ORDER BY array_position(current_schemas(false), n.nspname::text)
LIMIT 1`, p.cfg.target.Name, p.cfg.target.Schema).Scan(&oid, &schema)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("no such table (names are case-sensitive; without a schema the search_path is used)")
	}
	if err != nil {
		return fmt.Errorf("look up table: %w", err)
	}
	p.table = quote(schema, p.cfg.target.Name)

	rows, err := p.pool.Query(ctx, `
SELECT a.attname::text, quote_ident(tn.nspname) || '.' || quote_ident(t.typname), t.typcategory = 'A',
       a.atttypid IN ('json'::regtype, 'jsonb'::regtype), a.attgenerated <> '', a.attidentity = 'a'
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, oid)
	if err != nil {
		return fmt.Errorf("read columns: %w", err)
	}
	var order []string
	byName := map[string]catalogColumn{}
	for rows.Next() {
		var name string
		var c catalogColumn
		if err := rows.Scan(&name, &c.cast, &c.isArray, &c.isJSON, &c.generated, &c.alwaysIdty); err != nil {
			rows.Close()
			return fmt.Errorf("read columns: %w", err)
		}
		order = append(order, name)
		byName[name] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read columns: %w", err)
	}

	// Every named column must exist and take values.
	var errs []error
	writable := func(what, name string) bool {
		c, ok := byName[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s %q: no such column", what, name))
		case c.generated:
			errs = append(errs, fmt.Errorf("%s %q: is a generated column and takes no values", what, name))
		case c.alwaysIdty:
			errs = append(errs, fmt.Errorf("%s %q: is GENERATED ALWAYS AS IDENTITY and takes no values", what, name))
		default:
			return true
		}
		return false
	}
	add := func(name string, path []string) {
		c := byName[name]
		p.cols = append(p.cols, column{name: name, cast: c.cast, isArray: c.isArray, isJSON: c.isJSON, path: path})
	}
	if p.cfg.columns != nil {
		for _, name := range sortedKeys(p.cfg.columns) {
			if writable("column", name) {
				add(name, p.cfg.columns[name])
			}
		}
	} else {
		for _, name := range order {
			c := byName[name]
			if name != p.cfg.idColumn && !c.generated && !c.alwaysIdty {
				add(name, []string{name})
			}
		}
	}
	if p.cfg.idColumn != "" && writable("idColumn", p.cfg.idColumn) {
		p.idIdx = len(p.cols)
		add(p.cfg.idColumn, nil)
	}
	for _, k := range p.cfg.key {
		if !writable("key column", k) {
			continue
		}
		i := slices.IndexFunc(p.cols, func(c column) bool { return c.name == k })
		if i < 0 {
			errs = append(errs, fmt.Errorf("key column %q: not mapped from the message", k))
			continue
		}
		p.keyIdx = append(p.keyIdx, i)
	}
	if len(p.cols) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("has no columns that can take values"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	// ON CONFLICT needs a unique index on exactly the conflict columns.
	var conflict []string
	switch {
	case p.cfg.mode == ModeUpsert || p.cfg.idColumn == "":
		conflict = p.cfg.key
	default:
		conflict = []string{p.cfg.idColumn}
	}
	if len(conflict) == 0 {
		return nil
	}
	sorted := slices.Sorted(slices.Values(conflict))
	var unique bool
	err = p.pool.QueryRow(ctx, `
SELECT EXISTS (
  SELECT 1 FROM pg_catalog.pg_index i
  WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
    AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text)
         FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE k.n <= i.indnkeyatts) = $2::text[])`, oid, sorted).Scan(&unique)
	if err != nil {
		return fmt.Errorf("look up unique indexes: %w", err)
	}
	if !unique {
		return fmt.Errorf("no unique index or constraint on exactly (%s), which ON CONFLICT needs", strings.Join(conflict, ", "))
	}
	quoted := make([]string, len(conflict))
	for i, c := range conflict {
		quoted[i] = quote(c)
	}
	p.conflict = strings.Join(quoted, ", ")
	return nil
}

// cell states.
const (
	absent = iota // the message has no value: the column keeps its default
	null
	present
)

// cell is one column's value for one message, in PostgreSQL's text form.
type cell struct {
	state uint8
	text  string
}

// row is one decoded message ready to write.
type row struct {
	index int // in the batch
	cells []cell
	shape int
}

// shape is a set of columns that rows share, so one statement fits them.
type shape struct {
	cols []int
}

// Write writes the batch in one transaction and returns once it is
// committed. A message that cannot become a row (malformed JSON, a value
// the column rejects, a constraint it violates) fails alone, permanently,
// in a *sdk.BatchError, and every other message is committed. Connection
// trouble, serialization failures and deadlocks fail the whole batch,
// retryably, with nothing committed.
func (p *Producer) Write(ctx context.Context, batch []sdk.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: write to %s: %w", p.cfg.target, err)
	}
	failed := map[int]error{}
	rows := make([]row, 0, len(batch))
	var shapes []shape
	shapeOf := map[string]int{}
	var sig []byte
	for i, msg := range batch {
		cells, err := p.cells(msg)
		if err != nil {
			failed[i] = err
			continue
		}
		sig = sig[:0]
		for _, c := range cells {
			sig = append(sig, '0'+byte(min(c.state, 1)))
		}
		si, ok := shapeOf[string(sig)]
		if !ok {
			var sh shape
			for ci, c := range cells {
				if c.state != absent {
					sh.cols = append(sh.cols, ci)
				}
			}
			si = len(shapes)
			shapes = append(shapes, sh)
			shapeOf[string(sig)] = si
		}
		rows = append(rows, row{index: i, cells: cells, shape: si})
	}
	if len(rows) > 0 {
		err := p.writeStaged(ctx, rows, shapes)
		if err != nil && isRowError(err) && ctx.Err() == nil {
			err = p.writeEach(ctx, rows, shapes, batch, failed)
		}
		if err != nil {
			return sdk.RetryableError(fmt.Errorf("postgres: write %d rows to %s: %w", len(rows), p.cfg.target, err), 0)
		}
	}
	if len(failed) > 0 {
		return &sdk.BatchError{Failed: failed}
	}
	return nil
}

// writeStaged copies the rows into the staging table and inserts them from
// there, all in one transaction.
func (p *Producer) writeStaged(ctx context.Context, rows []row, shapes []shape) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	names := make([]string, 0, len(p.cols)+2)
	defs := make([]string, 0, len(p.cols)+2)
	names = append(names, "ord", "shape")
	defs = append(defs, "ord int4", "shape int4")
	for i := range p.cols {
		n := "c" + strconv.Itoa(i)
		names = append(names, n)
		defs = append(defs, n+" text")
	}
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+stagingTable.Sanitize()+" ("+strings.Join(defs, ", ")+") ON COMMIT DROP"); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	data := make([][]any, len(rows))
	for i, r := range rows {
		vals := make([]any, 0, len(names))
		vals = append(vals, int32(i), int32(r.shape))
		for _, c := range r.cells {
			if c.state == present {
				vals = append(vals, c.text)
			} else {
				vals = append(vals, nil)
			}
		}
		data[i] = vals
	}
	if _, err := tx.CopyFrom(ctx, stagingTable, names, pgx.CopyFromRows(data)); err != nil {
		return fmt.Errorf("copy into staging table: %w", err)
	}
	for si, sh := range shapes {
		if _, err := tx.Exec(ctx, p.insertSQL(sh, true), si); err != nil {
			return fmt.Errorf("insert from staging table: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// writeEach inserts the rows one by one, each inside a savepoint, to find
// the ones the table rejects; those fail permanently and the rest commit
// together.
func (p *Producer) writeEach(ctx context.Context, rows []row, shapes []shape, batch []sdk.Message, failed map[int]error) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	stmts := make([]string, len(shapes))
	for si, sh := range shapes {
		stmts[si] = p.insertSQL(sh, false)
	}
	rejected := map[int]error{}
	for _, r := range rows {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return fmt.Errorf("savepoint: %w", err)
		}
		args := make([]any, 0, len(shapes[r.shape].cols))
		for _, ci := range shapes[r.shape].cols {
			if c := r.cells[ci]; c.state == present {
				args = append(args, c.text)
			} else {
				args = append(args, nil)
			}
		}
		if _, err := sp.Exec(ctx, stmts[r.shape], args...); err != nil {
			if !isRowError(err) {
				return fmt.Errorf("insert row: %w", err)
			}
			if rerr := sp.Rollback(ctx); rerr != nil {
				return fmt.Errorf("roll back to savepoint: %w", rerr)
			}
			rejected[r.index] = sdk.PermanentError(fmt.Errorf("postgres: message %s: rejected by %s: %w", batch[r.index].ID, p.cfg.target, err))
			continue
		}
		if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("release savepoint: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	for i, err := range rejected {
		failed[i] = err
	}
	return nil
}

// insertSQL builds the INSERT for one shape: from the staging table
// (parameter $1 is the shape) or from one row of parameters. Every name in
// it is quoted; every type came from the catalog.
func (p *Producer) insertSQL(sh shape, staged bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(p.table)
	b.WriteString(" (")
	for i, ci := range sh.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(p.cols[ci].name))
	}
	b.WriteString(") ")
	value := func(i, ci int) string {
		if staged {
			return "s.c" + strconv.Itoa(ci) + "::" + p.cols[ci].cast
		}
		return "$" + strconv.Itoa(i+1) + "::text::" + p.cols[ci].cast
	}
	if staged {
		b.WriteString("SELECT ")
		if p.cfg.mode == ModeUpsert {
			// Last message wins when a batch repeats a key: ON CONFLICT DO
			// UPDATE cannot touch one row twice in a statement.
			b.WriteString("DISTINCT ON (")
			for i, ki := range p.keyIdx {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(value(0, ki))
			}
			b.WriteString(") ")
		}
		for i, ci := range sh.cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(value(i, ci))
		}
		b.WriteString(" FROM " + stagingTable.Sanitize() + " s WHERE s.shape = $1 ORDER BY ")
		if p.cfg.mode == ModeUpsert {
			for _, ki := range p.keyIdx {
				b.WriteString(value(0, ki) + ", ")
			}
			b.WriteString("s.ord DESC")
		} else {
			b.WriteString("s.ord")
		}
	} else {
		b.WriteString("VALUES (")
		for i, ci := range sh.cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(value(i, ci))
		}
		b.WriteString(")")
	}
	if p.conflict == "" {
		return b.String()
	}
	b.WriteString(" ON CONFLICT (" + p.conflict + ") DO ")
	var set []string
	if p.cfg.mode == ModeUpsert {
		for _, ci := range sh.cols {
			if !slices.Contains(p.keyIdx, ci) {
				n := quote(p.cols[ci].name)
				set = append(set, n+" = EXCLUDED."+n)
			}
		}
	}
	if len(set) == 0 {
		b.WriteString("NOTHING")
	} else {
		b.WriteString("UPDATE SET " + strings.Join(set, ", "))
	}
	return b.String()
}

// cells maps a message onto the target columns. Its errors are permanent:
// the message can never become a row.
func (p *Producer) cells(msg sdk.Message) ([]cell, error) {
	obj, err := jsonbody.Decode(msg.Body)
	if err != nil {
		return nil, fmt.Errorf("postgres: message %s: %w", msg.ID, err)
	}
	cells := make([]cell, len(p.cols))
	for i, col := range p.cols {
		if i == p.idIdx {
			if msg.ID == "" {
				return nil, sdk.Permanentf("postgres: message has no ID for idColumn %q", col.name)
			}
			cells[i] = cell{state: present, text: msg.ID}
			continue
		}
		v, ok := lookup(obj, col.path)
		if !ok {
			continue
		}
		if v == nil {
			cells[i] = cell{state: null}
			continue
		}
		text, err := textValue(v, col.isArray)
		if col.isJSON {
			var out []byte
			out, err = jsonbody.Encode(v)
			text = string(out)
		}
		if err != nil {
			return nil, sdk.PermanentError(fmt.Errorf("postgres: message %s: column %q: %w", msg.ID, col.name, err))
		}
		cells[i] = cell{state: present, text: text}
	}
	if p.cfg.mode == ModeUpsert {
		for _, ki := range p.keyIdx {
			if cells[ki].state != present {
				return nil, sdk.Permanentf("postgres: message %s: key column %q has no value (missing or null)", msg.ID, p.cols[ki].name)
			}
		}
	}
	return cells, nil
}

// lookup follows a dotted path through nested objects.
func lookup(obj map[string]any, path []string) (any, bool) {
	var cur any = obj
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// textValue renders a JSON value in the text form PostgreSQL casts from:
// objects and arrays as JSON (for json and jsonb columns), arrays as array
// literals for array columns.
func textValue(v any, isArray bool) (string, error) {
	if text, ok := jsonbody.ScalarText(v, 'g'); ok {
		return text, nil
	}
	if x, ok := v.([]any); ok && isArray {
		var b strings.Builder
		arrayLiteral(&b, x)
		return b.String(), nil
	}
	out, err := jsonbody.Encode(v)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// arrayLiteral writes a JSON array as a PostgreSQL array literal: every
// element quoted, nested arrays as nested braces, null as NULL.
func arrayLiteral(b *strings.Builder, arr []any) {
	b.WriteByte('{')
	for i, e := range arr {
		if i > 0 {
			b.WriteByte(',')
		}
		switch x := e.(type) {
		case nil:
			b.WriteString("NULL")
		case []any:
			arrayLiteral(b, x)
		default:
			s, err := textValue(x, false)
			if err != nil {
				s = ""
			}
			b.WriteByte('"')
			for _, r := range s {
				if r == '"' || r == '\\' {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
			b.WriteByte('"')
		}
	}
	b.WriteByte('}')
}

// isRowError reports whether err is the data's fault (a value the type
// rejects, a violated constraint, a trigger's exception) rather than the
// connection's or the server's: such a batch is retried row by row to find
// the culprits.
func isRowError(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", // data exception: bad text for the type, too long, out of range
		"23", // integrity constraint violation
		"P0": // raised by a trigger or function
		return true
	}
	switch pgErr.Code {
	case "21000", // cardinality violation
		"42804": // datatype mismatch
		return true
	}
	return false
}

// Close closes the connection pool. It is safe to call concurrently and more
// than once.
func (p *Producer) Close(context.Context) error {
	p.closeOnce.Do(p.pool.Close)
	return nil
}
