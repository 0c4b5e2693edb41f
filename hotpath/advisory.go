package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
)

// maxDeliveriesAdvisory is the part of JetStream's max-deliveries advisory
// the runner reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// advisoryTimeout bounds the handling of one advisory.
const advisoryTimeout = 30 * time.Second

// watchMaxDeliveries dead-letters the messages of p's stream that JetStream
// stops delivering because they reached a consumer's MaxDeliver without
// being settled: redelivered after runner crashes, or given back because
// VRSky's infrastructure kept failing and their last delivery could not
// reach the DLQ either. A work-queue stream would otherwise keep them for
// ever, delivered to no one. Every runner running p handles the advisory;
// the DLQ's duplicate window keeps one dead letter. The advisories come
// through the runner's one subscription on p's tenant connection
// (advisoryWatch). It returns a function that stops watching.
func watchMaxDeliveries(d deps, p dataplane.Pipeline, stream jetstream.Stream, log *slog.Logger) (stop func(), err error) {
	stop, err = d.shared.advisories.watch(d.js.Conn(), p.Stream(), func(adv maxDeliveriesAdvisory) {
		ctx, cancel := context.WithTimeout(context.Background(), advisoryTimeout)
		defer cancel()
		if err := deadLetterUndelivered(ctx, d, p, stream, adv, log); err != nil {
			log.Error("a message JetStream stopped delivering could not be dead-lettered", "stage", adv.Consumer, "stream_seq", adv.StreamSeq, "error", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watch max-deliveries advisories of %s: %w", p.Stream(), err)
	}
	return stop, nil
}

// advisoryWatch shares one subscription to the max-deliveries advisories
// among a runner's pipelines on one connection (a tenant's account at one
// location: during a move a tenant is consumed at two), and hands each
// advisory to the pipeline of its stream. The subscription is made when the
// connection's first pipeline starts watching and ended when its last one
// stops.
type advisoryWatch struct {
	mu   sync.Mutex
	subs map[*nats.Conn]*advisorySub
}

// advisorySub is one connection's subscription and the handlers of its
// pipelines, by stream name.
type advisorySub struct {
	sub *nats.Subscription
	// handlers are the handlers of each stream, the newest last. A stream
	// has one, except for a moment when a late build of its pipeline,
	// abandoned by the runner, still runs alongside the new one: the
	// newest handles its advisories.
	handlers map[string][]*advisoryHandler
	// watched counts the handlers.
	watched int
}

type advisoryHandler struct{ handle func(maxDeliveriesAdvisory) }

func newAdvisoryWatch() *advisoryWatch {
	return &advisoryWatch{subs: make(map[*nats.Conn]*advisorySub)}
}

// watch hands the max-deliveries advisories about stream that arrive on nc
// to handle, one at a time, until the returned function is called.
func (w *advisoryWatch) watch(nc *nats.Conn, stream string, handle func(maxDeliveriesAdvisory)) (stop func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.subs[nc]
	if s == nil {
		s = &advisorySub{handlers: make(map[string][]*advisoryHandler)}
		s.sub, err = nc.Subscribe(dataplane.AllMaxDeliveriesAdvisories(), func(m *nats.Msg) { w.dispatch(s, m) })
		if err != nil {
			return nil, err
		}
		w.subs[nc] = s
	}
	h := &advisoryHandler{handle: handle}
	s.handlers[stream] = append(s.handlers[stream], h)
	s.watched++
	var once sync.Once
	return func() { once.Do(func() { w.unwatch(nc, s, stream, h) }) }, nil
}

// unwatch removes h; the connection's last handler takes the subscription
// with it.
func (w *advisoryWatch) unwatch(nc *nats.Conn, s *advisorySub, stream string, h *advisoryHandler) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hs := slices.DeleteFunc(s.handlers[stream], func(x *advisoryHandler) bool { return x == h })
	if len(hs) == 0 {
		delete(s.handlers, stream)
	} else {
		s.handlers[stream] = hs
	}
	s.watched--
	if s.watched == 0 {
		_ = s.sub.Unsubscribe()
		delete(w.subs, nc)
	}
}

// dispatch hands an advisory to the handler of its stream, if its pipeline
// runs here; anything else on the subject is ignored.
func (w *advisoryWatch) dispatch(s *advisorySub, m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		return
	}
	w.mu.Lock()
	var h *advisoryHandler
	if hs := s.handlers[adv.Stream]; len(hs) > 0 {
		h = hs[len(hs)-1]
	}
	w.mu.Unlock()
	if h != nil {
		h.handle(adv)
	}
}

// deadLetterUndelivered moves the message an advisory names from p's stream
// to the DLQ.
func deadLetterUndelivered(ctx context.Context, d deps, p dataplane.Pipeline, stream jetstream.Stream, adv maxDeliveriesAdvisory, log *slog.Logger) error {
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // settled meanwhile, or handled by another runner
	}
	if err != nil {
		return fmt.Errorf("read message %d: %w", adv.StreamSeq, err)
	}
	stage := adv.Consumer
	env, derr := dataplane.DecodeEnvelope(p, raw.Header, raw.Data)
	id := env.Msg.ID
	if derr != nil || id == "" {
		id = "undecodable-" + raw.Header.Get(nats.MsgIdHdr)
		env = dataplane.Envelope{}
	}
	f := d.failures(d.metrics.forStage(p, stage), log)
	cause := fmt.Errorf("JetStream stopped delivering the message after %d deliveries without a settlement (runner crashes, or VRSky's infrastructure failing throughout)", adv.Deliveries)
	if _, err := f.deadLetterData(ctx, p, stage, raw.Data, raw.Sequence, env, id, 0, cause, true); err != nil {
		return err
	}
	if err := stream.DeleteMsg(ctx, raw.Sequence); err != nil {
		if _, getErr := stream.GetMsg(ctx, raw.Sequence); !errors.Is(getErr, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("remove dead-lettered message %d: %w", raw.Sequence, err)
		}
	}
	f.metrics.dlq.Inc()
	log.Warn("message dead-lettered", "stage", stage, "message_id", id, "deliveries", adv.Deliveries, "reason", cause)
	return nil
}
