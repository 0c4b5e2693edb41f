package hotpath

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// stageStream makes a work-queue stream with one subject for a stage test.
func stageStream(t *testing.T, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	stream, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: name, Subjects: []string{name + ".in"}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	})
	require.NoError(t, err)
	return stream
}

// stageSource makes a work-queue stream with one subject, its stage
// consumer and a batch source pulling up to limit from it; it returns the
// stream's JetStream and the stream too.
func stageSource(t *testing.T, name string, limit int) (jetstream.JetStream, jetstream.Stream, *batches) {
	t.Helper()
	_, js := testenv.JetStream(t)
	stream := stageStream(t, js, name)
	c, err := ensureConsumer(context.Background(), stream, "process", name+".in")
	require.NoError(t, err)
	src, err := consumeBatches(stream, c, limit, nil, quiet())
	require.NoError(t, err)
	return js, stream, src
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestAnIdleStageHoldsNoWorker: workers start when messages arrive, never
// more than the stage's number at once, every message is handled once,
// and when the queue is empty no worker is busy.
func TestAnIdleStageHoldsNoWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, _, src := stageSource(t, "IDLE", 64)

	var mu sync.Mutex
	seen := map[string]int{}
	var busy, maxBusy atomic.Int32
	st := runStage(src, 2, 8, func(batch []jetstream.Msg) {
		n := busy.Add(1)
		for {
			m := maxBusy.Load()
			if n <= m || maxBusy.CompareAndSwap(m, n) {
				break
			}
		}
		require.LessOrEqual(t, len(batch), 8)
		time.Sleep(time.Millisecond)
		mu.Lock()
		for _, m := range batch {
			seen[string(m.Data())]++
			require.NoError(t, m.Ack())
		}
		mu.Unlock()
		busy.Add(-1)
	})
	idleWorkers := func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.busy == 0 && len(src.queue) == 0 }
	require.True(t, idleWorkers(), "no worker before any message")

	const n = 500
	for i := range n {
		_, err := js.Publish(ctx, "IDLE.in", fmt.Appendf(nil, "m-%d", i))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n }, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, idleWorkers, 5*time.Second, 10*time.Millisecond, "the workers end with the queue")
	require.LessOrEqual(t, maxBusy.Load(), int32(2))
	mu.Lock()
	for id, k := range seen {
		require.Equal(t, 1, k, id)
	}
	mu.Unlock()
	require.True(t, src.moved.Load())
	st.stop()
}

// workerWaits reports whether a worker of src waits for the next message.
func workerWaits(src *batches) bool {
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.waitingWorker != nil
}

// goroutineID is the calling goroutine's number, from its stack's header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}

// TestOneWorkerWaitsForTheNextMessage: a stage whose messages come one at
// a time handles them all on one worker, which waits between them without
// being busy, and ends when the stage drains.
func TestOneWorkerWaitsForTheNextMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, _, src := stageSource(t, "WAITS", 16)
	handledBy := make(chan string, 1)
	st := runStage(src, 2, 8, func(batch []jetstream.Msg) {
		for _, m := range batch {
			require.NoError(t, m.Ack())
		}
		handledBy <- goroutineID()
	})
	require.False(t, workerWaits(src), "no worker before the first message")

	var workers []string
	for i := range 5 {
		_, err := js.Publish(ctx, "WAITS.in", fmt.Appendf(nil, "m-%d", i))
		require.NoError(t, err)
		select {
		case id := <-handledBy:
			workers = append(workers, id)
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d was not handled", i)
		}
		require.Eventually(t, func() bool { return workerWaits(src) }, 5*time.Second, time.Millisecond, "a worker waits after message %d", i)
		src.mu.Lock()
		require.Zero(t, src.busy, "the waiting worker is not busy")
		src.mu.Unlock()
	}
	require.Equal(t, slices.Repeat(workers[:1], 5), workers, "one worker handled every message")

	stopped := make(chan struct{})
	go func() { st.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the stage did not stop: its waiting worker was not ended")
	}
	require.False(t, workerWaits(src))
}

