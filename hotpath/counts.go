package hotpath

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	// owner is told when something is counted after a quiet spell, so an
	// idle stage's count costs no timer at all; nil is flushed only by
	// flush calls.
	owner *tally
}

func newStageCount(kv jetstream.KeyValue, key string) *stageCount {
	return &stageCount{kv: kv, key: key}
}

func (c *stageCount) add(n int) {
	if c.pending.Add(uint64(n)) == uint64(n) { // it was zero: wake the flusher
		c.owner.counted()
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

// countsFlusher flushes the tallies of a runner's pipelines: one goroutine
// for all of them, woken by the first count after a quiet spell. It waits
// the interval, so that the counts of a busy spell gather, then flushes
// every tally that counted something meanwhile; a tally is flushed at most
// once per interval. While nothing is counted it sleeps without a timer;
// a tally whose flush failed with something still pending is flushed again
// after the next interval.
type countsFlusher struct {
	interval time.Duration
	mu       sync.Mutex
	// dirty are the tallies that counted something since their last flush.
	dirty []*tally
	wake  chan struct{}
}

// countsFlushers bounds the tallies one flusher flushes at once.
const countsFlushers = 8

func newCountsFlusher(interval time.Duration) *countsFlusher {
	return &countsFlusher{interval: interval, wake: make(chan struct{}, 1)}
}

// mark queues t for the next flush.
func (f *countsFlusher) mark(t *tally) {
	f.mu.Lock()
	f.dirty = append(f.dirty, t)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run flushes the marked tallies until ctx ends, then once more.
func (f *countsFlusher) run(ctx context.Context) {
	wait := time.NewTimer(f.interval)
	wait.Stop()
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			f.flushDirty(final)
			return
		case <-f.wake:
		}
		// Let the counts of a busy spell gather, then add them at once.
		wait.Reset(f.interval)
		select {
		case <-ctx.Done():
		case <-wait.C:
		}
		f.flushDirty(ctx)
	}
}

// flushDirty flushes the tallies marked so far, countsFlushers at a time.
func (f *countsFlusher) flushDirty(ctx context.Context) {
	f.mu.Lock()
	batch := f.dirty
	f.dirty = nil
	f.mu.Unlock()
	var next atomic.Int64
	var flushers sync.WaitGroup
	for range min(len(batch), countsFlushers) {
		flushers.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(batch)); i = next.Add(1) - 1 {
				t := batch[i]
				t.queued.Store(false) // what is counted from now on marks it again
				if err := t.flushAttached(ctx); err != nil && t.pending() {
					t.counted() // try again after the next interval
				}
			}
		})
	}
	flushers.Wait()
}

// addCount adds n to the decimal count under key; every runner of the
// pipeline adds to the same key.
func addCount(ctx context.Context, kv jetstream.KeyValue, key string, n uint64) error {
	err := dataplane.UpdateValue(ctx, kv, key, func(old []byte) []byte {
		sum, _ := strconv.ParseUint(string(old), 10, 64)
		return []byte(strconv.FormatUint(sum+n, 10))
	})
	if err != nil {
		return fmt.Errorf("add to count: %w", err)
	}
	return nil
}

// tally holds one pipeline's counts kept in the counts bucket (its
// stages' finished messages, its failed attempts, its end-to-end
// latencies) and flushes them together, through the runner's
// countsFlusher, woken by whichever is counted first after a quiet spell:
// an idle pipeline costs no goroutine, no timer and no write. A nil *tally
// counts nothing.
type tally struct {
	kv jetstream.KeyValue
	// flusher flushes the tally from time to time; nil: only flush calls do.
	flusher *countsFlusher
	// queued is set while the tally waits in the flusher.
	queued atomic.Bool
	// mu is held during a flush; detached, set under it, keeps the flusher
	// off the tally once its pipeline stopped.
	mu        sync.Mutex
	detached  bool
	stages    []*stageCount
	latencies *latencyCount
}

func newTally(kv jetstream.KeyValue, flusher *countsFlusher) *tally {
	return &tally{kv: kv, flusher: flusher}
}

// stage returns a new count under key, flushed with the others.
func (t *tally) stage(key string) *stageCount {
	if t == nil {
		return nil
	}
	c := &stageCount{kv: t.kv, key: key, owner: t}
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
		t.latencies = &latencyCount{kv: t.kv, key: key, owner: t}
	}
	return t.latencies
}

// counted queues the tally in its flusher unless it is queued already.
func (t *tally) counted() {
	if t != nil && t.flusher != nil && t.queued.CompareAndSwap(false, true) {
		t.flusher.mark(t)
	}
}

// flush adds what every count counted since the last flush to the bucket.
func (t *tally) flush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.flushLocked(ctx)
}

// flushAttached is the flusher's flush: nothing once detached.
func (t *tally) flushAttached(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.detached {
		return nil
	}
	return t.flushLocked(ctx)
}

func (t *tally) flushLocked(ctx context.Context) error {
	var errs []error
	for _, c := range t.stages {
		errs = append(errs, c.flush(ctx))
	}
	if t.latencies != nil {
		errs = append(errs, t.latencies.flush(ctx))
	}
	return errors.Join(errs...)
}

// detach keeps the flusher off the tally from now on, once a flush it is
// making has ended: its pipeline stopped and flushes what is left itself,
// after which nothing may write its counts any more (they may be
// forgotten).
func (t *tally) detach() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.detached = true
	t.mu.Unlock()
}

func (t *tally) pending() bool {
	for _, c := range t.stages {
		if c.pending.Load() > 0 {
			return true
		}
	}
	return t.latencies != nil && t.latencies.pending()
}

// latencyCount is a pipeline's end-to-end latency histogram in this
// runner (dataplane.Latencies): what it counted since its last flush.
// Counting one delivery is one atomic add.
type latencyCount struct {
	kv      jetstream.KeyValue
	key     string
	buckets [dataplane.LatencyBuckets + 1]atomic.Uint64
	// owner is told when something is counted after a quiet spell.
	owner *tally
}

// observe counts one delivery that took d. A nil *latencyCount counts
// nothing.
func (l *latencyCount) observe(d time.Duration) {
	if l == nil {
		return
	}
	if l.buckets[dataplane.LatencyBucket(d)].Add(1) == 1 { // first since the last flush
		l.owner.counted()
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
	err := dataplane.UpdateValue(ctx, kv, key, func(old []byte) []byte {
		var sum dataplane.Latencies
		// A value that does not parse (written by another version) is
		// started again rather than blocking the counts for good.
		if old != nil {
			_ = sum.UnmarshalJSON(old)
		}
		sum.Add(delta)
		value, _ := sum.MarshalJSON()
		return value
	})
	if err != nil {
		return fmt.Errorf("add to latencies: %w", err)
	}
	return nil
}
