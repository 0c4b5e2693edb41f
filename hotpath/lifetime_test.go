package hotpath

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/spec"
)

// setStatus writes desired status for an integration deployed by
// h.deploy with one producer and waits until the runner reports it.
func (h *harness) setStatus(p dataplane.Pipeline, version int, status string, producers ...string) {
	h.t.Helper()
	in := spec.Integration{Name: p.Integration, Consumer: spec.Step{Connector: dataplane.WebhookConnector}, Producers: map[string]spec.Step{}}
	for _, name := range producers {
		in.Producers[name] = spec.Step{Connector: "rec-" + name}
	}
	d := dataplane.Desired{Tenant: h.tenant, Integration: p.Integration, Version: version, Status: status, Spec: in}
	require.NoError(h.t, h.state.PutDesired(context.Background(), d))
	require.Eventually(h.t, func() bool {
		st, ok, _ := h.state.GetStatus(context.Background(), p)
		return ok && st.Status == status && st.Version == version
	}, 15*time.Second, 20*time.Millisecond)
}

// deadLetterOfID returns the harness tenant's dead letter of message id.
func (h *harness) deadLetterOfID(id string) (dataplane.DeadLetter, bool) {
	for _, raw := range h.dlq() {
		d := dataplane.DeadLetterOf(h.tenant, &raw)
		if d.MessageID == id {
			return d, true
		}
	}
	return dataplane.DeadLetter{}, false
}

// bodyRefs returns the claim-check references of the messages waiting in
// p's stream, by message ID.
func (h *harness) bodyRefs(p dataplane.Pipeline) map[string]string {
	h.t.Helper()
	stream, err := h.js.Stream(context.Background(), p.Stream())
	require.NoError(h.t, err)
	info, err := stream.Info(context.Background())
	require.NoError(h.t, err)
	refs := map[string]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(context.Background(), seq)
		require.NoError(h.t, err)
		refs[m.Header.Get(jetstream.MsgIDHeader)] = m.Header.Get(dataplane.HeaderBodyRef)
	}
	return refs
}

// TestClaimCheckedBodyLivesAsLongAsItsMessage: a large message waiting on
// a stopped integration far longer than the old 15-minute claim TTL still
// has its body when the integration runs again, and is delivered whole;
// once delivered, its body is removed. A body deleted on purpose makes its
// message a permanent failure: dead-lettered once, with the reason, not
// given back every second for ever.
func TestClaimCheckedBodyLivesAsLongAsItsMessage(t *testing.T) {
	h := newHarness(t, "sink")
	ctx := context.Background()
	p := h.deploy("backlog", nil, "sink")
	h.setStatus(p, 2, dataplane.DesiredStopped, "sink")

	big := bytes.Repeat([]byte("w"), 100<<10)
	h.send(p, sdk.Message{ID: "waits", Body: big}, sdk.Message{ID: "gone", Body: big})
	refs := h.bodyRefs(p)
	_, err := h.store.Stat(ctx, refs["waits"])
	require.NoError(t, err, "claim-checked")

	// The janitor runs 20 minutes later, then a day later.
	for _, later := range []time.Duration{20 * time.Minute, 24 * time.Hour} {
		_, err = dataplane.SweepExpired(ctx, h.store, time.Now().Add(later), 0, 0)
		require.NoError(t, err)
		_, err = h.store.Stat(ctx, refs["waits"])
		require.NoError(t, err, "the body of a waiting message is kept %s later", later)
	}
	require.NoError(t, h.store.Delete(ctx, refs["gone"]))

	h.setStatus(p, 3, dataplane.DesiredRunning, "sink")
	sink := h.producers["sink"]
	require.Eventually(t, func() bool { return sink.delivered() == 1 }, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, big, sink.body("waits"))
	var d dataplane.DeadLetter
	require.Eventually(t, func() bool {
		var ok bool
		d, ok = h.deadLetterOfID("gone")
		return ok
	}, 15*time.Second, 20*time.Millisecond, "the message whose body is gone reaches the DLQ")
	require.Contains(t, d.Reason, "claim-checked body")
	require.Contains(t, d.Reason, "is gone")
	require.Equal(t, dataplane.DeliverStage("sink"), d.Stage)
	require.Empty(t, d.BodyRef, "no body to keep")
	require.Empty(t, sink.attemptTimes("gone"), "never handed to the producer")
	require.Eventually(t, func() bool { return h.streamMsgs(p) == 0 }, 10*time.Second, 20*time.Millisecond, "nothing left in the stream")
	require.Eventually(t, func() bool {
		_, err := h.store.Stat(ctx, refs["waits"])
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "a delivered message's body is released")
	require.Len(t, h.dlq(), 1)
}

// TestForeignBodyReferenceIsAPermanentFailure: a message whose body
// reference points outside its tenant's claim-check prefix is never
// fetched: it goes to the DLQ with the reason, and the other tenant's
// object is not copied.
func TestForeignBodyReferenceIsAPermanentFailure(t *testing.T) {
	h := newHarness(t, "sink")
	ctx := context.Background()
	p := h.deploy("refs", nil, "sink")
	secret := "claims/victim/orders/0123456789abcdef0123456789abcdef"
	require.NoError(t, h.store.Put(ctx, secret, bytes.NewReader([]byte("secret")), 6, ""))
	for _, ref := range []string{secret, "dlq/" + h.tenant + "/refs/x", "claims/" + h.tenant + "/../victim/x"} {
		nm := dataplane.Encode(p.InSubject(), "forged-"+ref, dataplane.Envelope{Msg: sdk.Message{ID: "forged-" + ref}, BodyRef: ref, Size: 6})
		_, err := h.js.PublishMsg(ctx, nm)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return len(h.dlq()) == 3 }, 15*time.Second, 20*time.Millisecond)
	for _, raw := range h.dlq() {
		d := dataplane.DeadLetterOf(h.tenant, &raw)
		require.Contains(t, d.Reason, "body reference outside the message's tenant")
		require.Empty(t, d.BodyRef)
	}
	require.Zero(t, h.producers["sink"].delivered())
	require.Eventually(t, func() bool { return h.streamMsgs(p) == 0 }, 5*time.Second, 20*time.Millisecond)
}

