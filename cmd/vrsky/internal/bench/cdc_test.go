package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/postgres"
	"github.com/vrsky/vrsky/connectors/postgrescdc"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) {
	if os.Getenv(testRunnerEnv) == "1" { // re-run as `vrsky runner --dev` (see runAsRunner)
		os.Exit(runAsRunner(os.Args[1:]))
	}
	testenv.Main(m)
}

func TestScheduleWithATickSendsInGroups(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := Schedule{T0: t0, Rate: 200, Tick: 10 * time.Millisecond, Warmup: 2, Measured: 6}
	// 5 ms apart without the tick; with it, due at the first tick at or after.
	for seq, want := range []time.Duration{0, 10, 10, 20, 20, 30, 30, 40} {
		require.Equal(t, t0.Add(want*time.Millisecond), s.Intended(int64(seq)), "seq %d", seq)
	}
	require.Equal(t, t0.Add(10*time.Millisecond), s.MeasuredStart())

	require.Equal(t, int64(1), dueUntil(s, 0, t0, maxRowsPerTx), "one group per tick")
	require.Equal(t, int64(3), dueUntil(s, 1, t0.Add(10*time.Millisecond), maxRowsPerTx))
	require.Equal(t, int64(7), dueUntil(s, 1, t0.Add(35*time.Millisecond), maxRowsPerTx), "a late wake-up takes everything due")
	require.Equal(t, int64(3), dueUntil(s, 1, t0.Add(35*time.Millisecond), 2), "at most limit rows")
	require.Equal(t, int64(8), dueUntil(s, 7, t0.Add(time.Hour), maxRowsPerTx), "never past the schedule")
	require.Equal(t, int64(2), dueUntil(s, 1, t0, maxRowsPerTx), "at least one row, even early")
}

func TestGapBookkeeping(t *testing.T) {
	require.Empty(t, missingBetween(-1, []int64{0, 1, 2}, 100))
	require.Equal(t, []int64{0, 3, 4}, missingBetween(-1, []int64{1, 2, 5}, 100))
	require.Equal(t, []int64{11}, missingBetween(9, []int64{10, 12}, 100))
	require.Empty(t, missingBetween(9, nil, 100))
	require.Equal(t, []int64{1, 2}, missingBetween(0, []int64{3, 99}, 3), "no gaps past the schedule")

	require.Equal(t, []int64{1, 3}, without([]int64{1, 2, 3, 4}, []int64{4, 2}))
	require.Equal(t, []int64{1}, without([]int64{1}, nil))
	require.Empty(t, without([]int64{5}, []int64{5}))
}

func TestCDCSpecAndObjects(t *testing.T) {
	o := cdcObjectsFor("bench-0a1b2c3d")
	require.Equal(t, cdcObjects{Source: "cdc_src_0a1b2c3d", Target: "cdc_dst_0a1b2c3d", WriteCounter: "cdc_dst_0a1b2c3d_writes",
		Slot: "vrsky_bench_0a1b2c3d", Publication: "vrsky_bench_0a1b2c3d"}, o)

	in := IntegrationSpec(Config{Scenario: ScenarioCDC}, "bench-0a1b2c3d")
	require.NoError(t, in.Validate())
	require.Empty(t, in.Steps)
	require.Equal(t, postgrescdc.Connector.Name, in.Consumer.Connector)
	var consumer postgrescdc.Config
	require.NoError(t, json.Unmarshal(in.Consumer.Config, &consumer))
	require.NoError(t, consumer.Validate())
	require.Equal(t, sdk.Secret{Secret: DatabaseSecret}, consumer.URL, "the runner resolves the stack's database as a tenant secret")
	require.Equal(t, []string{"vrsky_bench.cdc_src_0a1b2c3d"}, consumer.Tables)
	require.Equal(t, o.Slot, consumer.Slot)
	require.Equal(t, o.Publication, consumer.Publication)

	sink := in.Producers[producerName]
	require.Equal(t, postgres.Connector.Name, sink.Connector)
	var producer postgres.Config
	require.NoError(t, json.Unmarshal(sink.Config, &producer))
	require.NoError(t, producer.Validate())
	require.Equal(t, sdk.Secret{Secret: DatabaseSecret}, producer.URL)
	require.Equal(t, "vrsky_bench.cdc_dst_0a1b2c3d", producer.Table)
	require.Equal(t, postgres.ModeUpsert, producer.Mode)
	require.Equal(t, []string{"id"}, producer.Key)
	require.Equal(t, map[string]string{"id": "after.id", "payload": "after.payload"}, producer.Columns)
}

