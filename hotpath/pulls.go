package hotpath

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A stage pulls from its consumer with one of two profiles. A waiting pull
// request costs the server and the client one heartbeat per Heartbeat and
// one new request per Expiry; a thousand idle integrations' stages pulling
// as busy ones do cost more than everything else they hold. So a stage
// that has not received a message for idleAfter pulls with idlePulls, and
// its first message puts it back on busyPulls. The first message is not
// delayed: a waiting pull request delivers at once whatever its profile.
//
// Under overload the server can be left without the client's pull request
// while the client still counts on it (nats.go#1622): nothing is delivered
// until the client notices two missing heartbeats and pulls again. Busy
// pulls notice within 10 s (nats.go's default heartbeat, 15 s, would take
// 30 s); idle pulls are not under overload.
type pullProfile struct {
	heartbeat, expiry time.Duration
}

var (
	busyPulls = pullProfile{heartbeat: 5 * time.Second, expiry: 30 * time.Second}
	idlePulls = pullProfile{heartbeat: 30 * time.Second, expiry: 10 * time.Minute} // nats.go allows heartbeats up to 30 s
)

// idleAfter is how long a stage receives nothing before it pulls with
// idlePulls; idleSweep is how often the stages are looked at for it (tests
// shorten both).
var idleAfter, idleSweep atomic.Int64

func init() {
	idleAfter.Store(int64(time.Minute))
	idleSweep.Store(int64(15 * time.Second))
}

// pullLocked starts pulling from b.consumer with profile p, and drains the
// pulls it replaces. b.mu is held.
func (b *batches) pullLocked(p pullProfile) error {
	cc, err := b.consumer.Consume(b.push, jetstream.PullMaxMessages(b.limit),
		jetstream.PullHeartbeat(p.heartbeat), jetstream.PullExpiry(p.expiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				b.revive.check()
			}
			b.log.Warn("stage consumer reported an error", "error", err)
		}))
	if err != nil {
		return err
	}
	if b.cc != nil {
		b.retireLocked(b.cc)
	}
	b.cc, b.pulls = cc, p
	return nil
}

// retireLocked drains the pull old, which a new one replaces or which a
// parking stage ends; b.mu is held. Drained, not stopped: what it already
// received still reaches the workers. The server sends nothing more to a
// pull whose client stopped listening.
func (b *batches) retireLocked(old jetstream.ConsumeContext) {
	b.replaced = append(b.replaced, old)
	old.Drain()
	go b.forget(old)
}

// forget drops old from the replaced pulls once it is drained.
func (b *batches) forget(old jetstream.ConsumeContext) {
	<-old.Closed()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, cc := range b.replaced {
		if cc == old {
			b.replaced = append(b.replaced[:i], b.replaced[i+1:]...)
			break
		}
	}
}

// pullFrom pulls from c, the stage's consumer created again (reviver), with
// the profile it has; not once ctx ended or the stage is draining.
func (b *batches) pullFrom(ctx context.Context, c jetstream.Consumer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil || b.draining {
		return context.Canceled
	}
	b.consumer = c
	return b.pullLocked(b.pulls)
}

// wake puts an idle stage back on busy pulls; b.mu is held. It runs from
// the pull's own message callback, so the switch happens beside it.
func (b *batches) wake() {
	b.pulls = busyPulls // at most one switch per spell
	go func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.draining && b.cc != nil {
			if err := b.pullLocked(busyPulls); err != nil {
				b.log.Warn("stage could not pull as a busy stage", "error", err)
			}
		}
	}()
}

// rest puts b on idle pulls when it has received nothing for idleAfter, or
// parks it if it is on demand.
func (b *batches) rest(now time.Time) {
	if b.onDemand {
		b.park(now)
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.draining || b.pulls == idlePulls || b.busy > 0 || len(b.queue) > 0 || now.Sub(b.lastActive) < time.Duration(idleAfter.Load()) {
		return
	}
	if err := b.pullLocked(idlePulls); err != nil {
		b.log.Warn("stage could not pull as an idle stage", "error", err)
	}
}

// stageSet is every pulling stage of the process, looked at every idleSweep
// by one goroutine that runs while there are any.
type stageSet struct {
	mu      sync.Mutex
	stages  map[*batches]struct{}
	running bool
}

var idleStages stageSet

func (s *stageSet) add(b *batches) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stages == nil {
		s.stages = make(map[*batches]struct{})
	}
	s.stages[b] = struct{}{}
	b.lastActive = time.Now()
	if !s.running {
		s.running = true
		go s.sweep()
	}
}

func (s *stageSet) remove(b *batches) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.stages, b)
}

// sweep rests the stages idle for idleAfter, every idleSweep, until there
// are none left.
func (s *stageSet) sweep() {
	for {
		time.Sleep(time.Duration(idleSweep.Load()))
		s.mu.Lock()
		if len(s.stages) == 0 {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.restIdle(time.Now())
	}
}

// restIdle rests every stage idle for idleAfter at now.
func (s *stageSet) restIdle(now time.Time) {
	s.mu.Lock()
	all := make([]*batches, 0, len(s.stages))
	for b := range s.stages {
		all = append(all, b)
	}
	s.mu.Unlock()
	for _, b := range all {
		b.rest(now)
	}
}
