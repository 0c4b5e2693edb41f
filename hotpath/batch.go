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

// batches feeds a stage from a durable pull consumer: JetStream pushes into
// a bounded queue and workers take whatever is waiting, up to a batch, so
// batches grow under load and stay at one message when idle.
//
// An idle stage holds no worker and no buffer: a worker starts when a
// message arrives and no other is free, and ends when the queue is empty
// (docs/adr/0025). A thousand idle integrations therefore cost no
// goroutine and no memory for their stages beyond the consumer itself.
type batches struct {
	cc jetstream.ConsumeContext
	// moved is set when a message arrives; the lag reporter clears it.
	moved atomic.Bool

	mu sync.Mutex
	// room is signalled when workers take messages from a full queue.
	room *sync.Cond
	// queue holds the messages received and not yet taken; at most limit.
	queue []jetstream.Msg
	limit int
	// busy counts the running workers, at most workers; handle is nil
	// until runStage sets it (messages wait until then).
	busy, workers, maxBatch int
	handle                  func([]jetstream.Msg)
	wg                      sync.WaitGroup

	// revive creates the consumer again when the server lost it.
	revive *reviver
	log    *slog.Logger
}

// pullHeartbeat is how often the server signals a waiting pull request
// (nats.go's default is 15 s); two missed ones make the client pull again.
// An idle stage costs one small message per pullHeartbeat, so it is what an
// idle integration mostly costs: 1 s made 1,000 idle integrations cost
// half a core (docs/benchmarks.md, "Scale").
const pullHeartbeat = 5 * time.Second

// consumeBatches starts feeding a stage from consumer c of stream. Errors
// the consumer reports (a missed heartbeat, a reconnect) are logged: the
// client recovers from them on its own, and a consumer the server lost is
// created again (reviver).
//
// Under overload the server can be left without the client's pull request
// while the client still counts on it (nats.go#1622): nothing is delivered
// until the client notices the missing heartbeats and pulls again. The
// default heartbeat (15 s, so 30 s without messages) is shortened to
// pullHeartbeat (so at most 10 s).
func consumeBatches(stream jetstream.Stream, c jetstream.Consumer, buffer int, log *slog.Logger) (*batches, error) {
	b := &batches{limit: buffer, log: log}
	b.room = sync.NewCond(&b.mu)
	b.revive = &reviver{stream: stream, config: c.CachedInfo().Config, log: log, restart: b.restart}
	cc, err := b.consume(c)
	if err != nil {
		return nil, err
	}
	b.cc = cc
	return b, nil
}

// consume starts pulling from c into b.
func (b *batches) consume(c jetstream.Consumer) (jetstream.ConsumeContext, error) {
	return c.Consume(b.push, jetstream.PullMaxMessages(b.limit),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				b.revive.check()
			}
			b.log.Warn("stage consumer reported an error", "error", err)
		}))
}

// restart pulls from c, the consumer created again, instead of the pulls
// that went unanswered; not once the stage is draining (ctx ended).
func (b *batches) restart(ctx context.Context, c jetstream.Consumer) error {
	b.mu.Lock()
	if ctx.Err() != nil {
		b.mu.Unlock()
		return ctx.Err()
	}
	cc, err := b.consume(c)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	old := b.cc
	b.cc = cc
	b.mu.Unlock()
	old.Stop()
	return nil
}

// push queues one received message, waiting while the queue is full, and
// starts a worker when none is free to take it.
func (b *batches) push(m jetstream.Msg) {
	b.moved.Store(true)
	b.mu.Lock()
	for len(b.queue) >= b.limit {
		b.room.Wait()
	}
	b.queue = append(b.queue, m)
	b.startWorkerLocked()
	b.mu.Unlock()
}

// startWorkerLocked starts a worker when messages wait, the stage runs and
// fewer than its workers are busy. b.mu is held.
func (b *batches) startWorkerLocked() {
	if b.handle == nil || b.busy >= b.workers || len(b.queue) == 0 {
		return
	}
	b.busy++
	b.wg.Go(b.work)
}

// batchBuffers recycles the workers' batch slices between the stages, so
// that a worker that starts for one message allocates nothing.
var batchBuffers = sync.Pool{New: func() any { b := make([]jetstream.Msg, 0, maxBatch); return &b }}

// work handles batches until the queue is empty, then ends.
func (b *batches) work() {
	bufp := batchBuffers.Get().(*[]jetstream.Msg)
	defer batchBuffers.Put(bufp)
	for {
		buf := b.take((*bufp)[:0])
		if len(buf) == 0 {
			return
		}
		b.handle(buf)
		clear(buf)
		*bufp = buf[:0]
	}
}

// take moves up to maxBatch waiting messages into buf. With none waiting it
// retires the calling worker and returns an empty buf.
func (b *batches) take(buf []jetstream.Msg) []jetstream.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(len(b.queue), b.maxBatch)
	if n == 0 {
		b.busy--
		if cap(b.queue) > b.maxBatch {
			b.queue = nil // give a burst's queue back
		}
		return buf
	}
	buf = append(buf, b.queue[:n]...)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	b.room.Broadcast()
	return buf
}

// drain stops pulling; messages already received still reach the workers,
// which finish and ack them.
func (b *batches) drain() {
	b.revive.stop()
	b.mu.Lock()
	cc := b.cc
	b.mu.Unlock()
	cc.Drain()
	<-cc.Closed()
}

// stage runs workers over a batch source until it is drained.
type stage struct {
	src *batches
}

// runStage lets up to workers workers at a time handle src's batches of at
// most maxBatch messages.
func runStage(src *batches, workers, maxBatch int, handle func([]jetstream.Msg)) *stage {
	src.mu.Lock()
	src.workers, src.maxBatch, src.handle = workers, maxBatch, handle
	for range workers {
		src.startWorkerLocked()
	}
	src.mu.Unlock()
	return &stage{src: src}
}

// stop drains the source and waits for the workers to finish its batches.
func (s *stage) stop() {
	s.src.drain()
	s.src.wg.Wait()
}

// reviveTimeout bounds one attempt to find or recreate a stage's consumer.
const reviveTimeout = 10 * time.Second

// A reviver creates a stage's consumer again when the server lost it.
// Consumers keep their state in memory (consumers.go), so a NATS server
// that restarts forgets them while their messages stay in the stream: the
// stage's pulls then go unanswered, its heartbeats stop, and the consumer
// is created again with the same name and settings; the pulls that follow
// reach it: the stage pulls from it at once (restart) and it delivers what
// the stream still holds. A consumer deleted
// on purpose (a producer removed from the spec, the integration deleted)
// ends its pulls with 409 instead of silence and is not created again.
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
	r.init()
	if r.ctx.Err() != nil || !r.running.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.running.Store(false)
		ctx, cancel := context.WithTimeout(r.ctx, reviveTimeout)
		defer cancel()
		_, err := r.stream.Consumer(ctx, r.config.Durable)
		if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return // there, or the server cannot say yet: the next miss asks again
		}
		c, err := r.stream.CreateOrUpdateConsumer(ctx, r.config)
		if err == nil {
			err = r.restart(r.ctx, c)
		}
		if err != nil {
			r.log.Warn("stage consumer lost by the server not created again yet", "consumer", r.config.Durable, "error", err)
			return
		}
		r.log.Info("stage consumer lost by the server created again", "consumer", r.config.Durable)
	}()
}

// stop ends any check and prevents new ones: the stage is stopping.
func (r *reviver) stop() {
	r.init()
	r.cancel()
}
