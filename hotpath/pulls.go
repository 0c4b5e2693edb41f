package hotpath

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A stage pulls from its consumer with a request that waits up to
// pullExpiry and a heartbeat every pullHeartbeat; a stage idle for
// idleAfter stops pulling altogether (it parks, park.go) and a message
// published to its subject wakes it.
//
// Under overload the server can be left without the client's pull request
// while the client still counts on it (nats.go#1622): nothing is delivered
// until the client notices two missing heartbeats and pulls again. These
// pulls notice within 10 s (nats.go's default heartbeat, 15 s, would take
// 30 s).
const (
	pullHeartbeat = 5 * time.Second
	pullExpiry    = 30 * time.Second
)

// idleAfter is how long a stage receives nothing before it parks;
// idleSweep is how often the stages are looked at for it (tests shorten
// both).
var idleAfter, idleSweep atomic.Int64

func init() {
	idleAfter.Store(int64(time.Minute))
	idleSweep.Store(int64(15 * time.Second))
}

// pullLocked starts pulling from b.consumer, and drains the pull it
// replaces. b.mu is held.
func (b *batches) pullLocked() error {
	cc, err := b.consumer.Consume(b.push, jetstream.PullMaxMessages(b.limit),
		jetstream.PullHeartbeat(pullHeartbeat), jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, nats.ErrNoResponders) {
				// The pull reached no consumer: it rested while the stage
				// parked (park.go), or the server lost it.
				b.revive.check()
				return
			}
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
	b.cc = cc
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

// pullFrom pulls from c, the stage's consumer created again (reviver); not
// once ctx ended or the stage is draining. A parked stage pulls from it
// once woken.
func (b *batches) pullFrom(ctx context.Context, c jetstream.Consumer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil || b.draining {
		return context.Canceled
	}
	b.consumer = c
	if b.parkedLocked() {
		return nil
	}
	return b.pullLocked()
}

// stageSet is every running stage of the process, pulling or parked,
// looked at every idleSweep by one goroutine that runs while there are any.
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

// sweep parks the stages idle for idleAfter, every idleSweep, until there
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

// restIdle parks every stage idle for idleAfter at now.
func (s *stageSet) restIdle(now time.Time) {
	s.mu.Lock()
	all := make([]*batches, 0, len(s.stages))
	for b := range s.stages {
		all = append(all, b)
	}
	s.mu.Unlock()
	for _, b := range all {
		b.park(now)
	}
}
