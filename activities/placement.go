package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/provision"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
)

// ErrNoProvisioner is the application error type of a move to a dedicated
// instance on a platform that cannot provision one.
const ErrNoProvisioner = "NoProvisioner"

// instanceSecret names the sealed instance credentials (secretbox).
const instanceSecret = "dedicated-nats"

// PlacementPolicy decides when tenants move by themselves.
type PlacementPolicy struct {
	// A shared tenant with at least PromoteIntegrations integrations, or
	// PromoteRate messages per second on average over Window, is moved
	// to a dedicated instance (0 disables that trigger).
	PromoteIntegrations int
	PromoteRate         float64
	Window              time.Duration
	// A dedicated tenant below both halves of the thresholds during all
	// of DemoteAfter (fewer than half the integrations, and no rate
	// between two samples above half the rate) goes back to shared.
	DemoteAfter time.Duration
	// CheckEvery is how often TenantPlacement checks a dedicated tenant's
	// instance and usage.
	CheckEvery time.Duration
	// SweepEvery is how often PlacementSweep reads every shared tenant's
	// usage for a promotion.
	SweepEvery time.Duration
}

// DefaultPlacementPolicy are the platform's defaults: 50 integrations or
// 100,000 messages per second sustained over five minutes promote, looked
// at once a minute (each look is a workflow run and a query over the
// window's samples, docs/adr/0028); an hour below half of both demotes.
var DefaultPlacementPolicy = PlacementPolicy{PromoteIntegrations: 50, PromoteRate: 100_000, Window: 5 * time.Minute, DemoteAfter: time.Hour,
	CheckEvery: 30 * time.Second, SweepEvery: time.Minute}

// Placement holds the activities of TenantPlacement and PlacementSweep:
// each is idempotent, so a step retried or run again ends in the same state.
type Placement struct {
	Store *store.Store
	// JS is the platform account's JetStream, where the placements bucket
	// and the desired state live.
	JS jetstream.JetStream
	// Accounts reaches each location of a tenant.
	Accounts dataplane.LocatedAccounts
	// Provisioner makes dedicated instances; nil refuses moves to one.
	Provisioner provision.Provisioner
	// Keys seal the dedicated instances' credentials in PostgreSQL.
	Keys   *secretbox.KeyRing
	Policy PlacementPolicy
	// Request asks a tenant's TenantPlacement to move it (the control
	// client's RequestPlacement).
	Request func(ctx context.Context, tenant string, req wire.PlacementRequest) error
}

// PlacementInput names a tenant and, for the steps of a move, a location.
type PlacementInput struct {
	Tenant   string
	Location dataplane.Location
}

// RecordPlacementInput is a tenant's new placement state and why.
type RecordPlacementInput struct {
	State  wire.PlacementState
	Reason string
}

// LoadedPlacement is a tenant's placement as PostgreSQL records it, and
// how often TenantPlacement looks at it.
type LoadedPlacement struct {
	State wire.PlacementState
	// Gone is true when the tenant is being deleted, or was.
	Gone       bool
	CheckEvery time.Duration
}

// LoadPlacement returns the tenant's placement.
func (a *Placement) LoadPlacement(ctx context.Context, in PlacementInput) (LoadedPlacement, error) {
	t, err := a.Store.GetTenant(ctx, in.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return LoadedPlacement{Gone: true}, nil
	}
	if err != nil {
		return LoadedPlacement{}, err
	}
	p, err := a.Store.GetPlacement(ctx, in.Tenant)
	if err != nil {
		return LoadedPlacement{}, err
	}
	return LoadedPlacement{
		State: wire.PlacementState{Tenant: in.Tenant, Placement: p.Placement, Step: p.Step, Forced: p.Forced},
		Gone:  t.Status == store.TenantDeleting || t.Status == store.TenantDeleted, CheckEvery: a.Policy.CheckEvery,
	}, nil
}

// RecordPlacement writes the tenant's placement state and one history
// event, keeping its dedicated instance.
func (a *Placement) RecordPlacement(ctx context.Context, in RecordPlacementInput) error {
	cur, err := a.Store.GetPlacement(ctx, in.State.Tenant)
	if err != nil {
		return err
	}
	next := store.Placement{Tenant: in.State.Tenant, Placement: in.State.Placement, Step: in.State.Step,
		Forced: in.State.Forced, Instance: cur.Instance}
	return a.Store.SetPlacement(ctx, next, in.Reason)
}

