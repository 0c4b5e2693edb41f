// Package postgrescdc holds the PostgreSQL change-data-capture consumer: it
// streams the inserts, updates and deletes of a set of tables through a
// logical replication slot (pgoutput) and hands each committed transaction
// to the platform as JSON messages, optionally after a snapshot of the rows
// already there.
//
// Message IDs are "<slot>:<commit LSN>:<ordinal>", so a transaction sent
// again after a crash carries the same IDs and JetStream drops the copies.
// A transaction of more than ChunkSize changes is published in several
// calls and confirmed once, at its commit. TRUNCATE is not captured.
//
// Between transactions, when everything received has been published and
// confirmed, a keepalive's server position is confirmed too: the server
// sends changes in commit order, so nothing before it is still owed, and
// the slot does not hold the WAL of unrelated tables forever.
//
// This package must never confirm a WAL position before the sink has
// acknowledged every change up to it: the slot's confirmed position only
// moves after sink.Publish returned nil for a whole transaction, so a crash
// at any point re-sends transactions and never skips one. It must never
// format a user-supplied name into SQL: table and publication names pass an
// allow-list and are quoted with pgx.Identifier.Sanitize, slot names match
// PostgreSQL's own alphabet. It never retries in a loop: Run returns the
// error and the runner restarts it, resuming from the slot. It never
// connects to a host the tenant's egress policy refuses
// (ssrf.Guard.GuardPostgres), and never waits on a connect for ever.
package postgrescdc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/pgident"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// Connector registers the PostgreSQL CDC consumer.
var Connector = sdk.Connector{
	Name:      "postgres-cdc",
	Kind:      sdk.KindConsumer,
	Summary:   "Capture inserts, updates and deletes of PostgreSQL tables by logical replication (pgoutput), one message per row change.",
	Example:   json.RawMessage(`{"url": {"secret": "shop-db-url"}, "tables": ["public.orders"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		return build(ctx, env, raw)
	},
}

// Op values in a change message's "op" field.
const (
	OpInsert   = "insert"
	OpUpdate   = "update"
	OpDelete   = "delete"
	OpSnapshot = "snapshot"
)

// Change is the JSON body of every message the consumer publishes.
type Change struct {
	Op     string `json:"op"`
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// Before is the old row of an update or delete: every column with
	// REPLICA IDENTITY FULL, the key columns otherwise; null when the
	// server sends no old row (an update that left the key alone).
	Before map[string]any `json:"before"`
	// After is the new row of an insert, update or snapshot. A TOASTed
	// value an update left unchanged is absent unless Before has it.
	After map[string]any `json:"after"`
	// CommitLSN is the transaction's commit position ("0/16B3748"); for a
	// snapshot, the slot's consistent point.
	CommitLSN string `json:"commitLsn"`
	// CommitTime is when the transaction committed; null for a snapshot.
	CommitTime *time.Time `json:"commitTime"`
}

// Consumer streams changes from one replication slot. Run may be called again
// after it returns, but not concurrently.
type Consumer struct {
	cfg settings
	env sdk.Env
	url string
	// guard is the tenant's egress policy; every connection goes through it.
	guard  *ssrf.Guard
	tables []pgident.Table // schema-qualified

	// afterPublish, when set, runs after the sink acknowledged a
	// transaction's last chunk and before its position is confirmed; an
	// error stops Run there, as a crash would.
	afterPublish func(ctx context.Context) error
	now          func() time.Time
}

var _ sdk.Consumer = (*Consumer)(nil)

func build(ctx context.Context, env sdk.Env, raw json.RawMessage) (*Consumer, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("postgres-cdc: %w", err)
	}
	s, err := cfg.settings(env)
	if err != nil {
		return nil, fmt.Errorf("postgres-cdc: %w", err)
	}
	url, err := cfg.URL.Resolve(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("postgres-cdc: url: %w", err)
	}
	if _, err := pgx.ParseConfig(url); err != nil {
		// The parse error may quote the connection string: leave it out.
		return nil, fmt.Errorf("postgres-cdc: url %s: not a valid connection string", cfg.URL)
	}
	c := &Consumer{cfg: s, env: env, url: url, guard: ssrf.New(env.Egress), now: time.Now}
	conn, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return nil, fmt.Errorf("postgres-cdc: read wal_level: %w", err)
	}
	if walLevel != "logical" {
		return nil, fmt.Errorf("postgres-cdc: the server has wal_level=%s; logical replication needs wal_level=logical", walLevel)
	}
	for _, t := range s.tables {
		var schema string
		err := conn.QueryRow(ctx, `
SELECT n.nspname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND c.relkind IN ('r', 'p')
  AND (($2 = '' AND n.nspname = ANY (current_schemas(false))) OR n.nspname = $2)
ORDER BY array_position(current_schemas(false), n.nspname::text)
LIMIT 1`, t.Name, t.Schema).Scan(&schema)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("postgres-cdc: table %s: no such table (names are case-sensitive; without a schema the search_path is used)", t)
		}
		if err != nil {
			return nil, fmt.Errorf("postgres-cdc: look up table %s: %w", t, err)
		}
		c.tables = append(c.tables, pgident.Table{Schema: schema, Name: t.Name})
	}
	return c, nil
}

// retireWait is how often Retire looks again for a slot still in use.
const retireWait = 200 * time.Millisecond

// Retire drops the integration's replication slot, which would otherwise
// keep the source's write-ahead log for ever, and its publication when the
// consumer named it itself (the default name). A slot still in use — another
// runner's copy of the consumer is stopping — is waited for until ctx ends.
// Retiring twice, or a slot never created, is fine.
func (c *Consumer) Retire(ctx context.Context) error {
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for {
		var active bool
		err := conn.QueryRow(ctx, "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", c.cfg.slot).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return fmt.Errorf("postgres-cdc: look up slot %q: %w", c.cfg.slot, err)
		}
		if !active {
			_, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", c.cfg.slot)
			if err == nil || isCode(err, "42704") { // dropped, or by someone else meanwhile
				break
			}
			if !isCode(err, "55006") { // 55006: taken again meanwhile
				return fmt.Errorf("postgres-cdc: drop slot %q: %w", c.cfg.slot, err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres-cdc: slot %q is still in use: %w", c.cfg.slot, ctx.Err())
		case <-time.After(retireWait):
		}
	}
	if c.cfg.ownPublication {
		if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{c.cfg.publication}.Sanitize()); err != nil {
			return fmt.Errorf("postgres-cdc: drop publication %q: %w", c.cfg.publication, err)
		}
	}
	return nil
}

// connect opens an ordinary connection for catalog work.
func (c *Consumer) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.url)
	if err != nil {
		return nil, errors.New("postgres-cdc: url: not a valid connection string")
	}
	c.guard.GuardPostgres(&cfg.Config)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres-cdc: connect: %w", err)
	}
	return conn, nil
}

// connectReplication opens a connection in logical replication mode.
func (c *Consumer) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(c.url)
	if err != nil {
		return nil, errors.New("postgres-cdc: url: not a valid connection string")
	}
	cfg.RuntimeParams["replication"] = "database"
	c.guard.GuardPostgres(cfg)
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres-cdc: open replication connection: %w", err)
	}
	return conn, nil
}

// Run creates the publication and slot when missing, takes the snapshot
// when configured and the slot is new, then streams committed transactions
// to sink until ctx ends or something fails. It confirms a transaction's
// end position to the server only after sink.Publish returned nil for all
// of its changes. Every error is retryable: a new Run resumes from the
// slot's confirmed position and re-sends what was not confirmed.
func (c *Consumer) Run(ctx context.Context, sink sdk.Sink) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := c.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := c.ensurePublication(ctx, conn); err != nil {
		return err
	}
	repl, err := c.connectReplication(ctx)
	if err != nil {
		return err
	}
	defer repl.Close(context.WithoutCancel(ctx))

	start, err := c.ensureSlot(ctx, conn, repl, sink)
	if err != nil {
		return err
	}
	_ = conn.Close(ctx)

	err = pglogrepl.StartReplication(ctx, repl, c.cfg.slot, start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + c.cfg.publication + "'"},
	})
	if err != nil {
		return c.stopped(ctx, fmt.Errorf("postgres-cdc: start replication from slot %q at %s: %w", c.cfg.slot, start, err))
	}
	return c.stream(ctx, repl, sink, start)
}

// stopped prefers ctx's error when ctx ended: the failure was the stop.
func (c *Consumer) stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// ensurePublication creates the publication for the tables, or adds the
// tables an existing one lacks.
func (c *Consumer) ensurePublication(ctx context.Context, conn *pgx.Conn) error {
	pub := c.cfg.publication
	var allTables bool
	err := conn.QueryRow(ctx, "SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1", pub).Scan(&allTables)
	if errors.Is(err, pgx.ErrNoRows) {
		names := make([]string, len(c.tables))
		for i, t := range c.tables {
			names[i] = pgx.Identifier{t.Schema, t.Name}.Sanitize()
		}
		_, err = conn.Exec(ctx, "CREATE PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" FOR TABLE "+strings.Join(names, ", "))
		if err != nil && !isCode(err, "42710") { // created meanwhile by another run
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: create publication %q: %w", pub, err))
		}
		return nil
	}
	if err != nil {
		return c.stopped(ctx, fmt.Errorf("postgres-cdc: look up publication %q: %w", pub, err))
	}
	if allTables {
		return nil
	}
	for _, t := range c.tables {
		var in bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)", pub, t.Schema, t.Name).Scan(&in)
		if err != nil {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: read tables of publication %q: %w", pub, err))
		}
		if in {
			continue
		}
		_, err = conn.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE "+pgx.Identifier{t.Schema, t.Name}.Sanitize())
		if err != nil && !isCode(err, "42710") {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: add table %s to publication %q: %w", t, pub, err))
		}
	}
	return nil
}

// snapshotMarker is the publication comment that says the snapshot of the
// slot's current incarnation was published in full.
func (c *Consumer) snapshotMarker() string { return "vrsky: snapshot published for slot " + c.cfg.slot }

// ensureSlot returns the position to stream from: the confirmed position
// of an existing slot, or the consistent point of a new one (after its
// snapshot, when configured). A slot left by a run that died during its
// snapshot is dropped and created again, so no row is skipped.
func (c *Consumer) ensureSlot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, sink sdk.Sink) (pglogrepl.LSN, error) {
	slot := c.cfg.slot
	var (
		confirmed *string
		plugin    *string
		sameDB    bool
	)
	err := conn.QueryRow(ctx, `
SELECT confirmed_flush_lsn::text, plugin::text, database = current_database()
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, slot).Scan(&confirmed, &plugin, &sameDB)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, c.stopped(ctx, fmt.Errorf("postgres-cdc: look up replication slot %q: %w", slot, err))
	}
	if exists {
		if plugin == nil || *plugin != "pgoutput" || !sameDB || confirmed == nil {
			return 0, fmt.Errorf("postgres-cdc: replication slot %q exists but is not a pgoutput slot of this database", slot)
		}
		done := true
		if c.cfg.snapshot {
			var comment *string
			err := conn.QueryRow(ctx, "SELECT obj_description(oid, 'pg_publication') FROM pg_catalog.pg_publication WHERE pubname = $1", c.cfg.publication).Scan(&comment)
			if err != nil {
				return 0, c.stopped(ctx, fmt.Errorf("postgres-cdc: read publication %q: %w", c.cfg.publication, err))
			}
			done = comment != nil && *comment == c.snapshotMarker()
		}
		if done {
			lsn, err := pglogrepl.ParseLSN(*confirmed)
			if err != nil {
				return 0, fmt.Errorf("postgres-cdc: replication slot %q: confirmed position %q: %w", slot, *confirmed, err)
			}
			return lsn, nil
		}
		// The run that created the slot did not finish its snapshot.
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", slot); err != nil {
			return 0, c.stopped(ctx, fmt.Errorf("postgres-cdc: drop replication slot %q left by an unfinished snapshot: %w", slot, err))
		}
	}

	pubIdent := pgx.Identifier{c.cfg.publication}.Sanitize()
	action := "NOEXPORT_SNAPSHOT"
	if c.cfg.snapshot {
		action = "EXPORT_SNAPSHOT"
		if _, err := conn.Exec(ctx, "COMMENT ON PUBLICATION "+pubIdent+" IS NULL"); err != nil {
			return 0, c.stopped(ctx, fmt.Errorf("postgres-cdc: clear snapshot marker of publication %q: %w", c.cfg.publication, err))
		}
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, slot, "pgoutput", pglogrepl.CreateReplicationSlotOptions{
		Mode:           pglogrepl.LogicalReplication,
		SnapshotAction: action,
	})
	if err != nil {
		return 0, c.stopped(ctx, fmt.Errorf("postgres-cdc: create replication slot %q: %w", slot, err))
	}
	start, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, fmt.Errorf("postgres-cdc: create replication slot %q: consistent point %q: %w", slot, res.ConsistentPoint, err)
	}
	if !c.cfg.snapshot {
		return start, nil
	}
	if err := c.snapshot(ctx, conn, res.SnapshotName, start, sink); err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, "COMMENT ON PUBLICATION "+pubIdent+" IS '"+c.snapshotMarker()+"'"); err != nil {
		return 0, c.stopped(ctx, fmt.Errorf("postgres-cdc: mark snapshot of publication %q published: %w", c.cfg.publication, err))
	}
	return start, nil
}

