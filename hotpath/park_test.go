package hotpath

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// shortIdle makes stages idle after d for the rest of the test.
func shortIdle(t *testing.T, d time.Duration) {
	after := idleAfter.Load()
	idleAfter.Store(int64(d))
	t.Cleanup(func() { idleAfter.Store(after) })
}

// shortRest makes the consumers created from now on rest after d without
// a pull, for the rest of the test.
func shortRest(t *testing.T, d time.Duration) {
	after := consumerRestAfter.Load()
	consumerRestAfter.Store(int64(d))
	t.Cleanup(func() { consumerRestAfter.Store(after) })
}

// parkingStage starts a stage that wakes through wakes on a stream of its
// own, counting what it handles, and records its consumer with record as
// it parks (nil: not); it returns the stage's JetStream and the handled
// count.
func parkingStage(t *testing.T, name string, wakes *wakeWatch, record func(context.Context, *jetstream.ConsumerInfo) error) (jetstream.JetStream, jetstream.Stream, *batches, func() map[string]int) {
	t.Helper()
	_, js := testenv.JetStream(t)
	return parkingStageOn(t, js, stageStream(t, js, name), name+".in", wakes, record)
}

// parkingStageOn is parkingStage on subject of stream.
func parkingStageOn(t *testing.T, js jetstream.JetStream, stream jetstream.Stream, subject string, wakes *wakeWatch, record func(context.Context, *jetstream.ConsumerInfo) error) (jetstream.JetStream, jetstream.Stream, *batches, func() map[string]int) {
	t.Helper()
	c, err := ensureConsumer(context.Background(), stream, "parking", subject)
	require.NoError(t, err)
	src, err := consumeBatches(stream, c, 16, &stageWake{watch: wakes, nc: js.Conn(), subject: subject, record: record}, quiet())
	require.NoError(t, err)
	var mu sync.Mutex
	seen := map[string]int{}
	st := runStage(src, 1, 8, func(batch []jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			seen[string(m.Data())]++
			require.NoError(t, m.Ack())
		}
	})
	t.Cleanup(st.stop)
	return js, stream, src, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
}

// waitingPulls is how many pull requests the server holds for consumer:
// none when it does not exist (not made yet, or resting).
func waitingPulls(t *testing.T, stream jetstream.Stream, consumer string) int {
	t.Helper()
	c, err := stream.Consumer(context.Background(), consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0
	}
	require.NoError(t, err)
	info, err := c.Info(context.Background())
	require.NoError(t, err)
	return info.NumWaiting
}

// TestAnIdleStageParksAndAMessageWakesIt: an idle stage stops pulling
// (the server holds no request of it) and ends its waiting worker; a
// message published to its subject wakes it through the wake watch and is
// handled at once, once; it parks again when idle. Only a parked stage is
// subscribed to its subject.
func TestAnIdleStageParksAndAMessageWakesIt(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wakes := newWakeWatch()
	go wakes.run(ctx)
	js, stream, src, seen := parkingStage(t, "PARK", wakes, nil)
	subscribed := func() int { wakes.mu.Lock(); defer wakes.mu.Unlock(); return len(wakes.stages["PARK.in"]) }

	for round := range 3 {
		idleStages.restIdle(time.Now())
		require.False(t, src.parked(), "round %d: not idle long enough yet", round)
		time.Sleep(350 * time.Millisecond)
		idleStages.restIdle(time.Now())
		require.True(t, src.parked(), "round %d: parks", round)
		require.False(t, workerWaits(src), "round %d: a parked stage keeps no worker", round)
		require.Equal(t, 1, subscribed(), "round %d: a parked stage is subscribed to its subject", round)
		require.Eventually(t, func() bool { return waitingPulls(t, stream, "parking") == 0 }, 5*time.Second, 20*time.Millisecond,
			"round %d: the server holds no pull of a parked stage", round)

		start := time.Now()
		_, err := js.Publish(ctx, "PARK.in", fmt.Appendf(nil, "m-%d", round))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return seen()[fmt.Sprintf("m-%d", round)] == 1 }, 5*time.Second, 5*time.Millisecond)
		require.Less(t, time.Since(start), 2*time.Second, "a parked stage's message is not held")
		require.False(t, src.parked(), "round %d: woken", round)
		require.Zero(t, subscribed(), "round %d: a moving stage is not", round)
	}
	for id, n := range seen() {
		require.Equal(t, 1, n, id)
	}
}

