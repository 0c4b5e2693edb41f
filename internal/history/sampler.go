// Package history keeps the metrics history the API serves
// (GET /v1/integrations/{id}/metrics): a sampler that, every few seconds,
// writes one row per running integration to PostgreSQL, and prunes rows
// older than the retention. It reads an integration's stage counters where
// the platform already keeps them (its JetStream consumers, the counts
// bucket, its tenant's DLQ stream) and its end-to-end latency histogram
// (the counts bucket, where its runners add theirs up), with the latency
// percentiles of the interval since the previous read; but only when they
// can have moved (moved.go): an idle integration costs no JetStream
// request of its own, and its row repeats its last counters.
//
// It only reads the data plane's counters: it never touches a message,
// never acks, and never writes to NATS.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/store"
)

// Defaults.
const (
	// DefaultInterval is how often the sampler samples.
	DefaultInterval = 10 * time.Second
	// pruneEvery is how often it removes samples past the retention.
	pruneEvery = time.Minute
	// readTimeout bounds one integration's counter reads.
	readTimeout = 5 * time.Second
)

// Sampler samples the running integrations' counters into the store. Its
// zero value is not usable: set State, Accounts and Store.
type Sampler struct {
	// State is the hot path's state in the platform account: the desired
	// state says which integrations run, the counts bucket holds what
	// stages finished without a consumer of their own and the failed
	// attempts.
	State *dataplane.State
	// Accounts gives each tenant's JetStream, where its streams live.
	Accounts dataplane.Accounts
	Store    *store.Store
	// Interval is how often to sample (0: DefaultInterval); Retention how
	// long samples are kept (0: store.HistoryRetention).
	Interval  time.Duration
	Retention time.Duration
	// FullReadEvery is how long an integration that did not move goes at
	// most without a full read of its counters (0: DefaultFullReadEvery).
	FullReadEvery time.Duration
	// QuietListEvery is how long a tenant none of whose integrations
	// moved goes at most without a listing of its streams (0:
	// DefaultQuietListEvery).
	QuietListEvery time.Duration
	Logger         *slog.Logger

	mu      sync.Mutex
	running map[string]dataplane.Pipeline // desired-state key → pipeline
	// latencies is each running integration's latency histogram as last
	// read (desired-state key → histogram): the next read's growth over it
	// is the interval's.
	latencies map[string]dataplane.Latencies
	// last is each running integration's last full read (desired-state
	// key → read); dlqMarks each tenant's DLQ stream as last listed.
	last     map[string]*lastRead
	dlqMarks map[string]streamMark
	// listed is when each tenant's streams were last listed.
	listed map[string]time.Time
	// moved marks the integrations whose counts-bucket keys or desired
	// state changed since the last sample; watching says the counts
	// bucket is watched (otherwise every sample reads everything).
	moved    map[string]bool
	watching bool
}

// lastRead is an integration's last full read.
type lastRead struct {
	// sample holds its counters (no percentiles).
	sample store.Sample
	// mark is its stream as listed before that read; marked is false for
	// a read without a listing (the first sample of a new integration).
	mark   streamMark
	marked bool
	// due is when it is read in full even if nothing moved.
	due time.Time
}

// Run samples every Interval until ctx ends, then returns nil; it returns
// an error only when it cannot follow the desired state at all.
func (s *Sampler) Run(ctx context.Context) error {
	// The counts watch starts before any read, so no change after a read
	// goes unseen; a watch that could not start, or ended, is started
	// again at the next tick.
	var stopWatch func()
	defer func() {
		if stopWatch != nil {
			stopWatch()
		}
	}()
	watch := func() {
		if stopWatch != nil && s.isWatching() {
			return
		}
		if stopWatch != nil {
			stopWatch()
			stopWatch = nil
		}
		stop, err := s.watchCounts(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger().Warn("every integration's counters are read at every sample until the counts bucket is watched", "error", err)
			}
			return
		}
		stopWatch = stop
	}
	watch()
	w, err := s.State.Desired.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch desired state: %w", err)
	}
	defer func() { _ = w.Stop() }()
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.Updates():
			if !ok {
				return errors.New("the desired-state watch ended")
			}
			if p, started := s.follow(entry); started {
				// Its counters from before any message moved: without this
				// first sample, what it takes before the next tick would
				// never show as a rate.
				s.sampleOne(ctx, p)
			}
		case <-tick.C:
			watch()
			if _, err := s.Sample(ctx); err != nil && ctx.Err() == nil {
				s.logger().Warn("metrics sample not written", "error", err)
			}
			if time.Since(lastPrune) >= pruneEvery {
				lastPrune = time.Now()
				if _, err := s.Store.PruneSamples(ctx, time.Now().Add(-s.retention())); err != nil && ctx.Err() == nil {
					s.logger().Warn("metrics samples not pruned", "error", err)
				}
			}
		}
	}
}

func (s *Sampler) retention() time.Duration {
	if s.Retention > 0 {
		return s.Retention
	}
	return store.HistoryRetention
}