var snapshotName = regexp.MustCompile(`^[0-9A-Fa-f-]{1,64}$`)

// snapshot publishes every row of the tables as they were at the slot's
// consistent point, in chunks of ChunkSize.
func (c *Consumer) snapshot(ctx context.Context, conn *pgx.Conn, name string, at pglogrepl.LSN, sink sdk.Sink) error {
	if !snapshotName.MatchString(name) {
		return fmt.Errorf("postgres-cdc: snapshot: unexpected snapshot name %q", name)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return c.stopped(ctx, fmt.Errorf("postgres-cdc: snapshot: begin: %w", err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+name+"'"); err != nil {
		return c.stopped(ctx, fmt.Errorf("postgres-cdc: snapshot: use the slot's snapshot: %w", err))
	}
	ordinal := 0
	var chunk []sdk.Message
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if err := sink.Publish(ctx, chunk); err != nil {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: snapshot: publish %d rows: %w", len(chunk), err))
		}
		chunk = nil
		return nil
	}
	for _, t := range c.tables {
		rows, err := tx.Query(ctx, "SELECT * FROM "+pgx.Identifier{t.Schema, t.Name}.Sanitize(), pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: snapshot: read %s: %w", t, err))
		}
		fields := rows.FieldDescriptions()
		for rows.Next() {
			after := make(map[string]any, len(fields))
			for i, raw := range rows.RawValues() {
				if raw == nil {
					after[fields[i].Name] = nil
					continue
				}
				after[fields[i].Name] = textToJSON(fields[i].DataTypeOID, raw)
			}
			msg, err := c.message(fmt.Sprintf("%s:%s:snapshot:%d", c.cfg.slot, at, ordinal), Change{
				Op: OpSnapshot, Schema: t.Schema, Table: t.Name, After: after, CommitLSN: at.String(),
			})
			if err != nil {
				rows.Close()
				return err
			}
			ordinal++
			chunk = append(chunk, msg)
			if len(chunk) >= ChunkSize {
				if err := flush(); err != nil {
					rows.Close()
					return err
				}
			}
		}
		if err := rows.Err(); err != nil {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: snapshot: read %s: %w", t, err))
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// txn is the transaction being received.
type txn struct {
	lsn     pglogrepl.LSN // commit LSN, known from Begin
	time    time.Time
	ordinal int
	pending []sdk.Message
}

// stream receives the replication stream and publishes transactions until
// ctx ends or something fails. confirmed is the position the server may
// forget WAL before; it only moves after the sink acknowledged everything
// before it.
func (c *Consumer) stream(ctx context.Context, repl *pgconn.PgConn, sink sdk.Sink, confirmed pglogrepl.LSN) error {
	relations := map[uint32]*pglogrepl.RelationMessage{}
	var cur *txn
	report := func() error {
		err := pglogrepl.SendStandbyStatusUpdate(ctx, repl, pglogrepl.StandbyStatusUpdate{
			WALWritePosition: confirmed,
			WALFlushPosition: confirmed,
			WALApplyPosition: confirmed,
			ClientTime:       c.now(),
		})
		if err != nil {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: report position %s of slot %q: %w", confirmed, c.cfg.slot, err))
		}
		return nil
	}
	publish := func() error {
		if len(cur.pending) == 0 {
			return nil
		}
		if err := sink.Publish(ctx, cur.pending); err != nil {
			return c.stopped(ctx, fmt.Errorf("postgres-cdc: publish %d changes of the transaction committed at %s: %w", len(cur.pending), cur.lsn, err))
		}
		cur.pending = nil
		return nil
	}
	next := c.now().Add(c.cfg.statusInterval)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !c.now().Before(next) {
			if err := report(); err != nil {
				return err
			}
			next = c.now().Add(c.cfg.statusInterval)
		}
		rctx, cancel := context.WithDeadline(ctx, next)
		raw, err := repl.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("postgres-cdc: receive from slot %q: %w", c.cfg.slot, err)
		}
		var data []byte
		switch m := raw.(type) {
		case *pgproto3.CopyData:
			data = m.Data
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres-cdc: replication from slot %q: %w", c.cfg.slot, pgconn.ErrorResponseToPgError(m))
		default:
			continue
		}
		if len(data) == 0 {
			continue
		}
		switch data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
			if err != nil {
				return fmt.Errorf("postgres-cdc: parse keepalive: %w", err)
			}
			// Between transactions everything the server sent has been
			// published and confirmed, and the server sends changes in
			// commit order: nothing before its position is still owed.
			// That lets the slot move past WAL of other tables.
			if cur == nil && ka.ServerWALEnd > confirmed {
				confirmed = ka.ServerWALEnd
				next = time.Time{}
			}
			if ka.ReplyRequested {
				next = time.Time{}
			}
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(data[1:])
			if err != nil {
				return fmt.Errorf("postgres-cdc: parse WAL data: %w", err)
			}
			msg, err := pglogrepl.Parse(xld.WALData)
			if err != nil {
				return fmt.Errorf("postgres-cdc: decode pgoutput message at %s: %w", xld.WALStart, err)
			}
			switch m := msg.(type) {
			case *pglogrepl.RelationMessage:
				relations[m.RelationID] = m
			case *pglogrepl.BeginMessage:
				cur = &txn{lsn: m.FinalLSN, time: m.CommitTime}
			case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
				if cur == nil {
					return fmt.Errorf("postgres-cdc: %s at %s outside a transaction", m.Type(), xld.WALStart)
				}
				change, err := decodeChange(m, relations)
				if err != nil {
					return fmt.Errorf("postgres-cdc: transaction committed at %s: %w", cur.lsn, err)
				}
				change.CommitLSN = cur.lsn.String()
				change.CommitTime = &cur.time
				out, err := c.message(fmt.Sprintf("%s:%s:%d", c.cfg.slot, cur.lsn, cur.ordinal), change)
				if err != nil {
					return err
				}
				cur.ordinal++
				cur.pending = append(cur.pending, out)
				if len(cur.pending) >= ChunkSize {
					if err := publish(); err != nil {
						return err
					}
				}
			case *pglogrepl.CommitMessage:
				if cur == nil {
					return fmt.Errorf("postgres-cdc: commit at %s without a begin", m.CommitLSN)
				}
				if err := publish(); err != nil {
					return err
				}
				if c.afterPublish != nil {
					if err := c.afterPublish(ctx); err != nil {
						return err
					}
				}
				// The sink holds every change of the transaction: only now
				// may the server forget it.
				cur = nil
				if m.TransactionEndLSN > confirmed {
					confirmed = m.TransactionEndLSN
				}
				if err := report(); err != nil {
					return err
				}
				next = c.now().Add(c.cfg.statusInterval)
			}
		}
	}
}

// message wraps a change as a platform message.
func (c *Consumer) message(id string, ch Change) (sdk.Message, error) {
	body, err := json.Marshal(ch)
	if err != nil {
		return sdk.Message{}, fmt.Errorf("postgres-cdc: encode change of %s.%s: %w", ch.Schema, ch.Table, err)
	}
	return sdk.Message{
		ID:          id,
		Tenant:      c.env.Tenant,
		Integration: c.env.Integration,
		ContentType: "application/json",
		Body:        body,
		Received:    c.now(),
	}, nil
}

// decodeChange turns an insert, update or delete into a Change.
func decodeChange(msg pglogrepl.Message, relations map[uint32]*pglogrepl.RelationMessage) (Change, error) {
	var (
		relID     uint32
		ch        Change
		old, next *pglogrepl.TupleData
		oldType   uint8
	)
	switch m := msg.(type) {
	case *pglogrepl.InsertMessage:
		relID, ch.Op, next = m.RelationID, OpInsert, m.Tuple
	case *pglogrepl.UpdateMessage:
		relID, ch.Op, old, oldType, next = m.RelationID, OpUpdate, m.OldTuple, m.OldTupleType, m.NewTuple
	case *pglogrepl.DeleteMessage:
		relID, ch.Op, old, oldType = m.RelationID, OpDelete, m.OldTuple, m.OldTupleType
	}
	rel, ok := relations[relID]
	if !ok {
		return ch, fmt.Errorf("%s of unknown relation %d", ch.Op, relID)
	}
	ch.Schema, ch.Table = rel.Namespace, rel.RelationName
	if old != nil {
		// A 'K' tuple holds the key columns only; the rest are nulls.
		ch.Before = tupleMap(rel, old, oldType == pglogrepl.UpdateMessageTupleTypeKey, nil)
	}
	if next != nil {
		ch.After = tupleMap(rel, next, false, ch.Before)
	}
	return ch, nil
}

// tupleMap decodes a tuple's columns; keyOnly keeps the replica identity
// columns; an unchanged TOASTed value is taken from before when it has it.
func tupleMap(rel *pglogrepl.RelationMessage, tuple *pglogrepl.TupleData, keyOnly bool, before map[string]any) map[string]any {
	out := make(map[string]any, len(tuple.Columns))
	for i, col := range tuple.Columns {
		if i >= len(rel.Columns) {
			break
		}
		rc := rel.Columns[i]
		if keyOnly && rc.Flags&1 == 0 {
			continue
		}
		switch col.DataType {
		case pglogrepl.TupleDataTypeNull:
			out[rc.Name] = nil
		case pglogrepl.TupleDataTypeToast:
			if v, ok := before[rc.Name]; ok {
				out[rc.Name] = v
			}
		case pglogrepl.TupleDataTypeText:
			out[rc.Name] = textToJSON(rc.DataType, col.Data)
		default:
			out[rc.Name] = string(col.Data)
		}
	}
	return out
}

// Type OIDs with a JSON form other than a string.
const (
	oidBool    = 16
	oidInt8    = 20
	oidInt2    = 21
	oidInt4    = 23
	oidOID     = 26
	oidJSON    = 114
	oidFloat4  = 700
	oidFloat8  = 701
	oidNumeric = 1700
	oidJSONB   = 3802
)

// textToJSON converts a value in PostgreSQL's text form to a JSON value:
// booleans and numbers as such (NaN and infinities stay strings), json and
// jsonb verbatim, everything else as its text.
func textToJSON(oid uint32, text []byte) any {
	switch oid {
	case oidBool:
		return len(text) > 0 && text[0] == 't'
	case oidInt2, oidInt4, oidInt8, oidOID, oidFloat4, oidFloat8, oidNumeric:
		if isJSONNumber(text) {
			return json.RawMessage(append([]byte(nil), text...))
		}
	case oidJSON, oidJSONB:
		if json.Valid(text) {
			return json.RawMessage(append([]byte(nil), text...))
		}
	}
	return string(text)
}

// isJSONNumber reports whether s is a number in JSON's grammar (PostgreSQL
// prints NaN, Infinity and -Infinity, which JSON has no form for).
func isJSONNumber(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	if _, err := strconv.ParseFloat(string(s), 64); err != nil {
		var numErr *strconv.NumError
		if !errors.As(err, &numErr) || numErr.Err != strconv.ErrRange {
			return false
		}
	}
	return json.Valid(s) && s[0] != '+'
}

// isCode reports whether err is a PostgreSQL error with the SQLSTATE code.
func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// Lag returns how many bytes of WAL the slot holds that the consumer has
// not confirmed yet (pg_current_wal_lsn() - confirmed_flush_lsn).
func (c *Consumer) Lag(ctx context.Context) (int64, error) {
	conn, err := c.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var lag *int64
	err = conn.QueryRow(ctx, `
SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, c.cfg.slot).Scan(&lag)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres-cdc: lag: replication slot %q does not exist yet", c.cfg.slot)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres-cdc: lag of replication slot %q: %w", c.cfg.slot, err)
	}
	if lag == nil {
		return 0, fmt.Errorf("postgres-cdc: lag: replication slot %q has no confirmed position", c.cfg.slot)
	}
	return max(*lag, 0), nil
}
