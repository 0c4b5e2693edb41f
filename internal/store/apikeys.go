package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Scope is a permission an API key carries.
type Scope string

// The scopes a tenant's key can hold.
const (
	// ScopeRead reads the tenant's resources.
	ScopeRead Scope = "read"
	// ScopeWrite creates, changes and deletes them, API keys included.
	ScopeWrite Scope = "write"
	// ScopeDLQ inspects, replays and discards dead-lettered messages.
	ScopeDLQ Scope = "dlq"
	// ScopeAdmin holds every other scope of its tenant.
	ScopeAdmin Scope = "admin"
)

// ScopePlatformAdmin is the role of the platform admin key, which manages
// tenants. It is never granted to a tenant's key.
const ScopePlatformAdmin Scope = "platform-admin"

// TenantScopes are the scopes a tenant's key can hold, in canonical order.
var TenantScopes = []Scope{ScopeRead, ScopeWrite, ScopeDLQ, ScopeAdmin}

// Valid reports whether s can be granted to a tenant's key.
func (s Scope) Valid() bool { return slices.Contains(TenantScopes, s) }

// NormalizeScopes checks scopes (at least one, each grantable) and returns
// them without duplicates in canonical order.
func NormalizeScopes(scopes []Scope) ([]Scope, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: a key needs at least one scope", ErrInvalid)
	}
	for _, s := range scopes {
		if !s.Valid() {
			return nil, fmt.Errorf("%w: unknown scope %q", ErrInvalid, s)
		}
	}
	var out []Scope
	for _, s := range TenantScopes {
		if slices.Contains(scopes, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Principal is who a request acts as: a tenant's key, or the platform
// admin (Admin set, no tenant).
type Principal struct {
	// TenantID is the key's tenant; empty for the platform admin.
	TenantID string
	Scopes   []Scope
	// Admin is set for the platform admin key only.
	Admin bool
	// KeyID identifies the key (never its secret); empty for the platform
	// admin.
	KeyID string
}

// Allows reports whether p may act with scope s. ScopePlatformAdmin is the
// platform admin's alone, and the platform admin holds no tenant scope (it
// has no tenant). A tenant key allows the scopes it holds, and every one
// when it holds ScopeAdmin.
func (p Principal) Allows(s Scope) bool {
	if s == ScopePlatformAdmin {
		return p.Admin
	}
	if p.Admin || p.TenantID == "" {
		return false
	}
	return slices.Contains(p.Scopes, s) || slices.Contains(p.Scopes, ScopeAdmin)
}

// API key format.
const (
	// KeyPrefix starts every tenant key's secret, so that leaked keys are
	// recognisable (secret scanners, logs).
	KeyPrefix = "vrsky_"
	// KeySecretBytes is the randomness in a secret: 256 bits.
	KeySecretBytes = 32
	// DisplayPrefixLen is how much of a secret listings show.
	DisplayPrefixLen = 12
	// maxSecretLen bounds what Authenticate hashes and looks up.
	maxSecretLen = 256
	// lastUsedEvery is how often last_used_at is written per key at most.
	lastUsedEvery = "1 minute"
)

// APIKey is a key as stored: never its secret, never its hash.
type APIKey struct {
	ID       string
	TenantID string
	// Prefix is the secret's first DisplayPrefixLen characters, enough to
	// recognise a key in a listing and nothing more.
	Prefix     string
	Scopes     []Scope
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// HashSecret is how a secret is stored and looked up: its SHA-256. A secret
// holds 256 random bits, so a fast hash is enough.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	// crypto/rand.Read never returns an error (it panics if the system's
	// randomness fails).
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewSecret returns a fresh key secret: prefix followed by KeySecretBytes
// random bytes in hex.
func NewSecret(prefix string) string { return prefix + randomHex(KeySecretBytes) }

const keyColumns = "id, tenant_id, prefix, scopes, created_at, last_used_at, revoked_at"

func scanKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	var scopes []string
	if err := row.Scan(&k.ID, &k.TenantID, &k.Prefix, &scopes, &k.CreatedAt, &k.LastUsedAt, &k.RevokedAt); err != nil {
		return APIKey{}, err
	}
	k.Scopes = toScopes(scopes)
	return k, nil
}

func toScopes(in []string) []Scope {
	out := make([]Scope, len(in))
	for i, s := range in {
		out[i] = Scope(s)
	}
	return out
}

// CreateAPIKey adds a key to an active tenant and returns it with its
// secret, which is shown once and stored only as its hash. An unknown or
// deleted tenant is ErrNotFound.
func (s *Store) CreateAPIKey(ctx context.Context, tenantID string, scopes []Scope) (APIKey, string, error) {
	scopes, err := NormalizeScopes(scopes)
	if err != nil {
		return APIKey{}, "", err
	}
	return insertAPIKey(ctx, s.pool, tenantID, scopes)
}

func insertAPIKey(ctx context.Context, q querier, tenantID string, scopes []Scope) (APIKey, string, error) {
	secret := NewSecret(KeyPrefix)
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	key, err := scanKey(q.QueryRow(ctx,
		`INSERT INTO api_keys (id, tenant_id, prefix, hash, scopes)
		 SELECT $2, id, $3, $4, $5 FROM tenants WHERE id = $1 AND status = $6
		 RETURNING `+keyColumns,
		tenantID, "key-"+randomHex(12), secret[:DisplayPrefixLen], HashSecret(secret), names, TenantActive))
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, "", fmt.Errorf("create API key: tenant %s: %w", tenantID, ErrNotFound)
	}
	if err != nil {
		return APIKey{}, "", fmt.Errorf("create API key for tenant %s: %w", tenantID, err)
	}
	return key, secret, nil
}

// ListAPIKeys returns a tenant's keys, revoked ones included, oldest first.
func (s *Store) ListAPIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("list API keys of tenant %s: %w", tenantID, err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list API keys of tenant %s: %w", tenantID, err)
	}
	return keys, nil
}

