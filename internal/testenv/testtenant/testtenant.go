// Package testtenant adds tenants for tests that need one without a
// control plane. It is for tests only: tenants are created for real by the
// TenantProvision workflow (create-tenant), which also gives each its NATS
// account and DLQ stream.
package testtenant

import (
	"context"
	"testing"

	"github.com/vrsky/vrsky/internal/store"
)

// Scopes are the scopes of the key Active gives: those of a new tenant's
// first key.
var Scopes = []store.Scope{store.ScopeRead, store.ScopeWrite, store.ScopeDLQ}

// Active adds an active tenant with its first key (Scopes) through the
// store, as provisioning's first and last steps do, and returns the key's
// secret and ID. Its NATS account and streams are not created: a test that
// needs them shares one account (dataplane.SharedAccount) or provisions the
// tenant through the API.
func Active(t testing.TB, st *store.Store, id string) (secret, keyID string) {
	t.Helper()
	ctx := context.Background()
	keyID, prefix, hash, secret := store.NewKey()
	if _, err := st.BeginTenant(ctx, store.NewTenant{ID: id, Name: "Tenant " + id, KeyID: keyID, KeyPrefix: prefix, KeyHash: hash,
		Scopes: Scopes}); err != nil {
		t.Fatalf("create tenant %s: %v", id, err)
	}
	if err := st.SetTenantStatus(ctx, id, store.TenantActive); err != nil {
		t.Fatalf("activate tenant %s: %v", id, err)
	}
	return secret, keyID
}
