package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/internal/natsauth"
)

// Tenant statuses while the control plane provisions or removes a tenant.
// A tenant's keys authenticate only once it is active; a tenant whose
// provisioning failed stays failed, with the reason, until its ID is
// created again.
const (
	TenantProvisioning = "provisioning"
	TenantDeleting     = "deleting"
	TenantFailed       = "failed"
)

// TenantLimits are a tenant's quotas: its JetStream limits and how many
// integrations it may have.
type TenantLimits struct {
	natsauth.Limits
	Integrations int `json:"integrations"`
	// MessagesPerSecond is the webhook messages per second the ingress
	// takes from the tenant; 0 means the platform's rate.
	MessagesPerSecond int `json:"messages_per_second,omitempty"`
	// RememberedKeys is how many delivery keys the tenant may have
	// remembered at once (docs/adr/0035); 0 means the platform's limit.
	RememberedKeys int64 `json:"remembered_keys,omitempty"`
}

// DefaultTenantLimits are a tenant's quotas unless told otherwise.
var DefaultTenantLimits = TenantLimits{Limits: natsauth.DefaultLimits, Integrations: 100}

// Validate reports quotas that cannot be applied.
func (l TenantLimits) Validate() error {
	if l.Integrations < 0 {
		return fmt.Errorf("%w: integrations quota must not be negative", ErrInvalid)
	}
	if l.MessagesPerSecond < 0 {
		return fmt.Errorf("%w: messages per second must not be negative", ErrInvalid)
	}
	if l.RememberedKeys < 0 {
		return fmt.Errorf("%w: remembered keys must not be negative", ErrInvalid)
	}
	if err := l.Limits.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// ErrQuotaExceeded is a creation refused because the tenant has used up a
// quota; it is an ErrInvalid.
var ErrQuotaExceeded = fmt.Errorf("%w: quota exceeded", ErrInvalid)

// NewTenant is a tenant to provision with its first API key. The key comes
// as its hash: its secret stays with whoever shows it to the user.
type NewTenant struct {
	ID, Name  string
	KeyID     string
	KeyPrefix string
	KeyHash   []byte
	Scopes    []Scope
	// Limits are the tenant's quotas; nil means the defaults.
	Limits *TenantLimits `json:",omitempty"`
}

// NewKey returns a fresh key: its ID, display prefix and hash, and its
// secret, to be shown once.
func NewKey() (keyID, prefix string, hash []byte, secret string) {
	secret = NewSecret(KeyPrefix)
	return "key-" + randomHex(12), secret[:DisplayPrefixLen], HashSecret(secret), secret
}

// BeginTenant adds a tenant in status provisioning with its first key, in
// one transaction. Doing it again with the same key succeeds (a retried
// step); a tenant whose provisioning failed is replaced; an ID taken
// otherwise, also by a deleted tenant, is ErrConflict.
func (s *Store) BeginTenant(ctx context.Context, in NewTenant) (Tenant, error) {
	if err := checkTenant(in.ID, in.Name); err != nil {
		return Tenant{}, err
	}
	scopes, err := NormalizeScopes(in.Scopes)
	if err != nil {
		return Tenant{}, err
	}
	names := make([]string, len(scopes))
	for i, sc := range scopes {
		names[i] = string(sc)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", in.ID, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1 AND status = $2`, in.ID, TenantFailed); err != nil {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", in.ID, err)
	}
	t, err := scanTenant(tx.QueryRow(ctx,
		`INSERT INTO tenants (id, name, status, limits) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (id) DO NOTHING
		 RETURNING `+tenantColumns, in.ID, in.Name, TenantProvisioning, in.Limits))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.sameProvisioning(ctx, in)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", in.ID, err)
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO api_keys (id, tenant_id, prefix, hash, scopes) VALUES ($1, $2, $3, $4, $5)`,
		in.KeyID, in.ID, in.KeyPrefix, in.KeyHash, names); err != nil {
		return Tenant{}, fmt.Errorf("create the first key of tenant %s: %w", in.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", in.ID, err)
	}
	return t, nil
}

// sameProvisioning returns the tenant when it is being provisioned with the
// same first key, and ErrConflict otherwise.
func (s *Store) sameProvisioning(ctx context.Context, in NewTenant) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx,
		`SELECT `+tenantColumns+` FROM tenants t
		 WHERE id = $1 AND status <> $3
		   AND EXISTS (SELECT 1 FROM api_keys k WHERE k.tenant_id = t.id AND k.id = $2)`,
		in.ID, in.KeyID, TenantDeleted))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, fmt.Errorf("create tenant %s: %w", in.ID, ErrConflict)
	}
	return t, err
}

// SetTenantStatus moves a tenant to TenantActive (from provisioning) or to
// TenantDeleted (from deleting, stamping deleted_at). Activating a tenant
// that is being deleted, is deleted or failed is ErrTenantGone, so a
// provisioning step retried late never revives it. An unknown tenant is
// ErrNotFound.
func (s *Store) SetTenantStatus(ctx context.Context, id, status string) error {
	var from []string // the statuses it may move from
	switch status {
	case TenantActive:
		from = []string{TenantProvisioning, TenantActive}
	case TenantDeleted:
		from = []string{TenantDeleting, TenantDeleted}
	default:
		return fmt.Errorf("set status of tenant %s to %q: %w", id, status, ErrInvalid)
	}
	tag, err := s.pool.Exec(ctx,
		`UPDATE tenants SET status = $2,
		   deleted_at = CASE WHEN $2 = 'deleted' THEN coalesce(deleted_at, now()) ELSE deleted_at END
		 WHERE id = $1 AND status = ANY($3)`, id, status, from)
	if err != nil {
		return fmt.Errorf("set status of tenant %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.GetTenant(ctx, id); err != nil {
			return fmt.Errorf("set status of tenant %s: %w", id, err)
		}
		return fmt.Errorf("tenant %s to %s: %w", id, status, ErrTenantGone)
	}
	return nil
}

// PurgeProvisioningTenant removes a tenant whose provisioning failed, with
// its keys, so that its ID can be used again. It never touches a tenant that
// finished provisioning; a missing tenant is fine.
func (s *Store) PurgeProvisioningTenant(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM tenants WHERE id = $1 AND status = $2`, id, TenantProvisioning); err != nil {
		return fmt.Errorf("purge tenant %s: %w", id, err)
	}
	return nil
}

