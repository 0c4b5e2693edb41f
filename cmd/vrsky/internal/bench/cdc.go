package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vrsky/vrsky/connectors/postgres"
	"github.com/vrsky/vrsky/connectors/postgrescdc"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// CDC scenario settings.
const (
	// CDCSchema is the schema of the stack's database that holds the CDC
	// scenario's tables, one source and one target table per step.
	CDCSchema = "vrsky_bench"
	// DefaultTxInterval is how often the CDC load commits a transaction
	// holding the rows then due.
	DefaultTxInterval = 10 * time.Millisecond
	// DurabilityCDC names the CDC scenario's durability: PostgreSQL's
	// default synchronous commit on both tables, and JetStream file
	// storage with the server's default sync in between.
	DurabilityCDC = "postgres synchronous commit, JetStream file storage, default sync"

	// maxRowsPerTx bounds one source transaction; a load that fell
	// further behind commits several, back to back.
	maxRowsPerTx = 10_000
	// tablePoll is how often the target table is read for new rows (their
	// latency comes from the rows themselves, not from the poll).
	tablePoll = 100 * time.Millisecond
	// slotReleaseTimeout bounds the wait for a stopped integration's
	// replication connection to let go of its slot.
	slotReleaseTimeout = 10 * time.Second
	cleanupTimeout     = 30 * time.Second
)

// committed is what the collector records for a row whose source
// transaction committed: the status it counts as accepted.
const committed = http.StatusAccepted

// cdcObjects are the database objects of one CDC step, all named after
// its integration (bench-<id>): the source table the bench inserts into,
// the target table the postgres producer upserts into, the function of
// the target's trigger that counts repeated writes, and the replication
// slot and publication the postgres-cdc consumer creates.
type cdcObjects struct {
	Source, Target, WriteCounter string // in CDCSchema
	Slot, Publication            string
}

// cdcObjectsFor names the objects of the CDC integration name.
func cdcObjectsFor(integration string) cdcObjects {
	id := strings.ReplaceAll(strings.TrimPrefix(integration, "bench-"), "-", "_")
	return cdcObjects{
		Source:       "cdc_src_" + id,
		Target:       "cdc_dst_" + id,
		WriteCounter: "cdc_dst_" + id + "_writes",
		Slot:         "vrsky_bench_" + id,
		Publication:  "vrsky_bench_" + id,
	}
}

func (o cdcObjects) source() pgx.Identifier { return pgx.Identifier{CDCSchema, o.Source} }
func (o cdcObjects) target() pgx.Identifier { return pgx.Identifier{CDCSchema, o.Target} }

// cdcSpec is the CDC scenario's integration: the postgres-cdc consumer on
// the source table, no steps, and a postgres producer "sink" upserting
// each change's row (after.id, after.payload) into the target table. Both
// reach the stack's database through the benchmark tenant's secret
// DatabaseSecret, which the bench stores before it deploys.
func cdcSpec(name string) spec.Integration {
	o := cdcObjectsFor(name)
	url := sdk.Secret{Secret: DatabaseSecret}
	return spec.Integration{
		Name: name,
		Consumer: spec.Step{Connector: postgrescdc.Connector.Name, Config: mustJSON(postgrescdc.Config{
			URL: url, Tables: []string{CDCSchema + "." + o.Source}, Slot: o.Slot, Publication: o.Publication,
		})},
		Producers: map[string]spec.Step{producerName: {Connector: postgres.Connector.Name, Config: mustJSON(postgres.Config{
			URL: url, Table: CDCSchema + "." + o.Target, Mode: postgres.ModeUpsert, Key: []string{"id"},
			Columns: map[string]string{"id": "after.id", "payload": "after.payload"},
		})}},
	}
}

