package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
// the DLQ's duplicate window keeps one dead letter. It returns a function
// that stops watching.
func watchMaxDeliveries(d deps, p dataplane.Pipeline, stream jetstream.Stream, log *slog.Logger) (stop func(), err error) {
	sub, err := d.js.Conn().Subscribe(p.MaxDeliveriesAdvisories(), func(m *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &adv); err != nil || adv.Stream != p.Stream() || adv.StreamSeq == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), advisoryTimeout)
		defer cancel()
		if err := deadLetterUndelivered(ctx, d, p, stream, adv, log); err != nil {
			log.Error("a message JetStream stopped delivering could not be dead-lettered", "stage", adv.Consumer, "stream_seq", adv.StreamSeq, "error", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watch max-deliveries advisories of %s: %w", p.Stream(), err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
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
