package hotpath

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// TestLeaseLetsOneHolderRunAtATime: two runners compete for a singleton
// source; only one runs it, and the other takes over when the first stops.
func TestLeaseLetsOneHolderRunAtATime(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	kv, err := openLeases(context.Background(), js, 2*time.Second)
	require.NoError(t, err)

	var running, maxRunning atomic.Int32
	ran := map[string]*atomic.Int32{"a": {}, "b": {}}
	work := func(holder string) func(context.Context) {
		return func(ctx context.Context) {
			ran[holder].Add(1)
			n := running.Add(1)
			for {
				if m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n) {
					continue
				}
				break
			}
			<-ctx.Done()
			running.Add(-1)
		}
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { holdLease(ctxA, kv, "t.i", "a", 100*time.Millisecond, work("a")) })
	require.Eventually(t, func() bool { return running.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	wg.Go(func() { holdLease(ctxB, kv, "t.i", "b", 100*time.Millisecond, work("b")) })
	time.Sleep(500 * time.Millisecond)
	require.EqualValues(t, 1, maxRunning.Load(), "never two holders at once")
	require.Zero(t, ran["b"].Load())

	stopA()
	require.Eventually(t, func() bool { return ran["b"].Load() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the second runner takes over when the first lets go")
	require.EqualValues(t, 1, maxRunning.Load())
	stopB()
	wg.Wait()
	require.Zero(t, running.Load())
}

// TestLostLeaseStopsTheHolder: when the lease is taken away (expired and
// re-created elsewhere), the holder's work is cancelled.
func TestLostLeaseStopsTheHolder(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	kv, err := openLeases(context.Background(), js, 5*time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started, stopped := make(chan struct{}), make(chan struct{})
	go holdLease(ctx, kv, "t.j", "a", 50*time.Millisecond, func(ctx context.Context) {
		select {
		case <-started:
		default:
			close(started)
			<-ctx.Done()
			close(stopped)
			return
		}
		<-ctx.Done()
	})
	<-started
	require.NoError(t, kv.Purge(context.Background(), "t.j"))
	_, err = kv.Create(context.Background(), "t.j", []byte("intruder"))
	require.NoError(t, err)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the holder kept running after losing its lease")
	}
}
