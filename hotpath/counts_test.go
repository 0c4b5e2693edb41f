package hotpath

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestDeliveriesCountTheirLatencies: every message a producer delivers
// counts its end-to-end latency in its pipeline's histogram, on the
// two-hop path and the direct one alike, and its process stage counts what
// it took; a pipeline nothing moved through writes nothing.
func TestDeliveriesCountTheirLatencies(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "a", "b", "only")
	ctx := context.Background()
	twoHops := h.deploy("two-hops", nil, "a", "b")
	direct := h.deploy("direct", nil, "only")
	idle := h.deploy("idle", nil, "only")

	const n = 20
	send := func(p dataplane.Pipeline) {
		msgs := make([]sdk.Message, n)
		for i := range msgs {
			// Ingested 100 ms ago: every latency is at least that.
			msgs[i] = sdk.Message{ID: p.Integration + "-" + strconv.Itoa(i), Body: []byte("{}"), Received: time.Now().Add(-100 * time.Millisecond)}
		}
		h.send(p, msgs...)
	}
	send(twoHops)
	send(direct)

	for p, want := range map[dataplane.Pipeline]uint64{twoHops: 2 * n, direct: n} {
		var got dataplane.Latencies
		require.Eventually(t, func() bool {
			var err error
			got, err = dataplane.ReadLatencies(ctx, h.state.Counts, p)
			return err == nil && got.Total() == want
		}, 15*time.Second, 50*time.Millisecond, "%s: one latency per delivery (last: %v)", p.Integration, got)
		p50, ok := got.Quantile(0.5)
		require.True(t, ok)
		p99, _ := got.Quantile(0.99)
		// From the message's ingestion: at least the lower bound of the
		// bucket holding 100 ms, (64 ms, 128 ms].
		require.GreaterOrEqual(t, p50, 64*time.Millisecond)
		require.LessOrEqual(t, p50, p99)
		require.Less(t, p99, 15*time.Second)
	}
	for _, name := range []string{"a", "b", "only"} {
		require.Equal(t, n, h.producers[name].delivered(), name)
	}
	for _, p := range []dataplane.Pipeline{twoHops, direct} {
		require.Eventually(t, func() bool {
			taken, err := dataplane.ReadCount(ctx, h.state.Counts, p.CountKey(dataplane.TakenCount))
			return err == nil && taken == n
		}, 5*time.Second, 50*time.Millisecond, "%s: its process stage counted what it took", p.Integration)
	}

	// Nothing moved through idle: after a few flush intervals it has no
	// count at all (no write, so no cost).
	time.Sleep(2*countsFlushInterval + 200*time.Millisecond)
	for _, key := range []string{idle.CountKey(dataplane.LatencyCount), idle.CountKey(dataplane.FailuresCount), idle.CountKey(dataplane.DeliverStage("only")), idle.CountKey(dataplane.TakenCount)} {
		_, err := h.state.Counts.Get(ctx, key)
		require.ErrorIs(t, err, jetstream.ErrKeyNotFound, key)
	}
}

