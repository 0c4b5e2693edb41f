package dataplane

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// ackAll takes and acks n messages from the stage's consumer.
func ackAll(t *testing.T, c jetstream.Consumer, n int) {
	t.Helper()
	batch, err := c.FetchNoWait(n)
	require.NoError(t, err)
	got := 0
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(context.Background()))
		got++
	}
	require.Equal(t, n, got)
}

// restingEnv opens the platform's state and a new pipeline's streams.
func restingEnv(t *testing.T) (jetstream.JetStream, *State, Pipeline, jetstream.Stream) {
	t.Helper()
	_, js := testenv.JetStream(t)
	state, err := OpenState(context.Background(), js)
	require.NoError(t, err)
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}
	stream, err := EnsureStreams(context.Background(), js, p)
	require.NoError(t, err)
	return js, state, p, stream
}

// TestARestingStageKeepsItsCounts: a stage records what its consumer
// finished as it parks; once the server removed the consumer the stage
// is still counted, with what waits on its subject, and the consumer
// created again counts on from there. The replay check finds it.
func TestARestingStageKeepsItsCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, state, p, stream := restingEnv(t)
	cfg := jetstream.ConsumerConfig{Durable: StageProcess, FilterSubject: p.InSubject(), AckPolicy: jetstream.AckExplicitPolicy}
	publish := func(n int) {
		for i := range n {
			_, err := js.Publish(ctx, p.InSubject(), []byte(strconv.Itoa(i)))
			require.NoError(t, err)
		}
	}
	counters := func() []StageCount {
		stages, _, err := Counters(ctx, js, state.Counts, p)
		require.NoError(t, err)
		return stages
	}
	park := func(c jetstream.Consumer) {
		info, err := c.Info(ctx)
		require.NoError(t, err)
		require.NoError(t, RecordRest(ctx, state.Counts, p, info))
	}

	c, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	require.NoError(t, err)
	publish(3)
	ackAll(t, c, 3)
	park(c)
	require.Equal(t, []StageCount{{Stage: StageProcess, Acked: 3}}, counters(), "parked, its consumer still there")
	park(c)
	require.Equal(t, []StageCount{{Stage: StageProcess, Acked: 3}}, counters(), "recording the same consumer again adds nothing")

	require.NoError(t, stream.DeleteConsumer(ctx, StageProcess))
	publish(2)
	require.Equal(t, []StageCount{{Stage: StageProcess, Acked: 3, Pending: 2}}, counters(), "resting: counted from its record")
	require.NoError(t, checkReplayTarget(ctx, js, state.Counts, p, p.InSubject()), "a resting stage takes a replay")
	require.ErrorIs(t, checkReplayTarget(ctx, js, state.Counts, p, p.OutSubject("gone")), ErrNoReplayTarget)

	c, err = stream.CreateOrUpdateConsumer(ctx, cfg)
	require.NoError(t, err)
	ackAll(t, c, 2)
	require.Equal(t, []StageCount{{Stage: StageProcess, Acked: 5}}, counters(), "created again, it counts on")
	park(c)
	require.NoError(t, stream.DeleteConsumer(ctx, StageProcess))
	require.Equal(t, []StageCount{{Stage: StageProcess, Acked: 5}}, counters(), "and rests again")

	// A stage no longer in the spec is forgotten.
	other := &jetstream.ConsumerInfo{Name: DeliverStage("crm")}
	require.NoError(t, RecordRest(ctx, state.Counts, p, other))
	require.Len(t, counters(), 2)
	require.NoError(t, ForgetRests(ctx, state.Counts, p, func(stage string) bool { return stage == StageProcess }))
	require.Equal(t, []StageCount{{Stage: StageProcess, Acked: 5}}, counters())
	require.NoError(t, ForgetRests(ctx, state.Counts, p, func(string) bool { return true }), "nothing stale: nothing written")
}

// TestABadRestRecordIsAnErrorToReadAndStartedAgainToWrite: a record that
// does not parse, or is oversize, fails the counters with a clear error;
// the next park writes a fresh one.
func TestABadRestRecordIsAnErrorToReadAndStartedAgainToWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js, state, p, _ := restingEnv(t)
	for _, bad := range []string{"{", strings.Repeat(" ", maxRestsValue+1)} {
		_, err := state.Counts.Put(ctx, p.CountKey(RestsCount), []byte(bad))
		require.NoError(t, err)
		_, _, err = Counters(ctx, js, state.Counts, p)
		require.ErrorContains(t, err, "rest record")
		require.NoError(t, RecordRest(ctx, state.Counts, p, &jetstream.ConsumerInfo{Name: StageProcess, AckFloor: jetstream.SequenceInfo{Consumer: 4}}))
		rests, err := ReadRests(ctx, state.Counts, p)
		require.NoError(t, err)
		require.Equal(t, Rests{StageProcess: {Acked: 4}}, rests)
	}
}
