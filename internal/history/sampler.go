// Package history keeps the metrics history the API serves
// (GET /v1/integrations/{id}/metrics): a sampler that, every few seconds,
// reads each running integration's stage counters where the platform
// already keeps them (its JetStream consumers, the counts bucket, its
// tenant's DLQ stream) and its end-to-end latency histogram (the counts
// bucket, where its runners add theirs up), and writes one row per
// integration to PostgreSQL with the latency percentiles of the interval
// since the previous read, and prunes rows older than the retention.
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
	Logger    *slog.Logger

	mu      sync.Mutex
	running map[string]dataplane.Pipeline // desired-state key → pipeline
	// latencies is each running integration's latency histogram as last
	// read (desired-state key → histogram): the next read's growth over it
	// is the interval's.
	latencies map[string]dataplane.Latencies
}

// Run samples every Interval until ctx ends, then returns nil; it returns
// an error only when it cannot follow the desired state at all.
func (s *Sampler) Run(ctx context.Context) error {
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
		return d.Pipeline(), !known
	}
	delete(s.running, entry.Key())
	delete(s.latencies, entry.Key())
	return dataplane.Pipeline{}, false
}

// sampleOne writes one sample of p now.
func (s *Sampler) sampleOne(ctx context.Context, p dataplane.Pipeline) {
	x, err := s.read(ctx, p)
	if err == nil {
		x.At = time.Now().UTC()
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

// Sample reads every running integration's counters once and writes them,
// one row each, all at one moment. An integration whose counters cannot
// be read is left out of this sample (and logged). It returns how many
// rows were written.
func (s *Sampler) Sample(ctx context.Context) (int, error) {
	at := time.Now().UTC()
	var samples []store.Sample
	for _, p := range s.Running() {
		x, err := s.read(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			s.logger().Warn("metrics of an integration not read", "tenant", p.Tenant, "integration", p.Integration, "error", err)
			continue
		}
		x.At = at
		samples = append(samples, x)
	}
	return s.Store.WriteSamples(ctx, samples)
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
