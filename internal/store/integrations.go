package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/internal/spec"
)

// ErrPrecondition: the caller's expected version is not the latest one.
var ErrPrecondition = errors.New("precondition failed")

// Integration is an integration with its latest spec.
//
// Version and Spec are the latest spec version; DeployedVersion,
// DesiredStatus, Status and LastError are what the integration's lifecycle
// recorded last (DeployedVersion is 0 before the first deploy).
type Integration struct {
	TenantID        string
	ID              string
	Name            string
	Version         int
	Spec            spec.Integration
	DeployedVersion int
	DesiredStatus   string
	Status          string
	LastError       string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// IntegrationVersion is one version of an integration's spec.
type IntegrationVersion struct {
	Version   int
	Spec      spec.Integration
	CreatedAt time.Time
	// CreatedBy is who wrote the version (an API key ID); empty when
	// unknown.
	CreatedBy string
}

// IntegrationEvent is one entry of an integration's execution log: a
// lifecycle change, who asked for it and why.
type IntegrationEvent struct {
	ID         int64
	At         time.Time
	Actor      string
	Action     string
	FromStatus string
	ToStatus   string
	Reason     string
}

// integrationSelect reads an integration with its latest version; $1 is the
// tenant.
const integrationSelect = `
	SELECT i.tenant_id, i.id, i.name, v.version, v.spec, i.current_version, i.desired_status, i.status,
	       coalesce(i.last_error, ''), i.created_at, i.updated_at
	FROM integrations i
	JOIN LATERAL (
		SELECT version, spec FROM integration_versions
		WHERE tenant_id = i.tenant_id AND integration_id = i.id
		ORDER BY version DESC LIMIT 1
	) v ON true
	WHERE i.tenant_id = $1`

func scanIntegration(row pgx.Row) (Integration, error) {
	var (
		in  Integration
		raw []byte
	)
	err := row.Scan(&in.TenantID, &in.ID, &in.Name, &in.Version, &raw, &in.DeployedVersion,
		&in.DesiredStatus, &in.Status, &in.LastError, &in.CreatedAt, &in.UpdatedAt)
	if err != nil {
		return Integration{}, err
	}
	if err := json.Unmarshal(raw, &in.Spec); err != nil {
		return Integration{}, fmt.Errorf("decode spec of %s version %d: %w", in.ID, in.Version, err)
	}
	return in, nil
}

func checkSpec(in spec.Integration) ([]byte, error) {
	if err := in.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("%w: encode spec: %w", ErrInvalid, err)
	}
	return b, nil
}

