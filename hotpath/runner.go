// Package hotpath is VRSky's data-plane runtime: it runs integrations on
// NATS JetStream — stage consumers, ack discipline, retries, dead-lettering,
// runner membership and leases, metrics, and the reconciliation of the
// desired state written by the control plane. The names, stream and bucket
// setup, and the state it shares with the control plane are the contract in
// package dataplane, which hotpath imports and nothing else needs hotpath
// for.
//
// It never imports Temporal: the data plane keeps running when the control
// plane is down, and no message body ever leaves NATS and the blob store.
package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/logging"
)

// retryDegradedAfter is how long a runner waits before trying again to start
// a pipeline that failed to start.
const retryDegradedAfter = 5 * time.Second

// DefaultBuildTimeout bounds how long starting one pipeline (its streams,
// consumers and connectors) may take before it is reported degraded.
const DefaultBuildTimeout = 30 * time.Second

// abandonAfter is how long past its timeout a build that ignores its
// context is waited for before the runner stops waiting; the pipeline it
// may still return is stopped at once.
const abandonAfter = 5 * time.Second

// Runner reconciles the pipelines in the desired-state bucket with the ones
// running in this process and reports their status. Many runners can run at
// once: they register in RunnersBucket, and each pipeline runs on the
// runners rendezvous hashing assigns it to (one, or the spec's runners),
// which share its stages' messages through JetStream. When runners join or
// leave, the pipelines that change hands are drained where they ran and
// started where they now belong; their messages wait in their streams.
type Runner struct {
	// JS is the platform account's JetStream: desired state, status,
	// leases and message state.
	JS jetstream.JetStream
	// Accounts gives each tenant's JetStream, where its pipelines' streams
	// and its DLQ live; nil keeps every tenant in JS's account.
	Accounts dataplane.Accounts
	Catalog  *sdk.Catalog
	// Tenancy completes each connector's Env with its tenant's secrets,
	// allowed environment variables and egress policy; nil gives
	// connectors none of them.
	Tenancy sdk.Tenancy
	Claims  *dataplane.ClaimCheck
	Metrics *Metrics
	// FileRoot is the directory under which each tenant's file root
	// (FileRoot/<tenant>) lives; "" disables file connectors.
	FileRoot string
	// Name identifies this runner in status reports and the runner
	// registry; default the host name and process ID.
	Name   string
	Logger *slog.Logger
	// Backoff overrides the retry delays (tests); nil means Backoff.
	Backoff func(failedAttempts int) time.Duration
	// InfraBackoff overrides the redelivery delays after failures of
	// VRSky's own infrastructure (tests); nil means InfraBackoff.
	InfraBackoff func(deliveries int) time.Duration
	// BuildTimeout bounds the start of one pipeline; 0 means
	// DefaultBuildTimeout. Pipelines are built off the reconcile loop, so
	// a connector that hangs in Build delays only its own integration.
	BuildTimeout time.Duration
	// HotRatePerRunner is the messages per second one runner is expected
	// to take of one integration: above it a hot integration gets another
	// runner (hot.go); 0 means DefaultHotRatePerRunner.
	HotRatePerRunner float64
	// HotCooldown is how long a hot integration's rate must stay low
	// before it gives a runner back; 0 means DefaultHotCooldown.
	HotCooldown time.Duration

	running map[string]*pipeline
	// builds are the pipelines being started, by key.
	builds map[string]*build
	// desired is the newest desired state of each running-or-stopped
	// pipeline, so that a change of runners can be reconciled.
	desired map[string]jetstream.KeyValueEntry
	// members is this runner's view of the runners alive.
	members *membership
	// located is Accounts when it knows placements; placed are the
	// tenants' placements other than Shared, as this runner follows them.
	located dataplane.LocatedAccounts
	placed  map[string]dataplane.Placement
	// retiring tracks deleted pipelines' consumers releasing their sources.
	retiring sync.WaitGroup
}

