package hotpath

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

func msg(id, body string, headers ...string) sdk.Message {
	m := sdk.Message{ID: id, Body: []byte(body), ContentType: "text/plain"}
	for i := 0; i+1 < len(headers); i += 2 {
		m.SetHeader(headers[i], headers[i+1])
	}
	return m
}

func TestMessagesFlowThroughConvertersFiltersAndProducers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("flow", []string{"upper", "header-router"}, "sink")

	var msgs []sdk.Message
	for i := range 200 {
		drop := "no"
		if i%10 == 0 {
			drop = "yes"
		}
		msgs = append(msgs, msg(fmt.Sprintf("m-%d", i), fmt.Sprintf("hello %d", i), "drop", drop))
	}
	h.send(p, msgs...)

	sink := h.producers["sink"]
	require.Eventually(t, func() bool { return sink.delivered() == 180 }, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, "HELLO 7", string(sink.body("m-7")))
	require.Nil(t, sink.body("m-10"), "filtered out")
	require.Eventually(t, func() bool { return h.streamMsgs(p) == 0 }, 5*time.Second, 20*time.Millisecond,
		"every hop acked: nothing left in the work queue")
	require.Empty(t, h.dlq(), "nothing healthy in the DLQ")
}

func TestSameIDTwiceIsOneMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("dedup", nil, "sink")
	h.send(p, msg("order-42", "a"))
	h.send(p, msg("order-42", "a"))
	sink := h.producers["sink"]
	require.Eventually(t, func() bool { return sink.delivered() == 1 }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Equal(t, 1, sink.count["order-42"])
}

// TestFailingProducerGetsFourAttemptsThenDLQ: 1 + 3 attempts with growing
// delays, then the DLQ with reason, stage and attempt count; the healthy
// message is delivered and never dead-lettered.
func TestFailingProducerGetsFourAttemptsThenDLQ(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	sink := h.producers["sink"]
	sink.setFail(failID("bad", errors.New("target said 500")))
	p := h.deploy("retries", nil, "sink")
	h.send(p, msg("bad", "x"), msg("good", "y"))

	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 20*time.Second, 50*time.Millisecond)
	times := sink.attemptTimes("bad")
	require.Len(t, times, MaxAttempts, "exactly 1 + 3 attempts")
	for i := 2; i < len(times); i++ {
		require.Greater(t, times[i].Sub(times[i-1]), times[i-1].Sub(times[i-2]), "delays grow")
	}
	dead := h.dlq()[0]
	require.Equal(t, "target said 500", dead.Header.Get(dataplane.HeaderDLQReason))
	require.Equal(t, dataplane.DeliverStage("sink"), dead.Header.Get(dataplane.HeaderDLQStage))
	require.Equal(t, "4", dead.Header.Get(dataplane.HeaderDLQAttempts))
	require.Equal(t, p.OutSubject("sink"), dead.Header.Get(dataplane.HeaderDLQSubject))
	require.Equal(t, "bad", dead.Header.Get(dataplane.HeaderMsgID))
	require.Equal(t, "x", string(dead.Data))
	require.Equal(t, []byte("y"), sink.body("good"))
	require.Len(t, sink.attemptTimes("good"), 1)
	// Every failed attempt is counted for the metrics history, none of the
	// good message's.
	require.Eventually(t, func() bool {
		n, err := dataplane.ReadFailures(context.Background(), h.state.Counts, p)
		return err == nil && n == MaxAttempts
	}, 10*time.Second, 50*time.Millisecond)
}

func TestPermanentErrorGoesToDLQAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("poison", []string{"upper"}, "sink")
	h.send(p, msg("p1", "poison"), msg("ok", "fine"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 10*time.Second, 20*time.Millisecond)
	dead := h.dlq()[0]
	require.Equal(t, "1", dead.Header.Get(dataplane.HeaderDLQAttempts))
	require.Equal(t, dataplane.StageProcess, dead.Header.Get(dataplane.HeaderDLQStage))
	require.Contains(t, dead.Header.Get(dataplane.HeaderDLQReason), "cannot convert poison")
	require.Equal(t, "poison", string(dead.Data), "the original body is kept")
	require.Eventually(t, func() bool { return h.producers["sink"].delivered() == 1 }, 5*time.Second, 20*time.Millisecond)
}

func TestRetryableConverterErrorIsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("flaky", []string{"upper"}, "sink")
	h.send(p, msg("f1", "flaky"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "4", h.dlq()[0].Header.Get(dataplane.HeaderDLQAttempts))
}

// TestOneProducerDownDoesNotHoldBackTheOther: each producer has its own
// subject and consumer, so one failing for longer than its retries leaves
// the other delivering everything.
func TestOneProducerDownDoesNotHoldBackTheOther(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "db", "slack")
	h.producers["slack"].setFail(func(sdk.Message) error { return errors.New("slack is down") })
	p := h.deploy("fanout", nil, "db", "slack")
	var msgs []sdk.Message
	for i := range 20 {
		msgs = append(msgs, msg("m"+strconv.Itoa(i), "x"))
	}
	h.send(p, msgs...)
	require.Eventually(t, func() bool { return h.producers["db"].delivered() == 20 }, 5*time.Second, 20*time.Millisecond,
		"the healthy producer delivers while the other is retrying")
	require.Eventually(t, func() bool { return len(h.dlq()) == 20 }, 20*time.Second, 50*time.Millisecond)
	for _, d := range h.dlq() {
		require.Equal(t, dataplane.DeliverStage("slack"), d.Header.Get(dataplane.HeaderDLQStage))
	}
}

func TestRouterSelectsProducersAndRejectsUnknownOnes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "db", "slack")
	p := h.deploy("routes", []string{"header-router"}, "db", "slack")
	h.send(p, msg("both", "1", "to", "db,slack"), msg("db-only", "2", "to", "db"), msg("nowhere", "3", "to", "mars"))
	require.Eventually(t, func() bool { return h.producers["db"].delivered() == 2 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return h.producers["slack"].delivered() == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 5*time.Second, 20*time.Millisecond)
	require.Contains(t, h.dlq()[0].Header.Get(dataplane.HeaderDLQReason), `unknown producer "mars"`)
}

// TestLargeBodyTravelsThroughTheBlobStore: a 5 MiB body is stored in S3,
// only a reference rides on NATS, and the producer gets it intact.
func TestLargeBodyTravelsThroughTheBlobStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("big", nil, "sink")
	body := make([]byte, 5<<20)
	_, _ = rand.Read(body)
	h.send(p, sdk.Message{ID: "big-1", Body: body})

	sink := h.producers["sink"]
	require.Eventually(t, func() bool { return sink.delivered() == 1 }, 20*time.Second, 50*time.Millisecond)
	require.True(t, bytes.Equal(body, sink.body("big-1")), "arrives intact")

	stream, err := h.js.Stream(context.Background(), p.Stream())
	require.NoError(t, err)
	info, err := stream.Info(context.Background())
	require.NoError(t, err)
	require.Less(t, info.State.Bytes, uint64(64<<10), "the body never went through NATS")
	// The body was the message's alone: delivered, it is released.
	// Its object key is unique to the publish: no object is left under
	// the integration's claims.
	prefix := dataplane.ClaimPrefix + p.Tenant + "/" + p.Integration + "/"
	require.Eventually(t, func() bool {
		left, err := h.store.Count(context.Background(), prefix)
		return err == nil && left == 0
	}, 5*time.Second, 20*time.Millisecond)
}

// TestLargeBodyIsStreamedToAProducerThatCanStream: a claim-checked body
// goes from the blob store to a streaming producer as a stream; small
// bodies around it are written in batches, in order.
func TestLargeBodyIsStreamedToAProducerThatCanStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "stream-sink")
	p := h.deploy("streamed", nil, "stream-sink")
	big := make([]byte, 1<<20)
	_, _ = rand.Read(big)
	h.send(p, msg("small-1", "a"), sdk.Message{ID: "big-1", Body: big}, msg("small-2", "b"))

	sink := h.producers["stream-sink"]
	require.Eventually(t, func() bool { return sink.delivered() == 3 }, 20*time.Second, 50*time.Millisecond)
	require.True(t, bytes.Equal(big, sink.body("big-1")), "arrives intact")
	require.Equal(t, "a", string(sink.body("small-1")))
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.Equal(t, []string{"big-1"}, sink.streamed, "only the claim-checked body is streamed")
}

