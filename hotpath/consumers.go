package hotpath

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Delivery settings shared by every stage consumer.
const (
	// MaxAttempts is how often a stage tries a message: 1 + 3 retries.
	MaxAttempts = 4
	// maxDeliverBackstop bounds redeliveries that are not counted as
	// attempts (runner crashes, lost acks); see docs/adr/0002.
	maxDeliverBackstop = 20
	ackWait            = 30 * time.Second
	maxAckPending      = 8192
)

// consumerRestAfter is how long a stage consumer stays on the server once
// no runner pulls from it, that is once its stage parked everywhere, and
// holds no message: then the server removes it, with its goroutines and
// memory, and the stage creates it again when a message wakes it (ADR
// 0032). Tests shorten it.
var consumerRestAfter atomic.Int64

func init() { consumerRestAfter.Store(int64(time.Minute)) }

// ensureConsumer creates or updates a stage's durable pull consumer.
//
// Its state is kept in the server's memory, not in files (docs/adr/0025):
// a file consumer rewrites its state file up to ten times a second while it
// acks, which made a hundred integrations of a few messages a second cost
// four times the CPU per message of one busy integration. Nothing is lost
// with it: the streams are work queues, so an acked message is removed from
// the stream and what the consumer forgets on a server restart is only
// which messages were in flight, which it delivers again (the stage's
// reviver creates it again, batch.go); attempts are counted in KV
// (docs/adr/0002), not by the consumer. A file consumer made by an earlier
// version is replaced once. A consumer no runner pulls from is removed by
// the server after consumerRestAfter; its stage creates it again (park.go).
func ensureConsumer(ctx context.Context, stream jetstream.Stream, name, subject string) (jetstream.Consumer, error) {
	cfg := consumerConfig(name, subject)
	c, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	if isStorageChange(err) {
		// Its messages stay in the stream and go to the new consumer.
		if err = stream.DeleteConsumer(ctx, name); err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
			c, err = stream.CreateOrUpdateConsumer(ctx, cfg)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return c, nil
}

// consumerConfig is the settings of the stage consumer name on subject.
func consumerConfig(name, subject string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       name,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliverBackstop,
		MaxAckPending: maxAckPending,
		MemoryStorage: true,
		// The server counts from the last pull, and waits for every
		// message delivered and not yet acked (ack wait) first.
		InactiveThreshold: time.Duration(consumerRestAfter.Load()),
	}
}

// isStorageChange reports whether err is the server refusing to change a
// consumer's storage type in place.
func isStorageChange(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "storage type can not be updated")
}