func TestCDCConfigDefaultsAndValidation(t *testing.T) {
	c := Config{Scenario: ScenarioCDC, DataDir: "x"}
	require.NoError(t, c.applyDefaults())
	require.Equal(t, DefaultTxInterval, c.TxInterval)
	require.Equal(t, DefaultSize, c.Size)

	small := Config{Scenario: ScenarioCDC, DataDir: "x", Size: 1}
	require.NoError(t, small.applyDefaults(), "a payload needs no JSON envelope")

	for name, tt := range map[string]struct {
		cfg  Config
		want string
	}{
		"size":        {Config{Scenario: ScenarioCDC, DataDir: "x", Size: -1}, "at least 1 byte"},
		"batch":       {Config{Scenario: ScenarioCDC, DataDir: "x", Batch: 10}, "sends no webhook batches"},
		"tx interval": {Config{Scenario: ScenarioCDC, DataDir: "x", TxInterval: -time.Millisecond}, "must not be negative"},
	} {
		require.ErrorContains(t, tt.cfg.applyDefaults(), tt.want, name)
	}
	other := Config{DataDir: "x"}
	require.NoError(t, other.applyDefaults())
	require.Zero(t, other.TxInterval, "only the cdc scenario commits transactions")
}

// cdcDB is a test database with the benchmark schema's tables of objs.
func cdcDB(t *testing.T, objs cdcObjects) (string, *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	url := testenv.Postgres(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	require.NoError(t, objs.create(ctx, conn))
	return url, conn
}

func TestCDCLoadInsertsEveryRowOnSchedule(t *testing.T) {
	ctx := context.Background()
	objs := cdcObjectsFor("bench-load")
	_, conn := cdcDB(t, objs)
	sched := Schedule{T0: time.Now().Add(startDelay), Rate: 400, Tick: 20 * time.Millisecond, Warmup: 20, Measured: 80}
	sink := NewCollector(sched, nil)
	load := &cdcLoad{conn: conn, table: objs.source(), size: 40}
	began := time.Now()
	require.NoError(t, load.Run(ctx, sched, sink))
	require.GreaterOrEqual(t, time.Since(began), 230*time.Millisecond, "open loop: the last row is due at 240 ms")
	require.NoError(t, load.firstErr)

	n := sink.Counts()
	require.Equal(t, int64(80), n.Sent)
	require.Zero(t, n.Errors)
	require.Equal(t, int64(80), sink.Missing(), "nothing arrived: no pipeline here")
	require.Positive(t, sink.AckLatencies().Count, "commits are the acks")
	// 8 rows per 20 ms tick: 10 measured transactions on time, fewer when
	// a late tick commits the rows of the ticks it missed, never one per row.
	require.Positive(t, load.transactions)
	require.LessOrEqual(t, load.transactions, int64(12), "the rows due in one tick share a transaction")

	var rows, short int
	var first string
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE length(payload) <> 40), min(payload) FILTER (WHERE id = 0) FROM "+
		objs.source().Sanitize()).Scan(&rows, &short, &first))
	require.Equal(t, 100, rows)
	require.Zero(t, short, "every payload has the size asked for")
	require.Equal(t, "0:abcdefghijklmnopqrstuvwxyz0123456789ab", first)
}