func (s *Sampler) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// follow applies one desired-state change (nil marks the end of the
// initial values); it reports a pipeline that starts running.
func (s *Sampler) follow(entry jetstream.KeyValueEntry) (dataplane.Pipeline, bool) {
	if entry == nil {
		return dataplane.Pipeline{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = make(map[string]dataplane.Pipeline)
	}
	var d dataplane.Desired
	if entry.Operation() == jetstream.KeyValuePut && json.Unmarshal(entry.Value(), &d) == nil &&
		d.Status == dataplane.DesiredRunning && d.Pipeline().Validate() == nil {
		_, known := s.running[entry.Key()]
		s.running[entry.Key()] = d.Pipeline()
		if known { // a new version may have new stages
			if s.moved == nil {
				s.moved = make(map[string]bool)
			}
			s.moved[entry.Key()] = true
		}
		return d.Pipeline(), !known
	}
	delete(s.running, entry.Key())
	delete(s.latencies, entry.Key())
	delete(s.last, entry.Key())
	return dataplane.Pipeline{}, false
}

// sampleOne writes one sample of p now.
func (s *Sampler) sampleOne(ctx context.Context, p dataplane.Pipeline) {
	x, err := s.read(ctx, p)
	if err == nil {
		x.At = time.Now().UTC()
		s.remember(p, x, streamMark{}, false)
		_, err = s.Store.WriteSamples(ctx, []store.Sample{x})
	}
	if err != nil && ctx.Err() == nil {
		s.logger().Warn("first metrics sample not written", "tenant", p.Tenant, "integration", p.Integration, "error", err)
	}
}

// Running lists the integrations the sampler samples.
func (s *Sampler) Running() []dataplane.Pipeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]dataplane.Pipeline, 0, len(s.running))
	for _, p := range s.running {
		out = append(out, p)
	}
	return out
}

// Sample writes one row per running integration, all at one moment, and
// returns how many were written. It reads the counters of the
// integrations that can have moved since their last read (moved.go), and
// of those whose full read is due; the others' rows repeat their last
// counters, without percentiles (nothing was delivered). An integration
// whose counters cannot be read, or whose tenant's streams cannot be
// listed, is left out of this sample (and logged).
func (s *Sampler) Sample(ctx context.Context) (int, error) {
	at := time.Now().UTC()
	moved, watching := s.takeMoved()
	tenants := make(map[string][]dataplane.Pipeline)
	for _, p := range s.Running() {
		tenants[p.Tenant] = append(tenants[p.Tenant], p)
	}
	var samples []store.Sample
	for tenant, ps := range tenants {
		xs, err := s.sampleTenant(ctx, tenant, ps, at, moved, watching)
		if err != nil {
			return 0, err
		}
		samples = append(samples, xs...)
	}
	s.mu.Lock()
	for tenant := range s.dlqMarks {
		if _, ok := tenants[tenant]; !ok {
			delete(s.dlqMarks, tenant)
		}
	}
	for tenant := range s.listed {
		if _, ok := tenants[tenant]; !ok {
			delete(s.listed, tenant)
		}
	}
	s.mu.Unlock()
	return s.Store.WriteSamples(ctx, samples)
}

// sampleTenant returns the samples of one tenant's running integrations
// ps at at; its error is ctx's only.
func (s *Sampler) sampleTenant(ctx context.Context, tenant string, ps []dataplane.Pipeline, at time.Time, moved map[string]bool, watching bool) ([]store.Sample, error) {
	if watching {
		if out, ok := s.quietTenant(tenant, ps, at, moved); ok {
			return out, nil
		}
	}
	listCtx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	js, err := s.Accounts.JetStream(listCtx, tenant)
	var marks map[string]streamMark
	if err == nil {
		marks, err = tenantMarks(listCtx, js, tenant)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.logger().Warn("metrics of a tenant's integrations not read", "tenant", tenant, "integrations", len(ps), "error", err)
		for _, p := range ps { // what moved meanwhile is no longer marked
			s.readAgain(p)
		}
		return nil, nil
	}
	s.mu.Lock()
	if s.listed == nil {
		s.listed = make(map[string]time.Time)
	}
	s.listed[tenant] = at
	s.mu.Unlock()
	// The DLQ moved: whose dead letters changed (nil: it did not move).
	dlqMark := marks[dataplane.DLQStream(tenant)]
	dlqMark.consumers = 0 // a reader of the DLQ changes none of its counts
	s.mu.Lock()
	before, known := s.dlqMarks[tenant]
	s.mu.Unlock()
	var dead map[string]uint64
	dlqRead := true
	if !known || before != dlqMark {
		if dead, err = deadLetters(listCtx, js, tenant); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.logger().Warn("dead letters of a tenant not read", "tenant", tenant, "error", err)
			dlqRead = false
		}
	}
	var out []store.Sample
	for _, p := range ps {
		mark := marks[p.Stream()]
		if x, ok := s.unmoved(p, mark, at, watching && dlqRead && !moved[p.Key()], dead); ok {
			out = append(out, x)
			continue
		}
		x, err := s.read(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			s.logger().Warn("metrics of an integration not read", "tenant", p.Tenant, "integration", p.Integration, "error", err)
			s.readAgain(p)
			continue
		}
		x.At = at
		s.remember(p, x, mark, true)
		out = append(out, x)
	}
	if dlqRead {
		s.mu.Lock()
		if s.dlqMarks == nil {
			s.dlqMarks = make(map[string]streamMark)
		}
		s.dlqMarks[tenant] = dlqMark
		s.mu.Unlock()
	}
	return out, nil
}

