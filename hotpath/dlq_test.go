package hotpath

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// putDeadLetter stores a message in the tenant's DLQ as failures.deadLetter
// does and returns its DLQ sequence.
func putDeadLetter(t *testing.T, js jetstream.JetStream, p dataplane.Pipeline, id, stage, reason string, at time.Time, env dataplane.Envelope) uint64 {
	t.Helper()
	ctx := context.Background()
	_, err := dataplane.EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	env.Msg.ID = id
	nm := dataplane.Encode(p.DLQSubject(), id+"/"+stage, env)
	nm.Header.Set(dataplane.HeaderDLQReason, reason)
	nm.Header.Set(dataplane.HeaderDLQStage, stage)
	nm.Header.Set(dataplane.HeaderDLQAttempts, strconv.Itoa(MaxAttempts))
	subject := p.InSubject()
	if stage != dataplane.StageProcess {
		subject = p.OutSubject(strings.TrimPrefix(stage, dataplane.DeliverStage("")))
	}
	// The stage it failed on exists, as in a running integration.
	stream, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	_, err = ensureConsumer(ctx, stream, stage, subject)
	require.NoError(t, err)
	nm.Header.Set(dataplane.HeaderDLQSubject, subject)
	nm.Header.Set(dataplane.HeaderDLQAt, at.UTC().Format(time.RFC3339Nano))
	ack, err := js.PublishMsg(ctx, nm)
	require.NoError(t, err)
	return ack.Sequence
}

func TestFailedMessageCanBeReplayedFromTheDLQ(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	tenant := "t" + testenv.RandomID(6)
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	stream, err := dataplane.EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, dataplane.Encode(p.OutSubject("archive"), "m1", dataplane.Envelope{Msg: sdk.Message{ID: "m1", Body: []byte("payload")}}))
	require.NoError(t, err)

	// The real failure path dead-letters a permanent failure.
	cons, err := ensureConsumer(ctx, stream, dataplane.DeliverStage("archive"), p.OutSubject("archive"))
	require.NoError(t, err)
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var m jetstream.Msg
	for m = range batch.Messages() {
	}
	require.NotNil(t, m)
	env, err := dataplane.DecodeEnvelope(p, m.Headers(), m.Data())
	require.NoError(t, err)
	f := &failures{js: js, state: state, metrics: NewMetrics(nil).forStage(p, dataplane.DeliverStage("archive")),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), backoff: Backoff}
	settleFailed(ctx, f, p, dataplane.DeliverStage("archive"), m, env, sdk.PermanentError(errors.New("rejected by upstream")))

	letters, _, err := dataplane.ListDLQ(ctx, js, tenant, dataplane.DLQFilter{Producer: "archive", ErrorContains: "upstream"}, 0, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, "m1", letters[0].MessageID)
	require.Equal(t, p.OutSubject("archive"), letters[0].Subject)

	require.NoError(t, dataplane.ReplayDeadLetter(ctx, js, nil, nil, tenant, letters[0].Seq))
	batch, err = cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	require.NoError(t, err)
	var again jetstream.Msg
	for again = range batch.Messages() {
	}
	require.NotNil(t, again, "the producer's consumer gets the message again")
	require.Equal(t, "payload", string(again.Data()))

	// Failing again, within JetStream's duplicate window, it returns to the
	// DLQ: it is a new message there, not a duplicate of the first letter.
	againEnv, err := dataplane.DecodeEnvelope(p, again.Headers(), again.Data())
	require.NoError(t, err)
	settleFailed(ctx, f, p, dataplane.DeliverStage("archive"), again, againEnv, sdk.PermanentError(errors.New("rejected again")))
	letters, _, err = dataplane.ListDLQ(ctx, js, tenant, dataplane.DLQFilter{ErrorContains: "again"}, 0, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1, "a replayed message that fails again is dead-lettered again")
	require.Equal(t, "m1", letters[0].MessageID)
}

// TestReplayToARemovedProducerIsRefused: a dead letter of a producer that is
// no longer in the spec is not published to a subject nothing reads (where
// it would wait for ever); it stays in the DLQ and the refusal says why.
func TestReplayToARemovedProducerIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	seq := putDeadLetter(t, js, p, "m1", dataplane.DeliverStage("archive"), "HTTP 500", time.Now(), dataplane.Envelope{Msg: sdk.Message{Body: []byte("x")}})
	stream, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	// The spec now has "warehouse" instead of "archive": a runner made its
	// stages and removed the stale one.
	for stage, subject := range map[string]string{dataplane.StageProcess: p.InSubject(), dataplane.DeliverStage("warehouse"): p.OutSubject("warehouse")} {
		_, err := ensureConsumer(ctx, stream, stage, subject)
		require.NoError(t, err)
	}
	require.NoError(t, deleteStaleConsumers(ctx, stream, nil, p, []string{"warehouse"}))

	err = dataplane.ReplayDeadLetter(ctx, js, nil, nil, tenant, seq)
	require.ErrorIs(t, err, dataplane.ErrNoReplayTarget)
	require.ErrorContains(t, err, `no stage "deliver-archive"`)
	_, _, err = dataplane.GetDeadLetter(ctx, js, nil, tenant, seq, 0)
	require.NoError(t, err, "still in the DLQ")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.State.Msgs, "nothing was published where no one reads")

	// An integration no runner has started yet has no stages: the replay
	// waits for them.
	fresh := dataplane.Pipeline{Tenant: tenant, Integration: "fresh"}
	seq = putDeadLetter(t, js, fresh, "m2", dataplane.DeliverStage("archive"), "HTTP 500", time.Now(), dataplane.Envelope{Msg: sdk.Message{Body: []byte("y")}})
	freshStream, err := js.Stream(ctx, fresh.Stream())
	require.NoError(t, err)
	require.NoError(t, freshStream.DeleteConsumer(ctx, dataplane.DeliverStage("archive")))
	require.NoError(t, dataplane.ReplayDeadLetter(ctx, js, nil, nil, tenant, seq))
}
