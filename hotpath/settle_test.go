package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// settleFailed settles m (decoded as env) at stage as failed with cause,
// with the failure policy f: what a stage does with a message it could not
// handle.
func settleFailed(ctx context.Context, f *failures, p dataplane.Pipeline, stage string, m jetstream.Msg, env dataplane.Envelope, cause error) bool {
	s := &settler{p: p, stage: stage, failures: f, claims: f.claims, metrics: f.metrics, log: f.log}
	return finish(ctx, &delivery{msg: m, env: env, settler: s}, failed(cause))
}

// settleFixture is a pipeline's stream on a private JetStream, its process
// stage's consumer and a settler for it.
type settleFixture struct {
	t       *testing.T
	nc      *nats.Conn
	js      jetstream.JetStream
	state   *dataplane.State
	p       dataplane.Pipeline
	stream  jetstream.Stream
	cons    jetstream.Consumer
	metrics *Metrics
	s       *settler
}

// retryDelay is the fixture's backoff after any failure.
const retryDelay = 300 * time.Millisecond

func newSettleFixture(t *testing.T) *settleFixture {
	t.Helper()
	ctx := context.Background()
	nc, js := testenv.JetStream(t)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)
	p := dataplane.Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "settle"}
	stream, err := dataplane.EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	cons, err := ensureConsumer(ctx, stream, dataplane.StageProcess, p.InSubject())
	require.NoError(t, err)
	metrics := NewMetrics(nil)
	m := metrics.forStage(p, dataplane.StageProcess)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	f := &failures{js: js, state: state, metrics: m, log: log,
		backoff:      func(int) time.Duration { return retryDelay },
		infraBackoff: func(int) time.Duration { return retryDelay }}
	return &settleFixture{t: t, nc: nc, js: js, state: state, p: p, stream: stream, cons: cons, metrics: metrics,
		s: &settler{p: p, stage: dataplane.StageProcess, failures: f, metrics: m, log: log}}
}

// publish stores a message with id in the stage's subject.
func (f *settleFixture) publish(id string) {
	f.t.Helper()
	_, err := f.js.PublishMsg(context.Background(), dataplane.Encode(f.p.InSubject(), id, dataplane.Envelope{Msg: sdk.Message{ID: id, Body: []byte("body of " + id)}}))
	require.NoError(f.t, err)
}

// next fetches the next delivery of the stage, waiting up to wait; nil
// when none came.
func (f *settleFixture) next(wait time.Duration) *delivery {
	f.t.Helper()
	batch, err := f.cons.Fetch(1, jetstream.FetchMaxWait(wait))
	require.NoError(f.t, err)
	for m := range batch.Messages() {
		env, err := dataplane.DecodeEnvelope(f.p, m.Headers(), m.Data())
		require.NoError(f.t, err)
		return &delivery{msg: m, env: env, settler: f.s}
	}
	return nil
}

func (f *settleFixture) deliveries(d *delivery) uint64 {
	md, err := d.msg.Metadata()
	require.NoError(f.t, err)
	return md.NumDelivered
}

// streamEmpty waits until the work-queue stream holds nothing: every
// message was acked or terminated.
func (f *settleFixture) streamEmpty() {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		info, err := f.stream.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	}, 5*time.Second, 10*time.Millisecond, "the message left the stream")
}

// terminated subscribes to JetStream's advisories of terms on the stage's
// consumer.
func (f *settleFixture) terminated() chan *nats.Msg {
	f.t.Helper()
	ch := make(chan *nats.Msg, 4)
	sub, err := f.nc.ChanSubscribe("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."+f.p.Stream()+"."+dataplane.StageProcess, ch)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(f.t, f.nc.Flush())
	return ch
}