// CreateIntegration adds an integration to an active tenant with in as its
// version 1, in one transaction. The integration's ID is the spec's name;
// ErrConflict when the tenant already has it, ErrNotFound when the tenant is
// unknown or deleted, ErrInvalid when the spec is malformed. Connector
// configs are not checked here.
func (s *Store) CreateIntegration(ctx context.Context, tenant string, in spec.Integration, actor string) (Integration, error) {
	raw, err := checkSpec(in)
	if err != nil {
		return Integration{}, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Integration{}, fmt.Errorf("create integration %s: %w", in.Name, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := checkIntegrationQuota(ctx, tx, tenant); err != nil {
		return Integration{}, err
	}
	tag, err := tx.Exec(ctx,
		`INSERT INTO integrations (tenant_id, id, name)
		 SELECT id, $2, $2 FROM tenants WHERE id = $1 AND status = $3
		 ON CONFLICT DO NOTHING`,
		tenant, in.Name, TenantActive)
	if err != nil {
		return Integration{}, fmt.Errorf("create integration %s: %w", in.Name, err)
	}
	if tag.RowsAffected() == 0 {
		var active bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND status = $2)`,
			tenant, TenantActive).Scan(&active)
		if err != nil {
			return Integration{}, fmt.Errorf("create integration %s: %w", in.Name, err)
		}
		if !active {
			return Integration{}, fmt.Errorf("create integration %s: tenant %s: %w", in.Name, tenant, ErrNotFound)
		}
		return Integration{}, fmt.Errorf("integration %s: %w", in.Name, ErrConflict)
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO integration_versions (tenant_id, integration_id, version, spec, created_by)
		 VALUES ($1, $2, 1, $3, NULLIF($4, ''))`,
		tenant, in.Name, raw, actor); err != nil {
		return Integration{}, fmt.Errorf("create integration %s: %w", in.Name, err)
	}
	created, err := scanIntegration(tx.QueryRow(ctx, integrationSelect+` AND i.id = $2`, tenant, in.Name))
	if err != nil {
		return Integration{}, fmt.Errorf("create integration %s: %w", in.Name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Integration{}, fmt.Errorf("create integration %s: %w", in.Name, err)
	}
	return created, nil
}

// GetIntegration returns one of the tenant's integrations with its latest
// spec. Another tenant's integration is ErrNotFound, like an unknown one.
func (s *Store) GetIntegration(ctx context.Context, tenant, id string) (Integration, error) {
	in, err := scanIntegration(s.pool.QueryRow(ctx, integrationSelect+` AND i.id = $2`, tenant, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Integration{}, fmt.Errorf("integration %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Integration{}, fmt.Errorf("get integration %s/%s: %w", tenant, id, err)
	}
	return in, nil
}

// ListIntegrations returns one page of the tenant's integrations ordered by
// ID, and the cursor of the next page ("" on the last page). A non-empty
// status keeps only the integrations in that reported status.
func (s *Store) ListIntegrations(ctx context.Context, tenant string, page Page, status string) ([]Integration, string, error) {
	limit := page.limit()
	rows, err := s.pool.Query(ctx,
		integrationSelect+` AND i.id > $2 AND ($3 = '' OR i.status = $3) ORDER BY i.id LIMIT $4`,
		tenant, page.Cursor, status, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list integrations of tenant %s: %w", tenant, err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Integration, error) { return scanIntegration(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list integrations of tenant %s: %w", tenant, err)
	}
	next := ""
	if len(list) > limit {
		list = list[:limit]
		next = list[limit-1].ID
	}
	return list, next, nil
}

// PutIntegrationVersion adds the next version (the latest plus one) of one
// of the tenant's integrations and returns the integration with it. When
// ifVersion is above 0 it must be the latest version, else ErrPrecondition,
// so that two writers cannot overwrite each other unknowingly. The spec's
// name must be the integration's ID (ErrInvalid). It only stores the
// version: rolling it out is the lifecycle's job.
func (s *Store) PutIntegrationVersion(ctx context.Context, tenant, id string, in spec.Integration, actor string, ifVersion int) (Integration, error) {
	if in.Name != id {
		return Integration{}, fmt.Errorf("%w: name: %q must be the integration's ID %q", ErrInvalid, in.Name, id)
	}
	raw, err := checkSpec(in)
	if err != nil {
		return Integration{}, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// Locking the integration's row orders concurrent writers. The latest
	// version is read by a later statement, whose snapshot (read committed)
	// includes what the previous writer committed.
	tag, err := tx.Exec(ctx, `SELECT 1 FROM integrations WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenant, id)
	if err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return Integration{}, fmt.Errorf("integration %s: %w", id, ErrNotFound)
	}
	var latest int
	if err := tx.QueryRow(ctx,
		`SELECT coalesce(max(version), 0) FROM integration_versions WHERE tenant_id = $1 AND integration_id = $2`,
		tenant, id).Scan(&latest); err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	if ifVersion > 0 && ifVersion != latest {
		return Integration{}, fmt.Errorf("integration %s is at version %d, not %d: %w", id, latest, ifVersion, ErrPrecondition)
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO integration_versions (tenant_id, integration_id, version, spec, created_by)
		 VALUES ($1, $2, $3, $4, NULLIF($5, ''))`,
		tenant, id, latest+1, raw, actor); err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx,
		`UPDATE integrations SET updated_at = now() WHERE tenant_id = $1 AND id = $2`, tenant, id); err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	updated, err := scanIntegration(tx.QueryRow(ctx, integrationSelect+` AND i.id = $2`, tenant, id))
	if err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Integration{}, fmt.Errorf("update integration %s: %w", id, err)
	}
	return updated, nil
}

// ListVersions returns every version of one of the tenant's integrations,
// newest first. An unknown integration (or another tenant's) is ErrNotFound.
func (s *Store) ListVersions(ctx context.Context, tenant, id string) ([]IntegrationVersion, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT version, spec, created_at, coalesce(created_by, '')
		FROM integration_versions WHERE tenant_id = $1 AND integration_id = $2
		ORDER BY version DESC`, tenant, id)
	if err != nil {
		return nil, fmt.Errorf("list versions of integration %s/%s: %w", tenant, id, err)
	}
	versions, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IntegrationVersion, error) {
		var (
			v   IntegrationVersion
			raw []byte
		)
		if err := r.Scan(&v.Version, &raw, &v.CreatedAt, &v.CreatedBy); err != nil {
			return v, err
		}
		if err := json.Unmarshal(raw, &v.Spec); err != nil {
			return v, fmt.Errorf("decode spec version %d: %w", v.Version, err)
		}
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of integration %s/%s: %w", tenant, id, err)
	}
	// Every integration has a version 1, so none means no integration.
	if len(versions) == 0 {
		return nil, fmt.Errorf("integration %s: %w", id, ErrNotFound)
	}
	return versions, nil
}

// ListEvents returns one page of an integration's execution log, newest
// first, and the cursor of the next page ("" on the last page). The log
// outlives a deleted integration; an integration the tenant neither has nor
// had is ErrNotFound. A malformed cursor is ErrInvalid.
func (s *Store) ListEvents(ctx context.Context, tenant, id string, page Page) ([]IntegrationEvent, string, error) {
	var before int64
	if page.Cursor != "" {
		n, err := strconv.ParseInt(page.Cursor, 10, 64)
		if err != nil || n <= 0 {
			return nil, "", fmt.Errorf("%w: cursor %q", ErrInvalid, page.Cursor)
		}
		before = n
	}
	var known bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM integrations WHERE tenant_id = $1 AND id = $2)
		    OR EXISTS (SELECT 1 FROM integration_events WHERE tenant_id = $1 AND integration_id = $2)`,
		tenant, id).Scan(&known)
	if err != nil {
		return nil, "", fmt.Errorf("list events of integration %s/%s: %w", tenant, id, err)
	}
	if !known {
		return nil, "", fmt.Errorf("integration %s: %w", id, ErrNotFound)
	}
	limit := page.limit()
	rows, err := s.pool.Query(ctx, `
		SELECT id, at, actor, action, coalesce(from_status, ''), coalesce(to_status, ''), coalesce(reason, '')
		FROM integration_events
		WHERE tenant_id = $1 AND integration_id = $2 AND ($3 = 0 OR id < $3)
		ORDER BY id DESC LIMIT $4`, tenant, id, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list events of integration %s/%s: %w", tenant, id, err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (IntegrationEvent, error) {
		var e IntegrationEvent
		err := r.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.FromStatus, &e.ToStatus, &e.Reason)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list events of integration %s/%s: %w", tenant, id, err)
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = strconv.FormatInt(events[limit-1].ID, 10)
	}
	return events, next, nil
}