// Run watches desired state until ctx ends, then stops every pipeline
// gracefully: consumers stop taking messages in, stages finish and ack what
// they hold.
func (r *Runner) Run(ctx context.Context) error {
	log := logging.Component(r.Logger, "runner")
	if r.Metrics == nil {
		r.Metrics = NewMetrics(nil)
	}
	if r.Name == "" {
		host, _ := os.Hostname()
		r.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	state, err := dataplane.OpenState(ctx, r.JS)
	if err != nil {
		return err
	}
	backoff := r.Backoff
	if backoff == nil {
		backoff = Backoff
	}
	leases, err := openLeases(ctx, r.JS, leaseTTL)
	if err != nil {
		return err
	}
	if r.Accounts == nil {
		r.Accounts = dataplane.SharedAccount{JS: r.JS}
	}
	placements, err := r.followPlacements(ctx)
	if err != nil {
		return err
	}
	if placements != nil {
		defer func() { _ = placements.Stop() }()
	}
	shared := startRunnerWork(r.Metrics) // stops after every pipeline (deferred calls run last to first)
	defer shared.stop()
	d := deps{
		shared: shared,
		leases: leases, runnerName: r.Name, leaseRefresh: leaseRefresh,
		state: state, backoff: backoff, infraBackoff: r.InfraBackoff,
		catalog: r.Catalog, tenancy: r.Tenancy, claims: r.Claims, metrics: r.Metrics, fileRoot: r.FileRoot, log: log,
		pub: &dataplane.Publisher{Accounts: r.Accounts, Claims: r.Claims},
	}
	registry, err := openRunners(ctx, r.JS)
	if err != nil {
		return err
	}
	r.members = newMembership(dataplane.RunnerKey(r.Name))
	r.startHot()
	peers, err := readRunners(ctx, registry, r.members)
	if err != nil {
		return err
	}
	defer func() { _ = peers.Stop() }()
	if err := register(ctx, registry, RunnerInfo{Name: r.Name}); err != nil {
		return fmt.Errorf("register runner: %w", err)
	}
	// Leaving: the others take this runner's pipelines over while it
	// drains them (deferred calls run last to first).
	defer r.stopAll(log)
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = registry.Delete(dctx, dataplane.RunnerKey(r.Name))
	}()
	beat := time.NewTicker(runnerBeat)
	defer beat.Stop()

	watcher, err := state.Desired.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch desired state: %w", err)
	}
	defer func() { _ = watcher.Stop() }()
	r.running = make(map[string]*pipeline)
	r.builds = make(map[string]*build)
	r.desired = make(map[string]jetstream.KeyValueEntry)
	built := make(chan buildResult)
	var building sync.WaitGroup
	defer building.Wait()   // builds in flight end with ctx
	defer r.retiring.Wait() // retirements end with ctx

	retry := make(chan string, 64)
	lc := loop{ctx: ctx, d: d, state: state, retry: retry, built: built, building: &building}
	var placementUpdates <-chan jetstream.KeyValueEntry // nil: every tenant is shared
	if placements != nil {
		placementUpdates = placements.Updates()
	}
	log.Info("runner watching desired state", "bucket", dataplane.DesiredStateBucket, "runner", r.Name, "runners", len(r.members.alive))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if err := register(ctx, registry, RunnerInfo{Name: r.Name, Pipelines: len(r.running), Hot: r.hotReport(time.Now())}); err != nil && ctx.Err() == nil {
				log.Warn("register runner", "error", err)
			}
			if r.members.expire(time.Now()) {
				r.rebalance(lc)
			}
			r.reconcileHot(lc)
		case e, ok := <-peers.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("runner registry watch closed")
			}
			if e != nil && r.members.apply(e) {
				r.rebalance(lc)
			}
			r.reconcileHot(lc)
		case key := <-retry:
			entry, err := state.Desired.Get(ctx, key)
			if err != nil {
				continue // deleted meanwhile
			}
			r.reconcile(lc, entry)
		case res := <-built:
			r.finishBuild(lc, res)
		case entry, ok := <-placementUpdates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("placements watch closed")
			}
			if entry != nil {
				r.placementChanged(lc, entry)
			}
		case entry, ok := <-watcher.Updates():
			if !ok {
				if ctx.Err() != nil { // the watch ends with ctx
					return nil
				}
				return errors.New("desired-state watch closed")
			}
			if entry != nil { // nil marks the end of the initial values
				r.reconcile(lc, entry)
			}
		}
	}
}

// followPlacements loads the tenants' placements, before any pipeline
// starts, and returns the watch that follows them; nil when Accounts does
// not know placements.
func (r *Runner) followPlacements(ctx context.Context) (jetstream.KeyWatcher, error) {
	r.placed = make(map[string]dataplane.Placement)
	located, ok := r.Accounts.(dataplane.LocatedAccounts)
	if !ok {
		return nil, nil
	}
	r.located = located
	kv, err := dataplane.OpenPlacements(ctx, r.JS)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch placements: %w", err)
	}
	for entry := range w.Updates() {
		if entry == nil { // the current values are loaded
			return w, nil
		}
		if p := dataplane.PlacementOf(entry); !p.AllShared() {
			r.placed[p.Tenant] = p
		}
	}
	_ = w.Stop()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errors.New("placements watch closed")
}

