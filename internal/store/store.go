// Package store is the PostgreSQL system of record for VRSky's metadata:
// tenants, their API keys, integrations with their spec versions and
// execution logs.
//
// Every method takes the tenant and every query filters by it, so one tenant
// can never read, change or learn of another's rows: a row of another tenant
// is reported exactly like a row that does not exist (ErrNotFound). The one
// exception is Authenticate, which finds a key by its hash before the tenant
// is known. The store never sees a secret in clear beyond hashing it, and
// never logs one.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNotFound: no such row for this tenant (including rows that belong
	// to another tenant).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the row already exists.
	ErrConflict = errors.New("already exists")
	// ErrInvalid: an argument is malformed (a name, a scope).
	ErrInvalid = errors.New("invalid argument")
	// ErrUnauthenticated: the secret is unknown, its key is revoked or its
	// tenant is deleted. Which one is deliberately not said.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller may not change that row (a key revoking a
	// key with scopes it does not hold).
	ErrForbidden = errors.New("forbidden")
	// ErrTenantGone: the tenant is being deleted or is deleted; nothing may
	// bring it back.
	ErrTenantGone = errors.New("the tenant is being deleted")
)

// Page selects one page of a keyset-paginated listing.
type Page struct {
	// Cursor is the Next value of the previous page; empty for the first.
	Cursor string
	// Limit is the page size: 0 means DefaultPageSize, above MaxPageSize
	// is cut to MaxPageSize.
	Limit int
}

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
	// MaxTenantNameLen bounds a tenant's display name.
	MaxTenantNameLen = 200
)

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	default:
		return p.Limit
	}
}

// Store reads and writes metadata in PostgreSQL. It is safe for concurrent
// use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool, whose database must be migrated.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Tenant statuses.
const (
	TenantActive  = "active"
	TenantDeleted = "deleted"
)

// Tenant is one tenant.
type Tenant struct {
	ID        string
	Name      string
	Status    string
	CreatedAt time.Time
	// DeletedAt is set once the tenant is deleted.
	DeletedAt *time.Time
	// Limits are the tenant's quotas (DefaultTenantLimits unless set).
	Limits TenantLimits
	// FailureReason says why provisioning failed (status failed).
	FailureReason string
	// Egress is where the tenant's connectors may connect, as a platform
	// admin set it (PatchTenant); the zero value is the default policy.
	Egress sdk.EgressPolicy
}

const tenantColumns = "id, name, status, created_at, deleted_at, limits, coalesce(failure_reason, ''), egress"

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	var limits *TenantLimits
	err := row.Scan(&t.ID, &t.Name, &t.Status, &t.CreatedAt, &t.DeletedAt, &limits, &t.FailureReason, &t.Egress)
	t.Limits = DefaultTenantLimits
	if limits != nil {
		t.Limits = *limits
	}
	return t, err
}

func checkTenant(id, name string) error {
	if !spec.ValidName(id) {
		return fmt.Errorf("%w: tenant id %q (lowercase letters, digits, hyphens; at most 63)", ErrInvalid, id)
	}
	if name == "" || len(name) > MaxTenantNameLen {
		return fmt.Errorf("%w: tenant name must be 1-%d bytes", ErrInvalid, MaxTenantNameLen)
	}
	return nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// GetTenant returns a tenant, deleted ones included (with their status).
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("get tenant %s: %w", id, err)
	}
	return t, nil
}

// ListTenants returns one page of tenants ordered by ID, deleted ones
// included, and the cursor of the next page ("" on the last page).
func (s *Store) ListTenants(ctx context.Context, page Page) ([]Tenant, string, error) {
	limit := page.limit()
	rows, err := s.pool.Query(ctx,
		`SELECT `+tenantColumns+` FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`,
		page.Cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list tenants: %w", err)
	}
	tenants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list tenants: %w", err)
	}
	next := ""
	if len(tenants) > limit {
		tenants = tenants[:limit]
		next = tenants[limit-1].ID
	}
	return tenants, next, nil
}

// DeleteTenant marks a tenant deleting and revokes all its keys in one
// transaction, so none of them authenticates afterwards. Deleting a deleted
// tenant changes nothing and succeeds; an unknown tenant is ErrNotFound.
// Removing the tenant's NATS account, streams and objects, and marking it
// deleted at the end, is the decommissioning workflow's job.
func (s *Store) DeleteTenant(ctx context.Context, id string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	tag, err := tx.Exec(ctx,
		`UPDATE tenants SET status = CASE WHEN status = $3 THEN status ELSE $2 END,
		   deleted_at = coalesce(deleted_at, now()) WHERE id = $1`,
		id, TenantDeleting, TenantDeleted)
	if err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete tenant %s: %w", id, ErrNotFound)
	}
	if _, err := tx.Exec(ctx,
		`UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL`, id); err != nil {
		return fmt.Errorf("revoke keys of tenant %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete tenant %s: %w", id, err)
	}
	return nil
}
