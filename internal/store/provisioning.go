package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Tenant statuses while the control plane provisions or removes a tenant.
// A tenant's keys authenticate only once it is active.
const (
	TenantProvisioning = "provisioning"
	TenantDeleting     = "deleting"
)

// NewTenant is a tenant to provision with its first API key. The key comes
// as its hash: its secret stays with whoever shows it to the user.
type NewTenant struct {
	ID, Name  string
	KeyID     string
	KeyPrefix string
	KeyHash   []byte
	Scopes    []Scope
}

// NewKey returns a fresh key: its ID, display prefix and hash, and its
// secret, to be shown once.
func NewKey() (keyID, prefix string, hash []byte, secret string) {
	secret = NewSecret(KeyPrefix)
	return "key-" + randomHex(12), secret[:DisplayPrefixLen], HashSecret(secret), secret
}

// BeginTenant adds a tenant in status provisioning with its first key, in
// one transaction. Doing it again with the same key succeeds (a retried
// step); an ID taken otherwise, also by a deleted tenant, is ErrConflict.
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
	t, err := scanTenant(tx.QueryRow(ctx,
		`INSERT INTO tenants (id, name, status) VALUES ($1, $2, $3)
		 ON CONFLICT (id) DO NOTHING
		 RETURNING `+tenantColumns, in.ID, in.Name, TenantProvisioning))
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

// SetTenantStatus moves a tenant to status; to TenantDeleted it also
// stamps deleted_at. An unknown tenant is ErrNotFound.
func (s *Store) SetTenantStatus(ctx context.Context, id, status string) error {
	tag, err := s.pool.Exec(ctx,
		`UPDATE tenants SET status = $2,
		   deleted_at = CASE WHEN $2 = 'deleted' THEN coalesce(deleted_at, now()) ELSE deleted_at END
		 WHERE id = $1`, id, status)
	if err != nil {
		return fmt.Errorf("set status of tenant %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("tenant %s: %w", id, ErrNotFound)
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