func TestCDCLoadRecordsFailedInserts(t *testing.T) {
	objs := cdcObjectsFor("bench-fail")
	_, conn := cdcDB(t, objs)
	sched := Schedule{T0: time.Now(), Rate: 1000, Tick: 5 * time.Millisecond, Measured: 10}
	sink := NewCollector(sched, nil)
	sink.failed = "insert failed"
	load := &cdcLoad{conn: conn, table: pgx.Identifier{CDCSchema, "missing"}, size: 8}
	require.NoError(t, load.Run(context.Background(), sched, sink), "a failed insert does not stop the load")
	require.ErrorContains(t, load.firstErr, "does not exist")
	n := sink.Counts()
	require.Equal(t, int64(10), n.Errors)
	require.Equal(t, map[string]int64{"insert failed": 10}, n.ErrorsByStatus)
	require.Zero(t, load.transactions)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	load = &cdcLoad{conn: conn, table: objs.source(), size: 8}
	require.ErrorIs(t, load.Run(ctx, Schedule{T0: time.Now().Add(time.Hour), Rate: 1, Measured: 1}, sink), context.Canceled)

	closed, err := pgx.Connect(context.Background(), conn.Config().ConnString())
	require.NoError(t, err)
	require.NoError(t, closed.Close(context.Background()))
	load = &cdcLoad{conn: closed, table: objs.source(), size: 8}
	require.ErrorContains(t, load.Run(context.Background(), Schedule{T0: time.Now(), Rate: 100, Measured: 1}, NewCollector(sched, nil)),
		"insert into the source table")
}

func TestTableReaderRecordsArrivalsGapsAndRepeatedWrites(t *testing.T) {
	ctx := context.Background()
	objs := cdcObjectsFor("bench-read")
	_, conn := cdcDB(t, objs)
	reader, err := pgx.Connect(ctx, conn.Config().ConnString())
	require.NoError(t, err)
	t.Cleanup(func() { _ = reader.Close(context.Background()) })

	t0 := time.Now().Truncate(time.Second)
	sched := Schedule{T0: t0, Rate: 1000, Warmup: 1, Measured: 5} // 1 ms apart
	sink := NewCollector(sched, nil)
	for seq := range sched.Total() {
		sink.SetStatus(seq, committed, sched.Intended(seq))
	}
	tr := newTableReader(reader, objs.target(), "no_such_slot", sink, t0)
	write := func(id int64, late time.Duration) {
		_, err := conn.Exec(ctx, "INSERT INTO "+objs.target().Sanitize()+" (id, payload, delivered_at) VALUES ($1, 'p', $2)"+
			" ON CONFLICT (id) DO UPDATE SET payload = EXCLUDED.payload", id, sched.Intended(id).Add(late))
		require.NoError(t, err)
	}
	write(0, time.Second) // warm-up
	write(1, 2*time.Millisecond)
	write(4, 8*time.Millisecond)
	require.NoError(t, tr.poll(ctx))
	require.Equal(t, []int64{2, 3}, tr.gaps)
	require.Equal(t, int64(3), sink.Missing())

	write(3, 6*time.Millisecond)
	write(5, 4*time.Millisecond)
	write(99, 0) // not in the schedule
	require.NoError(t, tr.poll(ctx))
	require.Equal(t, []int64{2}, tr.gaps, "a gap filled later is read by id")
	require.Equal(t, int64(1), sink.Missing())
	write(2, 4*time.Millisecond)
	write(4, time.Minute) // written again: a duplicate, its first arrival stands
	require.NoError(t, tr.finish(ctx))
	require.Empty(t, tr.gaps)

	n := sink.Counts()
	require.Equal(t, int64(5), n.Delivered)
	require.Zero(t, n.Lost)
	require.Equal(t, int64(1), n.Duplicates)
	require.Equal(t, int64(1), n.Unknown)
	lat := sink.ArrivalLatencies()
	require.InDelta(t, 8, lat.Max, 0.01, "latencies come from delivered_at, never from the poll")
	require.InDelta(t, 4, lat.P50, 0.01)
	_, _, ok := tr.lag()
	require.False(t, ok, "no slot, no lag sample")

	// A stopped reader polls once more and stops without an error, its
	// connection still usable; one whose context ends reports it.
	stop := make(chan struct{})
	close(stop)
	require.NoError(t, tr.run(ctx, stop))
	require.NoError(t, tr.finish(ctx))
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, tr.run(canceled, make(chan struct{})), context.Canceled)
}

