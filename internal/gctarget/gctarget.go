// Package gctarget sets the garbage collector's target from the message
// flow (docs/adr/0030). While messages move, the target is BusyPercent:
// the hot path allocates for every message, and a heap allowed to grow
// to three times what is live costs the collector less CPU per message
// (docs/adr/0010). Once no message has moved for RestAfter, it is
// RestPercent: an idle process allocates little, so a collection comes
// about as seldom either way, and the heap, with what deploying
// integrations left scattered in it, stays near what is live.
//
// The hot path's stages and the webhook ingress report what they move
// with Moved; the binary runs Follow unless GOGC is set.
package gctarget

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The targets, as GOGC percentages, and the pause that means rest.
const (
	BusyPercent = 200
	RestPercent = 50
	RestAfter   = time.Minute
	// checkEvery is how often Follow looks at the count.
	checkEvery = 5 * time.Second
)

// moved counts the messages this process took in or handled.
var moved atomic.Uint64

// Moved counts n messages taken in or handled by this process: one atomic
// addition, for the hot path.
func Moved(n int) { moved.Add(uint64(n)) }

// Follow sets the target to RestPercent, then keeps it at BusyPercent
// while messages move, until ctx ends.
func Follow(ctx context.Context) {
	tick := time.NewTicker(checkEvery)
	defer tick.Stop()
	var f follower
	target := RestPercent
	debug.SetGCPercent(target)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if want := f.target(moved.Load(), now); want != target {
				target = want
				debug.SetGCPercent(target)
			}
		}
	}
}

// follower decides the target from the count of moved messages.
type follower struct {
	seen     uint64
	lastMove time.Time // zero: nothing moved since the start
}

// target is the target at now, with count messages moved so far.
func (f *follower) target(count uint64, now time.Time) int {
	if count != f.seen {
		f.seen, f.lastMove = count, now
	}
	if !f.lastMove.IsZero() && now.Sub(f.lastMove) < RestAfter {
		return BusyPercent
	}
	return RestPercent
}

// Percent is the runtime's target now, as a GOGC percentage, read without
// changing it.
func Percent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}