func (f *settleFixture) attempts(id string) (int, bool) {
	e, err := f.state.Attempts.Get(context.Background(), f.p.AttemptKey(dataplane.StageProcess, id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false
	}
	require.NoError(f.t, err)
	var n int
	require.NoError(f.t, json.Unmarshal(e.Value(), &n))
	return n, true
}

// TestEachOutcomeBecomesItsJetStreamCall settles one message per outcome
// on a real JetStream and watches what JetStream does with it.
func TestEachOutcomeBecomesItsJetStreamCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("done acks", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		f.publish("m1")
		d := f.next(5 * time.Second)
		require.True(t, finish(ctx, d, done()), "a done message is finished")
		f.streamEmpty()
		require.Nil(t, f.next(retryDelay*3), "an acked message is not delivered again")
	})

	t.Run("retry naks with the delay and counts no attempt", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		f.publish("m1")
		d := f.next(5 * time.Second)
		settled := time.Now()
		require.False(t, finish(ctx, d, retryAfter(retryDelay)))
		again := f.next(5 * time.Second)
		require.NotNil(t, again, "redelivered")
		require.GreaterOrEqual(t, time.Since(settled), retryDelay-50*time.Millisecond, "not before its delay")
		require.EqualValues(t, 2, f.deliveries(again))
		_, counted := f.attempts("m1")
		require.False(t, counted)
		require.True(t, finish(ctx, again, done()))
		f.streamEmpty()
	})

	t.Run("a failure counts an attempt and comes back after the backoff", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		f.publish("m1")
		d := f.next(5 * time.Second)
		settled := time.Now()
		require.False(t, finish(ctx, d, failed(errors.New("sink hiccup"))))
		again := f.next(5 * time.Second)
		require.NotNil(t, again)
		require.GreaterOrEqual(t, time.Since(settled), retryDelay-50*time.Millisecond)
		n, counted := f.attempts("m1")
		require.True(t, counted)
		require.Equal(t, 1, n)
		require.Equal(t, 1.0, testutil.ToFloat64(f.s.metrics.retries.counter()))
		require.True(t, finish(ctx, again, done()))
		_, counted = f.attempts("m1")
		require.False(t, counted, "a redelivered message that got through forgets its attempts")
	})

	t.Run("an infrastructure failure comes back without counting an attempt", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		f.publish("m1")
		d := f.next(5 * time.Second)
		require.False(t, finish(ctx, d, failed(infraFailure(errors.New("blob store down")))))
		again := f.next(5 * time.Second)
		require.NotNil(t, again)
		_, counted := f.attempts("m1")
		require.False(t, counted)
		require.Zero(t, testutil.ToFloat64(f.s.metrics.retries.counter()))
	})

	t.Run("a permanent failure is dead-lettered and terminated with the reason", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		advisories := f.terminated()
		f.publish("m1")
		d := f.next(5 * time.Second)
		require.True(t, finish(ctx, d, failed(sdk.Permanentf("no such customer %q", "c-42"))))
		f.streamEmpty()

		select {
		case m := <-advisories:
			var adv struct {
				Reason    string `json:"reason"`
				StreamSeq uint64 `json:"stream_seq"`
			}
			require.NoError(t, json.Unmarshal(m.Data, &adv))
			require.Equal(t, `no such customer "c-42"`, adv.Reason, "the term carries the reason")
			require.EqualValues(t, 1, adv.StreamSeq)
		case <-time.After(5 * time.Second):
			t.Fatal("no terminated advisory")
		}
		letters, _, err := dataplane.ListDLQ(ctx, f.js, f.p.Tenant, dataplane.DLQFilter{}, 0, 10)
		require.NoError(t, err)
		require.Len(t, letters, 1)
		require.Equal(t, "m1", letters[0].MessageID)
		require.Equal(t, dataplane.StageProcess, letters[0].Stage)
		require.Equal(t, `no such customer "c-42"`, letters[0].Reason)
		require.Equal(t, 1, letters[0].Attempts)
		require.Equal(t, 1.0, testutil.ToFloat64(f.s.metrics.dlq.counter()))
	})

	t.Run("the last attempt is dead-lettered", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		f.s.failures.backoff = func(int) time.Duration { return 10 * time.Millisecond }
		f.publish("m1")
		for attempt := 1; attempt < MaxAttempts; attempt++ {
			d := f.next(5 * time.Second)
			require.NotNil(t, d, "attempt %d", attempt)
			require.False(t, finish(ctx, d, failed(errors.New("still failing"))), "attempt %d", attempt)
		}
		d := f.next(5 * time.Second)
		require.True(t, finish(ctx, d, failed(errors.New("still failing"))))
		f.streamEmpty()
		letters, _, err := dataplane.ListDLQ(ctx, f.js, f.p.Tenant, dataplane.DLQFilter{}, 0, 10)
		require.NoError(t, err)
		require.Len(t, letters, 1)
		require.Equal(t, MaxAttempts, letters[0].Attempts)
		_, counted := f.attempts("m1")
		require.False(t, counted, "a dead letter's attempts are forgotten")
	})

	t.Run("a message without an outcome comes back at once", func(t *testing.T) {
		t.Parallel()
		f := newSettleFixture(t)
		f.publish("m1")
		d := f.next(5 * time.Second)
		require.False(t, finish(ctx, d, outcome{}))
		require.NotNil(t, f.next(5*time.Second), "redelivered, not left to its ack timer")
	})
}

