package hotpath

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestOnlyProducerIsDeliveredFromTheProcessStage: with one producer the
// process stage writes to it directly; nothing travels through
// `out.<producer>`, and the stage's counters still show every delivery.
func TestOnlyProducerIsDeliveredFromTheProcessStage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("direct", []string{"exclaim"}, "sink")
	const n = 50
	var msgs []sdk.Message
	for i := range n {
		msgs = append(msgs, msg(fmt.Sprintf("m%d", i), "hi"))
	}
	h.send(p, msgs...)
	sink := h.producers["sink"]
	require.Eventually(t, func() bool { return sink.delivered() == n }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []byte("hi!"), sink.body("m7"))

	ctx := context.Background()
	stream, err := h.js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	_, err = stream.Consumer(ctx, dataplane.DeliverStage("sink"))
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound,
		"no message took the second hop: the producer's consumer, for replays and large bodies, was never made")

	var stages []dataplane.StageCount
	require.Eventually(t, func() bool {
		stages, _, err = dataplane.Counters(ctx, h.js, h.state.Counts, p)
		return err == nil && len(stages) == 2 && stages[0].Acked == n && stages[1].Acked == n
	}, 10*time.Second, 50*time.Millisecond, "stages %+v err %v", stages, err)
	require.Zero(t, h.streamMsgs(p), "every input was acked")
}

// TestDirectDeliveryDeadLetterIsReplayedToTheProducer: a delivery that
// failed in the process stage is dead-lettered as the producer's message
// (converted, with the producer's subject), so a replay goes to the
// producer and does not run the steps again.
func TestDirectDeliveryDeadLetterIsReplayedToTheProducer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	sink := h.producers["sink"]
	sink.setFail(failID("bad", sdk.Permanentf("rejected")))
	p := h.deploy("direct-dlq", []string{"exclaim"}, "sink")
	h.send(p, msg("bad", "x"), msg("good", "y"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 10*time.Second, 20*time.Millisecond)
	dead := h.dlq()[0]
	require.Equal(t, dataplane.DeliverStage("sink"), dead.Header.Get(dataplane.HeaderDLQStage))
	require.Equal(t, p.OutSubject("sink"), dead.Header.Get(dataplane.HeaderDLQSubject))
	require.Equal(t, "x!", string(dead.Data), "the converted message is kept")

	ctx := context.Background()
	var stages []dataplane.StageCount
	var deadCount uint64
	var err error
	require.Eventually(t, func() bool {
		stages, deadCount, err = dataplane.Counters(ctx, h.js, h.state.Counts, p)
		return err == nil && deadCount == 1 && len(stages) == 2 && stages[0].Acked == 2
	}, 10*time.Second, 50*time.Millisecond, "a dead letter is finished too: stages %+v", stages)

	sink.setFail(nil)
	require.NoError(t, dataplane.ReplayDeadLetter(ctx, h.js, nil, h.state.Counts, h.tenant, dead.Sequence))
	require.Eventually(t, func() bool { return sink.body("bad") != nil }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, "x!", string(sink.body("bad")), "the steps did not run again")
}

func TestCountsAddUpAcrossWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	p := dataplane.Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "counted"}
	key := p.CountKey(dataplane.DeliverStage("sink"))

	n, err := dataplane.ReadCount(ctx, state.Counts, key)
	require.NoError(t, err)
	require.Zero(t, n, "nothing counted yet")

	// Two runners flushing into the same key at once lose nothing.
	var wg sync.WaitGroup
	for range 2 {
		c := newStageCount(state.Counts, key)
		wg.Go(func() {
			for range 20 {
				c.add(3)
				require.NoError(t, c.flush(ctx))
			}
		})
	}
	wg.Wait()
	n, err = dataplane.ReadCount(ctx, state.Counts, key)
	require.NoError(t, err)
	require.Equal(t, uint64(120), n)

	// The runner's flusher flushes on its own, and once more when it stops.
	flusher := newCountsFlusher(10 * time.Millisecond)
	c := newTally(state.Counts, flusher).stage(key)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { flusher.run(runCtx); close(done) }()
	c.add(5)
	require.Eventually(t, func() bool { n, _ = dataplane.ReadCount(ctx, state.Counts, key); return n == 125 }, 5*time.Second, 10*time.Millisecond)
	c.add(1)
	stop()
	<-done
	n, err = dataplane.ReadCount(ctx, state.Counts, key)
	require.NoError(t, err)
	require.Equal(t, uint64(126), n)

	// A value that is not a number is reported, not taken as zero.
	_, err = state.Counts.Put(ctx, p.CountKey(dataplane.StageProcess), []byte("lots"))
	require.NoError(t, err)
	_, err = dataplane.ReadCount(ctx, state.Counts, p.CountKey(dataplane.StageProcess))
	require.ErrorContains(t, err, "not a number")

	// Deleting the pipeline forgets its counts, and only its own.
	other := dataplane.Pipeline{Tenant: p.Tenant, Integration: "counted-too"}
	require.NoError(t, addCount(ctx, state.Counts, other.CountKey(dataplane.StageProcess), 7))
	require.NoError(t, state.DeleteDesired(ctx, p))
	n, err = dataplane.ReadCount(ctx, state.Counts, key)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = dataplane.ReadCount(ctx, state.Counts, other.CountKey(dataplane.StageProcess))
	require.NoError(t, err)
	require.Equal(t, uint64(7), n)
}

// TestClaimCheckedBodyIsDeliveredDirectlyByReference: an unchanged
// claim-checked body goes to the only producer without a second hop and
// without travelling through NATS: streamed from the blob store when no
// step read it, written from memory when a step already fetched it.
func TestClaimCheckedBodyIsDeliveredDirectlyByReference(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "stream-sink")
	bare := h.deploy("by-ref", nil, "stream-sink")
	filtered := h.deploy("by-ref-filtered", []string{"header-router"}, "stream-sink")
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	h.send(bare, sdk.Message{ID: "bare", Body: big})
	h.send(filtered, sdk.Message{ID: "filtered", Body: big})

	sink := h.producers["stream-sink"]
	require.Eventually(t, func() bool { return sink.delivered() == 2 }, 20*time.Second, 50*time.Millisecond)
	require.True(t, bytes.Equal(big, sink.body("bare")))
	require.True(t, bytes.Equal(big, sink.body("filtered")))
	sink.mu.Lock()
	require.Equal(t, []string{"bare"}, sink.streamed, "a body already fetched is not fetched again")
	sink.mu.Unlock()

	ctx := context.Background()
	for _, p := range []dataplane.Pipeline{bare, filtered} {
		stream, err := h.js.Stream(ctx, p.Stream())
		require.NoError(t, err)
		_, err = stream.Consumer(ctx, dataplane.DeliverStage("stream-sink"))
		require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "%s: no second hop, so no consumer for it", p)
	}
}

// progressMsg records InProgress calls.
type progressMsg struct {
	jetstream.Msg
	inProgress atomic.Int32
}

func (m *progressMsg) InProgress() error { m.inProgress.Add(1); return nil }

// TestLongWaitForTheProducerRestartsAckTimers: a write that waited for
// another worker's write restarts its messages' ack timers; one that did
// not wait leaves them alone.
func TestLongWaitForTheProducerRestartsAckTimers(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil).forStage(dataplane.Pipeline{Tenant: "t1", Integration: "slow"}, dataplane.DeliverStage("sink"))
	d := &deliverer{settler: &settler{metrics: m, log: slog.New(slog.NewJSONHandler(io.Discard, nil))}}
	pm := &progressMsg{}
	d.lock([]*delivery{{msg: pm}})
	d.writing.Unlock()
	require.Zero(t, pm.inProgress.Load(), "no wait, no restart")

	d.writing.Lock() // another worker writes
	go func() { time.Sleep(lockWaitNoticed + 100*time.Millisecond); d.writing.Unlock() }()
	d.lock([]*delivery{{msg: pm}})
	d.writing.Unlock()
	require.EqualValues(t, 1, pm.inProgress.Load())
}