// switchableProxy forwards TCP connections to a backend until it is
// switched off; then it refuses new connections and cuts the open ones, as
// an S3 endpoint that went away would.
type switchableProxy struct {
	ln      net.Listener
	backend string
	down    atomic.Bool
	mu      sync.Mutex
	open    map[net.Conn]bool
}

func newSwitchableProxy(t *testing.T, backend string) *switchableProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	px := &switchableProxy{ln: ln, backend: backend, open: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close(); px.cut() })
	go px.serve()
	return px
}

func (px *switchableProxy) addr() string { return px.ln.Addr().String() }

func (px *switchableProxy) serve() {
	for {
		c, err := px.ln.Accept()
		if err != nil {
			return
		}
		if px.down.Load() {
			_ = c.Close()
			continue
		}
		b, err := net.Dial("tcp", px.backend)
		if err != nil {
			_ = c.Close()
			continue
		}
		px.mu.Lock()
		px.open[c], px.open[b] = true, true
		px.mu.Unlock()
		go func() { _, _ = io.Copy(b, c); _ = b.Close() }()
		go func() { _, _ = io.Copy(c, b); _ = c.Close() }()
	}
}

func (px *switchableProxy) cut() {
	px.mu.Lock()
	defer px.mu.Unlock()
	for c := range px.open {
		_ = c.Close()
	}
	clear(px.open)
}

func (px *switchableProxy) setDown(down bool) {
	px.down.Store(down)
	if down {
		px.cut()
	}
}