// TestFailedAckCallsAreCounted: an ack call JetStream does not take shows
// in vrsky_ack_errors_total under the stage kind and the call.
func TestFailedAckCallsAreCounted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newSettleFixture(t)
	f.publish("m1")
	d := f.next(5 * time.Second)
	require.True(t, finish(ctx, d, done()))
	require.Zero(t, testutil.ToFloat64(f.metrics.ackErrors.WithLabelValues(dataplane.StageProcess, "ack")))

	// Settled twice: the client refuses the second ack.
	require.True(t, finish(ctx, d, done()))
	require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.ackErrors.WithLabelValues(dataplane.StageProcess, "ack")))

	// A nak over a closed connection fails too.
	f.publish("m2")
	d = f.next(5 * time.Second)
	f.nc.Close()
	require.False(t, finish(ctx, d, retryAfter(time.Second)))
	require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.ackErrors.WithLabelValues(dataplane.StageProcess, "nak")))
	require.Zero(t, testutil.ToFloat64(f.metrics.ackErrors.WithLabelValues(stageKind(dataplane.DeliverStage("x")), "nak")), "by stage kind")

	// Every series exists from the start: 2 stage kinds × 4 calls.
	require.Equal(t, 8, testutil.CollectAndCount(NewMetrics(nil).ackErrors))
}

// TestPanicBecomesAFailedOutcome: a part that panics fails its message with
// the panic in the reason; the stage goes on.
func TestPanicBecomesAFailedOutcome(t *testing.T) {
	t.Parallel()
	p := recovering(func(_ context.Context, d *delivery) outcome {
		if d.env.Msg.ID == "boom" {
			var m map[string]int
			m["x"]++ // a nil map
		}
		return outcome{}
	})
	o := p(context.Background(), &delivery{env: dataplane.Envelope{Msg: sdk.Message{ID: "boom"}}})
	require.Equal(t, outcomeFailed, o.kind)
	require.ErrorContains(t, o.err, "panic: assignment to entry in nil map")
	require.Contains(t, o.err.Error(), "TestPanicBecomesAFailedOutcome", "the stack from the panic is in the reason")
	require.NotContains(t, o.err.Error(), "runtime/debug.Stack", "not the recovery's own frames")
	require.False(t, sdk.IsPermanent(o.err), "it counts as an attempt")
	require.False(t, p(context.Background(), &delivery{env: dataplane.Envelope{Msg: sdk.Message{ID: "fine"}}}).decided())

	err := recovered(func() error { panic(errors.New("producer exploded")) })
	require.ErrorContains(t, err, "panic: producer exploded")
	require.True(t, isPanic(err))
	require.False(t, isInfra(err), "a panic is not the infrastructure's trouble: it counts as an attempt")
	require.NoError(t, recovered(func() error { return nil }))
}

// panicky is a converter that panics on the body "panic".
type panicky struct{}

func (panicky) Convert(_ context.Context, m sdk.Message) (sdk.Message, error) {
	if string(m.Body) == "panic" {
		panic("converter lost its mind")
	}
	return m, nil
}