// TestLatencyCountsOfSeveralRunnersAddUp: runners that run the same
// pipeline add their histograms to one key; the flush loop writes only
// after something was counted, and once more when it stops.
func TestLatencyCountsOfSeveralRunnersAddUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	p := dataplane.Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "timed"}
	key := p.CountKey(dataplane.LatencyCount)

	var wg sync.WaitGroup
	for r := range 3 {
		counts := newTally(state.Counts, nil)
		l := counts.latency(key)
		require.Same(t, l, counts.latency(key), "one histogram per pipeline")
		delivered := counts.stage(p.CountKey(dataplane.DeliverStage("sink")))
		wg.Go(func() {
			for i := range 10 {
				l.observe(time.Duration(r+1) * time.Millisecond) // (0.5, 1], (1, 2], (2, 4] ms
				l.observe(2*time.Minute + time.Duration(i))      // the unbounded bucket
				delivered.add(2)
				require.NoError(t, counts.flush(ctx))
			}
		})
	}
	wg.Wait()
	got, err := dataplane.ReadLatencies(ctx, state.Counts, p)
	require.NoError(t, err)
	var want dataplane.Latencies
	want[1], want[2], want[3], want[dataplane.LatencyBuckets] = 10, 10, 10, 30
	require.Equal(t, want, got)
	n, err := dataplane.ReadCount(ctx, state.Counts, p.CountKey(dataplane.DeliverStage("sink")))
	require.NoError(t, err)
	require.Equal(t, uint64(60), n, "the stage counts of the tally are flushed with it")

	// The runner's flusher: idle, it writes nothing; woken, it flushes
	// within the interval; stopped, it flushes what is left.
	flusher := newCountsFlusher(20 * time.Millisecond)
	counts := newTally(state.Counts, flusher)
	l := counts.latency(key)
	before, err := state.Counts.Get(ctx, key)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { flusher.run(runCtx); close(done) }()
	time.Sleep(100 * time.Millisecond)
	still, err := state.Counts.Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, before.Revision(), still.Revision(), "nothing counted, nothing written")
	l.observe(3 * time.Millisecond)
	require.Eventually(t, func() bool {
		got, _ = dataplane.ReadLatencies(ctx, state.Counts, p)
		return got[3] == 11
	}, 5*time.Second, 10*time.Millisecond)
	l.observe(3 * time.Millisecond)
	stop()
	<-done
	got, err = dataplane.ReadLatencies(ctx, state.Counts, p)
	require.NoError(t, err)
	require.Equal(t, uint64(12), got[3], "flushed when it stops")

	// A value that does not parse is started again, not left to block
	// the counts.
	_, err = state.Counts.Put(ctx, key, []byte("garbage"))
	require.NoError(t, err)
	l.observe(time.Millisecond)
	require.NoError(t, counts.flush(ctx))
	got, err = dataplane.ReadLatencies(ctx, state.Counts, p)
	require.NoError(t, err)
	require.Equal(t, uint64(1), got.Total())

	// A nil tally (no counts bucket) counts nothing and does not fail.
	var none *tally
	none.latency(key).observe(time.Second)
	none.stage(key)
	require.NoError(t, none.flush(ctx))
	none.counted()
	none.detach()
}

// TestFailedLatencyFlushKeepsTheCounts: what a flush could not write
// stays counted for the next one.
func TestFailedLatencyFlushKeepsTheCounts(t *testing.T) {
	t.Parallel()
	flusher := newCountsFlusher(time.Hour)
	counts := newTally(failingKV{}, flusher)
	l := counts.latency("t1.x.latency")
	l.observe(time.Millisecond)
	l.observe(time.Hour)
	require.Len(t, flusher.wake, 1, "the first count wakes the flusher")
	require.Equal(t, []*tally{counts}, flusher.dirty, "once")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.Error(t, l.flush(ctx))
	require.True(t, l.pending())
	require.Equal(t, uint64(1), l.buckets[1].Load())
	require.Equal(t, uint64(1), l.buckets[dataplane.LatencyBuckets].Load())
}

type failingKV struct{ jetstream.KeyValue }

func (failingKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	return nil, errors.New("nats: connection closed")
}

// TestEndToEndHistogramHasTheHistoryBuckets: Prometheus'
// vrsky_end_to_end_seconds and the metrics history's histogram share
// their buckets, and a delivery counts in both.
func TestEndToEndHistogramHasTheHistoryBuckets(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	m := NewMetrics(reg).forStage(dataplane.Pipeline{Tenant: "acme", Integration: "orders"}, dataplane.DeliverStage("db"))
	m.latencies = &latencyCount{}
	m.delivered(3 * time.Millisecond)
	families, err := reg.Gather()
	require.NoError(t, err)
	var h *dto.Histogram
	for _, f := range families {
		if f.GetName() == "vrsky_end_to_end_seconds" {
			h = f.GetMetric()[0].GetHistogram()
		}
	}
	require.NotNil(t, h)
	var bounds []float64
	for _, b := range h.GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
		if b.GetUpperBound() < 0.003 {
			require.Zero(t, b.GetCumulativeCount())
		} else {
			require.Equal(t, uint64(1), b.GetCumulativeCount())
		}
	}
	require.Equal(t, dataplane.LatencyBoundsSeconds(), bounds)
	require.Equal(t, prometheus.ExponentialBuckets(0.0005, 2, 18), bounds, "the buckets the dashboards know")
	require.Equal(t, uint64(1), m.latencies.buckets[dataplane.LatencyBucket(3*time.Millisecond)].Load())
}