// FailTenant marks a tenant whose provisioning failed (and was undone)
// failed with reason; its keys never authenticate. Only a tenant still
// provisioning is touched; a missing one is fine.
func (s *Store) FailTenant(ctx context.Context, id, reason string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE tenants SET status = $3, failure_reason = $2 WHERE id = $1 AND status = $4`,
		id, reason, TenantFailed, TenantProvisioning); err != nil {
		return fmt.Errorf("mark tenant %s failed: %w", id, err)
	}
	return nil
}

// SetTenantLimits replaces an active or provisioning tenant's quotas and
// returns the tenant. Lowering a quota below what is used refuses new
// work, it removes nothing.
func (s *Store) SetTenantLimits(ctx context.Context, id string, limits TenantLimits) (Tenant, error) {
	if err := limits.Validate(); err != nil {
		return Tenant{}, err
	}
	t, err := scanTenant(s.pool.QueryRow(ctx,
		`UPDATE tenants SET limits = $2 WHERE id = $1 AND status IN ($3, $4) RETURNING `+tenantColumns,
		id, limits, TenantActive, TenantProvisioning))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("set limits of tenant %s: %w", id, err)
	}
	return t, nil
}

// CountTenantIntegrations returns how many integrations the tenant has.
func (s *Store) CountTenantIntegrations(ctx context.Context, tenant string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM integrations WHERE tenant_id = $1`, tenant).Scan(&n); err != nil {
		return 0, fmt.Errorf("count integrations of %s: %w", tenant, err)
	}
	return n, nil
}

// checkIntegrationQuota locks the tenant's row for the rest of tx and
// refuses (ErrQuotaExceeded) when it already has as many integrations as
// its quota allows. A tenant unknown or not active passes: the insert then
// finds none and says so.
func checkIntegrationQuota(ctx context.Context, tx pgx.Tx, tenant string) error {
	var limits *TenantLimits
	var n int
	err := tx.QueryRow(ctx,
		`SELECT limits, (SELECT count(*) FROM integrations i WHERE i.tenant_id = t.id)
		 FROM tenants t WHERE id = $1 AND status = $2 FOR UPDATE`, tenant, TenantActive).Scan(&limits, &n)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("integration quota of %s: %w", tenant, err)
	}
	quota := DefaultTenantLimits.Integrations
	if limits != nil {
		quota = limits.Integrations
	}
	if n >= quota {
		return fmt.Errorf("%w: tenant %s has %d integrations, its quota is %d; delete one or ask for a larger quota", ErrQuotaExceeded, tenant, n, quota)
	}
	return nil
}

// TenantIntegrationIDs returns the IDs of every integration of a tenant
// (deleted integrations have no row).
func (s *Store) TenantIntegrationIDs(ctx context.Context, tenant string) ([]string, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT id FROM integrations WHERE tenant_id = $1 ORDER BY id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("list integrations of %s: %w", tenant, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list integrations of %s: %w", tenant, err)
	}
	return ids, nil
}
