package hotpath

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
)

// runnerWork is the background work a runner does for all its pipelines at
// once, so that a deployed integration nothing moves through costs no
// goroutine, timer or subscription of its own: one loop reads the
// consumers' lag, one flusher adds the counts to the counts bucket, and one
// subscription per tenant connection watches the max-deliveries
// advisories.
type runnerWork struct {
	lag        *lagLoop
	counts     *countsFlusher
	advisories *advisoryWatch
	wakes      *wakeWatch
	cancel     context.CancelFunc
	done       sync.WaitGroup
}

// startRunnerWork starts a runner's shared background work; stop ends it
// once the runner's pipelines have stopped.
func startRunnerWork(metrics *Metrics) *runnerWork {
	ctx, cancel := context.WithCancel(context.Background())
	w := &runnerWork{
		lag:        newLagLoop(metrics),
		counts:     newCountsFlusher(countsFlushInterval),
		advisories: newAdvisoryWatch(),
		wakes:      newWakeWatch(),
		cancel:     cancel,
	}
	w.done.Go(func() { w.wakes.run(ctx) })
	w.done.Go(func() { w.lag.run(ctx, lagTick) })
	w.done.Go(func() { w.counts.run(ctx) })
	return w
}

// stop ends the loops; the counts flusher flushes what is left once more.
func (w *runnerWork) stop() {
	w.cancel()
	w.done.Wait()
}

// Consumer lag is read from JetStream every lagInterval while a stage moves
// messages or has some waiting, and every lagIdleInterval otherwise: an idle
// integration costs one JetStream API request per lagIdleInterval for its
// lag, and a stage that stopped receiving with messages waiting still shows
// within it (ADR 0028; the lag alert waits 15 minutes). The loop makes a
// pass every lagTick and each source has its own slot: the reads of the
// busy pipelines are spread over lagInterval and those of the idle ones
// over lagIdleInterval, instead of a burst of a hundred requests every
// lagInterval that held up the messages arriving meanwhile (ADR 0029).
const (
	lagInterval     = 5 * time.Second
	lagIdleInterval = 5 * time.Minute
	lagTick         = 500 * time.Millisecond
	// activeSlots and idleSlots are how many passes of the lag loop make a
	// lagInterval and a lagIdleInterval: a source is read when its slot
	// comes, modulo one or the other.
	activeSlots = int(lagInterval / lagTick)
	idleSlots   = int(lagIdleInterval / lagTick)
	// lagReaders bounds the reads one pass makes at once.
	lagReaders = 8
)

// lagLoop keeps the consumer-lag gauges of a runner's pipelines, and their
// tenants' DLQ sizes, current: one goroutine and one ticker for all of
// them.
type lagLoop struct {
	metrics *Metrics
	mu      sync.Mutex
	// fresh are the sources not read yet; bySlot[i] every source whose
	// slot is i modulo activeSlots, so that a pass looks at its own only.
	fresh  map[*lagSource]struct{}
	bySlot [activeSlots]map[*lagSource]struct{}
	// slot is the slot the next source gets; pass the slot read now.
	slot, pass int
}

func newLagLoop(metrics *Metrics) *lagLoop {
	l := &lagLoop{metrics: metrics, fresh: make(map[*lagSource]struct{})}
	for i := range l.bySlot {
		l.bySlot[i] = make(map[*lagSource]struct{})
	}
	return l
}

// lagSource is one pipeline's stream, whose consumers' lag the loop reads.
type lagSource struct {
	loop   *lagLoop
	js     jetstream.JetStream
	stream jetstream.Stream
	p      dataplane.Pipeline
	// stages are the names of the pipeline's stages and consumers. moved
	// reports (and forgets) whether a stage received a message since it
	// was last asked; unpark is called with each consumer found holding
	// messages, or resting while messages wait on its subject, so that a
	// parked stage that missed its wake-up pulls again.
	stages []string
	moved  func() bool
	unpark func(consumer string)
	// slot is the pass on which it is read: modulo activeSlots while it
	// is active, modulo idleSlots while it is idle.
	slot int
	// waiting is set when the last read found messages waiting.
	waiting atomic.Bool
	// ctx ends reads in progress when the pipeline stops.
	ctx    context.Context
	cancel context.CancelFunc
	// mu is held while the source is read; stopped is set under it.
	mu      sync.Mutex
	stopped bool
}