// TestAFullStageQueueHoldsThePull: with a slow handler the queue never
// holds more than its limit; what waits beyond it stays with the client
// and the server, and arrives once there is room.
func TestAFullStageQueueHoldsThePull(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, _, src := stageSource(t, "FULL", 4)
	release := make(chan struct{})
	var handled atomic.Int32
	var most atomic.Int32
	st := runStage(src, 1, 2, func(batch []jetstream.Msg) {
		<-release
		for _, m := range batch {
			require.NoError(t, m.Ack())
		}
		handled.Add(int32(len(batch)))
	})
	for i := range 40 {
		_, err := js.Publish(ctx, "FULL.in", fmt.Appendf(nil, "m-%d", i))
		require.NoError(t, err)
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		src.mu.Lock()
		most.Store(max(most.Load(), int32(len(src.queue))))
		src.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, int32(4), most.Load(), "the queue fills to its limit and no further")
	close(release)
	require.Eventually(t, func() bool { return handled.Load() == 40 }, 10*time.Second, 10*time.Millisecond)
	st.stop()
}

// TestFileConsumersOfAnEarlierVersionBecomeMemoryConsumers: a stage whose
// consumer keeps its state in files (as earlier versions made it) gets a
// memory consumer of the same name, and the messages waiting for the old
// one are delivered by the new one.
func TestFileConsumersOfAnEarlierVersionBecomeMemoryConsumers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	stream := stageStream(t, js, "MIGRATE")
	_, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "process", FilterSubject: "MIGRATE.in", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	for i := range 3 {
		_, err := js.Publish(ctx, "MIGRATE.in", fmt.Appendf(nil, "m-%d", i))
		require.NoError(t, err)
	}
	c, err := ensureConsumer(ctx, stream, "process", "MIGRATE.in")
	require.NoError(t, err)
	info, err := c.Info(ctx)
	require.NoError(t, err)
	require.True(t, info.Config.MemoryStorage)
	require.Equal(t, uint64(3), info.NumPending)
	again, err := ensureConsumer(ctx, stream, "process", "MIGRATE.in")
	require.NoError(t, err, "a second ensure changes nothing")
	require.True(t, again.CachedInfo().Config.MemoryStorage)

	_, err = ensureConsumer(ctx, stream, "process", "")
	require.NoError(t, err, "the filter may change in place")
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "process", DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy, MemoryStorage: true})
	require.Error(t, err)
	require.False(t, isStorageChange(err), "other refused changes are not taken for a storage change")
}

// TestALostConsumerIsCreatedAgainAndPulledFrom: the server forgets a
// memory consumer when it restarts; the stage notices the silence, creates
// the consumer again and delivers what the stream holds. A consumer
// deleted on purpose is not brought back.
func TestALostConsumerIsCreatedAgainAndPulledFrom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, stream, src := stageSource(t, "LOST", 16)
	var handled atomic.Int32
	st := runStage(src, 1, 8, func(batch []jetstream.Msg) {
		for _, m := range batch {
			require.NoError(t, m.Ack())
		}
		handled.Add(int32(len(batch)))
	})

	// What a restart does to it, seen from the stage: the consumer is
	// gone without a word to its pulls.
	require.NoError(t, stream.DeleteConsumer(ctx, "process"))
	// The deletion answered the waiting pull with 409, which ends the
	// pulls; the reviver is what brings the consumer back and pulls again.
	src.revive.check()
	require.Eventually(t, func() bool {
		_, err := stream.Consumer(ctx, "process")
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	for i := range 5 {
		_, err := js.Publish(ctx, "LOST.in", fmt.Appendf(nil, "m-%d", i))
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return handled.Load() == 5 }, 10*time.Second, 20*time.Millisecond)

	// Draining stops the reviver: nothing is created again afterwards.
	st.stop()
	require.NoError(t, stream.DeleteConsumer(ctx, "process"))
	src.revive.check()
	time.Sleep(200 * time.Millisecond)
	_, err := stream.Consumer(ctx, "process")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound)
}
