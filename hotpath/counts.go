package hotpath

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
)

// countsFlushInterval is how often a runner adds what it counted to the
// bucket. A runner killed between two flushes loses at most this much of
// its counts, never a message.
const countsFlushInterval = time.Second

// stageCount counts one stage's finished messages in memory and adds them to
// the counts bucket from time to time, so the hot loop never waits for KV.
// Many runners add to the same key; each addition is a compare-and-set.
type stageCount struct {
	kv      jetstream.KeyValue
	key     string
	pending atomic.Uint64
	// counted wakes run when something is counted after a quiet spell, so
	// an idle stage's count costs no timer at all.
	counted chan struct{}
}

func newStageCount(kv jetstream.KeyValue, key string) *stageCount {
	return &stageCount{kv: kv, key: key, counted: make(chan struct{}, 1)}
}

func (c *stageCount) add(n int) {
	if c.pending.Add(uint64(n)) == uint64(n) { // it was zero: wake run
		select {
		case c.counted <- struct{}{}:
		default:
		}
	}
}

// flush adds what was counted since the last flush to the bucket; what it
// could not add stays counted for the next one.
func (c *stageCount) flush(ctx context.Context) error {
	n := c.pending.Swap(0)
	if n == 0 {
		return nil
	}
	if err := addCount(ctx, c.kv, c.key, n); err != nil {
		c.pending.Add(n)
		return err
	}
	return nil
}

// run flushes what was counted at most once per interval until ctx ends,
// then once more. While nothing is counted it sleeps without a timer.
func (c *stageCount) run(ctx context.Context, interval time.Duration) {
	flushLoop(ctx, interval, c.counted, c.flush, func() bool { return c.pending.Load() > 0 })
}

// flushLoop calls flush at most once per interval, after counted says
// something was counted, until ctx ends, then once more. While nothing is
// counted it sleeps without a timer; when flush fails and pending still
// holds something, it tries again after the next interval.
func flushLoop(ctx context.Context, interval time.Duration, counted chan struct{}, flush func(context.Context) error, pending func() bool) {
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = flush(final)
			return
		case <-counted:
		}
		// Let the counts of a busy spell gather, then add them at once.
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
		if err := flush(ctx); err != nil && pending() {
			select { // try again after the next interval
			case counted <- struct{}{}:
			default:
			}
		}
	}
}

// addCount adds n to the decimal count under key. Writers that collide try
// again after a short random pause, so they do not collide in step.
func addCount(ctx context.Context, kv jetstream.KeyValue, key string, n uint64) error {
	for try := range 20 {
		if try > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 5))))
		}
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = kv.Create(ctx, key, []byte(strconv.FormatUint(n, 10))); err == nil {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read count %s: %w", key, err)
		}
		old, _ := strconv.ParseUint(string(entry.Value()), 10, 64)
		if _, err = kv.Update(ctx, key, []byte(strconv.FormatUint(old+n, 10)), entry.Revision()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("add to count %s: too much contention", key)
}

// tally holds one pipeline's counts kept in the counts bucket (its
// stages' finished messages, its failed attempts, its end-to-end
// latencies) and flushes them together: one goroutine per pipeline, woken
// by whichever is counted first after a quiet spell, so an idle pipeline
// costs no timer and no write. A nil *tally counts nothing.
type tally struct {
	kv jetstream.KeyValue
	// counted is shared by every count of the tally.
	counted   chan struct{}
	stages    []*stageCount
	latencies *latencyCount
}

func newTally(kv jetstream.KeyValue) *tally {
	return &tally{kv: kv, counted: make(chan struct{}, 1)}
}

// stage returns a new count under key, flushed with the others.
func (t *tally) stage(key string) *stageCount {
	if t == nil {
		return nil
	}
	c := &stageCount{kv: t.kv, key: key, counted: t.counted}
	t.stages = append(t.stages, c)
	return c
}

// latency returns the pipeline's latency histogram under key, flushed
// with the others; there is one per tally.
func (t *tally) latency(key string) *latencyCount {
	if t == nil {
		return nil
	}
	if t.latencies == nil {
		t.latencies = &latencyCount{kv: t.kv, key: key, counted: t.counted}
	}
	return t.latencies
}

// flush adds what every count counted since the last flush to the bucket.
func (t *tally) flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	for _, c := range t.stages {
		errs = append(errs, c.flush(ctx))
	}
	if t.latencies != nil {
		errs = append(errs, t.latencies.flush(ctx))
	}
	return errors.Join(errs...)
}

func (t *tally) pending() bool {
	for _, c := range t.stages {
		if c.pending.Load() > 0 {
			return true
		}
	}
	return t.latencies != nil && t.latencies.pending()
}

// run flushes the tally at most once per interval until ctx ends, then
// once more (flushLoop).
func (t *tally) run(ctx context.Context, interval time.Duration) {
	if t != nil {
		flushLoop(ctx, interval, t.counted, t.flush, t.pending)
	}
}

// latencyCount is a pipeline's end-to-end latency histogram in this
// runner (dataplane.Latencies): what it counted since its last flush.
// Counting one delivery is one atomic add.
type latencyCount struct {
	kv      jetstream.KeyValue
	key     string
	buckets [dataplane.LatencyBuckets + 1]atomic.Uint64
	counted chan struct{}
}

// observe counts one delivery that took d. A nil *latencyCount counts
// nothing.
func (l *latencyCount) observe(d time.Duration) {
	if l == nil {
		return
	}
	if l.buckets[dataplane.LatencyBucket(d)].Add(1) == 1 { // first since the last flush
		select {
		case l.counted <- struct{}{}:
		default:
		}
	}
}

func (l *latencyCount) pending() bool {
	for i := range l.buckets {
		if l.buckets[i].Load() > 0 {
			return true
		}
	}
	return false
}

// flush adds what was counted since the last flush to the bucket; what it
// could not add stays counted for the next one.
func (l *latencyCount) flush(ctx context.Context) error {
	var delta dataplane.Latencies
	for i := range l.buckets {
		delta[i] = l.buckets[i].Swap(0)
	}
	if delta.Total() == 0 {
		return nil
	}
	if err := addLatencies(ctx, l.kv, l.key, delta); err != nil {
		for i, n := range delta {
			l.buckets[i].Add(n)
		}
		return err
	}
	return nil
}

// addLatencies adds delta to the histogram under key, as addCount adds to
// a count: every runner of the pipeline adds to the same key, so the key
// holds their sum.
func addLatencies(ctx context.Context, kv jetstream.KeyValue, key string, delta dataplane.Latencies) error {
	for try := range 20 {
		if try > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 5))))
		}
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			value, _ := delta.MarshalJSON()
			if _, err = kv.Create(ctx, key, value); err == nil {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read latencies %s: %w", key, err)
		}
		var sum dataplane.Latencies
		// A value that does not parse (written by another version) is
		// started again rather than blocking the counts for good.
		_ = sum.UnmarshalJSON(entry.Value())
		sum.Add(delta)
		value, _ := sum.MarshalJSON()
		if _, err = kv.Update(ctx, key, value, entry.Revision()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("add to latencies %s: too much contention", key)
}
