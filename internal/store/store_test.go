package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.PostgresMigrated(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return New(pool), pool
}

// createTenant adds an active tenant the way provisioning does (the rows
// and a first key, then active), without the NATS account, and removes
// its first key: the tests of keys start from a tenant without any.
func createTenant(ctx context.Context, s *Store, id, name string) (Tenant, error) {
	keyID, prefix, hash, _ := NewKey()
	if _, err := s.BeginTenant(ctx, NewTenant{ID: id, Name: name, KeyID: keyID, KeyPrefix: prefix, KeyHash: hash,
		Scopes: []Scope{ScopeRead}}); err != nil {
		return Tenant{}, err
	}
	if err := s.SetTenantStatus(ctx, id, TenantActive); err != nil {
		return Tenant{}, err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2`, id, keyID); err != nil {
		return Tenant{}, err
	}
	return s.GetTenant(ctx, id)
}

func TestTenantsCreateGetListDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)

	created, err := createTenant(ctx, s, "acme", "Acme Corp")
	require.NoError(t, err)
	require.Equal(t, "acme", created.ID)
	require.Equal(t, "Acme Corp", created.Name)
	require.Equal(t, TenantActive, created.Status)
	require.Nil(t, created.DeletedAt)
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)

	_, err = createTenant(ctx, s, "acme", "Other")
	require.ErrorIs(t, err, ErrConflict)

	for _, tc := range []struct{ id, name string }{
		{"Acme", "x"}, {"a_b", "x"}, {"", "x"}, {"-a", "x"}, {"ok", ""}, {"ok", string(make([]byte, MaxTenantNameLen+1))},
	} {
		_, err := createTenant(ctx, s, tc.id, tc.name)
		require.ErrorIs(t, err, ErrInvalid, "%q %q", tc.id, tc.name)
	}

	got, err := s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, created, got)
	_, err = s.GetTenant(ctx, "nobody")
	require.ErrorIs(t, err, ErrNotFound)

	key, secret, err := s.CreateAPIKey(ctx, "acme", []Scope{ScopeRead})
	require.NoError(t, err)
	require.NoError(t, s.DeleteTenant(ctx, "acme"))
	got, err = s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, TenantDeleting, got.Status, "deleting until the clean-up marks it deleted")
	require.NotNil(t, got.DeletedAt)
	keys, err := s.ListAPIKeys(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, key.ID, keys[0].ID)
	require.NotNil(t, keys[0].RevokedAt, "deleting a tenant revokes its keys")
	_, err = s.Authenticate(ctx, secret)
	require.ErrorIs(t, err, ErrUnauthenticated)

	// Deleting again is a no-op; the ID is never reused; no new keys.
	require.NoError(t, s.DeleteTenant(ctx, "acme"))
	again, err := s.GetTenant(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, got.DeletedAt, again.DeletedAt)
	_, err = createTenant(ctx, s, "acme", "Acme again")
	require.ErrorIs(t, err, ErrConflict)
	_, _, err = s.CreateAPIKey(ctx, "acme", []Scope{ScopeRead})
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, s.DeleteTenant(ctx, "nobody"), ErrNotFound)

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE revoked_at IS NULL`).Scan(&n))
	require.Zero(t, n)
}

func TestListTenantsPaginatesByID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)

	tenants, next, err := s.ListTenants(ctx, Page{})
	require.NoError(t, err)
	require.Empty(t, tenants)
	require.Empty(t, next)

	var want []string
	for i := 4; i >= 0; i-- { // created out of order: the listing sorts
		id := fmt.Sprintf("t-%d", i)
		want = append([]string{id}, want...)
		_, err := createTenant(ctx, s, id, "Tenant "+id)
		require.NoError(t, err)
	}
	require.NoError(t, s.DeleteTenant(ctx, "t-3"))

	var seen []string
	page := Page{Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		got, next, err := s.ListTenants(ctx, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), 2)
		for _, tn := range got {
			seen = append(seen, tn.ID)
			if tn.ID == "t-3" {
				require.Equal(t, TenantDeleting, tn.Status)
			}
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	require.Equal(t, want, seen)

	all, next, err := s.ListTenants(ctx, Page{Limit: 5})
	require.NoError(t, err)
	require.Len(t, all, 5)
	require.Empty(t, next, "an exactly full last page has no next")
}

func TestPageLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{0, DefaultPageSize}, {-3, DefaultPageSize}, {1, 1}, {100, 100}, {101, MaxPageSize}, {1 << 20, MaxPageSize}} {
		require.Equal(t, tc.want, Page{Limit: tc.in}.limit(), tc.in)
	}
}

func TestBeginTenantIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)

	keyID, prefix, hash, secret := NewKey()
	tn, err := s.BeginTenant(ctx, NewTenant{ID: "blue", Name: "Blue", KeyID: keyID, KeyPrefix: prefix, KeyHash: hash,
		Scopes: []Scope{ScopeWrite, ScopeRead, ScopeDLQ}})
	require.NoError(t, err)
	require.Equal(t, "blue", tn.ID)
	_, err = s.Authenticate(ctx, secret)
	require.ErrorIs(t, err, ErrUnauthenticated, "the key works once the tenant is active")
	require.NoError(t, s.SetTenantStatus(ctx, "blue", TenantActive))
	p, err := s.Authenticate(ctx, secret)
	require.NoError(t, err)
	require.Equal(t, "blue", p.TenantID)
	require.Equal(t, []Scope{ScopeRead, ScopeWrite, ScopeDLQ}, p.Scopes)

	for name, in := range map[string]NewTenant{
		"taken":      {ID: "blue", Name: "Blue again", Scopes: []Scope{ScopeRead}},
		"bad scope":  {ID: "green", Name: "Green", Scopes: []Scope{"root"}},
		"bad id":     {ID: "Green", Name: "Green", Scopes: []Scope{ScopeRead}},
		"empty name": {ID: "green", Name: "", Scopes: []Scope{ScopeRead}},
	} {
		in.KeyID, in.KeyPrefix, in.KeyHash, _ = NewKey()
		_, err := s.BeginTenant(ctx, in)
		if name == "taken" {
			require.ErrorIs(t, err, ErrConflict, name)
		} else {
			require.ErrorIs(t, err, ErrInvalid, name)
		}
	}

	var tenants, keys int
	require.NoError(t, pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM api_keys)`).Scan(&tenants, &keys))
	require.Equal(t, 1, tenants)
	require.Equal(t, 1, keys, "a failed creation leaves no key behind")
}

func TestAPIKeyIsRandomPrefixedAndStoredOnlyAsHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)

	key, secret, err := s.CreateAPIKey(ctx, "acme", []Scope{ScopeRead, ScopeRead, ScopeAdmin})
	require.NoError(t, err)
	require.Regexp(t, `^vrsky_[0-9a-f]{64}$`, secret, "256 random bits behind a recognisable prefix")
	require.Equal(t, secret[:DisplayPrefixLen], key.Prefix)
	require.Regexp(t, `^key-[0-9a-f]{24}$`, key.ID)
	require.Equal(t, []Scope{ScopeRead, ScopeAdmin}, key.Scopes, "deduplicated, canonical order")
	require.Nil(t, key.RevokedAt)
	require.Nil(t, key.LastUsedAt)

	_, other, err := s.CreateAPIKey(ctx, "acme", []Scope{ScopeRead})
	require.NoError(t, err)
	require.NotEqual(t, secret, other)
	require.NotEqual(t, secret[len(KeyPrefix):len(KeyPrefix)+16], other[len(KeyPrefix):len(KeyPrefix)+16])

	// The row holds the SHA-256 and a 12-character prefix; the secret is
	// nowhere in it.
	var hash []byte
	var row string
	require.NoError(t, pool.QueryRow(ctx, `SELECT hash, k::text FROM api_keys k WHERE id = $1`, key.ID).Scan(&hash, &row))
	sum := sha256.Sum256([]byte(secret))
	require.Equal(t, sum[:], hash)
	require.NotContains(t, row, secret)
	require.NotContains(t, row, secret[DisplayPrefixLen:DisplayPrefixLen+16])

	for _, scopes := range [][]Scope{nil, {}, {"root"}, {ScopePlatformAdmin}, {ScopeRead, "READ"}} {
		_, _, err := s.CreateAPIKey(ctx, "acme", scopes)
		require.ErrorIs(t, err, ErrInvalid, "%v", scopes)
	}
	_, _, err = s.CreateAPIKey(ctx, "nobody", []Scope{ScopeRead})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestAuthenticateRevokeAndLastUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	for _, id := range []string{"tenant-a", "tenant-b"} {
		_, err := createTenant(ctx, s, id, id)
		require.NoError(t, err)
	}
	keyA, secretA, err := s.CreateAPIKey(ctx, "tenant-a", []Scope{ScopeRead, ScopeWrite})
	require.NoError(t, err)
	keyB, secretB, err := s.CreateAPIKey(ctx, "tenant-b", []Scope{ScopeDLQ})
	require.NoError(t, err)

	p, err := s.Authenticate(ctx, secretA)
	require.NoError(t, err)
	require.Equal(t, Principal{TenantID: "tenant-a", Scopes: []Scope{ScopeRead, ScopeWrite}, KeyID: keyA.ID}, p)

	lastUsed := func(id string) *time.Time {
		var at *time.Time
		require.NoError(t, pool.QueryRow(ctx, `SELECT last_used_at FROM api_keys WHERE id = $1`, id).Scan(&at))
		return at
	}
	first := lastUsed(keyA.ID)
	require.NotNil(t, first)
	_, err = s.Authenticate(ctx, secretA)
	require.NoError(t, err)
	require.Equal(t, first, lastUsed(keyA.ID), "written at most once a minute")
	_, err = pool.Exec(ctx, `UPDATE api_keys SET last_used_at = now() - interval '2 minutes' WHERE id = $1`, keyA.ID)
	require.NoError(t, err)
	_, err = s.Authenticate(ctx, secretA)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), *lastUsed(keyA.ID), 30*time.Second)

	for _, bad := range []string{"", "Bearer " + secretA, secretA + "x", secretA[:len(secretA)-1], "vrsky_" + string(make([]byte, 300)), "garbage"} {
		_, err := s.Authenticate(ctx, bad)
		require.ErrorIs(t, err, ErrUnauthenticated, "%q", bad)
	}

	// Tenant A cannot see, learn of or revoke B's key.
	listA, err := s.ListAPIKeys(ctx, "tenant-a")
	require.NoError(t, err)
	require.Len(t, listA, 1)
	require.Equal(t, keyA.ID, listA[0].ID)
	require.ErrorIs(t, s.RevokeAPIKey(ctx, "tenant-a", keyB.ID, adminOf("tenant-a")), ErrNotFound)
	require.ErrorIs(t, s.RevokeAPIKey(ctx, "tenant-a", "key-unknown", adminOf("tenant-a")), ErrNotFound)
	pb, err := s.Authenticate(ctx, secretB)
	require.NoError(t, err)
	require.Equal(t, "tenant-b", pb.TenantID)

	// Revocation takes effect on the very next call.
	require.NoError(t, s.RevokeAPIKey(ctx, "tenant-a", keyA.ID, adminOf("tenant-a")))
	_, err = s.Authenticate(ctx, secretA)
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.NoError(t, s.RevokeAPIKey(ctx, "tenant-a", keyA.ID, adminOf("tenant-a")), "revoking twice succeeds")
	listA, err = s.ListAPIKeys(ctx, "tenant-a")
	require.NoError(t, err)
	require.NotNil(t, listA[0].RevokedAt)

	// A store that cannot answer is an error, not an authentication failure.
	closed, closedPool := newStore(t)
	closedPool.Close()
	_, err = closed.Authenticate(ctx, secretB)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnauthenticated)
}

func TestPrincipalAllows(t *testing.T) {
	admin := Principal{Admin: true}
	reader := Principal{TenantID: "a", Scopes: []Scope{ScopeRead}, KeyID: "k"}
	tenantAdmin := Principal{TenantID: "a", Scopes: []Scope{ScopeAdmin}, KeyID: "k"}
	noTenant := Principal{Scopes: []Scope{ScopeRead}}
	tests := []struct {
		name  string
		p     Principal
		scope Scope
		want  bool
	}{
		{"platform admin manages tenants", admin, ScopePlatformAdmin, true},
		{"platform admin has no tenant scope", admin, ScopeRead, false},
		{"tenant admin is not platform admin", tenantAdmin, ScopePlatformAdmin, false},
		{"tenant admin holds every tenant scope", tenantAdmin, ScopeDLQ, true},
		{"held scope", reader, ScopeRead, true},
		{"missing scope", reader, ScopeWrite, false},
		{"no tenant, no scope", noTenant, ScopeRead, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.p.Allows(tt.scope))
		})
	}
}

// adminOf is a principal holding tenant's admin scope.
func adminOf(tenant string) Principal {
	return Principal{TenantID: tenant, Scopes: []Scope{ScopeAdmin}, KeyID: "key-admin"}
}

// TestAKeyRevokesOnlyKeysWhoseScopesItHolds: a write-scoped key cannot
// revoke the tenant's admin key (it could not have granted it either); an
// admin key revokes any.
func TestAKeyRevokesOnlyKeysWhoseScopesItHolds(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)
	admin, _, err := s.CreateAPIKey(ctx, "acme", []Scope{ScopeAdmin})
	require.NoError(t, err)
	writer, _, err := s.CreateAPIKey(ctx, "acme", []Scope{ScopeRead, ScopeWrite})
	require.NoError(t, err)
	reader, _, err := s.CreateAPIKey(ctx, "acme", []Scope{ScopeRead})
	require.NoError(t, err)
	by := Principal{TenantID: "acme", Scopes: []Scope{ScopeRead, ScopeWrite}, KeyID: writer.ID}

	require.ErrorIs(t, s.RevokeAPIKey(ctx, "acme", admin.ID, by), ErrForbidden)
	require.NoError(t, s.RevokeAPIKey(ctx, "acme", reader.ID, by))
	require.NoError(t, s.RevokeAPIKey(ctx, "acme", writer.ID, by), "a key may revoke itself")
	require.NoError(t, s.RevokeAPIKey(ctx, "acme", admin.ID, adminOf("acme")))
	keys, err := s.ListAPIKeys(ctx, "acme")
	require.NoError(t, err)
	for _, k := range keys {
		require.NotNil(t, k.RevokedAt, k.ID)
	}
}
