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
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = c.flush(final)
			return
		case <-c.counted:
		}
		// Let the counts of a busy spell gather, then add them at once.
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
		if err := c.flush(ctx); err != nil && c.pending.Load() > 0 {
			select { // try again after the next interval
			case c.counted <- struct{}{}:
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
