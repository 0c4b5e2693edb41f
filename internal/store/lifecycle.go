package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/internal/spec"
)

// VersionSpec returns the spec of one version of one of the tenant's
// integrations, checked: ErrNotFound when the integration (or another
// tenant's) has no such version, ErrInvalid when the stored spec does not
// decode or no longer validates.
func (s *Store) VersionSpec(ctx context.Context, tenant, integration string, version int) (spec.Integration, error) {
	var (
		out spec.Integration
		raw []byte
	)
	err := s.pool.QueryRow(ctx,
		`SELECT spec FROM integration_versions WHERE tenant_id = $1 AND integration_id = $2 AND version = $3`,
		tenant, integration, version).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("integration %s/%s has no version %d: %w", tenant, integration, version, ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("read spec of %s/%s version %d: %w", tenant, integration, version, err)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("%w: decode spec of %s/%s version %d: %w", ErrInvalid, tenant, integration, version, err)
	}
	if err := out.Validate(); err != nil {
		return out, fmt.Errorf("%w: spec of %s/%s version %d: %w", ErrInvalid, tenant, integration, version, err)
	}
	return out, nil
}

// Lifecycle actions with a meaning for RecordTransition.
const (
	// ActionDelete removes the integration's row (its versions with it);
	// its execution log stays.
	ActionDelete = "delete"
	// ActionRun is a scheduled run: logged, the state left as it is.
	ActionRun = "run"
)

// Transition is one lifecycle change of an integration, as its lifecycle
// workflow records it.
type Transition struct {
	// ID identifies the change (the workflow run and its update);
	// recording the same ID twice writes one event.
	ID          string
	Tenant      string
	Integration string
	Actor       string
	Action      string
	Reason      string
	FromStatus  string
	// Version, DesiredStatus, Status and LastError are the integration's
	// state after the change.
	Version       int
	DesiredStatus string
	Status        string
	LastError     string
}

// RecordTransition writes the integration's new state and appends the
// change to its execution log, in one transaction; ActionRun is only
// appended and ActionDelete removes the integration. A transition already
// recorded (same tenant and ID) is left as it is.
func (s *Store) RecordTransition(ctx context.Context, tr Transition) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
		switch tr.Action {
		case ActionDelete:
			_, err = tx.Exec(ctx, `DELETE FROM integrations WHERE tenant_id = $1 AND id = $2`, tr.Tenant, tr.Integration)
			return err
		case ActionRun:
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
