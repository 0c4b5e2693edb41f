package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// TenantSecret is a tenant secret as listings show it: its name and
// history, never its value.
type TenantSecret struct {
	TenantID string
	Name     string
	// Version counts the writes of the name, from 1.
	Version int
	// KeyID names the key that sealed the current value.
	KeyID     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutSecret stores tenant's secret name as sealed (by internal/secretbox,
// with key keyID): a new name gets version 1, a known one its next
// version. The store never sees the plaintext.
func (s *Store) PutSecret(ctx context.Context, tenantID, name, keyID string, sealed []byte) (TenantSecret, error) {
	if !sdk.ValidSecretName(name) {
		return TenantSecret{}, fmt.Errorf("%w: secret name %q", ErrInvalid, name)
	}
	if len(sealed) == 0 {
		return TenantSecret{}, fmt.Errorf("%w: empty sealed value", ErrInvalid)
	}
	out := TenantSecret{TenantID: tenantID, Name: name}
	err := s.pool.QueryRow(ctx,
		`INSERT INTO tenant_secrets AS t (tenant_id, name, ciphertext, key_id)
		 VALUES ($1, $2, $3, $4)
		 ON CONFLICT (tenant_id, name) DO UPDATE
		   SET ciphertext = excluded.ciphertext, key_id = excluded.key_id,
		       version = t.version + 1, updated_at = now()
		 RETURNING version, key_id, created_at, updated_at`,
		tenantID, name, sealed, keyID).Scan(&out.Version, &out.KeyID, &out.CreatedAt, &out.UpdatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return TenantSecret{}, fmt.Errorf("tenant %s: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return TenantSecret{}, fmt.Errorf("put secret of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// ListSecrets returns tenant's secrets ordered by name, without values.
func (s *Store) ListSecrets(ctx context.Context, tenantID string) ([]TenantSecret, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT name, version, key_id, created_at, updated_at FROM tenant_secrets
		 WHERE tenant_id = $1 ORDER BY name`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list secrets of tenant %s: %w", tenantID, err)
	}
	defer rows.Close()
	var out []TenantSecret
	for rows.Next() {
		sec := TenantSecret{TenantID: tenantID}
		if err := rows.Scan(&sec.Name, &sec.Version, &sec.KeyID, &sec.CreatedAt, &sec.UpdatedAt); err != nil {
			return nil, fmt.Errorf("list secrets of tenant %s: %w", tenantID, err)
		}
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list secrets of tenant %s: %w", tenantID, err)
	}
	return out, nil
}

// SealedSecret returns tenant's sealed secret name, to mirror it again or
// re-seal it with a new key.
func (s *Store) SealedSecret(ctx context.Context, tenantID, name string) ([]byte, error) {
	var sealed []byte
	err := s.pool.QueryRow(ctx,
		`SELECT ciphertext FROM tenant_secrets WHERE tenant_id = $1 AND name = $2`, tenantID, name).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret of tenant %s: %w", tenantID, err)
	}
	return sealed, nil
}

// DeleteSecret removes tenant's secret name; ErrNotFound when the tenant
// has none of that name.
func (s *Store) DeleteSecret(ctx context.Context, tenantID, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tenant_secrets WHERE tenant_id = $1 AND name = $2`, tenantID, name)
	if err != nil {
		return fmt.Errorf("delete secret of tenant %s: %w", tenantID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("secret %s: %w", name, ErrNotFound)
	}
	return nil
}

// DeleteTenantSecrets removes every secret of tenant and returns how many
// there were.
func (s *Store) DeleteTenantSecrets(ctx context.Context, tenantID string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tenant_secrets WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return 0, fmt.Errorf("delete secrets of tenant %s: %w", tenantID, err)
	}
	return int(tag.RowsAffected()), nil
}