// TestAStageDoesNotParkOverMessages: a stage whose consumer holds a
// message it was not delivered yet (here: redelivered later, after a Nak
// with delay) keeps pulling, and gets it.
func TestAStageDoesNotParkOverMessages(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	stream := stageStream(t, js, "HELD")
	c, err := ensureConsumer(ctx, stream, "parking", "HELD.in")
	require.NoError(t, err)
	src, err := consumeBatches(stream, c, 16, &stageWake{watch: newWakeWatch(), nc: js.Conn(), subject: "HELD.in"}, quiet())
	require.NoError(t, err)
	var mu sync.Mutex
	deliveries := 0
	st := runStage(src, 1, 8, func(batch []jetstream.Msg) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range batch {
			deliveries++
			if deliveries == 1 {
				require.NoError(t, m.NakWithDelay(2*time.Second))
				continue
			}
			require.NoError(t, m.Ack())
		}
	})
	defer st.stop()
	_, err = js.Publish(ctx, "HELD.in", []byte("later"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return deliveries == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	idleStages.restIdle(time.Now())
	require.False(t, src.parked(), "the consumer still holds the message")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return deliveries == 2 }, 10*time.Second, 10*time.Millisecond)
}

// TestTheLagLoopWakesAParkedStageThatMissedItsWakeUp: a message published
// to a parked stage's subject whose wake-up is lost (here: nothing reads
// the wake-ups) is found by the runner's lag loop, which wakes the stage.
func TestTheLagLoopWakesAParkedStageThatMissedItsWakeUp(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	ctx := context.Background()
	js, stream, src, seen := parkingStage(t, "MISSED", newWakeWatch(), nil)
	time.Sleep(350 * time.Millisecond)
	idleStages.restIdle(time.Now())
	require.True(t, src.parked())
	// The pull the stage ended stays at the server until its end reaches
	// it; a message published before that is delivered through it.
	require.Eventually(t, func() bool { return waitingPulls(t, stream, "parking") == 0 }, 5*time.Second, 20*time.Millisecond)
	_, err := js.Publish(ctx, "MISSED.in", []byte("unwatched"))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	require.Zero(t, seen()["unwatched"], "no wake-up came")

	lagLoopWakes(t, js, stream, dataplane.Pipeline{Tenant: "acme", Integration: "missed"}, src)
	require.Eventually(t, func() bool { return seen()["unwatched"] == 1 }, 5*time.Second, 5*time.Millisecond)
}

// lagLoopWakes makes one pass of a lag loop reading p's stream, whose one
// stage "parking" is src, and checks that it wakes src.
func lagLoopWakes(t *testing.T, js jetstream.JetStream, stream jetstream.Stream, p dataplane.Pipeline, src *batches) {
	t.Helper()
	loop := newLagLoop(NewMetrics(prometheus.NewPedanticRegistry()))
	unparked := make(chan string, 1)
	lag := loop.add(js, stream, p, []string{"parking"}, func() bool { return false }, func(consumer string) {
		unparked <- consumer
		src.unpark()
	})
	defer lag.stop()
	loop.readDue(context.Background())
	require.Equal(t, "parking", <-unparked)
}

// restingConsumer parks src and waits until the server removed its
// consumer, which rests.
func restingConsumer(t *testing.T, stream jetstream.Stream, src *batches) {
	t.Helper()
	time.Sleep(350 * time.Millisecond)
	idleStages.restIdle(time.Now())
	require.True(t, src.parked())
	require.Eventually(t, func() bool {
		_, err := stream.Consumer(context.Background(), "parking")
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	}, 10*time.Second, 20*time.Millisecond, "the server removes the parked stage's consumer")
}

// TestAParkedStagesConsumerRestsAndAMessageBringsItBack: once a stage
// parked, recording what its consumer finished, the server removes the
// consumer; a message published then wakes the stage, whose pull reaches
// no consumer: it is created again at once and the message is handled,
// once. A stage whose record fails does not park.
func TestAParkedStagesConsumerRestsAndAMessageBringsItBack(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	shortRest(t, 500*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wakes := newWakeWatch()
	go wakes.run(ctx)
	var mu sync.Mutex
	var recorded []jetstream.ConsumerInfo
	recordErr := errors.New("counts bucket unreachable")
	record := func(_ context.Context, info *jetstream.ConsumerInfo) error {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, *info)
		if len(recorded) == 1 {
			return recordErr
		}
		return nil
	}
	js, stream, src, seen := parkingStage(t, "REST", wakes, record)
	_, err := js.Publish(ctx, "REST.in", []byte("a"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return seen()["a"] == 1 }, 5*time.Second, 5*time.Millisecond)

	time.Sleep(350 * time.Millisecond)
	idleStages.restIdle(time.Now())
	require.False(t, src.parked(), "not parked while its consumer's counts are not recorded")
	restingConsumer(t, stream, src)
	mu.Lock()
	require.Len(t, recorded, 2)
	require.Equal(t, "parking", recorded[1].Name)
	require.EqualValues(t, 1, recorded[1].AckFloor.Consumer, "what the consumer finished")
	mu.Unlock()

	for round, id := range []string{"b", "c"} {
		start := time.Now()
		_, err = js.Publish(ctx, "REST.in", []byte(id))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return seen()[id] == 1 }, 10*time.Second, 5*time.Millisecond)
		require.Less(t, time.Since(start), 2*time.Second, "round %d: the consumer is created again at once", round)
		_, err = stream.Consumer(ctx, "parking")
		require.NoError(t, err, "round %d: there again", round)
		if round == 0 {
			restingConsumer(t, stream, src)
		}
	}
	for id, n := range seen() {
		require.Equal(t, 1, n, id)
	}
}

