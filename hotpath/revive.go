package hotpath

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// reviveTimeout bounds one attempt to find or recreate a stage's consumer.
const reviveTimeout = 10 * time.Second

// A reviver creates a stage's consumer again when the server lost it or
// removed it. Consumers keep their state in memory (consumers.go), so a
// NATS server that restarts forgets them while their messages stay in the
// stream: the stage's pulls then go unanswered, its heartbeats stop, and
// the consumer is created again with the same name and settings; the
// pulls that follow reach it: the stage pulls from it at once (restart)
// and it delivers what the stream still holds. A consumer that rested
// while its stage parked (park.go) was removed by the server: the woken
// stage's pull is answered "no responders", and it is created again the
// same way at once. A consumer deleted on purpose (a producer removed
// from the spec, the integration deleted) ends its pulls with 409
// instead, and is not created again.
type reviver struct {
	stream  jetstream.Stream
	config  jetstream.ConsumerConfig
	log     *slog.Logger
	restart func(context.Context, jetstream.Consumer) error

	running atomic.Bool
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
}

func (r *reviver) init() {
	r.once.Do(func() { r.ctx, r.cancel = context.WithCancel(context.Background()) })
}

// check looks for the consumer, and creates it again when the server says it
// is not there, unless a check is already running.
func (r *reviver) check() {
	r.background(func(ctx context.Context) {
		_, err := r.stream.Consumer(ctx, r.config.Durable)
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return // there, or the server cannot say yet: the next miss asks again
		}
		c, err := r.stream.CreateOrUpdateConsumer(ctx, r.config)
		if err == nil {
			err = r.restart(r.ctx, c)
		}
		if err != nil {
			r.log.Warn("stage consumer not created again yet", "consumer", r.config.Durable, "error", err)
			return
		}
		r.log.Debug("stage consumer created again", "consumer", r.config.Durable)
	})
}

// make creates the consumer, which a stage that started parked never had,
// and hands it to then, unless a check or a making is already running.
func (r *reviver) make(then func(jetstream.Consumer)) {
	r.background(func(ctx context.Context) {
		c, err := r.stream.CreateOrUpdateConsumer(ctx, r.config)
		if err != nil {
			r.log.Warn("stage consumer not made yet", "consumer", r.config.Durable, "error", err)
			return // the next wake-up, or the lag loop, tries again
		}
		then(c)
	})
}

// background runs f in a goroutine with at most reviveTimeout, unless the
// stage is stopping or a check or a making is already running.
func (r *reviver) background(f func(context.Context)) {
	r.init()
	if r.ctx.Err() != nil || !r.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.running.Store(false)
		ctx, cancel := context.WithTimeout(r.ctx, reviveTimeout)
		defer cancel()
		f(ctx)
	}()
}

// stop ends any check and prevents new ones: the stage is stopping.
func (r *reviver) stop() {
	r.init()
	r.cancel()
}