// TestS3OutageStrandsNoMessage: claim-checked messages flow while the
// runner's blob store goes away. A short outage: the messages come back
// with a growing delay, uncounted, and are all delivered once it ends. An
// outage longer than the deliveries JetStream allows: each message is
// dead-lettered with the reason at its last delivery. Either way every
// accepted message is delivered or dead-lettered and the stream ends empty.
// (Backoffs are shortened: the real ones span about an hour.)
func TestS3OutageStrandsNoMessage(t *testing.T) {
	var px *switchableProxy
	h := newHarnessWith(t, harnessOptions{
		infraBackoff: func(n int) time.Duration { return min(20*time.Millisecond<<(n-1), 300*time.Millisecond) },
		store: func(direct blobstore.Config) *blobstore.Store {
			px = newSwitchableProxy(t, direct.Endpoint)
			cfg := direct
			cfg.Endpoint, cfg.MaxRetries = px.addr(), 1
			s, err := blobstore.New(cfg)
			require.NoError(t, err)
			return s
		},
	}, "direct", "a", "b")
	direct := h.deploy("direct", nil, "direct")
	steps := h.deploy("steps", []string{"exclaim"}, "a", "b")
	big := bytes.Repeat([]byte("s"), 80<<10)
	send := func(prefix string, n int) {
		for i := range n {
			h.send(direct, sdk.Message{ID: fmt.Sprintf("%s-d-%d", prefix, i), Body: big})
			h.send(steps, sdk.Message{ID: fmt.Sprintf("%s-s-%d", prefix, i), Body: big})
		}
	}
	settled := func(prefix string, n int) (delivered, dead int) {
		for i := range n {
			for _, id := range []string{fmt.Sprintf("%s-d-%d", prefix, i), fmt.Sprintf("%s-s-%d", prefix, i)} {
				if h.producers["direct"].body(id) != nil || h.producers["a"].body(id) != nil && h.producers["b"].body(id) != nil {
					delivered++
				}
				if _, ok := h.deadLetterOfID(id); ok {
					dead++
				}
			}
		}
		return delivered, dead
	}

	// A short outage (shorter than the deliveries allow): all delivered.
	px.setDown(true)
	send("short", 5)
	time.Sleep(2 * time.Second)
	px.setDown(false)
	require.Eventually(t, func() bool { d, _ := settled("short", 5); return d == 10 }, 30*time.Second, 50*time.Millisecond)
	_, dead := settled("short", 5)
	require.Zero(t, dead)
	require.Equal(t, big, h.producers["direct"].body("short-d-0"))

	// An outage outlasting every delivery: dead-lettered with the reason.
	px.setDown(true)
	send("long", 3)
	require.Eventually(t, func() bool { _, d := settled("long", 3); return d == 6 }, 60*time.Second, 100*time.Millisecond,
		"every message reaches the DLQ at its last delivery")
	px.setDown(false)
	d, _ := h.deadLetterOfID("long-d-0")
	require.Contains(t, d.Reason, fmt.Sprintf("infrastructure failed on all %d deliveries", maxDeliverBackstop))
	delivered, dead := settled("long", 3)
	require.Equal(t, 6, delivered+dead, "delivered or dead-lettered, nothing else")
	require.Eventually(t, func() bool { return h.streamMsgs(direct) == 0 && h.streamMsgs(steps) == 0 }, 10*time.Second, 50*time.Millisecond, "0 stranded")
	// The dead letter's body survives: it is fetched once S3 is back.
	_, body, err := dataplane.GetDeadLetter(context.Background(), h.js, &dataplane.ClaimCheck{Store: h.store}, h.tenant, d.Seq, 0)
	require.NoError(t, err)
	require.Equal(t, big, body)
}

// TestMaxDeliveriesAdvisoryDeadLettersTheMessage: a message JetStream stops
// delivering (its consumer's MaxDeliver reached without a settlement, as
// after repeated runner crashes) is not left in the work queue: the
// runner dead-letters it with the reason and removes it.
func TestMaxDeliveriesAdvisoryDeadLettersTheMessage(t *testing.T) {
	h := newHarness(t, "sink")
	ctx := context.Background()
	p := h.deploy("crashy", nil, "sink")
	stream, err := h.js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	// A stage whose deliveries are never settled, with a tiny MaxDeliver.
	c, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: dataplane.DeliverStage("crashes"), FilterSubject: p.OutSubject("crashes"),
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: 200 * time.Millisecond, MaxDeliver: 2,
	})
	require.NoError(t, err)
	_, err = h.js.PublishMsg(ctx, dataplane.Encode(p.OutSubject("crashes"), "lost-1", dataplane.Envelope{Msg: sdk.Message{ID: "lost-1", Body: []byte("x")}}))
	require.NoError(t, err)
	for range 3 { // taken and never acked, as by a runner dying each time
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second))
		require.NoError(t, err)
		for range batch.Messages() {
		}
	}
	var d dataplane.DeadLetter
	require.Eventually(t, func() bool {
		var ok bool
		d, ok = h.deadLetterOfID("lost-1")
		return ok
	}, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, d.Reason, "JetStream stopped delivering the message after 2 deliveries")
	require.Equal(t, dataplane.DeliverStage("crashes"), d.Stage)
	require.Equal(t, p.OutSubject("crashes"), d.Subject)
	require.Eventually(t, func() bool { return h.streamMsgs(p) == 0 }, 5*time.Second, 20*time.Millisecond, "removed from the work queue")
}

// TestIntegrationNamedDLQIsRefused: an integration named like the DLQ's
// subject token would have its stream overlap the tenant's dead letters.
func TestIntegrationNamedDLQIsRefused(t *testing.T) {
	p := dataplane.Pipeline{Tenant: "acme", Integration: "dlq"}
	require.ErrorContains(t, p.Validate(), "reserved")
	ok := dataplane.Pipeline{Tenant: "acme", Integration: "dlq-reader"}
	require.NoError(t, ok.Validate())
	require.NotEqual(t, ok.AllSubjects(), dataplane.DLQSubjects("acme"))
	d := dataplane.Desired{Tenant: "acme", Integration: "dlq", Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: "dlq", Consumer: spec.Step{Connector: dataplane.WebhookConnector}}}
	h := newHarness(t)
	d.Tenant = h.tenant
	require.ErrorContains(t, h.state.PutDesired(context.Background(), d), "reserved")
}

