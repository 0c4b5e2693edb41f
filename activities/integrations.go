package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// Integrations holds the activities that carry an integration's lifecycle
// out: desired state for the runners in NATS KV, the record in PostgreSQL.
type Integrations struct {
	DB    *pgxpool.Pool
	State *dataplane.State
	// PollEvery is how often AwaitRunnerStatus reads the status bucket;
	// zero means 250 ms.
	PollEvery time.Duration
}

// StatusPending is the status of an integration whose runners have not
// reported its desired state within AwaitStatusInput.MaxWait (for example
// because no runner is up). The desired state stays written; runners pick it
// up when they come.
const StatusPending = "pending"

// StatusDeleted is the status recorded when an integration is deleted.
const StatusDeleted = "deleted"

// Error types of the failures retrying cannot fix; workflows match on them.
const (
	ErrVersionNotFound = "VersionNotFound"
	ErrInvalidSpec     = "InvalidSpec"
)

// DesiredStateInput names the spec version to run and its desired status
// (dataplane.DesiredRunning or dataplane.DesiredStopped).
type DesiredStateInput struct {
	Tenant      string
	Integration string
	Version     int
	Status      string
}

func (in DesiredStateInput) pipeline() dataplane.Pipeline {
	return dataplane.Pipeline{Tenant: in.Tenant, Integration: in.Integration}
}

// WriteDesiredState reads the spec of the version from integration_versions
// and writes it, with the desired status, to the desired-state bucket the
// runners watch. Writing the same state again is harmless. A missing
// version or an invalid spec fails without retry.
func (a *Integrations) WriteDesiredState(ctx context.Context, in DesiredStateInput) error {
	s, err := readSpec(ctx, a.DB, in.pipeline(), in.Version)
	if err != nil {
		return err
	}
	return a.State.PutDesired(ctx, dataplane.Desired{
		Tenant: in.Tenant, Integration: in.Integration, Version: in.Version, Status: in.Status, Spec: s,
	})
}

// readSpec reads and checks the spec of one version of an integration. A
// missing version or an invalid spec is a non-retryable error.
func readSpec(ctx context.Context, db *pgxpool.Pool, p dataplane.Pipeline, version int) (spec.Integration, error) {
	var s spec.Integration
	if err := p.Validate(); err != nil {
		return s, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidSpec, nil)
	}
	var raw []byte
	err := db.QueryRow(ctx,
		`SELECT spec FROM integration_versions WHERE tenant_id = $1 AND integration_id = $2 AND version = $3`,
		p.Tenant, p.Integration, version).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("integration %s has no version %d", p, version), ErrVersionNotFound, nil)
	}
	if err != nil {
		return s, fmt.Errorf("read spec of %s version %d: %w", p, version, err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("decode spec of %s version %d: %v", p, version, err), ErrInvalidSpec, nil)
	}
	if err := s.Validate(); err != nil {
		return s, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("spec of %s version %d: %v", p, version, err), ErrInvalidSpec, nil)
	}
	return s, nil
}

// PipelineInput names one integration.
type PipelineInput struct {
	Tenant      string
	Integration string
}

// RemoveDesiredState deletes an integration's desired state: the runners
// stop it and delete its stream. Removing it again is harmless.
func (a *Integrations) RemoveDesiredState(ctx context.Context, in PipelineInput) error {
	return a.State.DeleteDesired(ctx, dataplane.Pipeline{Tenant: in.Tenant, Integration: in.Integration})
}

// AwaitStatusInput says which version and status to wait for.
type AwaitStatusInput struct {
	Tenant      string
	Integration string
	Version     int
	// Status is the reported status wanted: dataplane.StatusRunning or
	// dataplane.StatusStopped.
	Status string
	// MaxWait bounds the wait; zero means 90 seconds. Keep it below the
	// activity's StartToClose timeout.
	MaxWait time.Duration
}

// RunnerStatus is what the runners reported.
type RunnerStatus struct {
	Version   int
	Status    string
	LastError string
}