func TestDropRemovesTheSlotPublicationAndTables(t *testing.T) {
	ctx := context.Background()
	objs := cdcObjectsFor("bench-drop")
	_, conn := cdcDB(t, objs)
	_, err := conn.Exec(ctx, "CREATE PUBLICATION "+pgx.Identifier{objs.Publication}.Sanitize()+" FOR TABLE "+objs.source().Sanitize())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", objs.Slot)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", objs.Slot) })

	reader := newTableReader(conn, objs.target(), objs.Slot, NewCollector(Schedule{Rate: 1, Measured: 1}, nil), time.Time{})
	require.NoError(t, reader.sampleLag(ctx))
	_, _, ok := reader.lag()
	require.True(t, ok, "the slot's lag is sampled")

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorContains(t, waitSlot(canceled, conn, objs.Slot), "look up replication slot")
	require.NoError(t, objs.drop(ctx, conn))
	count := func(query string, args ...any) int {
		var n int
		require.NoError(t, conn.QueryRow(ctx, query, args...).Scan(&n))
		return n
	}
	require.Zero(t, count("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", objs.Slot))
	require.Zero(t, count("SELECT count(*) FROM pg_publication WHERE pubname = $1", objs.Publication))
	require.Zero(t, count("SELECT count(*) FROM pg_tables WHERE schemaname = $1", CDCSchema))
	require.Zero(t, count("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1", CDCSchema))
	require.NoError(t, objs.drop(ctx, conn), "dropping again finds nothing to drop")
}

func TestCreateReportsWhatFailed(t *testing.T) {
	objs := cdcObjectsFor("bench-twice")
	_, conn := cdcDB(t, objs)
	err := objs.create(context.Background(), conn)
	require.ErrorContains(t, err, "create benchmark tables: CREATE TABLE")
	require.True(t, isPGCode(err, "42P07"), "duplicate table")
	require.False(t, isPGCode(err, "55006"))
	require.False(t, isPGCode(context.Canceled, "42P07"))
}

// TestDropSlotEndsASessionThatKeepsIt: a consumer that does not let go of
// its slot in time is ended, so the slot never outlives the benchmark.
func TestDropSlotEndsASessionThatKeepsIt(t *testing.T) {
	ctx := context.Background()
	objs := cdcObjectsFor("bench-held")
	url, conn := cdcDB(t, objs)
	_, err := conn.Exec(ctx, "CREATE PUBLICATION "+pgx.Identifier{objs.Publication}.Sanitize()+" FOR TABLE "+objs.source().Sanitize())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", objs.Slot)
	require.NoError(t, err)
	cfg, err := pgconn.ParseConfig(url)
	require.NoError(t, err)
	cfg.RuntimeParams["replication"] = "database"
	repl, err := pgconn.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = repl.Close(context.Background()) })
	require.NoError(t, pglogrepl.StartReplication(ctx, repl, objs.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + objs.Publication + "'"},
	}))
	require.NoError(t, waitSlot(ctx, conn, objs.Slot), "streaming")

	began := time.Now()
	require.NoError(t, dropSlot(ctx, conn, objs.Slot, 200*time.Millisecond))
	require.GreaterOrEqual(t, time.Since(began), 200*time.Millisecond, "the holder had its time to let go")
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", objs.Slot).Scan(&n))
	require.Zero(t, n)
	require.NoError(t, dropSlot(ctx, conn, objs.Slot, 0), "a missing slot is fine")
}