// EnsureInstance creates the tenant's dedicated instance, or starts it
// again, records its sealed credentials, and updates the placements
// bucket when the instance's address changed while the tenant uses it.
func (a *Placement) EnsureInstance(ctx context.Context, in PlacementInput) error {
	if a.Provisioner == nil {
		err := errors.New("this platform has no provisioner for dedicated NATS instances (VRSKY_PROVISIONER)")
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrNoProvisioner, err)
	}
	if a.Keys == nil {
		err := errors.New("dedicated NATS instances need the platform's secret keys to keep their credentials")
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrNoProvisioner, err)
	}
	inst, err := a.Provisioner.Ensure(ctx, in.Tenant)
	if err != nil {
		return fmt.Errorf("provision the dedicated nats of %s: %w", in.Tenant, err)
	}
	plain, err := json.Marshal(inst)
	if err != nil {
		return err
	}
	sealed, err := a.Keys.Seal(in.Tenant, instanceSecret, plain)
	if err != nil {
		return err
	}
	cur, err := a.Store.GetPlacement(ctx, in.Tenant)
	if err != nil {
		return err
	}
	old, _ := a.instance(cur)
	cur.Instance = sealed
	if err := a.Store.SetPlacement(ctx, cur, "dedicated instance ready at "+strings.Join(inst.URLs, ",")); err != nil {
		return err
	}
	if old != nil && !sameAddress(*old, inst) { // it came back elsewhere: tell whoever uses it
		kv, err := dataplane.OpenPlacements(ctx, a.JS)
		if err != nil {
			return err
		}
		entry, err := kv.Get(ctx, in.Tenant)
		if err == nil {
			if p := dataplane.PlacementOf(entry); p.Dedicated != nil {
				p.Dedicated = &inst
				return dataplane.PutPlacement(ctx, kv, p)
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	return nil
}

func sameAddress(a, b dataplane.Instance) bool {
	return strings.Join(a.URLs, ",") == strings.Join(b.URLs, ",") && a.Password == b.Password
}

// instance opens the sealed credentials of p's dedicated instance; nil
// when it has none.
func (a *Placement) instance(p store.Placement) (*dataplane.Instance, error) {
	if len(p.Instance) == 0 {
		return nil, nil
	}
	if a.Keys == nil {
		return nil, errors.New("no secret keys to open the dedicated instance's credentials")
	}
	plain, err := a.Keys.Open(p.Tenant, instanceSecret, p.Instance)
	if err != nil {
		return nil, fmt.Errorf("open the dedicated instance's credentials of %s: %w", p.Tenant, err)
	}
	var inst dataplane.Instance
	if err := json.Unmarshal(plain, &inst); err != nil {
		return nil, err
	}
	return &inst, nil
}

// CheckInstance returns "" when the tenant's dedicated instance is
// healthy, and what is wrong otherwise.
func (a *Placement) CheckInstance(ctx context.Context, in PlacementInput) (string, error) {
	if a.Provisioner == nil {
		return "no provisioner", nil
	}
	if err := a.Provisioner.Check(ctx, in.Tenant); err != nil {
		return err.Error(), nil
	}
	return "", nil
}

// placementAt is the tenant's placement with its dedicated instance, for
// reaching a location.
func (a *Placement) placementAt(ctx context.Context, tenant string) (dataplane.Placement, error) {
	p := dataplane.SharedPlacement(tenant)
	rec, err := a.Store.GetPlacement(ctx, tenant)
	if err != nil {
		return p, err
	}
	p.Dedicated, err = a.instance(rec)
	return p, err
}

// PrepareStreams creates, at the input's location, the streams of every
// pipeline the tenant has deployed and its DLQ stream, so that nothing
// written there after the switch is refused.
func (a *Placement) PrepareStreams(ctx context.Context, in PlacementInput) (int, error) {
	p, err := a.placementAt(ctx, in.Tenant)
	if err != nil {
		return 0, err
	}
	js, err := a.Accounts.At(ctx, p, in.Location)
	if err != nil {
		return 0, err
	}
	state, err := dataplane.OpenState(ctx, a.JS)
	if err != nil {
		return 0, err
	}
	t, err := a.Store.GetTenant(ctx, in.Tenant)
	if err != nil {
		return 0, err
	}
	if err := dataplane.EnsureDLQStream(ctx, js, in.Tenant, t.Limits.DLQBytes); err != nil {
		return 0, err
	}
	keys, err := state.Desired.ListKeysFiltered(ctx, in.Tenant+".*")
	if err != nil {
		return 0, fmt.Errorf("list the pipelines of %s: %w", in.Tenant, err)
	}
	n := 0
	for key := range keys.Keys() {
		_, integration, _ := strings.Cut(key, ".")
		pl := dataplane.Pipeline{Tenant: in.Tenant, Integration: integration}
		if pl.Validate() != nil {
			continue
		}
		if _, err := dataplane.EnsureStreams(ctx, js, pl); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// MirrorPlacementInput is where the tenant's messages go from now on, and
// the location runners still drain ("" for none).
type MirrorPlacementInput struct {
	Tenant   string
	Write    dataplane.Location
	Draining dataplane.Location
}

// MirrorPlacement writes the tenant's placement to the placements bucket:
// ingress and runners follow it within moments.
func (a *Placement) MirrorPlacement(ctx context.Context, in MirrorPlacementInput) error {
	p, err := a.placementAt(ctx, in.Tenant)
	if err != nil {
		return err
	}
	p.Write, p.Draining = in.Write, in.Draining
	if p.Write != dataplane.Dedicated && p.Draining != dataplane.Dedicated {
		p.Dedicated = nil
	}
	if err := p.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "InvalidPlacement", err)
	}
	kv, err := dataplane.OpenPlacements(ctx, a.JS)
	if err != nil {
		return err
	}
	return dataplane.PutPlacement(ctx, kv, p)
}

// drainPoll is how often WaitDrained looks at the streams.
const drainPoll = 500 * time.Millisecond

// WaitDrained returns once the tenant's pipeline streams at the location
// have held no message for two looks in a row, heartbeating how many they
// still hold; the activity's timeout bounds it.
func (a *Placement) WaitDrained(ctx context.Context, in PlacementInput) error {
	p, err := a.placementAt(ctx, in.Tenant)
	if err != nil {
		return err
	}
	js, err := a.Accounts.At(ctx, p, in.Location)
	if err != nil {
		return err
	}
	empty := 0
	for {
		held, err := dataplane.UndrainedMessages(ctx, js, in.Tenant)
		if err != nil {
			return err
		}
		activity.RecordHeartbeat(ctx, held)
		if held == 0 {
			if empty++; empty == 2 {
				return nil
			}
		} else {
			empty = 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(drainPoll):
		}
	}
}

// MoveDLQInput names the locations a tenant's dead letters move between.
type MoveDLQInput struct {
	Tenant   string
	From, To dataplane.Location
}

// MoveDLQ copies the tenant's dead letters to the new location and
// returns how many it copied; the old streams are deleted afterwards.
func (a *Placement) MoveDLQ(ctx context.Context, in MoveDLQInput) (int, error) {
	p, err := a.placementAt(ctx, in.Tenant)
	if err != nil {
		return 0, err
	}
	from, err := a.Accounts.At(ctx, p, in.From)
	if err != nil {
		return 0, err
	}
	to, err := a.Accounts.At(ctx, p, in.To)
	if err != nil {
		return 0, err
	}
	t, err := a.Store.GetTenant(ctx, in.Tenant)
	if err != nil {
		return 0, err
	}
	return dataplane.CopyDLQ(ctx, from, to, in.Tenant, t.Limits.DLQBytes)
}

// RetireLocation deletes the tenant's streams at the location it left; a
// dedicated instance is removed with its data and its credentials
// forgotten.
func (a *Placement) RetireLocation(ctx context.Context, in PlacementInput) (int, error) {
	if in.Location == dataplane.Dedicated {
		return 0, a.RemoveInstance(ctx, in)
	}
	p, err := a.placementAt(ctx, in.Tenant)
	if err != nil {
		return 0, err
	}
	js, err := a.Accounts.At(ctx, p, in.Location)
	if err != nil {
		return 0, err
	}
	return dataplane.DeleteTenantStreams(ctx, js, in.Tenant)
}

// RemoveInstance removes the tenant's dedicated instance, if it has one,
// its placement from the placements bucket, and forgets its credentials.
// Decommissioning a tenant calls it too.
func (a *Placement) RemoveInstance(ctx context.Context, in PlacementInput) error {
	cur, err := a.Store.GetPlacement(ctx, in.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	kv, err := dataplane.OpenPlacements(ctx, a.JS)
	if err != nil {
		return err
	}
	if err := dataplane.DeletePlacement(ctx, kv, in.Tenant); err != nil {
		return err
	}
	if a.Provisioner != nil {
		if err := a.Provisioner.Remove(ctx, in.Tenant); err != nil {
			return err
		}
	}
	if len(cur.Instance) == 0 {
		return nil
	}
	cur.Instance = nil
	return a.Store.SetPlacement(ctx, cur, "dedicated instance removed")
}

// UsageVerdict is what a tenant's usage says about its placement.
type UsageVerdict struct {
	Promote bool
	Demote  bool
	// Why says which threshold decided, for the placement history.
	Why string
}

// JudgeUsage compares the tenant's usage with the policy: Promote when it
// crossed a threshold over Window, Demote when it stayed below half of
// both during DemoteAfter.
func (a *Placement) JudgeUsage(ctx context.Context, in PlacementInput) (UsageVerdict, error) {
	recent, err := a.activity(ctx, in.Tenant, a.Policy.Window)
	if err != nil {
		return UsageVerdict{}, err
	}
	v := a.Policy.promote(recent)
	if v.Promote {
		return v, nil
	}
	long, err := a.activity(ctx, in.Tenant, a.Policy.DemoteAfter)
	if err != nil {
		return UsageVerdict{}, err
	}
	return a.Policy.demote(long), nil
}

func (a *Placement) activity(ctx context.Context, tenant string, window time.Duration) (store.TenantActivity, error) {
	all, err := a.Store.TenantsActivity(ctx, window)
	if err != nil {
		return store.TenantActivity{}, err
	}
	for _, t := range all {
		if t.Tenant == tenant {
			return t, nil
		}
	}
	return store.TenantActivity{Tenant: tenant}, nil
}

func (p PlacementPolicy) promote(t store.TenantActivity) UsageVerdict {
	switch {
	case p.PromoteIntegrations > 0 && t.Integrations >= p.PromoteIntegrations:
		return UsageVerdict{Promote: true, Why: fmt.Sprintf("%d integrations (threshold %d)", t.Integrations, p.PromoteIntegrations)}
	case p.PromoteRate > 0 && t.MessagesPerSecond >= p.PromoteRate:
		return UsageVerdict{Promote: true, Why: fmt.Sprintf("%.0f msgs/s over %s (threshold %.0f)", t.MessagesPerSecond, p.Window, p.PromoteRate)}
	}
	return UsageVerdict{}
}

func (p PlacementPolicy) demote(t store.TenantActivity) UsageVerdict {
	few := p.PromoteIntegrations <= 0 || t.Integrations*2 < p.PromoteIntegrations
	quiet := p.PromoteRate <= 0 || t.PeakPerSecond*2 < p.PromoteRate
	if few && quiet {
		return UsageVerdict{Demote: true, Why: fmt.Sprintf("%d integrations and at most %.0f msgs/s during %s", t.Integrations, t.PeakPerSecond, p.DemoteAfter)}
	}
	return UsageVerdict{}
}

// SweepPlacements asks TenantPlacement to move every shared tenant whose
// usage crossed the thresholds, unless an admin holds it shared, and
// returns the tenants it asked for.
func (a *Placement) SweepPlacements(ctx context.Context) ([]string, error) {
	all, err := a.Store.TenantsActivity(ctx, a.Policy.Window)
	if err != nil {
		return nil, err
	}
	var moved []string
	for _, t := range all {
		v := a.Policy.promote(t)
		if !v.Promote {
			continue
		}
		cur, err := a.Store.GetPlacement(ctx, t.Tenant)
		if err != nil {
			return moved, err
		}
		if cur.Placement != wire.PlacementShared || cur.Forced {
			continue
		}
		req := wire.PlacementRequest{Target: wire.PlacementDedicated, Reason: "usage: " + v.Why}
		if err := a.Request(ctx, t.Tenant, req); err != nil {
			return moved, err
		}
		moved = append(moved, t.Tenant)
	}
	return moved, nil
}