// AwaitRunnerStatus waits until the runners report the wanted version in the
// wanted status, heartbeating while it waits. A runner that fails to start
// the version reports it degraded: that is returned as the result, with the
// runner's error, not as an error. When MaxWait passes first the result is
// StatusPending. It returns an error only when the bucket cannot be read or
// ctx ends.
func (a *Integrations) AwaitRunnerStatus(ctx context.Context, in AwaitStatusInput) (RunnerStatus, error) {
	p := dataplane.Pipeline{Tenant: in.Tenant, Integration: in.Integration}
	maxWait := in.MaxWait
	if maxWait <= 0 {
		maxWait = 90 * time.Second
	}
	every := a.PollEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	deadline := time.NewTimer(maxWait)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		st, ok, err := a.State.GetStatus(ctx, p)
		if err != nil {
			return RunnerStatus{}, err
		}
		if ok && st.Version == in.Version {
			if st.Status == in.Status || (st.Status == dataplane.StatusDegraded && in.Status == dataplane.StatusRunning) {
				return RunnerStatus{Version: st.Version, Status: st.Status, LastError: st.LastError}, nil
			}
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, st.Status)
		}
		select {
		case <-ctx.Done():
			return RunnerStatus{}, fmt.Errorf("wait for %s version %d to be %s: %w", p, in.Version, in.Status, ctx.Err())
		case <-deadline.C:
			return RunnerStatus{Version: in.Version, Status: StatusPending,
				LastError: fmt.Sprintf("no runner reported version %d %s within %s", in.Version, in.Status, maxWait)}, nil
		case <-tick.C:
		}
	}
}

// Transition is one recorded lifecycle change.
type Transition struct {
	// ID identifies the change (the workflow run and its update); recording
	// the same ID twice writes one event.
	ID          string
	Tenant      string
	Integration string
	Actor       string
	Action      string
	Reason      string
	FromStatus  string
	// Version, DesiredStatus, Status and LastError are the integration's
	// state after the change. For Action "delete" the integration's row is
	// removed (its versions with it); its events stay.
	Version       int
	DesiredStatus string
	Status        string
	LastError     string
}

// ActionDelete is the Transition.Action that removes the integration.
const ActionDelete = "delete"

// ActionRun is the Transition.Action of a scheduled run: it is logged but
// leaves the integration's state as it is.
const ActionRun = "run"

// RecordTransition writes the integration's new state and appends the
// change to its execution log, in one transaction; a run (ActionRun) is
// only appended. A transition already recorded is left as it is.
func (a *Integrations) RecordTransition(ctx context.Context, tr Transition) error {
	err := pgx.BeginFunc(ctx, a.DB, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO integration_events
				(tenant_id, integration_id, actor, action, from_status, to_status, reason, transition_id)
			VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''))
			ON CONFLICT (tenant_id, transition_id) DO NOTHING`,
			tr.Tenant, tr.Integration, tr.Actor, tr.Action, tr.FromStatus, tr.Status, tr.Reason, tr.ID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // recorded by an earlier attempt
		}
		if tr.Action == ActionDelete {
			_, err = tx.Exec(ctx, `DELETE FROM integrations WHERE tenant_id = $1 AND id = $2`, tr.Tenant, tr.Integration)
			return err
		}
		if tr.Action == ActionRun {
			return nil
		}
		_, err = tx.Exec(ctx, `
			UPDATE integrations
			SET current_version = $3, desired_status = $4, status = $5, last_error = NULLIF($6, ''), updated_at = now()
			WHERE tenant_id = $1 AND id = $2`,
			tr.Tenant, tr.Integration, tr.Version, tr.DesiredStatus, tr.Status, tr.LastError)
		return err
	})
	if err != nil {
		return fmt.Errorf("record %s of %s/%s: %w", tr.Action, tr.Tenant, tr.Integration, err)
	}
	return nil
}