// unmoved returns p's last counters at at when nothing says they moved:
// quiet (its counts-bucket keys and desired state did not change, and
// the watch of the first ran all along), its stream's mark is the one
// listed before its last read, its dead letters, when dead holds the
// tenant's (its DLQ moved), are the ones it last read, and its full read
// is not due.
func (s *Sampler) unmoved(p dataplane.Pipeline, mark streamMark, at time.Time, quiet bool, dead map[string]uint64) (store.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.last[p.Key()]
	if r == nil || !quiet || !r.marked || r.mark != mark || !at.Before(r.due) {
		return store.Sample{}, false
	}
	if dead != nil && int64(dead[p.DLQSubject()]) != r.sample.DLQ { //nolint:gosec // a count of dead letters fits in int64
		return store.Sample{}, false
	}
	x := r.sample
	x.At = at
	return x, true
}

// remember keeps x, read at x.At after p's stream was listed as mark
// (marked: false when it was not), as p's last full read. The first
// listed read of an integration sets its next full read at a random
// moment within FullReadEvery, so integrations that all start at once do
// not all fall due on one tick; the following ones FullReadEvery later.
func (s *Sampler) remember(p dataplane.Pipeline, x store.Sample, mark streamMark, marked bool) {
	every := s.FullReadEvery
	if every <= 0 {
		every = DefaultFullReadEvery
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = make(map[string]*lastRead)
	}
	x.P50, x.P99 = nil, nil
	due := x.At.Add(every)
	if before := s.last[p.Key()]; marked && (before == nil || !before.marked) {
		due = x.At.Add(1 + rand.N(every))
	}
	s.last[p.Key()] = &lastRead{sample: x, mark: mark, marked: marked, due: due}
}

// readAgain makes the next sample read p in full.
func (s *Sampler) readAgain(p dataplane.Pipeline) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.last[p.Key()]; r != nil {
		r.due = time.Time{}
	}
}

// read returns p's counters as a sample: in counts what entered the
// process stage (finished, waiting or in flight there), out what the
// producers' deliveries finished, errors the failed attempts, DLQ the
// dead letters waiting, and P50 and P99 the latency percentiles of the
// deliveries since the previous read (nil when there were none, or on the
// first read, which only sets where the next one starts).
func (s *Sampler) read(ctx context.Context, p dataplane.Pipeline) (store.Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	js, err := s.Accounts.JetStream(ctx, p.Tenant)
	if err != nil {
		return store.Sample{}, err
	}
	stages, dead, err := dataplane.Counters(ctx, js, s.State.Counts, p)
	if err != nil {
		return store.Sample{}, err
	}
	failed, err := dataplane.ReadFailures(ctx, s.State.Counts, p)
	if err != nil {
		return store.Sample{}, err
	}
	x := store.Sample{TenantID: p.Tenant, IntegrationID: p.Integration, Errors: int64(failed), DLQ: int64(dead)}
	for _, st := range stages {
		switch {
		case st.Stage == dataplane.StageProcess:
			x.In += int64(st.Acked) + int64(st.Pending) + int64(st.InFlight)
		case strings.HasPrefix(st.Stage, dataplane.DeliverStage("")):
			x.Out += int64(st.Acked)
		}
	}
	x.P50, x.P99 = s.percentiles(ctx, p)
	return x, nil
}

// percentiles reads p's latency histogram and returns the median and
// 99th percentile, in milliseconds, of what it counted since the previous
// read. A histogram that cannot be read leaves them nil (and is logged):
// the counters are sampled all the same.
func (s *Sampler) percentiles(ctx context.Context, p dataplane.Pipeline) (p50, p99 *float64) {
	now, err := dataplane.ReadLatencies(ctx, s.State.Counts, p)
	if err != nil {
		if ctx.Err() == nil {
			s.logger().Warn("latencies of an integration not read", "tenant", p.Tenant, "integration", p.Integration, "error", err)
		}
		return nil, nil
	}
	s.mu.Lock()
	if s.latencies == nil {
		s.latencies = make(map[string]dataplane.Latencies)
	}
	before, known := s.latencies[p.Key()]
	s.latencies[p.Key()] = now
	s.mu.Unlock()
	if !known {
		return nil, nil
	}
	interval := now.Since(before)
	return millis(interval.Quantile(0.5)), millis(interval.Quantile(0.99))
}

func millis(d time.Duration, ok bool) *float64 {
	if !ok {
		return nil
	}
	ms := float64(d) / float64(time.Millisecond)
	return &ms
}