// create makes the schema and the step's two tables. The target's
// delivered_at is set by PostgreSQL when the producer's INSERT writes the
// row; its trigger counts every later write of the same id in writes.
func (o cdcObjects) create(ctx context.Context, conn *pgx.Conn) error {
	schema := pgx.Identifier{CDCSchema}.Sanitize()
	counter := pgx.Identifier{CDCSchema, o.WriteCounter}.Sanitize()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil && !isPGCode(err, "23505", "42P06") {
		return fmt.Errorf("create schema %s: %w", CDCSchema, err) // 23505, 42P06: created meanwhile by another run
	}
	for _, stmt := range []string{
		"CREATE TABLE " + o.source().Sanitize() + " (id bigint PRIMARY KEY, payload text NOT NULL)",
		"CREATE TABLE " + o.target().Sanitize() + ` (
			id           bigint PRIMARY KEY,
			payload      text,
			delivered_at timestamptz NOT NULL DEFAULT clock_timestamp(),
			writes       integer NOT NULL DEFAULT 1)`,
		"CREATE FUNCTION " + counter + `() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN NEW.writes := OLD.writes + 1; RETURN NEW; END $$`,
		"CREATE TRIGGER count_writes BEFORE UPDATE ON " + o.target().Sanitize() + " FOR EACH ROW EXECUTE FUNCTION " + counter + "()",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create benchmark tables: %s: %w", firstLine(stmt), err)
		}
	}
	return nil
}

// drop removes what a step left in the database: the replication slot
// (once the stopped consumer let go of it; a session still holding it
// after slotReleaseTimeout is ended), the publication, the tables and the
// trigger function. Nothing else removes a slot, and a slot left behind
// keeps the server's WAL forever.
func (o cdcObjects) drop(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var errs []error
	if err := dropSlot(ctx, conn, o.Slot, slotReleaseTimeout); err != nil {
		errs = append(errs, err)
	}
	for _, stmt := range []string{
		"DROP PUBLICATION IF EXISTS " + pgx.Identifier{o.Publication}.Sanitize(),
		"DROP TABLE IF EXISTS " + o.source().Sanitize() + ", " + o.target().Sanitize(),
		"DROP FUNCTION IF EXISTS " + pgx.Identifier{CDCSchema, o.WriteCounter}.Sanitize() + "()",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			errs = append(errs, fmt.Errorf("remove benchmark objects: %s: %w", stmt, err))
		}
	}
	return errors.Join(errs...)
}

// dropSlot drops a replication slot once no session uses it, ending the
// session that still does after release. A missing slot is fine.
func dropSlot(ctx context.Context, conn *pgx.Conn, slot string, release time.Duration) error {
	deadline := time.Now().Add(release)
	for {
		var activePID *int32
		err := conn.QueryRow(ctx, `SELECT active_pid FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, slot).Scan(&activePID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil
		case err != nil:
			return fmt.Errorf("look up replication slot %q: %w", slot, err)
		case activePID == nil:
			_, err := conn.Exec(ctx, `SELECT pg_catalog.pg_drop_replication_slot($1)`, slot)
			// 42704: dropped meanwhile; 55006: taken again meanwhile.
			if err == nil || isPGCode(err, "42704") {
				return nil
			}
			if !isPGCode(err, "55006") {
				return fmt.Errorf("drop replication slot %q: %w", slot, err)
			}
		case time.Now().After(deadline):
			if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend($1)`, *activePID); err != nil {
				return fmt.Errorf("end the session holding replication slot %q: %w", slot, err)
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("drop replication slot %q: %w", slot, err)
		}
	}
}