// TestStreamedBodyThatFailsKeepsItsPayloadInTheDLQ: a streaming producer's
// permanent failure dead-letters the message with its claim-checked body.
func TestStreamedBodyThatFailsKeepsItsPayloadInTheDLQ(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "stream-sink")
	h.producers["stream-sink"].setFail(func(sdk.Message) error { return sdk.Permanentf("rejected") })
	p := h.deploy("streamdlq", nil, "stream-sink")
	body := bytes.Repeat([]byte("s"), 300<<10)
	h.send(p, sdk.Message{ID: "big-refused", Body: body})
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 10*time.Second, 20*time.Millisecond)
	_, got, err := dataplane.GetDeadLetter(context.Background(), h.js, &dataplane.ClaimCheck{Store: h.store}, h.tenant, h.dlq()[0].Sequence, 0)
	require.NoError(t, err)
	require.True(t, bytes.Equal(body, got))
}

func TestReadErrorsKeepsTheFirstFailure(t *testing.T) {
	boom := errors.New("blob store gone")
	r := &readErrors{r: io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom))}
	b, err := io.ReadAll(r)
	require.ErrorIs(t, err, boom)
	require.Equal(t, "abc", string(b))
	require.EqualValues(t, 3, r.n)
	require.ErrorIs(t, r.err, boom)
	clean := &readErrors{r: strings.NewReader("xyz")}
	_, err = io.ReadAll(clean)
	require.NoError(t, err)
	require.NoError(t, clean.err, "EOF is not a failure")
}