// TestTheLagLoopWakesARestingStageThatMissedItsWakeUp: a message
// published to a parked stage whose consumer rests, with the wake-up lost,
// is found on the stream by the lag loop, which wakes the stage: its
// consumer is created again and the message handled.
func TestTheLagLoopWakesARestingStageThatMissedItsWakeUp(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	shortRest(t, 500*time.Millisecond)
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	// The stage "parking" consumes the pipeline's in subject.
	p := dataplane.Pipeline{Tenant: "acme", Integration: "missedrest"}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "MISSEDREST", Subjects: []string{p.AllSubjects()}, Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
	})
	require.NoError(t, err)
	_, _, src, seen := parkingStageOn(t, js, stream, p.InSubject(), newWakeWatch(), nil)
	restingConsumer(t, stream, src)
	_, err = js.Publish(ctx, p.InSubject(), []byte("unwatched"))
	require.NoError(t, err)

	lagLoopWakes(t, js, stream, p, src)
	require.Eventually(t, func() bool { return seen()["unwatched"] == 1 }, 10*time.Second, 5*time.Millisecond)
}

// oneProducerWithADeadLetter deploys integration through one step to the
// producer "sink", which rejects the message "bad" and takes "good"; it
// returns once both were settled, with bad's dead letter.
func oneProducerWithADeadLetter(t *testing.T, integration string) (*harness, dataplane.Pipeline, *recorder, jetstream.RawStreamMsg) {
	t.Helper()
	h := newHarness(t, "sink")
	sink := h.producers["sink"]
	sink.setFail(failID("bad", sdk.Permanentf("rejected")))
	p := h.deploy(integration, []string{"exclaim"}, "sink")
	h.send(p, msg("bad", "x"), msg("good", "y"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 && sink.body("good") != nil }, 10*time.Second, 20*time.Millisecond)
	return h, p, sink, h.dlq()[0]
}

// TestParkedStagesWakeForAReplayAndANewMessage: end to end, both stages
// of an integration with one producer park when idle; a dead letter
// replayed to the producer and a new message are each delivered at once.
func TestParkedStagesWakeForAReplayAndANewMessage(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	h, p, sink, dead := oneProducerWithADeadLetter(t, "parking")

	ctx := context.Background()
	stream, err := h.js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	deliver := dataplane.DeliverStage("sink")
	require.Eventually(t, func() bool {
		idleStages.restIdle(time.Now())
		return waitingPulls(t, stream, deliver) == 0 && waitingPulls(t, stream, dataplane.StageProcess) == 0
	}, 10*time.Second, 100*time.Millisecond, "both stages park")

	sink.setFail(nil)
	start := time.Now()
	require.NoError(t, dataplane.ReplayDeadLetter(ctx, h.js, nil, h.state.Counts, h.tenant, dead.Sequence))
	require.Eventually(t, func() bool { return sink.body("bad") != nil }, 10*time.Second, 5*time.Millisecond)
	require.Less(t, time.Since(start), time.Second, "woken by its subscription, not found later by the lag loop")
	require.Equal(t, "x!", string(sink.body("bad")))

	require.Eventually(t, func() bool {
		idleStages.restIdle(time.Now())
		return waitingPulls(t, stream, dataplane.StageProcess) == 0
	}, 10*time.Second, 100*time.Millisecond, "the process stage parks again")
	start = time.Now()
	h.send(p, msg("new", "z"))
	require.Eventually(t, func() bool { return sink.body("new") != nil }, 10*time.Second, 5*time.Millisecond)
	require.Less(t, time.Since(start), time.Second, "a new message wakes the process stage")
	require.Equal(t, "z!", string(sink.body("new")))
}