// waitSlot waits until the consumer's replication slot exists: changes
// are captured from then on.
func waitSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		var active bool
		err := conn.QueryRow(ctx, `SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("look up replication slot %q: %w", slot, err)
		}
		if active {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("replication slot %q not streaming after %s", slot, readyTimeout)
}

// cdcLoad is the CDC scenario's open-loop load: at each tick of the
// schedule it inserts every row then due into the source table, in one
// transaction, and records the commit in the collector. A late wake-up
// (a slow commit, a stalled server) inserts everything already due
// together, in transactions of at most maxRowsPerTx rows, so the offered
// rate never bends to the server; each row's latency still counts from
// its own intended time.
type cdcLoad struct {
	conn  *pgx.Conn
	table pgx.Identifier
	// size is the length of each row's payload.
	size int

	// transactions counts the source transactions committed whose first
	// row is measured.
	transactions int64
	// firstErr is the first failed insert.
	firstErr error
}

// Run inserts every row of sched. A failed insert is recorded as failed
// rows and the load goes on; it returns early only when ctx ends or the
// connection is gone.
func (l *cdcLoad) Run(ctx context.Context, sched Schedule, sink *Collector) error {
	// Row seq is (seq, payload): the seq's digits and ':', padded to size
	// bytes with a fixed alphabet. The server generates the rows, so the
	// bench sends only their range.
	insert := "INSERT INTO " + l.table.Sanitize() + " (id, payload)" +
		" SELECT g, rpad(g::text || ':', $3, 'abcdefghijklmnopqrstuvwxyz0123456789') FROM generate_series($1::bigint, $2::bigint) AS g"
	total := sched.Total()
	for next := int64(0); next < total; {
		if err := sleep(ctx, time.Until(sched.Intended(next))); err != nil {
			return err
		}
		end := dueUntil(sched, next, time.Now(), maxRowsPerTx)
		_, err := l.conn.Exec(ctx, insert, next, end-1, l.size)
		at := time.Now()
		status := committed
		switch {
		case err == nil:
			if sched.IsMeasured(next) {
				l.transactions++
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case l.conn.IsClosed():
			return fmt.Errorf("insert into the source table: %w", err)
		default:
			status = 0
			if l.firstErr == nil {
				l.firstErr = err
			}
		}
		for seq := next; seq < end; seq++ {
			sink.SetStatus(seq, status, at)
		}
		next = end
	}
	return nil
}

// dueUntil returns the end (exclusive) of the rows from next on that are
// due at now, at least one and at most limit of them.
func dueUntil(sched Schedule, next int64, now time.Time, limit int64) int64 {
	end := next + 1
	for end < sched.Total() && end-next < limit && !sched.Intended(end).After(now) {
		end++
	}
	return end
}

// tableReader follows a CDC step's target table: every tablePoll it reads
// the rows it has not seen yet, through the primary key, and records each
// one's arrival at its delivered_at (when the producer's INSERT wrote it).
// It also samples the replication slot's lag.
type tableReader struct {
	conn  *pgx.Conn
	table pgx.Identifier
	slot  string
	sink  *Collector
	// lagFrom is when lag samples start to count (the measured window).
	lagFrom time.Time

	// maxSeen is the highest id read so far (-1: none); gaps are the ids
	// below it not read yet, asked for by id on every poll.
	maxSeen int64
	gaps    []int64

	mu      sync.Mutex
	lagMax  int64
	lagSum  float64
	samples int64
}

func newTableReader(conn *pgx.Conn, table pgx.Identifier, slot string, sink *Collector, lagFrom time.Time) *tableReader {
	return &tableReader{conn: conn, table: table, slot: slot, sink: sink, lagFrom: lagFrom, maxSeen: -1}
}

// run polls until stop is closed or ctx ends. It stops between polls:
// a query interrupted by its context closes the connection, which finish
// still needs.
func (t *tableReader) run(ctx context.Context, stop <-chan struct{}) error {
	tick := time.NewTicker(tablePoll)
	defer tick.Stop()
	for {
		if err := t.poll(ctx); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// poll reads the new rows, the rows of earlier gaps that arrived since,
// and one lag sample.
func (t *tableReader) poll(ctx context.Context) error {
	rows, err := t.conn.Query(ctx, "SELECT id, delivered_at FROM "+t.table.Sanitize()+" WHERE id > $1 ORDER BY id", t.maxSeen)
	if err != nil {
		return fmt.Errorf("read the target table: %w", err)
	}
	var ids []int64
	var id int64
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
		ids = append(ids, id)
		t.sink.RecordArrival(id, at)
		return nil
	})
	if err != nil {
		return fmt.Errorf("read the target table: %w", err)
	}
	t.gaps = append(t.gaps, missingBetween(t.maxSeen, ids, t.sink.sched.Total())...)
	if len(ids) > 0 {
		t.maxSeen = ids[len(ids)-1]
	}
	if len(t.gaps) > 0 {
		rows, err := t.conn.Query(ctx, "SELECT id, delivered_at FROM "+t.table.Sanitize()+" WHERE id = ANY($1)", t.gaps)
		if err != nil {
			return fmt.Errorf("read the target table: %w", err)
		}
		var found []int64
		_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error {
			found = append(found, id)
			t.sink.RecordArrival(id, at)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the target table: %w", err)
		}
		t.gaps = without(t.gaps, found)
	}
	return t.sampleLag(ctx)
}

// sampleLag records how many bytes of WAL the slot holds that its
// consumer has not confirmed (nothing before the slot exists).
func (t *tableReader) sampleLag(ctx context.Context) error {
	var lag *int64
	err := t.conn.QueryRow(ctx, `SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
		FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, t.slot).Scan(&lag)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && lag == nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the replication slot's lag: %w", err)
	}
	if time.Now().Before(t.lagFrom) {
		return nil
	}
	t.mu.Lock()
	t.lagMax = max(t.lagMax, *lag)
	t.lagSum += float64(*lag)
	t.samples++
	t.mu.Unlock()
	return nil
}

