package hotpath

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// batches feeds a stage from a durable pull consumer: JetStream pushes into a
// bounded channel and workers take whatever is waiting, up to a batch, so
// batches grow under load and stay at one message when idle.
type batches struct {
	cc   jetstream.ConsumeContext
	msgs chan jetstream.Msg
	// moved is set when a message arrives; the lag reporter clears it.
	moved atomic.Bool
}

// pullHeartbeat is how often the server signals a waiting pull request
// (nats.go's default is 15 s); two missed ones make the client pull again.
// An idle stage costs one small message per pullHeartbeat, so it is what an
// idle integration mostly costs: 1 s made 1,000 idle integrations cost
// half a core (docs/benchmarks.md, "Scale").
const pullHeartbeat = 5 * time.Second

// consumeBatches starts feeding a stage from c. Errors the consumer reports
// (a missed heartbeat, a reconnect) are logged: the client recovers from
// them on its own.
//
// Under overload the server can be left without the client's pull request
// while the client still counts on it (nats.go#1622): nothing is delivered
// until the client notices the missing heartbeats and pulls again. The
// default heartbeat (15 s, so 30 s without messages) is shortened to
// pullHeartbeat (so at most 10 s).
func consumeBatches(c jetstream.Consumer, buffer int, log *slog.Logger) (*batches, error) {
	b := &batches{msgs: make(chan jetstream.Msg, buffer)}
	cc, err := c.Consume(func(m jetstream.Msg) { b.moved.Store(true); b.msgs <- m }, jetstream.PullMaxMessages(buffer),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			log.Warn("stage consumer reported an error", "error", err)
		}))
	if err != nil {
		return nil, err
	}
	b.cc = cc
	return b, nil
}

// next blocks for one message, then adds what is already waiting, up to max.
// It returns nil once the source is drained and closed.
func (b *batches) next(buf []jetstream.Msg, max int) []jetstream.Msg {
	buf = buf[:0]
	m, ok := <-b.msgs
	if !ok {
		return nil
	}
	buf = append(buf, m)
	for len(buf) < max {
		select {
		case m, ok := <-b.msgs:
			if !ok {
				return buf
			}
			buf = append(buf, m)
		default:
			return buf
		}
	}
	return buf
}

// drain stops pulling; messages already received still reach the workers,
// which finish and ack them before next returns nil.
func (b *batches) drain() {
	b.cc.Drain()
	<-b.cc.Closed()
	close(b.msgs)
}

// stage runs workers over a batch source until it is drained.
type stage struct {
	src *batches
	wg  sync.WaitGroup
}

func runStage(src *batches, workers, maxBatch int, handle func([]jetstream.Msg)) *stage {
	s := &stage{src: src}
	for range workers {
		s.wg.Go(func() {
			buf := make([]jetstream.Msg, 0, maxBatch)
			for {
				buf = src.next(buf, maxBatch)
				if len(buf) == 0 {
					return
				}
				handle(buf)
			}
		})
	}
	return s
}

// stop drains the source and waits for the workers to finish their batches.
func (s *stage) stop() {
	s.src.drain()
	s.wg.Wait()
}
