package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"
)

// ScalePhase is one measured load phase of the scale scenario, over the
// active integrations (the flooding tenant's apart). Rates are per second,
// latencies in milliseconds (intended send time to arrival in the tenant's
// sink file), counts over the measured window, tallied per integration at
// the sinks.
type ScalePhase struct {
	Name          string  `json:"name"` // phaseQuiet, phaseOne or phaseFlood
	OfferedRate   float64 `json:"offered_rate"`
	SustainedRate float64 `json:"sustained_rate"`
	P50           float64 `json:"p50_ms"`
	P99           float64 `json:"p99_ms"`
	P999          float64 `json:"p999_ms"`
	Max           float64 `json:"max_ms"`
	Mean          float64 `json:"mean_ms"`

	Sent           int64            `json:"sent"`
	Errors         int64            `json:"errors"`
	ErrorsByStatus map[string]int64 `json:"errors_by_status,omitempty"`
	Expected       int64            `json:"expected"`
	Delivered      int64            `json:"delivered"`
	Lost           int64            `json:"lost"`
	Duplicates     int64            `json:"duplicates"`
	Unexpected     int64            `json:"unexpected"`
	Malformed      int64            `json:"malformed_lines"`
	Unknown        int64            `json:"unknown_seqs"`
	// IntegrationsWithLoss counts the active integrations that lost at
	// least one message.
	IntegrationsWithLoss int     `json:"integrations_with_loss"`
	DrainSeconds         float64 `json:"drain_s"`

	// Processes are the stack and the runners from the first measured
	// intended send time to the end of the drain.
	Processes []ProcessUse `json:"processes"`
	// Integrations are the counts of each active integration.
	Integrations []IntegrationCount `json:"integrations"`
	// Flood is the flooding tenant's integration, in the phase with it.
	Flood *IntegrationCount `json:"flood,omitempty"`
}

// IntegrationCount is one integration's counts in a load phase.
type IntegrationCount struct {
	Tenant         string           `json:"tenant"`
	Integration    string           `json:"integration"`
	OfferedRate    float64          `json:"offered_rate"`
	Sent           int64            `json:"sent"`
	Errors         int64            `json:"errors"`
	ErrorsByStatus map[string]int64 `json:"errors_by_status,omitempty"`
	Delivered      int64            `json:"delivered"`
	Lost           int64            `json:"lost"`
	Duplicates     int64            `json:"duplicates"`
	P99            float64          `json:"p99_ms"`
}

// The scale scenario's load phases, in the order they run, and the key
// each phase's messages carry so that none is taken for another phase's
// duplicate.
const (
	phaseQuiet = "quiet"           // the rate spread over the active integrations
	phaseOne   = "one integration" // the same rate on the first of them alone
	phaseFlood = "with flood"      // the spread rate beside a flooding tenant
)

var phaseKeys = map[string]string{phaseQuiet: "q", phaseOne: "o", phaseFlood: "f"}

// phaseResult is a phase with what only the run's report uses.
type phaseResult struct {
	ScalePhase
	ack        Latencies
	loadgenCPU time.Duration
}

// scaleLoad is one integration's load in a phase.
type scaleLoad struct {
	it    *scaleIntegration
	rate  float64
	sched Schedule
	sink  *Collector
	load  *Load
}

// newScaleLoad prepares the load of it at rate starting at t0, keyed by
// phase so that a phase's messages are never taken for another's
// duplicates.
func (s *scaleRun) newScaleLoad(it *scaleIntegration, phase string, rate float64, t0 time.Time, workers int) *scaleLoad {
	cfg := s.cfg
	sched := Schedule{
		T0:       t0,
		Rate:     rate,
		Warmup:   int64(cfg.Warmup.Seconds() * rate),
		Measured: max(int64(cfg.Duration.Seconds()*rate), 1),
	}
	return &scaleLoad{it: it, rate: rate, sched: sched, sink: NewCollector(sched, nil),
		load: &Load{URL: s.webhookURL(it), KeyPrefix: keyPrefix(cfg, it.name+"-"+phase+"-"), Size: cfg.Size, Workers: workers, Batch: cfg.Batch}}
}