// loop is what the reconcile loop hands to each reconciliation.
type loop struct {
	ctx      context.Context
	d        deps
	state    *dataplane.State
	retry    chan<- string
	built    chan buildResult
	building *sync.WaitGroup
}

// build is a pipeline being started off the reconcile loop.
type build struct {
	// key is the desired-state key; loc where the pipeline is built.
	key    string
	loc    dataplane.Location
	want   dataplane.Desired
	cancel context.CancelFunc
	// recheck asks for the key to be reconciled again once built: the
	// placement changed while it was built.
	recheck bool
	// pending is the newest desired state that arrived while building; it
	// is reconciled once the build has ended, so that no two builds of one
	// key ever run at once and none leaves a pipeline behind.
	pending jetstream.KeyValueEntry
}

// buildResult is what a build sends back to the loop.
type buildResult struct {
	key string // the run key (runKey)
	pl  *pipeline
	err error
}

// reconcile brings one pipeline to its desired state, at every location
// its tenant's placement has it consumed.
func (r *Runner) reconcile(lc loop, entry jetstream.KeyValueEntry) {
	key := entry.Key()
	if r.waitForBuilds(key, entry) {
		return
	}
	if entry.Operation() != jetstream.KeyValuePut {
		r.remove(lc, entry)
		return
	}
	var want dataplane.Desired
	if err := json.Unmarshal(entry.Value(), &want); err != nil || want.Pipeline().Validate() != nil || want.Pipeline().Key() != key {
		lc.d.log.Error("ignoring malformed desired state", "key", key, "error", err)
		return
	}
	r.desired[key] = entry
	for _, loc := range allLocations {
		r.reconcileAt(lc, want, loc)
	}
}

// waitForBuilds reports whether a build of key is in flight at some
// location; entry is then reconciled once the build has ended, and a
// build of anything else than entry asks for is cancelled.
func (r *Runner) waitForBuilds(key string, entry jetstream.KeyValueEntry) bool {
	waiting := false
	for _, loc := range allLocations {
		b := r.builds[runKey(key, loc)]
		if b == nil {
			continue
		}
		waiting = true
		if b.pending == nil && entry.Operation() == jetstream.KeyValuePut && sameWant(entry, b.want) && r.consumes(b.want.Tenant, loc) {
			b.recheck = true // what it builds is still wanted; other locations are looked at after it
			continue
		}
		b.cancel()
		b.pending = entry
	}
	return waiting
}

// remove stops a deleted pipeline wherever it runs here, deletes its
// streams there, and retires its consumer.
func (r *Runner) remove(lc loop, entry jetstream.KeyValueEntry) {
	ctx, d, state := lc.ctx, lc.d, lc.state
	key := entry.Key()
	delete(r.desired, key)
	var last *dataplane.Desired
	for _, loc := range allLocations {
		current := r.running[runKey(key, loc)]
		if current == nil {
			continue
		}
		current.stop()
		delete(r.running, runKey(key, loc))
		last = &current.desired
		if err := r.deleteStream(ctx, current.desired.Pipeline(), loc); err != nil {
			d.log.Warn("delete pipeline stream", "key", key, "location", loc, "error", err)
		}
	}
	if last != nil {
		p := last.Pipeline()
		r.Metrics.forget(p)
		// Its stages flushed their counts while stopping; those must
		// not outlive it (DeleteDesired may have forgotten them first).
		if err := state.ForgetCounts(ctx, p); err != nil {
			d.log.Warn("forget pipeline counts", "key", key, "error", err)
		}
	}
	if entry.Operation() == jetstream.KeyValueDelete { // a purge comes after a retirement
		r.retire(ctx, d, state, key, entry.Revision(), last)
	}
	_ = state.Status.Delete(ctx, key)
	d.log.Info("pipeline deleted", "key", key)
}