// countingFilter passes every message and counts them.
type countingFilter struct{ n *atomic.Int64 }

func (f countingFilter) Filter(context.Context, sdk.Message) (sdk.Decision, error) {
	f.n.Add(1)
	return sdk.Decision{}, nil
}

// heldProducer records, at each write, how many messages the steps had
// passed that were not yet written: the bodies the pipeline held at once.
type heldProducer struct {
	passed  *atomic.Int64
	mu      sync.Mutex
	written int64
	maxHeld int64
}

func (p *heldProducer) Write(_ context.Context, batch []sdk.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.maxHeld = max(p.maxHeld, p.passed.Load()-p.written)
	p.written += int64(len(batch))
	return nil
}

func (p *heldProducer) Close(context.Context) error { return nil }

// TestDirectDeliveryHoldsABoundedBatchOfBodies: a batch of claim-checked
// messages whose bodies the steps read and pass on unchanged is delivered
// in parts of at most maxBatchBytes of bodies, so the process stage never
// holds every resolved body of a large batch at once.
func TestDirectDeliveryHoldsABoundedBatchOfBodies(t *testing.T) {
	defer func(old int64) { maxBatchBytes = old }(maxBatchBytes)
	maxBatchBytes = 200 << 10
	var passed atomic.Int64
	prod := &heldProducer{passed: &passed}
	h := newHarnessWith(t, harnessOptions{connectors: []sdk.Connector{
		{Name: "counting", Kind: sdk.KindFilter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return countingFilter{&passed}, nil }},
		{Name: "rec-held", Kind: sdk.KindProducer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return prod, nil }},
	}})
	p := h.deploy("bounded", []string{"counting"}, "held")
	in := spec.Integration{Name: p.Integration, Consumer: spec.Step{Connector: dataplane.WebhookConnector},
		Steps: []spec.Step{{Connector: "counting"}}, Producers: map[string]spec.Step{"held": {Connector: "rec-held"}}}
	put := func(version int, status string) {
		require.NoError(t, h.state.PutDesired(context.Background(), dataplane.Desired{Tenant: h.tenant, Integration: p.Integration, Version: version, Status: status, Spec: in}))
		require.Eventually(t, func() bool {
			st, ok, _ := h.state.GetStatus(context.Background(), p)
			return ok && st.Status == status && st.Version == version
		}, 15*time.Second, 20*time.Millisecond)
	}
	put(2, dataplane.DesiredStopped) // the messages wait, to be taken as one batch
	big := bytes.Repeat([]byte("m"), 80<<10)
	for i := range 12 {
		h.send(p, sdk.Message{ID: fmt.Sprintf("b-%d", i), Body: big})
	}
	put(3, dataplane.DesiredRunning)
	require.Eventually(t, func() bool {
		prod.mu.Lock()
		defer prod.mu.Unlock()
		return prod.written == 12
	}, 15*time.Second, 20*time.Millisecond)
	prod.mu.Lock()
	defer prod.mu.Unlock()
	require.LessOrEqual(t, prod.maxHeld, int64(3), "bodies held at once: at most what fits in maxBatchBytes, plus one")
}

// TestInfraBackoffGrowsWithJitterUpToItsCap: the delay after an
// infrastructure failure doubles per delivery, is at least half of that and
// at most all of it, never exceeds maxInfraBackoff, and the deliveries
// JetStream allows span at least half an hour.
func TestInfraBackoffGrowsWithJitterUpToItsCap(t *testing.T) {
	var total time.Duration
	for n := 1; n < maxDeliverBackstop; n++ {
		full := min(time.Second<<(n-1), maxInfraBackoff)
		d := InfraBackoff(n)
		require.GreaterOrEqual(t, d, full/2, "delivery %d", n)
		require.LessOrEqual(t, d, full, "delivery %d", n)
		total += d
	}
	require.Greater(t, total, 29*time.Minute)
	require.LessOrEqual(t, InfraBackoff(1000), maxInfraBackoff)
	require.GreaterOrEqual(t, InfraBackoff(0), 500*time.Millisecond)
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[InfraBackoff(10)] = true
	}
	require.Greater(t, len(seen), 1, "jittered")
}