// TestDeletedIntegrationsConsumerIsRetired: deleting an integration lets
// its consumer release what it holds at its source, whether the integration
// was running or only stopped; stopping alone does not.
func TestDeletedIntegrationsConsumerIsRetired(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	ctx := context.Background()
	deploy := func(name string, status string) dataplane.Desired {
		d := dataplane.Desired{Tenant: h.tenant, Integration: name, Version: 1, Status: status, Spec: spec.Integration{Name: name,
			Consumer: spec.Step{Connector: "retiring-source"}, Producers: map[string]spec.Step{"sink": {Connector: "rec-sink"}}}}
		require.NoError(t, h.state.PutDesired(ctx, d))
		want := dataplane.StatusRunning
		if status != dataplane.DesiredRunning {
			want = dataplane.StatusStopped
		}
		h.waitStatus(d.Pipeline(), want)
		return d
	}
	running := deploy("source-a", dataplane.DesiredRunning)
	stopped := deploy("source-b", dataplane.DesiredRunning)
	stopped.Status = dataplane.DesiredStopped
	stopped.Version = 2
	require.NoError(t, h.state.PutDesired(ctx, stopped))
	h.waitStatus(stopped.Pipeline(), dataplane.StatusStopped)
	require.Zero(t, h.retired.Load(), "stopping retires nothing")

	require.NoError(t, h.state.DeleteDesired(ctx, running.Pipeline()))
	require.Eventually(t, func() bool { return h.retired.Load() == 1 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, h.state.DeleteDesired(ctx, stopped.Pipeline()))
	require.Eventually(t, func() bool { return h.retired.Load() == 2 }, 10*time.Second, 20*time.Millisecond,
		"an integration deleted while stopped is retired from its last desired state")

	// Retired, the keys are purged, so nothing is retired again.
	require.Eventually(t, func() bool {
		return lastDesired(ctx, h.state, stopped.Pipeline().Key()) == nil
	}, 5*time.Second, 20*time.Millisecond, "the key's history is purged")
	time.Sleep(300 * time.Millisecond)
	require.EqualValues(t, 2, h.retired.Load())
}

// TestDeadLetteredLargeBodyOutlivesTheClaimTTL: the DLQ keeps the payload
// in its own object; the message's claim-checked body, its alone, is
// released once the dead letter has the copy.
func TestDeadLetteredLargeBodyOutlivesTheClaimTTL(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	h.producers["sink"].setFail(func(sdk.Message) error { return sdk.Permanentf("rejected") })
	p := h.deploy("bigdlq", nil, "sink")
	body := bytes.Repeat([]byte("z"), 300<<10)
	h.send(p, sdk.Message{ID: "big-dead", Body: body})
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 10*time.Second, 20*time.Millisecond)
	dead := h.dlq()[0]
	ref := dead.Header.Get(dataplane.HeaderBodyRef)
	require.NotEmpty(t, ref)
	require.Empty(t, dead.Data)
	require.Eventually(t, func() bool {
		_, err := h.store.Stat(context.Background(), p.ClaimKey("big-dead"))
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "the ordinary claim is released")

	// A day later: the dead letter's body is not swept.
	_, err := dataplane.SweepExpired(context.Background(), h.store, time.Now().Add(24*time.Hour), 0, 0)
	require.NoError(t, err)
	_, got, err := dataplane.GetDeadLetter(context.Background(), h.js, &dataplane.ClaimCheck{Store: h.store}, h.tenant, dead.Sequence, 0)
	require.NoError(t, err)
	require.Equal(t, body, got, "the DLQ'd payload still resolves")

	// After the DLQ retention it goes too.
	_, err = dataplane.SweepExpired(context.Background(), h.store, time.Now().Add(8*24*time.Hour), 0, 0)
	require.NoError(t, err)
	_, err = h.store.Stat(context.Background(), ref)
	require.Error(t, err)
}

func TestStopStartUpdateAndDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "a", "b")
	p := h.deploy("life", nil, "a")
	ctx := context.Background()

	d, ok, err := h.state.GetDesired(ctx, p)
	require.NoError(t, err)
	require.True(t, ok)
	d.Status = dataplane.DesiredStopped
	require.NoError(t, h.state.PutDesired(ctx, d))
	h.waitStatus(p, dataplane.StatusStopped)

	// Messages sent while stopped wait in the stream and flow once started.
	h.send(p, msg("while-stopped", "x"))
	time.Sleep(200 * time.Millisecond)
	require.Zero(t, h.producers["a"].delivered())
	d.Status = dataplane.DesiredRunning
	d.Version = 2
	d.Spec.Producers = map[string]specStep{"b": {Connector: "rec-b"}}
	require.NoError(t, h.state.PutDesired(ctx, d))
	st := h.waitStatus(p, dataplane.StatusRunning)
	require.Equal(t, 2, st.Version)
	h.send(p, msg("after-update", "y"))
	require.Eventually(t, func() bool { return h.producers["b"].delivered() == 2 }, 5*time.Second, 20*time.Millisecond)
	counted := func() uint64 {
		n, _ := dataplane.ReadCount(ctx, h.state.Counts, p.CountKey(dataplane.DeliverStage("b")))
		return n
	}
	require.Eventually(t, func() bool { return counted() == 2 }, 5*time.Second, 20*time.Millisecond, "b's direct deliveries are counted")

	require.NoError(t, h.state.DeleteDesired(ctx, p))
	require.Eventually(t, func() bool {
		_, err := h.js.Stream(ctx, p.Stream())
		return err != nil
	}, 5*time.Second, 20*time.Millisecond, "deleting an integration deletes its stream")
	require.Eventually(t, func() bool {
		_, ok, err := h.state.GetStatus(ctx, p)
		return err == nil && !ok
	}, 5*time.Second, 20*time.Millisecond, "and its status")
	require.Zero(t, counted(), "and its counts, flushed while it stopped")
}

func TestBrokenSpecIsReportedDegraded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	ctx := context.Background()
	d := dataplane.Desired{Tenant: h.tenant, Integration: "broken", Version: 1, Status: dataplane.DesiredRunning}
	d.Spec.Name = "broken"
	d.Spec.Consumer.Connector = dataplane.WebhookConnector
	d.Spec.Steps = []specStep{{Connector: "no-such-converter"}}
	d.Spec.Producers = map[string]specStep{"sink": {Connector: "rec-sink"}}
	require.NoError(t, h.state.PutDesired(ctx, d))
	st := h.waitStatus(d.Pipeline(), dataplane.StatusDegraded)
	require.Contains(t, st.LastError, `unknown converter or filter "no-such-converter"`)
}