// reconcileAt brings want's pipeline at loc to its desired state: running
// there when this runner owns it and its tenant's placement consumes loc,
// with its consumer (the source) only at the location written to.
func (r *Runner) reconcileAt(lc loop, want dataplane.Desired, loc dataplane.Location) {
	ctx, d, state := lc.ctx, lc.d, lc.state
	key := want.Pipeline().Key()
	rk := runKey(key, loc)
	current := r.running[rk]
	if !r.owns(want) || !r.consumes(want.Tenant, loc) {
		if current != nil { // handed over, or drained: its messages wait in its stream
			current.stop()
			delete(r.running, rk)
			if !r.runsAnywhere(key) {
				r.Metrics.forget(current.desired.Pipeline()) // its new runner reports it
			}
			d.log.Info("pipeline stopped here", "key", key, "location", loc)
		}
		return
	}
	write := r.placement(want.Tenant).Write == loc
	if current != nil && current.desired.Version == want.Version && want.Status == dataplane.DesiredRunning && current.source == write {
		return
	}
	if current != nil {
		current.stop()
		delete(r.running, rk)
	}
	log := d.log.With("tenant", want.Tenant, "integration", want.Integration, "version", want.Version, "location", loc)
	if want.Status != dataplane.DesiredRunning {
		if write {
			status := dataplane.Status{Tenant: want.Tenant, Integration: want.Integration, Version: want.Version, Runner: r.Name, Status: dataplane.StatusStopped}
			r.report(ctx, state, status, log)
			log.Info("pipeline stopped")
		}
		return
	}
	r.startBuild(lc, key, loc, want)
}

// allLocations are the locations a pipeline can run at.
var allLocations = []dataplane.Location{dataplane.Shared, dataplane.Dedicated}

// runKey names a pipeline running at a location: the desired-state key at
// the shared location, suffixed elsewhere.
func runKey(key string, loc dataplane.Location) string {
	if loc == dataplane.Shared {
		return key
	}
	return key + "@" + string(loc)
}

// runsAnywhere reports whether key's pipeline runs here at some location.
func (r *Runner) runsAnywhere(key string) bool {
	for _, loc := range allLocations {
		if r.running[runKey(key, loc)] != nil {
			return true
		}
	}
	return false
}

// placement returns the tenant's placement as this runner knows it.
func (r *Runner) placement(tenant string) dataplane.Placement {
	if p, ok := r.placed[tenant]; ok {
		return p
	}
	return dataplane.SharedPlacement(tenant)
}

// consumes reports whether the tenant's pipelines are consumed at loc.
func (r *Runner) consumes(tenant string, loc dataplane.Location) bool {
	return slices.Contains(r.placement(tenant).Consume(), loc)
}

// jetStreamAt returns the JetStream of p's tenant at loc.
func (r *Runner) jetStreamAt(ctx context.Context, p dataplane.Placement, loc dataplane.Location) (jetstream.JetStream, error) {
	if r.located != nil {
		return r.located.At(ctx, p, loc)
	}
	if loc != dataplane.Shared {
		return nil, fmt.Errorf("tenant %s is placed at %s, which this runner cannot reach", p.Tenant, loc)
	}
	return r.Accounts.JetStream(ctx, p.Tenant)
}

// placementChanged records a tenant's new placement and reconciles its
// pipelines: a move starts them at the new location and, once the old one
// is drained, stops them there.
func (r *Runner) placementChanged(lc loop, entry jetstream.KeyValueEntry) {
	p := dataplane.PlacementOf(entry)
	if p.AllShared() {
		delete(r.placed, p.Tenant)
	} else {
		r.placed[p.Tenant] = p
	}
	lc.d.log.Info("tenant placement", "tenant", p.Tenant, "write", p.Write, "draining", p.Draining)
	for key, entry := range r.desired {
		if tenant, _, _ := strings.Cut(key, "."); tenant == p.Tenant {
			r.reconcile(lc, entry)
		}
	}
}

// sameWant reports whether entry asks for want to run.
func sameWant(entry jetstream.KeyValueEntry, want dataplane.Desired) bool {
	var d dataplane.Desired
	return json.Unmarshal(entry.Value(), &d) == nil && d.Version == want.Version && d.Status == dataplane.DesiredRunning
}

func (r *Runner) buildTimeout() time.Duration {
	if r.BuildTimeout > 0 {
		return r.BuildTimeout
	}
	return DefaultBuildTimeout
}

// startBuild starts want's pipeline in the background, bounded by the build
// timeout; the loop keeps serving other keys and gets the result on
// lc.built. A connector that ignores its context is waited for
// abandonAfter past the timeout, then abandoned: whatever it returns later
// is stopped.
func (r *Runner) startBuild(lc loop, key string, loc dataplane.Location, want dataplane.Desired) {
	timeout := r.buildTimeout()
	bctx, cancel := context.WithTimeout(lc.ctx, timeout)
	rk := runKey(key, loc)
	r.builds[rk] = &build{key: key, loc: loc, want: want, cancel: cancel}
	d := lc.d
	placement := r.placement(want.Tenant)
	source := placement.Write == loc
	lc.building.Go(func() {
		defer cancel()
		done := make(chan buildResult, 1)
		go func() {
			js, err := r.jetStreamAt(bctx, placement, loc)
			var pl *pipeline
			if err == nil {
				d.js = js
				pl, err = startPipeline(bctx, d, want, source)
			}
			if err != nil && errors.Is(bctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("starting the pipeline timed out after %s: %w", timeout, err)
			}
			done <- buildResult{key: rk, pl: pl, err: err}
		}()
		abandon := func() {
			go func() {
				if late := <-done; late.pl != nil {
					late.pl.stop()
				}
			}()
		}
		var res buildResult
		select {
		case res = <-done:
		case <-time.After(timeout + abandonAfter):
			res = buildResult{key: rk, err: fmt.Errorf("starting the pipeline timed out after %s; a connector ignored the deadline", timeout)}
			abandon()
		case <-lc.ctx.Done():
			abandon()
			return
		}
		select {
		case lc.built <- res:
		case <-lc.ctx.Done():
			if res.pl != nil {
				res.pl.stop()
			}
		}
	})
}

