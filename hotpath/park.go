package hotpath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// An idle stage parks (ADR 0029): once it has received nothing for
// idleAfter, was not woken in that time and its consumer holds no message,
// it stops pulling, which frees the pull's three goroutines, its buffers
// and the server's waiting request and heartbeats. While parked it
// subscribes to its subject with a plain NATS subscription (wakeWatch); the
// first message published there wakes it, and it pulls again. Only a
// parked stage has that subscription, so a moving stage receives no second
// copy of its messages. Should a wake-up be missed (the server took a
// message just before the subscription, NATS dropped a wake-up for a full
// channel, a reconnection), the runner's lag loop finds the messages on
// the consumer and wakes the stage.
//
// Once the stage has parked in every runner, its consumer rests (ADR
// 0032): the server removes it after consumerRestAfter without a pull
// (consumers.go), which frees its goroutines and memory there; its
// messages wait in the work-queue stream. Before parking, the stage
// records what the consumer finished (dataplane.RecordRest), so its counts
// outlive it. A woken stage's pull then reaches no consumer, and the
// reviver creates it again (revive.go) and pulls from it.

// parkCheckTimeout bounds the read of the consumer's state before parking.
const parkCheckTimeout = 5 * time.Second

// stageWake is what wakes a parked stage: a subscription on nc to its
// subject, fed to the runner's wake watch; record records what its
// consumer finished as it parks (nil: nothing is recorded).
type stageWake struct {
	watch   *wakeWatch
	nc      *nats.Conn
	subject string
	record  func(context.Context, *jetstream.ConsumerInfo) error
}

// parksAt reports whether b may park at now; b.mu is held.
func (b *batches) parksAt(now time.Time) bool {
	idle := time.Duration(idleAfter.Load())
	return b.waker != nil && b.cc != nil && !b.draining && b.busy == 0 && len(b.queue) == 0 &&
		now.Sub(b.lastActive) >= idle && now.Sub(b.lastWake) >= idle
}

