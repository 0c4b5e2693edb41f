package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// switchGrace is how long a move waits after changing a tenant's placement
// before it relies on every process having followed it: the placements
// bucket's watchers see a change within milliseconds.
var switchGrace = 5 * time.Second

// placementRounds bounds the rounds of one TenantPlacement run before it
// continues as new, keeping its history short.
const placementRounds = 200

// TenantPlacement (ID TenantPlacementWorkflowID) moves one tenant between
// the shared cluster and a dedicated instance, live, when a PlacementSignal
// asks for it, and while the tenant is dedicated checks its instance —
// starting it again when it failed — and its usage, moving it back when it
// stayed low (unless an admin forced it there). A shared tenant's run ends
// once it has nothing left to do; the next request starts another.
//
// A move provisions the instance (to dedicated), creates the tenant's
// streams at the new location, sends new messages there while runners
// drain the old one, waits until the old streams are empty, stops
// consuming there, copies the dead letters over and deletes the old
// streams (or the instance). No accepted message is dropped: until the old
// location is empty it stays consumed.
func TenantPlacement(ctx workflow.Context, in wire.TenantPlacementInput) error {
	var a *activities.Placement
	step := withUnlimitedRetries(ctx, time.Minute)
	tenant := activities.PlacementInput{Tenant: in.Tenant}
	var loaded activities.LoadedPlacement
	if err := workflow.ExecuteActivity(step, a.LoadPlacement, tenant).Get(ctx, &loaded); err != nil {
		return err
	}
	if loaded.Gone {
		return nil
	}
	m := &mover{ctx: ctx, step: step, state: loaded.State}
	if err := workflow.SetQueryHandler(ctx, wire.PlacementStateQuery, func() (wire.PlacementState, error) {
		return m.state, nil
	}); err != nil {
		return err
	}
	signals := workflow.GetSignalChannel(ctx, wire.PlacementSignal)
	for round := 0; ; round++ {
		switch m.state.Placement { // a move a previous run left halfway
		case wire.PlacementMovingToDedicated:
			m.move(wire.PlacementDedicated, m.state.Forced, "resuming the move")
		case wire.PlacementMovingToShared:
			m.move(wire.PlacementShared, m.state.Forced, "resuming the move")
		}
		var req wire.PlacementRequest
		got, tick := false, false
		if m.state.Placement == wire.PlacementShared && !signals.ReceiveAsync(&req) {
			return nil // nothing to watch; drained every request
		} else if m.state.Placement == wire.PlacementShared {
			got = true
		} else {
			sel := workflow.NewSelector(ctx)
			sel.AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &req); got = true })
			sel.AddFuture(workflow.NewTimer(ctx, loaded.CheckEvery), func(workflow.Future) { tick = true })
			sel.Select(ctx)
		}
		switch {
		case got && req.Target != m.state.Placement:
			m.move(req.Target, req.Forced, req.Reason)
		case got && req.Forced != m.state.Forced:
			m.state.Forced = req.Forced
			m.record(req.Reason)
		case tick:
			if gone := m.check(tenant); gone {
				return nil
			}
		}
		if m.err != nil {
			return m.err
		}
		if round >= placementRounds || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			if signals.Len() > 0 {
				continue // answer what was asked first
			}
			return workflow.NewContinueAsNewError(ctx, TenantPlacement, in)
		}
	}
}

// mover carries out one tenant's moves and records each step.
type mover struct {
	ctx   workflow.Context
	step  workflow.Context
	state wire.PlacementState
	// err is the first error that ends the workflow (only its context
	// ending: every step retries).
	err error
}

func (m *mover) record(reason string) {
	if m.err != nil {
		return
	}
	var a *activities.Placement
	m.err = workflow.ExecuteActivity(m.step, a.RecordPlacement, activities.RecordPlacementInput{State: m.state, Reason: reason}).Get(m.ctx, nil)
}

// run runs one step of a move; false ends the move.
func (m *mover) run(ctx workflow.Context, activity, in, out any) bool {
	if m.err != nil {
		return false
	}
	m.err = workflow.ExecuteActivity(ctx, activity, in).Get(m.ctx, out)
	return m.err == nil
}

