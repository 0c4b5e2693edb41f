package hotpath

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/gctarget"
)

// batches feeds a stage from a durable pull consumer: JetStream pushes into
// a bounded queue and workers take whatever is waiting, up to a batch, so
// batches grow under load and stay at one message when idle.
//
// A parked stage holds no worker and no buffer: a worker starts when a
// message arrives and no other is free, and ends when the queue is empty
// (docs/adr/0025). While the stage pulls, one worker that found the queue
// empty waits for the next message instead of ending (docs/adr/0031), so
// that a stage receiving a message now and then does not start a goroutine
// and grow its stack for each; it ends when the stage parks or drains. A
// thousand parked integrations therefore cost no goroutine and no memory
// for their stages, and none on the server once their consumers rest
// (park.go).
type batches struct {
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
	// lastActive is when the last worker found the queue empty.
	lastActive time.Time
	// waitingWorker, when set, is the channel of the one worker waiting
	// for the next message (it is not busy): true hands it the queue,
	// false ends it.
	waitingWorker chan bool

	// consumer is pulled from by cc; replaced are earlier pulls being
	// drained (pulls.go). It is nil while a stage that started parked
	// has not made it yet (park.go).
	consumer jetstream.Consumer
	cc       jetstream.ConsumeContext
	replaced []jetstream.ConsumeContext
	draining bool

	// A stage with a waker parks when idle (park.go): cc is then nil and
	// stopWaking ends its wake-up subscription. received counts the
	// messages received, lastWake is when it was last woken, parkedAt when
	// it last parked (or started parked).
	waker      *stageWake
	stopWaking func()
	received   uint64
	lastWake   time.Time
	parkedAt   time.Time

	// revive creates the consumer again when the server lost it.
	revive *reviver
	log    *slog.Logger
}

// consumeBatches starts feeding a stage from consumer c of stream
// (pulls.go says how it pulls); with wake it parks when idle (park.go).
func consumeBatches(stream jetstream.Stream, c jetstream.Consumer, buffer int, wake *stageWake, log *slog.Logger) (*batches, error) {
	b := newBatches(stream, c.CachedInfo().Config, buffer, wake, log)
	b.consumer = c
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.pullLocked(); err != nil {
		return nil, err
	}
	idleStages.add(b)
	return b, nil
}

// newBatches makes the source of a stage whose consumer has the settings
// cfg; it neither pulls nor parks yet.
func newBatches(stream jetstream.Stream, cfg jetstream.ConsumerConfig, buffer int, wake *stageWake, log *slog.Logger) *batches {
	b := &batches{limit: buffer, log: log, waker: wake}
	b.room = sync.NewCond(&b.mu)
	b.revive = &reviver{stream: stream, config: cfg, log: log, restart: b.pullFrom}
	return b
}

// push queues one received message, waiting while the queue is full, and
// wakes the waiting worker or starts one when none is free to take it.
func (b *batches) push(m jetstream.Msg) {
	b.moved.Store(true)
	b.mu.Lock()
	b.received++
	for len(b.queue) >= b.limit {
		b.room.Wait()
	}
	b.queue = append(b.queue, m)
	b.startWorkerLocked()
	b.mu.Unlock()
}

// startWorkerLocked makes a worker busy when messages wait, the stage runs
// and fewer than its workers are busy: the waiting worker if there is one,
// else a new one. b.mu is held.
func (b *batches) startWorkerLocked() {
	if b.handle == nil || b.busy >= b.workers || len(b.queue) == 0 {
		return
	}
	b.busy++
	if w := b.waitingWorker; w != nil {
		b.waitingWorker = nil
		w <- true
		return
	}
	b.wg.Go(b.work)
}

// waitLocked keeps a worker that found the queue empty (and is no longer
// busy) for the next message while the stage pulls, when no other worker
// waits. It reports whether the worker was handed messages, and is busy
// again, rather than ended. b.mu is held; it is released while waiting.
func (b *batches) waitLocked() bool {
	if b.waitingWorker != nil || b.cc == nil || b.draining {
		return false
	}
	w := make(chan bool, 1)
	b.waitingWorker = w
	b.mu.Unlock()
	handed := <-w
	b.mu.Lock()
	return handed
}

// endWaitingLocked ends the waiting worker, if any, as the stage parks or
// drains. b.mu is held.
func (b *batches) endWaitingLocked() {
	if w := b.waitingWorker; w != nil {
		b.waitingWorker = nil
		w <- false
	}
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
		gctarget.Moved(len(buf))
		b.handle(buf)
		clear(buf)
		*bufp = buf[:0]
	}
}

// take moves up to maxBatch waiting messages into buf. With none waiting
// the calling worker is no longer busy: it waits for the next message
// (waitLocked) or retires, and take then returns an empty buf.
func (b *batches) take(buf []jetstream.Msg) []jetstream.Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.queue) == 0 {
		b.busy--
		b.lastActive = time.Now()
		if cap(b.queue) > b.maxBatch {
			b.queue = nil // give a burst's queue back
		}
		if !b.waitLocked() {
			return buf
		}
	}
	n := min(len(b.queue), b.maxBatch)
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
	idleStages.remove(b)
	b.revive.stop()
	b.mu.Lock()
	b.draining = true
	b.stopWakingLocked()
	b.endWaitingLocked()
	all := slices.Clone(b.replaced)
	if b.cc != nil { // nil: parked
		all = append(all, b.cc)
	}
	b.mu.Unlock()
	for _, cc := range all {
		cc.Drain()
	}
	for _, cc := range all {
		<-cc.Closed()
	}
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
