package dataplane

import (
	"context"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestLatencyBucketFilesLikePrometheus(t *testing.T) {
	t.Parallel()
	bounds := LatencyBoundsSeconds()
	require.Len(t, bounds, LatencyBuckets)
	for i, b := range bounds {
		// prometheus.ExponentialBuckets(0.0005, 2, 18) multiplies the same way.
		require.Equal(t, 0.0005*math.Pow(2, float64(i)), b)
		require.Equal(t, LatencyBound(i).Seconds(), b)
	}
	require.Equal(t, 65536*time.Millisecond, LatencyBound(LatencyBuckets-1))

	var probes []time.Duration
	for i := range LatencyBuckets {
		b := LatencyBound(i)
		probes = append(probes, b-1, b, b+1, b/3, b*3/4)
	}
	probes = append(probes, -time.Second, 0, 1, time.Hour, math.MaxInt64)
	for _, d := range probes {
		// Prometheus files v in the first bucket whose bound is >= v.
		require.Equal(t, sort.SearchFloat64s(bounds, d.Seconds()), LatencyBucket(d), "latency %s", d)
		require.Equal(t, sort.Search(LatencyBuckets, func(i int) bool { return LatencyBound(i) >= d }), LatencyBucket(d), "latency %s", d)
	}
	require.Equal(t, 0, LatencyBucket(500*time.Microsecond))
	require.Equal(t, 1, LatencyBucket(500*time.Microsecond+1))
	require.Equal(t, 4, LatencyBucket(5*time.Millisecond)) // (4 ms, 8 ms]
	require.Equal(t, LatencyBuckets, LatencyBucket(66*time.Second))
}

func TestLatencyQuantiles(t *testing.T) {
	t.Parallel()
	at := func(counts map[int]uint64) Latencies {
		var l Latencies
		for i, n := range counts {
			l[i] = n
		}
		return l
	}
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	for _, tc := range []struct {
		name     string
		l        Latencies
		q        float64
		want     time.Duration
		measured bool
	}{
		{name: "empty", l: Latencies{}, q: 0.5},
		{name: "q out of range", l: at(map[int]uint64{3: 10}), q: 0},
		{name: "q over one", l: at(map[int]uint64{3: 10}), q: 1.5},
		{name: "q NaN", l: at(map[int]uint64{3: 10}), q: math.NaN()},
		// (2 ms, 4 ms] holds everything: the median is half-way in it.
		{name: "one bucket, median", l: at(map[int]uint64{3: 10}), q: 0.5, want: ms(3), measured: true},
		{name: "one bucket, p99", l: at(map[int]uint64{3: 10}), q: 0.99, want: ms(3.98), measured: true},
		{name: "one bucket, max", l: at(map[int]uint64{3: 10}), q: 1, want: ms(4), measured: true},
		// The first bucket starts at 0.
		{name: "first bucket", l: at(map[int]uint64{0: 4}), q: 0.5, want: ms(0.25), measured: true},
		// 90 in (1, 2] ms and 10 in (8, 16] ms: p50 in the first, p99 in
		// the second.
		{name: "two buckets, median", l: at(map[int]uint64{2: 90, 5: 10}), q: 0.5, want: ms(1 + 50.0/90), measured: true},
		{name: "two buckets, p99", l: at(map[int]uint64{2: 90, 5: 10}), q: 0.99, want: ms(8 + 8*9.0/10), measured: true},
		// A rank in the unbounded bucket answers the last bound.
		{name: "overflow bucket", l: at(map[int]uint64{LatencyBuckets: 5}), q: 0.5, want: LatencyBound(LatencyBuckets - 1), measured: true},
		{name: "overflow above the median", l: at(map[int]uint64{1: 98, LatencyBuckets: 2}), q: 0.99, want: LatencyBound(LatencyBuckets - 1), measured: true},
		{name: "overflow not reached", l: at(map[int]uint64{1: 98, LatencyBuckets: 2}), q: 0.5, want: ms(0.5 + 0.5*50.0/98), measured: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.l.Quantile(tc.q)
			require.Equal(t, tc.measured, ok)
			require.InDelta(t, float64(tc.want), float64(got), float64(time.Microsecond))
		})
	}
}

func TestLatenciesSinceAndAdd(t *testing.T) {
	t.Parallel()
	var a, b Latencies
	a[2], a[3] = 5, 1
	b.Add(a)
	b.Add(a)
	require.Equal(t, uint64(12), b.Total())
	d := b.Since(a)
	require.Equal(t, a, d, "the growth between two reads")
	// A bucket that fell: the counts started again, all of it is new.
	var restarted Latencies
	restarted[2] = 1
	require.Equal(t, restarted, restarted.Since(b))
}

func TestLatenciesJSON(t *testing.T) {
	t.Parallel()
	var l Latencies
	l[0], l[LatencyBuckets] = 7, math.MaxUint64
	b, err := l.MarshalJSON()
	require.NoError(t, err)
	var back Latencies
	require.NoError(t, back.UnmarshalJSON(b))
	require.Equal(t, l, back)

	for name, bad := range map[string]string{
		"not JSON":        "lots",
		"an object":       `{"0":1}`,
		"too few buckets": "[1,2,3]",
		"too many":        "[" + strings.Repeat("0,", LatencyBuckets+1) + "0]",
		"negative":        "[" + strings.Repeat("0,", LatencyBuckets) + "-1]",
		"a fraction":      "[" + strings.Repeat("0,", LatencyBuckets) + "1.5]",
		"a string":        "[" + strings.Repeat("0,", LatencyBuckets) + `"1"]`,
		"oversize":        "[" + strings.Repeat(" ", 1000) + strings.Repeat("0,", LatencyBuckets) + "0]",
		"overflowing":     "[" + strings.Repeat("0,", LatencyBuckets) + "18446744073709551616]",
	} {
		t.Run(name, func(t *testing.T) {
			var l Latencies
			require.Error(t, l.UnmarshalJSON([]byte(bad)))
			require.Zero(t, l.Total(), "nothing half-read")
		})
	}
}

func TestReadLatencies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := OpenState(ctx, js)
	require.NoError(t, err)
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "timed"}

	l, err := ReadLatencies(ctx, state.Counts, p)
	require.NoError(t, err)
	require.Zero(t, l.Total(), "nothing delivered yet")

	var want Latencies
	want[3] = 42
	value, _ := want.MarshalJSON()
	_, err = state.Counts.Put(ctx, p.CountKey(LatencyCount), value)
	require.NoError(t, err)
	l, err = ReadLatencies(ctx, state.Counts, p)
	require.NoError(t, err)
	require.Equal(t, want, l)

	_, err = state.Counts.Put(ctx, p.CountKey(LatencyCount), []byte("[1,2]"))
	require.NoError(t, err)
	_, err = ReadLatencies(ctx, state.Counts, p)
	require.ErrorContains(t, err, "buckets")

	// Deleting the pipeline forgets its latencies with its counts.
	require.NoError(t, state.ForgetCounts(ctx, p))
	l, err = ReadLatencies(ctx, state.Counts, p)
	require.NoError(t, err)
	require.Zero(t, l.Total())
}