func TestPostgresPIDAndTreeCPU(t *testing.T) {
	dir := t.TempDir()
	require.Zero(t, postgresPID(dir), "no server in the data directory")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "postgres"), 0o700))
	pidFile := filepath.Join(dir, "postgres", "postmaster.pid")
	for _, bad := range []string{"", "nope\n", "-3\n", "1073741824\n/data\n"} {
		require.NoError(t, os.WriteFile(pidFile, []byte(bad), 0o600))
		require.Zero(t, postgresPID(dir), "%q", bad)
	}
	require.NoError(t, os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n/data\n1700000000\n"), 0o600))
	require.Equal(t, os.Getpid(), postgresPID(dir))

	own, err := ProcCPU(os.Getpid())
	require.NoError(t, err)
	tree, err := TreeCPU(os.Getpid())
	require.NoError(t, err)
	require.GreaterOrEqual(t, tree, own)
	_, err = TreeCPU(1 << 30)
	require.ErrorContains(t, err, "read CPU time")

	// A fake /proc: the root's own and reaped time, its live child's, and
	// nothing of unrelated or unreadable entries.
	proc := t.TempDir()
	stat := func(pid, ppid, utime, stime, cutime, cstime int) {
		d := filepath.Join(proc, strconv.Itoa(pid))
		require.NoError(t, os.MkdirAll(d, 0o700))
		line := strconv.Itoa(pid) + " (postgres: walsender) S " + strconv.Itoa(ppid) + " 0 0 0 0 0 0 0 0 0 " +
			strconv.Itoa(utime) + " " + strconv.Itoa(stime) + " " + strconv.Itoa(cutime) + " " + strconv.Itoa(cstime) + " 20 0\n"
		require.NoError(t, os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o600))
	}
	stat(100, 1, 10, 5, 20, 5)
	stat(101, 100, 30, 10, 0, 0)
	stat(102, 1, 500, 500, 0, 0)
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "self"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "103"), 0o700)) // exited: no stat
	got, err := treeCPU(proc, 100)
	require.NoError(t, err)
	require.Equal(t, 800*time.Millisecond, got, "(10+5+20+5) + (30+10) ticks of 10 ms")
	require.NoError(t, os.WriteFile(filepath.Join(proc, "100", "stat"), []byte("garbage"), 0o600))
	_, err = treeCPU(proc, 100)
	require.Error(t, err)
}

func TestCDCReportOutput(t *testing.T) {
	txMs, txs, lagMax, lagMean, pg, pgPerMillion := 10.0, int64(100), int64(69888), 5694.0, 1.42, 157.8
	rep := Report{Scenario: ScenarioCDC, Integration: "bench-x", OfferedRate: 3000, SustainedRate: 2991, P99: 25.44,
		Sent: 3000, Delivered: 3000, MessageSize: 1024, Durability: DurabilityCDC,
		TxIntervalMs: &txMs, SourceTransactions: &txs, ReplicationLagMaxBytes: &lagMax, ReplicationLagMeanBytes: &lagMean,
		PostgresCPUSeconds: &pg, PostgresCPUSecondsPerMillion: &pgPerMillion}
	var out bytes.Buffer
	require.NoError(t, rep.WriteSummary(&out))
	for _, want := range []string{"1024-byte payloads", "offered 3000 rows/s, sustained 2991 rows/s into the target table",
		"p99 25.44 ms", "intended insert → row in the target table", "intended insert → source commit",
		"inserted 3000, failed 0", "one every 10 ms: 100 committed, 30.0 rows each", "max 69888 bytes, mean 5694 bytes",
		"postgres        1.42 CPU s (157.8 CPU s per million"} {
		require.Contains(t, out.String(), want)
	}
	require.NotContains(t, out.String(), "workers")
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	for _, k := range []string{`"tx_interval_ms":10`, `"source_transactions":100`, `"replication_lag_max_bytes":69888`,
		`"postgres_cpu_seconds":1.42`} {
		require.Contains(t, string(b), k)
	}
	b, err = json.Marshal(Report{Scenario: ScenarioPipeline})
	require.NoError(t, err)
	require.NotContains(t, string(b), "replication_lag", "CDC fields only in CDC reports")
	require.NotContains(t, string(b), "postgres_cpu")

	before := procSample{postgres: true, postgresCPU: time.Second}
	after := procSample{postgres: true, postgresCPU: 2500 * time.Millisecond}
	filled := Report{Delivered: 3000}
	fillProcesses(&filled, before, after)
	require.InDelta(t, 1.5, *filled.PostgresCPUSeconds, 1e-9)
	require.InDelta(t, 500, *filled.PostgresCPUSecondsPerMillion, 1e-6)
	none := Report{Delivered: 3000}
	fillProcesses(&none, procSample{}, procSample{})
	require.Nil(t, none.PostgresCPUSeconds, "no server measured: no figures")
}