// park stops b pulling when it may park at now, its consumer holds no
// message, pending or waiting for its acknowledgement, and what the
// consumer finished is recorded. The wake-up subscription is made first,
// so that a message stored after the check wakes the stage.
func (b *batches) park(now time.Time) {
	b.mu.Lock()
	if !b.parksAt(now) {
		b.mu.Unlock()
		return
	}
	received, consumer := b.received, b.consumer
	b.mu.Unlock()

	stopWaking, err := b.waker.watch.watch(b.waker.nc, b.waker.subject, b)
	if err != nil {
		return // the next sweep tries again
	}
	ctx, cancel := context.WithTimeout(context.Background(), parkCheckTimeout)
	defer cancel()
	info, err := consumer.Info(ctx)
	if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && b.waker.record != nil {
		if err = b.waker.record(ctx, info); err != nil {
			b.log.Warn("stage not parked: what its consumer finished is not recorded", "error", err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil || info.NumPending > 0 || info.NumAckPending > 0 || b.received != received || !b.parksAt(now) {
		stopWaking()
		return
	}
	b.retireLocked(b.cc)
	b.cc, b.stopWaking, b.parkedAt = nil, stopWaking, time.Now()
	b.endWaitingLocked()
}

// parkedRecently reports whether b parked (or started parked) within
// idleAfter of now. Its wake-up subscription may not have reached every
// server of a cluster before a message was published (interest spreads
// between servers on its own time), so the lag loop reads its pipeline as
// often as a moving one's meanwhile.
func (b *batches) parkedRecently(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.parkedLocked() && now.Sub(b.parkedAt) < time.Duration(idleAfter.Load())
}

// parked reports whether b is parked.
func (b *batches) parked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.parkedLocked()
}

func (b *batches) parkedLocked() bool { return b.waker != nil && b.cc == nil && !b.draining }

// unpark makes a parked b pull again and ends its wake-up subscription; it
// keeps an unparked one from parking for idleAfter.
func (b *batches) unpark() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastWake = time.Now()
	if !b.parkedLocked() {
		return
	}
	if b.consumer == nil {
		b.revive.make(b.wakeWith)
		return
	}
	if err := b.pullLocked(); err != nil {
		b.log.Warn("parked stage could not pull again", "error", err)
		return // still parked: the next wake-up or the lag loop tries again
	}
	b.stopWakingLocked()
}

// wakeWith pulls from c, the consumer made for a stage woken before it
// had one.
func (b *batches) wakeWith(c jetstream.Consumer) {
	b.mu.Lock()
	b.consumer = c
	b.mu.Unlock()
	b.unpark()
}

// openStage starts the source of the stage consumer name on subject. When
// the consumer exists, or the stage has no waker, it is made or updated
// and pulled from. When it does not exist, which is how a deployed
// integration that has received nothing since its consumers rested (or
// ever) starts, the stage starts parked without making it: an idle
// integration costs no consumer, even just deployed (ADR 0032). If
// messages wait on subject already, or the stream or the rest record
// cannot be read, it is woken at once: its consumer is made and pulled
// from, as when a message wakes a parked stage.
func openStage(ctx context.Context, stream jetstream.Stream, name, subject string, buffer int, wake *stageWake, log *slog.Logger) (*batches, error) {
	if wake == nil || !consumerMissing(ctx, stream, name) {
		c, err := ensureConsumer(ctx, stream, name, subject)
		if err != nil {
			return nil, err
		}
		return consumeBatches(stream, c, buffer, wake, log)
	}
	b := newBatches(stream, consumerConfig(name, subject), buffer, wake, log)
	// The wake-up subscription is made before the stream is read, so that
	// a message stored meanwhile wakes the stage; b.mu holds wake-ups
	// until b knows how to stop it.
	b.mu.Lock()
	stopWaking, err := wake.watch.watch(wake.nc, wake.subject, b)
	if err != nil {
		b.mu.Unlock()
		return nil, fmt.Errorf("watch %s: %w", subject, err)
	}
	b.stopWaking, b.parkedAt = stopWaking, time.Now()
	b.mu.Unlock()
	idleStages.add(b)
	if !b.startsIdle(ctx) {
		b.unpark()
	}
	return b, nil
}

// consumerMissing reports whether the server says the consumer name does
// not exist.
func consumerMissing(ctx context.Context, stream jetstream.Stream, name string) bool {
	_, err := stream.Consumer(ctx, name)
	return errors.Is(err, jetstream.ErrConsumerNotFound)
}

// startsIdle reports whether nothing waits for b, a stage without its
// consumer, and it is recorded in its rest record, so that the counters
// and the replay check know it.
func (b *batches) startsIdle(ctx context.Context) bool {
	subject := b.revive.config.FilterSubject
	info, err := b.revive.stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil || info.State.Subjects[subject] > 0 {
		return false
	}
	if b.waker.record == nil {
		return true
	}
	if err := b.waker.record(ctx, &jetstream.ConsumerInfo{Name: b.revive.config.Durable}); err != nil {
		b.log.Warn("stage pulls: it is not recorded as resting", "error", err)
		return false
	}
	return true
}

// stopWakingLocked ends the wake-up subscription, if any; b.mu is held.
func (b *batches) stopWakingLocked() {
	if b.stopWaking != nil {
		b.stopWaking()
		b.stopWaking = nil
	}
}

// wakeBuffer is how many wake-ups wait for the dispatcher before NATS drops
// them (the lag loop still finds the messages).
const wakeBuffer = 4096

// wakeWatch wakes a runner's parked stages: each has a subscription to its
// subject that feeds one channel, read by one goroutine for all of them.
type wakeWatch struct {
	msgs   chan *nats.Msg
	mu     sync.Mutex
	stages map[string][]*batches // by subject
}

func newWakeWatch() *wakeWatch {
	return &wakeWatch{msgs: make(chan *nats.Msg, wakeBuffer), stages: make(map[string][]*batches)}
}

// watch wakes b whenever a message is published to subject on nc, until
// the returned function is called.
func (w *wakeWatch) watch(nc *nats.Conn, subject string, b *batches) (stop func(), err error) {
	sub, err := nc.ChanSubscribe(subject, w.msgs)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.stages[subject] = append(w.stages[subject], b)
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = sub.Unsubscribe()
			w.mu.Lock()
			defer w.mu.Unlock()
			left := deleteFirst(w.stages[subject], b)
			if len(left) == 0 {
				delete(w.stages, subject)
			} else {
				w.stages[subject] = left
			}
		})
	}, nil
}

// deleteFirst returns bs without b's first occurrence, in a new array: the
// dispatcher may be going through the old one outside w.mu.
func deleteFirst(bs []*batches, b *batches) []*batches {
	for i, x := range bs {
		if x == b {
			return append(bs[:i:i], bs[i+1:]...)
		}
	}
	return bs
}

// run wakes the stages of each subject a message arrives on until ctx ends.
func (w *wakeWatch) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-w.msgs:
			w.mu.Lock()
			stages := w.stages[m.Subject]
			w.mu.Unlock()
			for _, b := range stages {
				b.unpark()
			}
		}
	}
}
