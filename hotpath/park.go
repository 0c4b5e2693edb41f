package hotpath

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The deliver stage of an integration with one producer receives nothing in
// the normal course: the process stage delivers to the producer itself (ADR
// 0009). Its consumer only serves replays, messages an earlier spec left on
// `out.<producer>` and new bodies too large for a dead letter. Such a stage
// is on demand (ADR 0029): once it has received nothing for idleAfter, was
// not woken in that time and its consumer holds no message, it parks: it
// stops pulling, which frees the pull's three goroutines, its buffers and
// the server's waiting request and heartbeats. It pulls again when a
// message is published to its subject (wakeWatch), or when the runner's
// lag loop finds messages on its consumer, should a wake have been missed.

// parkCheckTimeout bounds the read of the consumer's state before parking.
const parkCheckTimeout = 5 * time.Second

// parksAt reports whether b may park at now; b.mu is held.
func (b *batches) parksAt(now time.Time) bool {
	idle := time.Duration(idleAfter.Load())
	return b.onDemand && b.cc != nil && !b.draining && b.busy == 0 && len(b.queue) == 0 &&
		now.Sub(b.lastActive) >= idle && now.Sub(b.lastWake) >= idle
}

// park stops b pulling when it may park at now and its consumer holds no
// message, pending or waiting for its acknowledgement.
func (b *batches) park(now time.Time) {
	b.mu.Lock()
	if !b.parksAt(now) {
		b.mu.Unlock()
		return
	}
	received, consumer := b.received, b.consumer
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), parkCheckTimeout)
	info, err := consumer.Info(ctx)
	cancel()
	if err != nil || info.NumPending > 0 || info.NumAckPending > 0 {
		return // the next sweep looks again
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.received != received || !b.parksAt(now) {
		return
	}
	b.retireLocked(b.cc)
	b.cc = nil
}

// parked reports whether b is parked.
func (b *batches) parked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.onDemand && b.cc == nil && !b.draining
}

// unpark makes a parked b pull again; it keeps an unparked one from parking
// for idleAfter.
func (b *batches) unpark() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastWake = time.Now()
	if !b.onDemand || b.cc != nil || b.draining {
		return
	}
	if err := b.pullLocked(busyPulls); err != nil {
		b.log.Warn("parked stage could not pull again", "error", err)
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

// deleteFirst removes b's first occurrence from bs.
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