// webhookURL is where it takes messages in.
func (s *scaleRun) webhookURL(it *scaleIntegration) string {
	return "http://" + s.stack.Endpoints.HTTP + "/v1/hooks/" + it.tenant + "/" + it.name
}

// sinkDir is where it's file producer writes (see IntegrationSpec).
func (s *scaleRun) sinkDir(it *scaleIntegration) string {
	return filepath.Join(s.stack.DataDir, "files", it.tenant, "bench", it.name)
}

// loadPhase sends the offered rate round-robin over active — message k to
// active[k mod len(active)], at its intended time T0 + k/rate — and, when
// flood is not nil, the flood rate to flood beside it; waits for the sinks
// to drain; and tallies the phase.
func (s *scaleRun) loadPhase(ctx context.Context, name string, active []*scaleIntegration, flood *scaleIntegration) (*phaseResult, error) {
	cfg := s.cfg
	n := len(active)
	perRate := cfg.Rate / float64(n)
	workers := max(cfg.Workers/n, 2)
	probe := &runner{client: s.http}
	for _, it := range append(active[:n:n], flood) {
		if it != nil {
			if err := probe.waitIngress(ctx, s.webhookURL(it)); err != nil {
				return nil, err
			}
		}
	}
	t0 := time.Now().Add(scaleLoadStart)
	key := phaseKeys[name]
	loads := make([]*scaleLoad, 0, n+1)
	for i, it := range active {
		loads = append(loads, s.newScaleLoad(it, key, perRate, t0.Add(time.Duration(float64(i)*float64(time.Second)/cfg.Rate)), workers))
	}
	var floodLoad *scaleLoad
	if flood != nil {
		floodLoad = s.newScaleLoad(flood, key, cfg.Scale.FloodTenantRate, t0, max(cfg.Workers/4, 2))
		loads = append(loads, floodLoad)
	}
	dirs := make(map[string]*Collector, len(loads))
	for _, l := range loads {
		dirs[s.sinkDir(l.it)] = l.sink
	}
	fmt.Fprintf(cfg.Progress, "load %s: %.0f msgs/s over %d integrations of %d tenants%s, %s warm-up + %s measured, %d-byte messages…\n",
		name, cfg.Rate, n, distinctTenants(active), floodNote(flood, cfg.Scale.FloodTenantRate), cfg.Warmup, cfg.Duration, cfg.Size)

	bg, stopBG := context.WithCancel(ctx)
	var bgWG sync.WaitGroup
	defer func() { stopBG(); bgWG.Wait() }()
	tail := NewTails(dirs, true)
	var tailErr error
	bgWG.Go(func() { tailErr = tail.Run(bg) })

	loadErrs := make([]error, len(loads))
	var loadWG sync.WaitGroup
	for i, l := range loads {
		loadWG.Go(func() { loadErrs[i] = l.load.Run(ctx, l.sched, l.sink) })
	}
	loadsDone := make(chan struct{})
	go func() { loadWG.Wait(); close(loadsDone) }()

	select {
	case <-time.After(time.Until(loads[0].sched.MeasuredStart())):
	case <-loadsDone:
		return nil, fmt.Errorf("load ended before the measured window: %w", errors.Join(loadErrs...))
	}
	w, err := beginWindow(s.processes(), 0)
	if err != nil {
		<-loadsDone
		return nil, err
	}
	var sampleErr error
	bgWG.Go(func() { sampleErr = w.sampleUntil(bg) })
	<-loadsDone
	if err := errors.Join(loadErrs...); err != nil {
		return nil, fmt.Errorf("send load: %w", err)
	}
	drain := drainMissing(ctx, func() int64 {
		var missing int64
		for _, l := range loads {
			missing += l.sink.Missing()
		}
		return missing
	})
	stopBG()
	bgWG.Wait()
	if err := errors.Join(tailErr, sampleErr); err != nil {
		return nil, err
	}
	res, err := w.end()
	if err != nil {
		return nil, err
	}
	quiet := loads[:n]
	out := tallyPhase(name, cfg.Rate, quiet)
	out.DrainSeconds = drain.Seconds()
	out.Processes = res.processes
	out.loadgenCPU = res.selfCPU
	if floodLoad != nil {
		c := integrationCount(floodLoad)
		out.Flood = &c
	}
	fmt.Fprintf(cfg.Progress, "load %s: sustained %.0f/s, p99 %.2f ms, sent %d, delivered %d, lost %d, duplicates %d, errors %d\n",
		name, out.SustainedRate, out.P99, out.Sent, out.Delivered, out.Lost, out.Duplicates, out.Errors)
	return out, nil
}