// add starts reading the lag of p's stream: at the next pass, then once per
// lagInterval while it moves or has messages waiting, and once per
// lagIdleInterval otherwise, each time on its own slot's pass.
func (l *lagLoop) add(js jetstream.JetStream, stream jetstream.Stream, p dataplane.Pipeline, stages []string, moved func() bool, unpark func(consumer string)) *lagSource {
	ctx, cancel := context.WithCancel(context.Background())
	s := &lagSource{loop: l, js: js, stream: stream, p: p, stages: stages, moved: moved, unpark: unpark, ctx: ctx, cancel: cancel}
	l.mu.Lock()
	s.slot = l.slot
	l.slot = (l.slot + 1) % idleSlots
	l.fresh[s] = struct{}{}
	l.bySlot[s.slot%activeSlots][s] = struct{}{}
	l.mu.Unlock()
	return s
}

// stop stops reading s. A read in progress is ended and waited for, so
// that no gauge of s is set once stop returns; the gauges stay as they
// are (Metrics.forget removes them when the pipeline runs nowhere here).
// A nil *lagSource stops nothing.
func (s *lagSource) stop() {
	if s == nil {
		return
	}
	s.loop.mu.Lock()
	delete(s.loop.fresh, s)
	delete(s.loop.bySlot[s.slot%activeSlots], s)
	s.loop.mu.Unlock()
	s.cancel()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// run makes a pass every interval until ctx ends.
func (l *lagLoop) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.readDue(ctx)
	}
}

// readDue reads the sources due in this pass: those never read, and
// those whose slot it is: modulo activeSlots when they moved or had
// messages waiting, modulo idleSlots otherwise.
func (l *lagLoop) readDue(ctx context.Context) {
	l.mu.Lock()
	pass := l.pass
	l.pass = (l.pass + 1) % idleSlots
	type read struct {
		s      *lagSource
		active bool
	}
	var due []read
	for s := range l.fresh {
		due = append(due, read{s, true})
	}
	for s := range l.bySlot[pass%activeSlots] {
		if _, ok := l.fresh[s]; ok {
			continue
		}
		// moved is asked on the source's own passes only: it forgets.
		if active := s.moved() || s.waiting.Load(); active || pass == s.slot {
			due = append(due, read{s, active})
		}
	}
	clear(l.fresh)
	l.mu.Unlock()
	var next atomic.Int64
	var readers sync.WaitGroup
	for range min(len(due), lagReaders) {
		readers.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(due)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				due[i].s.readLag(l.metrics, due[i].active)
			}
		})
	}
	readers.Wait()
}

// readLag sets each of the stream's consumers' lag gauge and the tenant's
// DLQ size: at most once per lagInterval per tenant when the source is
// active (it moved, had messages waiting or was never read), at most once
// per lagIdleInterval otherwise.
func (s *lagSource) readLag(metrics *Metrics, active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, lagInterval)
	defer cancel()
	waiting := false
	setLag := func(consumer string, lag uint64) {
		waiting = waiting || lag > 0
		if lag > 0 {
			s.unpark(consumer)
		}
		metrics.consumerLag.WithLabelValues(s.p.Tenant, s.p.Integration, consumer).Set(float64(lag))
	}
	listed := make(map[string]bool, len(s.stages))
	consumers := s.stream.ListConsumers(ctx)
	for info := range consumers.Info() {
		listed[info.Name] = true
		setLag(info.Name, info.NumPending+uint64(info.NumAckPending))
	}
	if consumers.Err() == nil || errors.Is(consumers.Err(), jetstream.ErrEndOfData) {
		s.readResting(ctx, listed, setLag)
	}
	s.waiting.Store(waiting)
	// Dead letters come from moving stages (or a replay, which moves them
	// again); a quiet tenant's DLQ changes only as its oldest letters
	// expire or are discarded through the API, which can wait.
	every := lagIdleInterval
	if active {
		every = lagInterval
	}
	if metrics.dlqDue(s.p.Tenant, time.Now(), every) {
		// The DLQ stream exists once the tenant is provisioned; until then
		// there is nothing to report.
		if dlq, err := s.js.Stream(ctx, dataplane.DLQStream(s.p.Tenant)); err == nil {
			metrics.dlqMessages.WithLabelValues(s.p.Tenant).Set(float64(dlq.CachedInfo().State.Msgs))
		}
	}
}

// readResting sets the lag of the stages whose consumer is not listed,
// which rest (ADR 0032): what waits on their subjects.
func (s *lagSource) readResting(ctx context.Context, listed map[string]bool, setLag func(consumer string, lag uint64)) {
	var waiting map[string]uint64
	for _, stage := range s.stages {
		if listed[stage] {
			continue
		}
		if waiting == nil {
			var err error
			if waiting, err = dataplane.WaitingBySubject(ctx, s.stream, s.p); err != nil {
				return // the next read tries again
			}
		}
		setLag(stage, waiting[s.p.StageSubject(stage)])
	}
}
