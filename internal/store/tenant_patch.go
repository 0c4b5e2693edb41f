package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// TenantPatch is what a platform admin changes on a tenant. Each section is
// a pointer: nil leaves that part of the tenant as it is. New sections are
// new pointer fields, applied in PatchTenant's one transaction.
type TenantPatch struct {
	// Egress replaces the tenant's egress policy as a whole.
	Egress *sdk.EgressPolicy
}

// PatchTenant applies patch to a tenant that is not deleted or being
// deleted, in one transaction, and returns the tenant as it is afterwards.
// ErrNotFound when there is no such tenant (or it is going away). The
// caller validates the sections: the store keeps what it is given.
//
// afterWrite, when not nil, runs once the changes are written but before
// they commit, while the tenant's row is locked: it mirrors them elsewhere
// (the runners' copy of the egress policy), so concurrent patches reach
// the mirror in the order they commit. When it fails nothing is committed.
func (s *Store) PatchTenant(ctx context.Context, id string, patch TenantPatch, afterWrite func(context.Context, Tenant) error) (Tenant, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Tenant{}, fmt.Errorf("patch tenant %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	t, err := scanTenant(tx.QueryRow(ctx,
		`SELECT `+tenantColumns+` FROM tenants WHERE id = $1 AND status NOT IN ($2, $3) FOR UPDATE`,
		id, TenantDeleting, TenantDeleted))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tenant{}, fmt.Errorf("tenant %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("patch tenant %s: %w", id, err)
	}
	if patch.Egress != nil {
		egress := *patch.Egress
		if egress.AllowHosts == nil {
			egress.AllowHosts = []string{}
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET egress = $2 WHERE id = $1`, id, egress); err != nil {
			return Tenant{}, fmt.Errorf("patch tenant %s: egress: %w", id, err)
		}
		t.Egress = *patch.Egress
	}
	if afterWrite != nil {
		if err := afterWrite(ctx, t); err != nil {
			return Tenant{}, fmt.Errorf("patch tenant %s: %w", id, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Tenant{}, fmt.Errorf("patch tenant %s: %w", id, err)
	}
	return t, nil
}