// TestRestingStagesKeepTheirCountsAndComeBack: end to end, once both
// stages of an integration with one producer parked and the server
// removed their consumers, the stages are still counted with what they
// finished; a new message and a replayed dead letter are delivered at
// once, and the counts go on from there.
func TestRestingStagesKeepTheirCountsAndComeBack(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	shortRest(t, 500*time.Millisecond)
	h, p, sink, dead := oneProducerWithADeadLetter(t, "resting")

	ctx := context.Background()
	stream, err := h.js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	deliver := dataplane.DeliverStage("sink")
	counted := func(process, delivered uint64) func() bool {
		return func() bool {
			stages, _, err := dataplane.Counters(ctx, h.js, h.state.Counts, p)
			return err == nil && len(stages) == 2 &&
				stages[0].Stage == deliver && stages[0].Acked == delivered && stages[1].Acked == process
		}
	}
	resting := func() bool {
		idleStages.restIdle(time.Now())
		names := stream.ConsumerNames(ctx)
		n := 0
		for range names.Name() {
			n++
		}
		return n == 0
	}
	require.Eventually(t, resting, 15*time.Second, 100*time.Millisecond, "both consumers rest")
	require.Eventually(t, counted(2, 2), 5*time.Second, 50*time.Millisecond, "resting stages keep their counts")

	sink.setFail(nil)
	start := time.Now()
	h.send(p, msg("new", "z"))
	require.Eventually(t, func() bool { return sink.body("new") != nil }, 10*time.Second, 5*time.Millisecond)
	require.Less(t, time.Since(start), 2*time.Second, "a new message brings the process stage back at once")
	require.Equal(t, "z!", string(sink.body("new")))

	require.Eventually(t, resting, 15*time.Second, 100*time.Millisecond, "both rest again")
	require.NoError(t, dataplane.ReplayDeadLetter(ctx, h.js, nil, h.state.Counts, h.tenant, dead.Sequence))
	require.Eventually(t, func() bool { return sink.body("bad") != nil }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "x!", string(sink.body("bad")))
	require.Eventually(t, counted(3, 4), 5*time.Second, 50*time.Millisecond, "and count on")
}

// TestAStageWithoutConsumerStartsParked: a stage whose consumer does not
// exist and for which nothing waits starts parked, recorded and without
// making its consumer; its first message makes it and is handled at once.
// A stage for which messages wait makes its consumer and pulls at once.
func TestAStageWithoutConsumerStartsParked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wakes := newWakeWatch()
	go wakes.run(ctx)
	_, js := testenv.JetStream(t)
	var mu sync.Mutex
	var recorded []string
	record := func(_ context.Context, info *jetstream.ConsumerInfo) error {
		mu.Lock()
		defer mu.Unlock()
		recorded = append(recorded, info.Name)
		return nil
	}
	start := func(stream jetstream.Stream, name string) (*batches, func() int) {
		src, err := openStage(ctx, stream, "lazy", name+".in", 16, &stageWake{watch: wakes, nc: js.Conn(), subject: name + ".in", record: record}, quiet())
		require.NoError(t, err)
		var handled atomic.Int32
		st := runStage(src, 1, 8, func(batch []jetstream.Msg) {
			for _, m := range batch {
				require.NoError(t, m.Ack())
			}
			handled.Add(int32(len(batch)))
		})
		t.Cleanup(st.stop)
		return src, func() int { return int(handled.Load()) }
	}

	stream := stageStream(t, js, "LAZY")
	src, handled := start(stream, "LAZY")
	require.True(t, src.parked(), "nothing waits: parked")
	_, err := stream.Consumer(ctx, "lazy")
	require.ErrorIs(t, err, jetstream.ErrConsumerNotFound, "and its consumer not made")
	mu.Lock()
	require.Equal(t, []string{"lazy"}, recorded, "recorded, for the counters and replays")
	mu.Unlock()
	began := time.Now()
	_, err = js.Publish(ctx, "LAZY.in", []byte("first"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return handled() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Less(t, time.Since(began), 2*time.Second, "the first message makes the consumer at once")
	require.False(t, src.parked())
	_, err = stream.Consumer(ctx, "lazy")
	require.NoError(t, err)

	waiting := stageStream(t, js, "WAITING")
	_, err = js.Publish(ctx, "WAITING.in", []byte("early"))
	require.NoError(t, err)
	_, handledEarly := start(waiting, "WAITING")
	require.Eventually(t, func() bool { return handledEarly() == 1 }, 10*time.Second, 5*time.Millisecond, "a waiting message is pulled at once")
	_, err = waiting.Consumer(ctx, "lazy")
	require.NoError(t, err)
}

// TestARecentlyParkedStageIsReadLikeAMovingOne: for idleAfter after a
// stage parks (or starts parked) its pipeline counts as moving for the lag
// loop, which then finds a wake-up missed while the subscription spread
// through a cluster on its next frequent pass; then it is idle again.
func TestARecentlyParkedStageIsReadLikeAMovingOne(t *testing.T) {
	shortIdle(t, 300*time.Millisecond)
	r := newIdleRunner(t)
	pl, _ := r.start("recent")
	require.True(t, pl.moved(), "just started parked")
	time.Sleep(350 * time.Millisecond)
	require.False(t, pl.moved(), "parked for idleAfter: idle")
}