// lag returns the largest and the mean lag sampled in the measured
// window; ok is false without a sample.
func (t *tableReader) lag() (largest int64, mean float64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.samples == 0 {
		return 0, 0, false
	}
	return t.lagMax, t.lagSum / float64(t.samples), true
}

// finish reads what arrived since the last poll, then records every write
// of a row beyond its first as a duplicate arrival.
func (t *tableReader) finish(ctx context.Context) error {
	if err := t.poll(ctx); err != nil {
		return err
	}
	rows, err := t.conn.Query(ctx, "SELECT id, delivered_at, writes FROM "+t.table.Sanitize()+" WHERE writes > 1")
	if err != nil {
		return fmt.Errorf("count repeated writes: %w", err)
	}
	var (
		id     int64
		at     time.Time
		writes int32
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &at, &writes}, func() error {
		for range writes - 1 {
			t.sink.RecordArrival(id, at)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("count repeated writes: %w", err)
	}
	return nil
}

// missingBetween returns the ids after prev and below limit that
// ascending ids skips.
func missingBetween(prev int64, ids []int64, limit int64) []int64 {
	var out []int64
	for _, id := range ids {
		for m := prev + 1; m < min(id, limit); m++ {
			out = append(out, m)
		}
		prev = max(prev, id)
	}
	return out
}

// without returns ids less those in found.
func without(ids, found []int64) []int64 {
	if len(found) == 0 {
		return ids
	}
	slices.Sort(found)
	out := ids[:0]
	for _, id := range ids {
		if _, ok := slices.BinarySearch(found, id); !ok {
			out = append(out, id)
		}
	}
	return out
}

// postgresPID returns the pid of the PostgreSQL server a dev stack runs in
// its data directory (the first line of postgres/postmaster.pid), or 0
// when it runs none there (VRSKY_DATABASE_URL points elsewhere) or the
// file cannot be read.
func postgresPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postgres", "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0
	}
	if _, err := ProcCPU(pid); err != nil {
		return 0
	}
	return pid
}

