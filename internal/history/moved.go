package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/store"
)

// What tells the sampler that an integration's counters may have moved,
// without reading them:
//
//   - its work-queue stream's state: a message taken in raises LastSeq, a
//     message a stage acks (or dead-letters) leaves the stream, so a stage's
//     acknowledged count never grows without Msgs or FirstSeq changing; a
//     consumer made or removed changes Consumers. One paged stream listing
//     per tenant gives every one of its streams' states, its DLQ's too.
//   - its keys in the counts bucket: what a stage finished without its
//     consumer, the failed attempts and the latency histogram change only
//     there. One watch of the whole bucket, headers only, marks the
//     integrations whose keys were written; idle, it receives nothing.
//   - its tenant's DLQ: when the DLQ stream's state changed, one read of
//     its per-subject counts says whose dead letters changed.
//   - its desired state: a new version may bring new stages.
//
// An integration none of these moved is not read again; it is read in
// full at least every FullReadEvery all the same.
//
// Runners write to the counts bucket whenever an integration's process
// stage takes messages (dataplane.TakenCount), fails or delivers one, so
// the watch sees every integration a runner moves. What no runner sees —
// messages waiting in a stream no runner consumes, dead letters removed
// through the API — only the stream listing shows: a tenant none of whose
// integrations the watch marked is listed once per QuietListEvery rather
// than at every tick, which is most of the cost of an idle platform's
// history.

// DefaultQuietListEvery is how long a tenant none of whose integrations
// moved goes at most without a listing of its streams.
const DefaultQuietListEvery = time.Minute

// DefaultFullReadEvery is how long an integration that did not move goes
// at most without a full read of its counters.
const DefaultFullReadEvery = 15 * time.Minute

// streamMark is what the sampler compares of a stream's state between two
// ticks. The zero value is a stream that does not exist.
type streamMark struct {
	exists bool
	// created tells a stream made anew from the one before it.
	created             int64
	msgs, bytes         uint64
	firstSeq, lastSeq   uint64
	consumers, nDeleted int
}

func markOf(info *jetstream.StreamInfo) streamMark {
	st := info.State
	return streamMark{exists: true, created: info.Created.UnixNano(), msgs: st.Msgs, bytes: st.Bytes,
		firstSeq: st.FirstSeq, lastSeq: st.LastSeq, consumers: st.Consumers, nDeleted: st.NumDeleted}
}

// tenantMarks lists the tenant's streams (its integrations' and its DLQ)
// in one paged request and returns their marks by stream name.
func tenantMarks(ctx context.Context, js jetstream.JetStream, tenant string) (map[string]streamMark, error) {
	marks := make(map[string]streamMark)
	// The filter keeps other tenants' streams out where tenants share an
	// account; in a tenant's own account it matches all its streams.
	streams := js.ListStreams(ctx, jetstream.WithStreamListSubject("vrsky."+tenant+".>"))
	for info := range streams.Info() {
		if dataplane.IsTenantStream(tenant, info.Config.Name) {
			marks[info.Config.Name] = markOf(info)
		}
	}
	if err := streams.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return nil, fmt.Errorf("list the streams of %s: %w", tenant, err)
	}
	return marks, nil
}

// deadLetters reads how many dead letters the tenant's DLQ holds per
// integration's DLQ subject.
func deadLetters(ctx context.Context, js jetstream.JetStream, tenant string) (map[string]uint64, error) {
	dlq, err := js.Stream(ctx, dataplane.DLQStream(tenant))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return map[string]uint64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the DLQ of %s: %w", tenant, err)
	}
	info, err := dlq.Info(ctx, jetstream.WithSubjectFilter(dataplane.DLQSubjects(tenant)))
	if err != nil {
		return nil, fmt.Errorf("read the DLQ of %s: %w", tenant, err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}, nil
	}
	return info.State.Subjects, nil
}

// watchCounts starts marking the integrations whose keys in the counts
// bucket are written from now on. Until it runs, and after it ends, every
// sample reads every integration; so does the first sample after it
// starts, since what was written before it went unmarked. stop ends it
// and waits for it.
func (s *Sampler) watchCounts(ctx context.Context) (stop func(), err error) {
	w, err := s.State.Counts.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("watch the counts bucket: %w", err)
	}
	s.mu.Lock()
	s.watching = true
	for _, r := range s.last {
		r.marked = false
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for entry := range w.Updates() {
			if entry == nil {
				continue
			}
			if key, ok := pipelineKey(entry.Key()); ok {
				s.markMoved(key)
			}
		}
		s.mu.Lock()
		s.watching = false
		s.mu.Unlock()
	}()
	return func() { _ = w.Stop(); <-done }, nil
}

// pipelineKey returns the desired-state key ("<tenant>.<integration>") of
// a counts-bucket key ("<tenant>.<integration>.<stage>").
func pipelineKey(countKey string) (string, bool) {
	tenant, rest, ok := strings.Cut(countKey, ".")
	if !ok || tenant == "" {
		return "", false
	}
	integration, _, ok := strings.Cut(rest, ".")
	if !ok || integration == "" {
		return "", false
	}
	return tenant + "." + integration, true
}

func (s *Sampler) isWatching() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watching
}

func (s *Sampler) markMoved(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.moved == nil {
		s.moved = make(map[string]bool)
	}
	s.moved[key] = true
}

// takeMoved returns the integrations marked since the last call and
// whether the counts watch runs.
func (s *Sampler) takeMoved() (map[string]bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	moved := s.moved
	s.moved = nil
	return moved, s.watching
}

// quietTenant returns the samples of tenant's integrations ps at at
// without listing its streams, when the counts watch runs (the caller
// checks) and says none of them moved, every one was read after a
// listing and is not due for a full read, and the tenant was listed
// within QuietListEvery: each repeats its last counters.
func (s *Sampler) quietTenant(tenant string, ps []dataplane.Pipeline, at time.Time, moved map[string]bool) ([]store.Sample, bool) {
	every := s.QuietListEvery
	if every <= 0 {
		every = DefaultQuietListEvery
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if listed, ok := s.listed[tenant]; !ok || at.Sub(listed) >= every {
		return nil, false
	}
	out := make([]store.Sample, 0, len(ps))
	for _, p := range ps {
		r := s.last[p.Key()]
		if moved[p.Key()] || r == nil || !r.marked || !at.Before(r.due) {
			return nil, false
		}
		x := r.sample
		x.At = at
		out = append(out, x)
	}
	return out, true
}
