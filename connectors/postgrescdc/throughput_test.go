package postgrescdc

import (
	"context"
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

// countingSink acknowledges everything and counts rows.
type countingSink struct{ n atomic.Int64 }

func (s *countingSink) Publish(_ context.Context, msgs []sdk.Message) error {
	s.n.Add(int64(len(msgs)))
	return nil
}

// BenchmarkCDCThroughput measures committed rows per second from INSERTs in
// transactions of 1,000 rows to messages acknowledged by the sink (the sink
// itself is free, so this is the consumer's own ceiling):
//
//	go test -run '^$' -bench CDCThroughput -benchtime 50000x ./connectors/postgrescdc/
func BenchmarkCDCThroughput(b *testing.B) {
	ctx := context.Background()
	url := testenv.Postgres(b)
	b.Setenv(urlEnv, url)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric, created_at timestamptz DEFAULT now())`); err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"url": map[string]string{"env": urlEnv}, "tables": []string{"orders"}})
	built, err := Connector.Build(ctx, sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "cdc-bench-" + testenv.RandomID(4), Egress: ownServer}, raw)
	if err != nil {
		b.Fatal(err)
	}
	c := built.(*Consumer)
	sink := &countingSink{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, sink) }()
	defer func() {
		cancel()
		<-done
		_, _ = conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", c.cfg.slot)
	}()
	// Wait until the slot exists and has a consistent point.
	for deadline := time.Now().Add(15 * time.Second); ; {
		var n int
		_ = conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL", c.cfg.slot).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("slot never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}

	b.ResetTimer()
	began := time.Now()
	for start := 0; start < b.N; start += 1000 {
		end := min(start+1000, b.N)
		if _, err := conn.Exec(ctx, `INSERT INTO orders (id, customer, total) SELECT g, 'customer-' || g, g * 1.5 FROM generate_series($1::int, $2::int - 1) g`, start, end); err != nil {
			b.Fatal(err)
		}
	}
	for sink.n.Load() < int64(b.N) {
		if time.Since(began) > 5*time.Minute {
			b.Fatalf("only %d of %d rows arrived", sink.n.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "rows/s")
}