// cdcStep creates the tables and a new CDC integration, runs warm-up and
// measured load at rate through it, and removes the integration, its slot
// and publication, and the tables.
func (r *runner) cdcStep(ctx context.Context, rate float64) (_ *Report, err error) {
	cfg := r.cfg
	name := "bench-" + randomID()
	p := dataplane.Pipeline{Tenant: Tenant, Integration: name}
	objs := cdcObjectsFor(name)
	connect := func() (*pgx.Conn, error) {
		conn, err := pgx.Connect(ctx, r.stack.Endpoints.Postgres)
		if err != nil {
			return nil, fmt.Errorf("connect to the stack's PostgreSQL: %w", err)
		}
		return conn, nil
	}
	admin, err := connect()
	if err != nil {
		return nil, err
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if err := objs.create(ctx, admin); err != nil {
		return nil, errors.Join(err, objs.drop(ctx, admin))
	}
	// Deferred first, so it runs after the integration is removed.
	defer func() { err = errors.Join(err, objs.drop(ctx, admin)) }()

	desired := dataplane.Desired{
		Tenant: Tenant, Integration: name, Version: 1, Status: dataplane.DesiredRunning,
		Spec: IntegrationSpec(Config{Scenario: ScenarioCDC}, name),
	}
	if err := r.state.PutDesired(ctx, desired); err != nil {
		return nil, fmt.Errorf("create benchmark integration: %w", err)
	}
	defer func() { err = errors.Join(err, r.remove(ctx, p, "")) }()
	if err := r.waitRunning(ctx, p); err != nil {
		return nil, err
	}
	if err := waitSlot(ctx, admin, objs.Slot); err != nil {
		return nil, err
	}

	sched := Schedule{
		T0:       time.Now().Add(startDelay),
		Rate:     rate,
		Tick:     cfg.TxInterval,
		Warmup:   int64(cfg.Warmup.Seconds() * rate),
		Measured: max(int64(cfg.Duration.Seconds()*rate), 1),
	}
	sink := NewCollector(sched, nil)
	sink.failed = "insert failed"
	fmt.Fprintf(cfg.Progress, "%s: %.0f rows/s offered (a transaction every %s), %s warm-up + %s measured, %d-byte payloads…\n",
		name, rate, cfg.TxInterval, cfg.Warmup, cfg.Duration, cfg.Size)

	inserter, err := connect()
	if err != nil {
		return nil, err
	}
	defer inserter.Close(context.WithoutCancel(ctx))
	readerConn, err := connect()
	if err != nil {
		return nil, err
	}
	defer readerConn.Close(context.WithoutCancel(ctx))
	reader := newTableReader(readerConn, objs.target(), objs.Slot, sink, sched.MeasuredStart())
	stop := make(chan struct{})
	stopReader := sync.OnceFunc(func() { close(stop) })
	var wg sync.WaitGroup
	var readErr error
	wg.Go(func() { readErr = reader.run(ctx, stop) })
	defer func() { stopReader(); wg.Wait() }()

	load := &cdcLoad{conn: inserter, table: objs.source(), size: cfg.Size}
	before, after, drain, err := r.measure(ctx, sched, sink, func() error { return load.Run(ctx, sched, sink) })
	if err != nil {
		return nil, err
	}
	stopReader()
	wg.Wait()
	if readErr != nil {
		return nil, readErr
	}
	if err := reader.finish(ctx); err != nil {
		return nil, err
	}
	if load.firstErr != nil {
		fmt.Fprintf(cfg.Progress, "%s: inserts failed, the first with: %v\n", name, load.firstErr)
	}

	rep := &Report{
		Scenario: cfg.Scenario, Integration: name, OfferedRate: rate,
		DrainSeconds: drain.Seconds(), MessageSize: cfg.Size,
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(),
		Durability: DurabilityCDC, StackOwned: r.stack.Owned(), Machine: ThisMachine(),
	}
	fillCounts(rep, sink)
	fillProcesses(rep, before, after)
	txMs := float64(cfg.TxInterval) / float64(time.Millisecond)
	txs := load.transactions
	rep.TxIntervalMs, rep.SourceTransactions = &txMs, &txs
	if largest, mean, ok := reader.lag(); ok {
		rep.ReplicationLagMaxBytes, rep.ReplicationLagMeanBytes = &largest, &mean
	}
	fmt.Fprintf(cfg.Progress, "%s: sustained %.0f rows/s, p99 %.2f ms, lost %d, errors %d\n", name, rep.SustainedRate, rep.P99, rep.Lost, rep.Errors)
	return rep, nil
}

// isPGCode reports whether err is a PostgreSQL error with one of codes.
func isPGCode(err error, codes ...string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && slices.Contains(codes, pgErr.Code)
}

// firstLine is s's first line, trimmed.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