func TestUnreadableRecordGoesToDLQWithItsReason(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	p := h.deploy("records", []string{"upper"}, "sink")
	h.send(p, msg("r1", "{broken", sdk.HeaderRecordError, "line 3, column 2: invalid character"), msg("r2", "ok"))
	require.Eventually(t, func() bool { return len(h.dlq()) == 1 }, 10*time.Second, 20*time.Millisecond)
	dead := h.dlq()[0]
	require.Equal(t, "unreadable record: line 3, column 2: invalid character", dead.Header.Get(dataplane.HeaderDLQReason))
	require.Equal(t, "{broken", string(dead.Data))
	require.Eventually(t, func() bool { return h.producers["sink"].delivered() == 1 }, 5*time.Second, 20*time.Millisecond)
}

// TestClaimCheckedBatchesAreSplitByBytes: a burst of large bodies is
// delivered in writes that each hold at most maxBatchBytes, so a runner's
// memory stays bounded however many large messages are waiting.
func TestClaimCheckedBatchesAreSplitByBytes(t *testing.T) {
	old := maxBatchBytes
	maxBatchBytes = 700 << 10
	t.Cleanup(func() { maxBatchBytes = old })
	h := newHarness(t, "sink")
	sink := h.producers["sink"]
	sink.setFail(func(sdk.Message) error { return nil })
	h.deploy("bigburst", nil, "sink")
	d, _, err := h.state.GetDesired(context.Background(), dataplane.Pipeline{Tenant: h.tenant, Integration: "bigburst"})
	require.NoError(t, err)
	d.Status = dataplane.DesiredStopped
	require.NoError(t, h.state.PutDesired(context.Background(), d))
	h.waitStatus(d.Pipeline(), dataplane.StatusStopped)

	var msgs []sdk.Message
	for i := range 6 {
		msgs = append(msgs, sdk.Message{ID: fmt.Sprintf("b%d", i), Body: bytes.Repeat([]byte{'a' + byte(i)}, 300<<10)})
	}
	h.send(d.Pipeline(), msgs...)
	d.Status, d.Version = dataplane.DesiredRunning, 2
	require.NoError(t, h.state.PutDesired(context.Background(), d))
	require.Eventually(t, func() bool { return sink.delivered() == 6 }, 20*time.Second, 50*time.Millisecond)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, n := range sink.batchBytes {
		require.LessOrEqual(t, n, 700<<10, "each write holds at most maxBatchBytes")
	}
	require.Equal(t, bytes.Repeat([]byte{'c'}, 300<<10), sink.got["b2"])
}

func TestCountersShowEachStageAndTheDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "sink")
	h.producers["sink"].setFail(failID("bad", sdk.Permanentf("rejected")))
	p := h.deploy("counted", nil, "sink")
	ctx := context.Background()

	stages, dead, err := dataplane.Counters(ctx, h.js, h.state.Counts, dataplane.Pipeline{Tenant: h.tenant, Integration: "never-deployed"})
	require.NoError(t, err)
	require.Empty(t, stages)
	require.Zero(t, dead)

	h.send(p, msg("a", "1"), msg("b", "2"), msg("bad", "3"))
	require.Eventually(t, func() bool {
		stages, dead, err = dataplane.Counters(ctx, h.js, h.state.Counts, p)
		return err == nil && dead == 1 && len(stages) == 2 && stages[0].Acked == 3 && stages[1].Acked == 3
	}, 10*time.Second, 50*time.Millisecond, "stages %+v dead %d err %v", stages, dead, err)
	require.Equal(t, dataplane.DeliverStage("sink"), stages[0].Stage)
	require.Equal(t, dataplane.StageProcess, stages[1].Stage)
	require.Zero(t, stages[1].Pending)
}