// tallyPhase sums the loads' counts, merges their latencies and computes
// the sustained rate over them all: distinct measured arrivals from the
// first measured intended send time to the last measured arrival.
func tallyPhase(name string, offered float64, loads []*scaleLoad) *phaseResult {
	out := &phaseResult{ScalePhase: ScalePhase{Name: name, OfferedRate: offered, ErrorsByStatus: map[string]int64{}}}
	arrivals := newHistogram()
	acks := newHistogram()
	var arrived int64
	var start, last time.Time
	for _, l := range loads {
		c := l.sink.Counts()
		out.Sent += c.Sent
		out.Errors += c.Errors
		for k, v := range c.ErrorsByStatus {
			out.ErrorsByStatus[k] += v
		}
		out.Expected += c.Expected
		out.Delivered += c.Delivered
		out.Lost += c.Lost
		out.Duplicates += c.Duplicates
		out.Unexpected += c.Unexpected
		out.Malformed += c.Malformed
		out.Unknown += c.Unknown
		if c.Lost > 0 {
			out.IntegrationsWithLoss++
		}
		out.Integrations = append(out.Integrations, integrationCount(l))
		l.sink.mergeArrivalsInto(arrivals)
		l.sink.mergeAcksInto(acks)
		n, at := l.sink.measuredArrivals()
		arrived += n
		if at.After(last) {
			last = at
		}
		if ms := l.sched.MeasuredStart(); start.IsZero() || ms.Before(start) {
			start = ms
		}
	}
	if len(out.ErrorsByStatus) == 0 {
		out.ErrorsByStatus = nil
	}
	lat := latencies(arrivals)
	out.P50, out.P99, out.P999, out.Max, out.Mean = lat.P50, lat.P99, lat.P999, lat.Max, lat.Mean
	out.ack = latencies(acks)
	out.SustainedRate = ratePerSecond(arrived, last.Sub(start))
	return out
}

// integrationCount is one load's counts.
func integrationCount(l *scaleLoad) IntegrationCount {
	c := l.sink.Counts()
	out := IntegrationCount{Tenant: l.it.tenant, Integration: l.it.name, OfferedRate: l.rate, Sent: c.Sent, Errors: c.Errors,
		Delivered: c.Delivered, Lost: c.Lost, Duplicates: c.Duplicates, P99: l.sink.ArrivalLatencies().P99}
	if len(c.ErrorsByStatus) > 0 {
		out.ErrorsByStatus = c.ErrorsByStatus
	}
	return out
}

// distinctTenants counts the tenants of items.
func distinctTenants(items []*scaleIntegration) int {
	seen := map[string]bool{}
	for _, it := range items {
		seen[it.tenant] = true
	}
	return len(seen)
}

func floodNote(flood *scaleIntegration, rate float64) string {
	if flood == nil {
		return ""
	}
	return fmt.Sprintf(" + %.0f msgs/s flooding %s/%s", rate, flood.tenant, flood.name)
}
