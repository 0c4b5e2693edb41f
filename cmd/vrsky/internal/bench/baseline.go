package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Baseline settings: a raw JetStream hop configured like a pipeline's stream
// and stage consumers (file storage, work queue, explicit acks).
const (
	baselineMaxPending = 4096
	// baselineMaxPendingBytes bounds the in-flight window in bytes too:
	// 4096 one-MiB messages would overrun the server's ingest queue.
	baselineMaxPendingBytes = 64 << 20
	baselineMaxAckPending   = 8192
	baselineWarmup          = time.Second
	// baselineHeadroom keeps baseline messages under the server's max
	// payload, whose default (1 MiB) is the claim-check scenario's size.
	baselineHeadroom = 4 << 10
)

// BaselineResult is what a raw JetStream publish+consume hop sustained.
type BaselineResult struct {
	// Rate is messages consumed and acked per second over the measured
	// duration.
	Rate float64
	// MessageSize is the payload size used: the pipeline's, capped below
	// the server's max payload.
	MessageSize int
	Consumed    int64
	// PublishErrors counts failed asynchronous publishes.
	PublishErrors int64
}

// Baseline measures a raw JetStream hop on the NATS server at url: one
// asynchronous publisher with a bounded in-flight window (4096 messages, or
// 64 MiB for large ones) and one
// explicit-ack pull consumer, running at the same time on their own
// connections and doing no other work, for a warm-up second and then
// duration. The stream keeps replicas copies (≤ 1: one), as the
// pipeline's streams do. The stream is deleted afterwards. opts
// authenticate the connections.
func Baseline(ctx context.Context, url string, size int, duration time.Duration, replicas int, opts ...nats.Option) (res BaselineResult, err error) {
	pubConn, subConn, err := dialHop(url, opts, "baseline")
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	defer pubConn.Close()
	defer subConn.Close()
	res.MessageSize = baselineSize(size, pubConn.MaxPayload())
	pubJS, err := jetstream.New(pubConn, jetstream.WithPublishAsyncMaxPending(baselineWindow(res.MessageSize)))
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	subJS, err := jetstream.New(subConn)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}

	subject, consumer, removeHop, err := createHop(ctx, pubJS, subJS, "baseline", replicas)
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}
	defer func() {
		if rerr := removeHop(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("baseline: %w", rerr))
		}
	}()
	var consumed atomic.Int64
	// Pull batches are bounded in bytes too, below the client's pending
	// limit, or large messages would make a slow consumer.
	cc, err := consumer.Consume(func(m jetstream.Msg) {
		if m.Ack() == nil {
			consumed.Add(1)
		}
	}, jetstream.PullMaxBytes(baselineMaxPendingBytes/2))
	if err != nil {
		return res, fmt.Errorf("baseline: consume: %w", err)
	}
	defer cc.Stop()

	payload := make([]byte, res.MessageSize)
	for i := range payload {
		payload[i] = 'x'
	}
	pubCtx, stopPublishing := context.WithCancel(ctx)
	var publishErrors atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for pubCtx.Err() == nil {
			_, err := pubJS.PublishAsync(subject, payload)
			switch {
			case err == nil:
			case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
				// The window is full: publishing again waits for room.
			default:
				publishErrors.Add(1)
				time.Sleep(time.Millisecond)
			}
		}
	})
	stop := func() { stopPublishing(); wg.Wait() }
	if err := sleep(ctx, baselineWarmup); err != nil {
		stop()
		return res, err
	}
	began, from := time.Now(), consumed.Load()
	if err := sleep(ctx, duration); err != nil {
		stop()
		return res, err
	}
	res.Consumed = consumed.Load() - from
	res.Rate = ratePerSecond(res.Consumed, time.Since(began))
	stop()
	res.PublishErrors = publishErrors.Load()
	return res, nil
}

// baselineSize is the pipeline's message size capped below the server's
// max payload.
func baselineSize(size int, maxPayload int64) int {
	return max(min(size, int(maxPayload)-baselineHeadroom), 1)
}

// baselineWindow is how many asynchronous publishes of size bytes may be in
// flight.
func baselineWindow(size int) int {
	return min(baselineMaxPending, max(baselineMaxPendingBytes/size, 4))
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
