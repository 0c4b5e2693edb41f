package attack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Phases of the innocent tenant's load.
const (
	phaseBaseline = iota
	phaseAttack
	phaseDrain
)

// load is the innocent tenant's open-loop webhook traffic and what its
// receiver saw: every accepted message, every delivered one, and each
// delivery's latency from its intended send time, by phase.
type load struct {
	phase atomic.Int32

	mu        sync.Mutex
	accepted  map[int]bool
	delivered map[int]bool
	latencies [3][]time.Duration
	refused   map[int]int // status → count (non-202 answers)
}

func newLoad() *load {
	return &load{accepted: map[int]bool{}, delivered: map[int]bool{}, refused: map[int]int{}}
}

// onDelivery records a message the innocent tenant's receiver got.
func (l *load) onDelivery(_ string, body []byte) {
	var m struct {
		N    int   `json:"n"`
		Sent int64 `json:"sent"`
	}
	if json.Unmarshal(body, &m) != nil {
		return
	}
	lat := time.Since(time.Unix(0, m.Sent))
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.delivered[m.N] {
		return
	}
	l.delivered[m.N] = true
	ph := l.phase.Load()
	l.latencies[ph] = append(l.latencies[ph], lat)
}

// run offers rate messages a second to tenant/integration until ctx ends.
// Each is timed from its intended send time, so a stall is not hidden.
func (l *load) run(ctx context.Context, s *stack, tenant, integration string, rate int) {
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	for n := 0; ; n++ {
		due := start.Add(time.Duration(n) * interval)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(due)):
		}
		wg.Go(func() {
			body := fmt.Sprintf(`{"n":%d,"sent":%d}`, n, due.UnixNano())
			st, _, err := s.post(context.WithoutCancel(ctx), tenant, integration, []byte(body), "Idempotency-Key", fmt.Sprintf("load-%d", n))
			l.mu.Lock()
			defer l.mu.Unlock()
			switch {
			case err != nil:
				l.refused[0]++
			case st == http.StatusAccepted:
				l.accepted[n] = true
			default:
				l.refused[st]++
			}
		})
	}
}

// lost returns how many accepted messages were not delivered.
func (l *load) lost() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.accepted {
		if !l.delivered[id] {
			n++
		}
	}
	return n
}

func (l *load) counts() (accepted, delivered int, refused map[int]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := make(map[int]int, len(l.refused))
	for k, v := range l.refused {
		r[k] = v
	}
	return len(l.accepted), len(l.delivered), r
}

func (l *load) p99(phase int) (time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentile(l.latencies[phase], 0.99), len(l.latencies[phase])
}