// RevokeAPIKey revokes one of the tenant's keys on behalf of by; the next
// Authenticate with it fails. A key revokes only keys whose every scope it
// holds, as it can grant only those: a write key cannot revoke the
// tenant's admin keys (ErrForbidden). Revoking a revoked key succeeds and
// changes nothing. A key of another tenant is ErrNotFound, exactly like an
// unknown one.
func (s *Store) RevokeAPIKey(ctx context.Context, tenantID, keyID string, by Principal) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("revoke API key of tenant %s: %w", tenantID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var scopes []Scope
	err = tx.QueryRow(ctx, `SELECT scopes FROM api_keys WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, tenantID, keyID).Scan(&scopes)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("API key %s: %w", keyID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("revoke API key of tenant %s: %w", tenantID, err)
	}
	for _, sc := range scopes {
		if !by.Allows(sc) {
			return fmt.Errorf("API key %s holds scope %s, which the caller does not: %w", keyID, sc, ErrForbidden)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND id = $2`, tenantID, keyID); err != nil {
		return fmt.Errorf("revoke API key of tenant %s: %w", tenantID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("revoke API key of tenant %s: %w", tenantID, err)
	}
	return nil
}

// Authenticate returns the principal of a tenant key's secret. Unknown
// secrets, revoked keys and keys of deleted tenants are all
// ErrUnauthenticated; other errors mean the store could not answer. It
// writes the key's last_used_at at most once a minute, so a busy key costs
// one indexed read per request.
func (s *Store) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, KeyPrefix) || len(secret) > maxSecretLen {
		return Principal{}, ErrUnauthenticated
	}
	hash := HashSecret(secret)
	var (
		p           Principal
		stored      []byte
		scopes      []string
		usable, due bool
	)
	err := s.pool.QueryRow(ctx,
		`SELECT k.id, k.tenant_id, k.hash, k.scopes,
		        k.revoked_at IS NULL AND t.status = $2,
		        k.last_used_at IS NULL OR k.last_used_at < now() - $3::interval
		 FROM api_keys k JOIN tenants t ON t.id = k.tenant_id
		 WHERE k.hash = $1`,
		hash, TenantActive, lastUsedEvery).Scan(&p.KeyID, &p.TenantID, &stored, &scopes, &usable, &due)
	if errors.Is(err, pgx.ErrNoRows) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate API key: %w", err)
	}
	if subtle.ConstantTimeCompare(stored, hash) != 1 || !usable {
		return Principal{}, ErrUnauthenticated
	}
	if due {
		if _, err := s.pool.Exec(ctx,
			`UPDATE api_keys SET last_used_at = now()
			 WHERE tenant_id = $1 AND id = $2 AND (last_used_at IS NULL OR last_used_at < now() - $3::interval)`,
			p.TenantID, p.KeyID, lastUsedEvery); err != nil {
			return Principal{}, fmt.Errorf("record API key use: %w", err)
		}
	}
	p.Scopes = toScopes(scopes)
	return p, nil
}
