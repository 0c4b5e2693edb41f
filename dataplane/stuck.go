package dataplane

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// A node cut off from the rest of its cluster still answers its clients'
// pings, so a connection to it stays connected while every store through
// it waits for a PubAck that never comes (docs/nats.md, the partition
// test). A store whose deadline passed therefore moves its connection to
// another node of the cluster — at most once per leaveEvery per
// connection, so a burst of timeouts reconnects once.

// leaveEvery bounds how often one connection is moved.
const leaveEvery = 5 * time.Second

// left holds, per connection, when it was last moved (UnixNano).
var left sync.Map // *nats.Conn → *atomic.Int64

// leaveStuckNode reconnects nc to another server of its cluster, unless it
// did so within leaveEvery or is not connected (it is moving already).
func leaveStuckNode(nc *nats.Conn) {
	if nc == nil || nc.Status() != nats.CONNECTED {
		return
	}
	now := time.Now().UnixNano()
	v, _ := left.LoadOrStore(nc, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	if now-prev < int64(leaveEvery) || !last.CompareAndSwap(prev, now) {
		return
	}
	forgetClosed()
	_ = nc.ForceReconnect()
}

// forgetClosed drops the closed connections from left.
func forgetClosed() {
	left.Range(func(k, _ any) bool {
		if k.(*nats.Conn).IsClosed() {
			left.Delete(k)
		}
		return true
	})
}
