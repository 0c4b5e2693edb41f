package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The end-to-end latency histogram: the time from a message's ingestion
// (sdk.Message.Received) to a producer's confirmed delivery of it. Runners
// count each delivery into one bucket, in memory, and add their counts to
// the counts bucket (Pipeline.CountKey(LatencyCount)) with the other
// counts; the metrics sampler reads the sum of every runner's counts and
// turns the growth between two reads into percentiles. The Prometheus
// histogram vrsky_end_to_end_seconds has the same buckets: they are
// defined here only.

// Latency buckets: bucket i holds the latencies in (LatencyBound(i-1),
// LatencyBound(i)], where LatencyBound(i) is latencyBase·2^i: 0.5 ms,
// 1 ms, 2 ms … 65.536 s. Bucket LatencyBuckets holds what took longer.
const (
	// LatencyBuckets is the number of bounded buckets.
	LatencyBuckets = 18
	latencyBase    = 500 * time.Microsecond
	// maxLatencyValue bounds a stored histogram's size: 19 counts of at
	// most 20 digits, commas and brackets fit in 512 bytes.
	maxLatencyValue = 512
)

// LatencyBound is the upper bound of bucket i (0 ≤ i < LatencyBuckets).
func LatencyBound(i int) time.Duration { return latencyBase << i }

// LatencyBoundsSeconds are the buckets' upper bounds in seconds, for a
// Prometheus histogram: the same float values prometheus.ExponentialBuckets
// (0.0005, 2, LatencyBuckets) gives.
func LatencyBoundsSeconds() []float64 {
	b := make([]float64, LatencyBuckets)
	b[0] = latencyBase.Seconds()
	for i := 1; i < LatencyBuckets; i++ {
		b[i] = b[i-1] * 2
	}
	return b
}

// LatencyBucket is the bucket a latency of d falls in: the first whose
// bound is at least d (as Prometheus files an observation), LatencyBuckets
// when d is over the last bound. It costs a division by a constant and a
// bit count: the hot path calls it once per delivered message.
func LatencyBucket(d time.Duration) int {
	if d <= latencyBase {
		return 0
	}
	return min(bits.Len64(uint64((d-1)/latencyBase)), LatencyBuckets)
}

// Latencies is a latency histogram: how many deliveries fell in each
// bucket (not cumulative across buckets). Stored ones count since the
// pipeline's counts began.
type Latencies [LatencyBuckets + 1]uint64

// Total is the number of deliveries the histogram holds.
func (l Latencies) Total() uint64 {
	var n uint64
	for _, c := range l {
		n += c
	}
	return n
}

// Add adds o's counts to l's.
func (l *Latencies) Add(o Latencies) {
	for i, c := range o {
		l[i] += c
	}
}

// Since is what l, a later read of the same histogram, counted after
// earlier. A bucket that fell means the counts started again (the
// pipeline's counts were removed and counting resumed): then all of l is
// new.
func (l Latencies) Since(earlier Latencies) Latencies {
	var d Latencies
	for i := range l {
		if l[i] < earlier[i] {
			return l
		}
		d[i] = l[i] - earlier[i]
	}
	return d
}

// Quantile estimates the q-quantile (0 < q ≤ 1) of the latencies the way
// Prometheus' histogram_quantile does: it finds the bucket holding the
// rank q·Total and interpolates linearly inside it (the first bucket
// starts at 0). A rank in the last, unbounded bucket answers the last
// bound, a lower limit. It reports false when the histogram is empty or q
// is out of range.
func (l Latencies) Quantile(q float64) (time.Duration, bool) {
	total := l.Total()
	if total == 0 || !(q > 0 && q <= 1) {
		return 0, false
	}
	rank := q * float64(total)
	var below uint64
	for i, c := range l {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		if i == LatencyBuckets {
			break
		}
		var lower time.Duration
		if i > 0 {
			lower = LatencyBound(i - 1)
		}
		upper := LatencyBound(i)
		return lower + time.Duration(float64(upper-lower)*(rank-float64(below))/float64(c)), true
	}
	return LatencyBound(LatencyBuckets - 1), true
}

// MarshalJSON writes the counts as a JSON array, first bucket first.
func (l Latencies) MarshalJSON() ([]byte, error) { return json.Marshal(l[:]) }

// UnmarshalJSON reads what MarshalJSON wrote and refuses anything else: a
// value that is not an array of exactly LatencyBuckets+1 counts, or over
// 512 bytes.
func (l *Latencies) UnmarshalJSON(b []byte) error {
	if len(b) > maxLatencyValue {
		return fmt.Errorf("latency histogram of %d bytes: at most %d", len(b), maxLatencyValue)
	}
	var counts []uint64
	if err := json.Unmarshal(b, &counts); err != nil {
		return fmt.Errorf("latency histogram: %w", err)
	}
	if len(counts) != len(l) {
		return fmt.Errorf("latency histogram has %d buckets, want %d", len(counts), len(l))
	}
	copy(l[:], counts)
	return nil
}

// ReadLatencies returns p's end-to-end latency histogram as every runner
// added to it, from counts, the platform's counts bucket; an empty one
// when nothing was delivered yet.
func ReadLatencies(ctx context.Context, counts jetstream.KeyValue, p Pipeline) (Latencies, error) {
	key := p.CountKey(LatencyCount)
	entry, err := counts.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Latencies{}, nil
	}
	if err != nil {
		return Latencies{}, fmt.Errorf("read latencies %s: %w", key, err)
	}
	var l Latencies
	if err := l.UnmarshalJSON(entry.Value()); err != nil {
		return Latencies{}, fmt.Errorf("latencies %s: %w", key, err)
	}
	return l, nil
}