// TestPanickingStepIsDeadLetteredWithThePanic: a converter that panics on
// one message sends that message, after its retries, to the DLQ with the
// panic as the reason; the runner stays up and the other messages go
// through. A producer that panics does the same in the deliver stage.
func TestPanickingStepIsDeadLetteredWithThePanic(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, harnessOptions{connectors: []sdk.Connector{{Name: "panicky", Kind: sdk.KindConverter,
		Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return panicky{}, nil }}}}, "sink")
	sink := h.producers["sink"]
	p := h.deploy("panics", []string{"panicky"}, "sink")
	h.send(p, msg("bad", "panic"), msg("good", "fine"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 && sink.body("good") != nil }, 20*time.Second, 20*time.Millisecond)
	letters, _, err := dataplane.ListDLQ(context.Background(), h.js, h.tenant, dataplane.DLQFilter{}, 0, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, "bad", letters[0].MessageID)
	require.Equal(t, dataplane.StageProcess, letters[0].Stage)
	require.Equal(t, MaxAttempts, letters[0].Attempts, "a panic counts as an attempt")
	require.True(t, strings.HasPrefix(letters[0].Reason, "panic: converter lost its mind"), letters[0].Reason)
	require.Contains(t, letters[0].Reason, "panicky.Convert", "the reason shows where it panicked")
	require.Nil(t, sink.body("bad"))

	sink.setFail(func(m sdk.Message) error {
		if m.ID == "explodes" {
			panic("producer exploded")
		}
		return nil
	})
	h.send(p, msg("explodes", "x"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 2 }, 20*time.Second, 20*time.Millisecond)
	letters, _, err = dataplane.ListDLQ(context.Background(), h.js, h.tenant, dataplane.DLQFilter{ErrorContains: "producer exploded"}, 0, 10)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, dataplane.DeliverStage("sink"), letters[0].Stage)
	h.send(p, msg("after", "y"))
	require.Eventually(t, func() bool { return sink.body("after") != nil }, 10*time.Second, 20*time.Millisecond, "the runner is still up")
}

// TestOnlyTheSettlerAcks: the runtime's ack calls are all in settle.go
// (ADR 0018); a stage returns outcomes.
func TestOnlyTheSettlerAcks(t *testing.T) {
	ackCall := regexp.MustCompile(`\.(Ack|DoubleAck|Nak|NakWithDelay|Term|TermWithReason|InProgress)\(`)
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "settle.go" {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		for i, line := range strings.Split(string(src), "\n") {
			require.False(t, ackCall.MatchString(line), "%s:%d acks outside settle.go: %s", name, i+1, strings.TrimSpace(line))
		}
	}
}

// TestTermReasonIsBounded: the reason sent with a Term is cut to
// maxTermReason bytes, never inside a character; the dead letter keeps the
// whole reason.
func TestTermReasonIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
	}{
		{"short", "rejected"},
		{"long", strings.Repeat("x", 10*maxTermReason)},
		{"multibyte at the cut", strings.Repeat("é", maxTermReason)},
		{"control characters", "line one\r\nline two\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := termReason(errors.New(tc.reason))
			require.LessOrEqual(t, len(got), maxTermReason)
			require.True(t, utf8.ValidString(got))
			require.True(t, strings.HasPrefix(tc.reason, got))
			if len(tc.reason) <= maxTermReason {
				require.Equal(t, tc.reason, got)
			} else {
				require.Greater(t, len(got), maxTermReason-utf8.UTFMax)
			}
		})
	}
}

// TestReceivedCountsBeforeAnythingFails: the process stage's intake is
// counted by the middleware around its parts, also for a message whose
// part panics.
func TestReceivedCountsBeforeAnythingFails(t *testing.T) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "intake"}
	m := NewMetrics(nil).forStage(p, dataplane.StageProcess)
	h := received(m, recovering(func(context.Context, *delivery) outcome { panic("no") }))
	nm := benchInputs(p, 1)[0]
	o := h(context.Background(), &delivery{msg: &benchMsg{m: nm}})
	require.Equal(t, outcomeFailed, o.kind)
	require.Equal(t, 1.0, testutil.ToFloat64(m.in.counter()))
	require.Equal(t, float64(len(nm.Data)), testutil.ToFloat64(m.bytes.counter()))
}