// finishBuild records a build's result: the pipeline runs, or the
// integration is reported degraded and tried again later; a desired state
// that arrived meanwhile is reconciled next.
func (r *Runner) finishBuild(lc loop, res buildResult) {
	b := r.builds[res.key]
	delete(r.builds, res.key)
	if b == nil { // cannot happen: one build per key
		if res.pl != nil {
			res.pl.stop()
		}
		return
	}
	want := b.want
	if res.pl != nil {
		res.pl.source = r.placement(want.Tenant).Write == b.loc
		r.running[res.key] = res.pl
	}
	if b.pending != nil {
		r.reconcile(lc, b.pending)
		return
	}
	if !r.owns(want) || !r.consumes(want.Tenant, b.loc) { // the runners or the placement changed while it was built
		if res.pl != nil {
			res.pl.stop()
			delete(r.running, res.key)
		}
		return
	}
	log := lc.d.log.With("tenant", want.Tenant, "integration", want.Integration, "version", want.Version, "location", b.loc)
	status := dataplane.Status{Tenant: want.Tenant, Integration: want.Integration, Version: want.Version, Runner: r.Name}
	if res.err != nil {
		status.Status, status.LastError = dataplane.StatusDegraded, res.err.Error()
		r.report(lc.ctx, lc.state, status, log)
		log.Error("pipeline failed to start; will retry", "error", res.err, "in", retryDegradedAfter.String())
		key, retry := b.key, lc.retry
		time.AfterFunc(retryDegradedAfter, func() {
			select {
			case retry <- key:
			default:
			}
		})
		return
	}
	if b.recheck {
		if entry, ok := r.desired[b.key]; ok {
			r.reconcile(lc, entry)
		}
	}
	if r.placement(want.Tenant).Write != b.loc {
		log.Info("pipeline draining", "spec", want.Spec.String())
		return // the location written to reports the status
	}
	status.Status = dataplane.StatusRunning
	r.report(lc.ctx, lc.state, status, log)
	log.Info("pipeline running", "spec", want.Spec.String())
}

// owns reports whether want's pipeline is assigned to this runner.
func (r *Runner) owns(want dataplane.Desired) bool {
	return r.members.owns(want.Pipeline().Key(), want.Spec.Runners)
}

// rebalance reconciles every known pipeline after the runners alive
// changed: this runner starts what is now its own and drains what is not.
func (r *Runner) rebalance(lc loop) {
	lc.d.log.Info("runners changed", "runners", len(r.members.alive))
	for _, entry := range r.desired {
		r.reconcile(lc, entry)
	}
}

// deleteStream deletes p's stream at loc.
func (r *Runner) deleteStream(ctx context.Context, p dataplane.Pipeline, loc dataplane.Location) error {
	js, err := r.jetStreamAt(ctx, r.placement(p.Tenant), loc)
	if err != nil {
		return err
	}
	return dataplane.DeleteStream(ctx, js, p)
}

func (r *Runner) report(ctx context.Context, state *dataplane.State, st dataplane.Status, log *slog.Logger) {
	st.UpdatedAt = time.Now().UTC()
	if err := state.PutStatus(ctx, st); err != nil {
		log.Warn("report status", "error", err)
	}
}

// stopAll drains every pipeline, stopAllAtOnce at a time, so that a runner
// with a thousand pipelines stops within its grace period. It reports
// nothing: other runners may still run them.
func (r *Runner) stopAll(log *slog.Logger) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, stopAllAtOnce)
	for key, pl := range r.running {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			pl.stop()
			log.Info("pipeline drained", "key", key)
		})
	}
	wg.Wait()
	clear(r.running)
}

// stopAllAtOnce bounds the pipelines a stopping runner drains at once.
const stopAllAtOnce = 64