func location(placement string) dataplane.Location {
	if placement == wire.PlacementDedicated || placement == wire.PlacementMovingToDedicated {
		return dataplane.Dedicated
	}
	return dataplane.Shared
}

// move moves the tenant to target. A move to dedicated that cannot get an
// instance leaves the tenant shared, with the reason in its history.
func (m *mover) move(target string, forced bool, reason string) {
	var a *activities.Placement
	to := location(target)
	from := dataplane.Shared
	if to == dataplane.Shared {
		from = dataplane.Dedicated
	}
	tenant := m.state.Tenant
	moving := wire.PlacementMovingToDedicated
	if to == dataplane.Shared {
		moving = wire.PlacementMovingToShared
	}
	m.state = wire.PlacementState{Tenant: tenant, Placement: moving, Step: "provision", Forced: forced}
	m.record(reason)
	if to == dataplane.Dedicated {
		err := workflow.ExecuteActivity(m.step, a.EnsureInstance, activities.PlacementInput{Tenant: tenant}).Get(m.ctx, nil)
		if err != nil {
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.Type() == activities.ErrNoProvisioner {
				m.state = wire.PlacementState{Tenant: tenant, Placement: wire.PlacementShared}
				m.record("cannot move to a dedicated instance: " + appErr.Message())
				return
			}
			m.err = err
			return
		}
	}
	at := func(loc dataplane.Location) activities.PlacementInput {
		return activities.PlacementInput{Tenant: tenant, Location: loc}
	}
	m.state.Step = "prepare"
	m.record("creating the streams at " + string(to))
	if !m.run(m.step, a.PrepareStreams, at(to), nil) {
		return
	}
	m.state.Step = "drain"
	m.record("new messages go to " + string(to) + "; draining " + string(from))
	if !m.run(m.step, a.MirrorPlacement, activities.MirrorPlacementInput{Tenant: tenant, Write: to, Draining: from}, nil) {
		return
	}
	m.err = workflow.Sleep(m.ctx, switchGrace)
	drain := workflow.WithActivityOptions(m.ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Hour, HeartbeatTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	})
	if !m.run(drain, a.WaitDrained, at(from), nil) {
		return
	}
	m.state.Step = "retire"
	m.record(string(from) + " is drained; retiring it")
	if !m.run(m.step, a.MirrorPlacement, activities.MirrorPlacementInput{Tenant: tenant, Write: to}, nil) {
		return
	}
	m.err = workflow.Sleep(m.ctx, switchGrace)
	var copied int
	if !m.run(m.step, a.MoveDLQ, activities.MoveDLQInput{Tenant: tenant, From: from, To: to}, &copied) {
		return
	}
	if !m.run(m.step, a.RetireLocation, at(from), nil) {
		return
	}
	m.state = wire.PlacementState{Tenant: tenant, Placement: target, Forced: forced}
	m.record("moved to " + string(to))
}

// check checks a dedicated tenant's instance, starting it again when it
// failed, then its usage; it reports whether the tenant is gone.
func (m *mover) check(tenant activities.PlacementInput) (gone bool) {
	var a *activities.Placement
	var loaded activities.LoadedPlacement
	if !m.run(m.step, a.LoadPlacement, tenant, &loaded) || loaded.Gone {
		return loaded.Gone
	}
	var problem string
	if !m.run(m.step, a.CheckInstance, tenant, &problem) {
		return false
	}
	if problem != "" {
		m.record("dedicated instance unhealthy: " + problem + "; starting it again")
		if !m.run(m.step, a.EnsureInstance, tenant, nil) {
			return false
		}
		m.record("dedicated instance started again")
	}
	if m.state.Forced {
		return false
	}
	var v activities.UsageVerdict
	if m.run(m.step, a.JudgeUsage, tenant, &v) && v.Demote {
		m.move(wire.PlacementShared, false, "usage: "+v.Why)
	}
	return false
}

// PlacementSweep (run by the PlacementSweepScheduleID schedule) asks
// TenantPlacement to move each shared tenant whose usage crossed the
// thresholds.
func PlacementSweep(ctx workflow.Context) ([]string, error) {
	var a *activities.Placement
	var moved []string
	opts := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	err := workflow.ExecuteActivity(opts, a.SweepPlacements).Get(ctx, &moved)
	return moved, err
}
