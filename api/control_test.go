package api

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/workflows"
)

// startControlPlane starts an in-process Temporal server with a worker
// running the tenant workflows (every tenant in js's account) and whatever
// register adds, and returns its client.
func startControlPlane(t *testing.T, st *store.Store, js jetstream.JetStream, register func(worker.Registry)) client.Client {
	t.Helper()
	state, err := dataplane.OpenState(context.Background(), js)
	require.NoError(t, err)
	blobs, _ := testenv.S3(t)
	ts := testenv.TemporalServer(t)
	c := ts.GetDefaultClient()
	ts.NewWorker(workflows.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantProvision)
		r.RegisterWorkflow(workflows.TenantDecommission)
		r.RegisterWorkflow(workflows.TenantLimits)
		r.RegisterActivity(&activities.Tenants{Store: st, Accounts: dataplane.SharedAccount{JS: js}, Blobs: blobs, State: state, Temporal: c})
		if register != nil {
			register(r)
		}
	})
	return c
}

// activeTenant adds an active tenant and its first key straight in the
// store, for tests of an API without a control plane.
func activeTenant(t *testing.T, st *store.Store, id string) (secret, keyID string) {
	t.Helper()
	ctx := context.Background()
	keyID, prefix, hash, secret := store.NewKey()
	_, err := st.BeginTenant(ctx, store.NewTenant{ID: id, Name: "Tenant " + id, KeyID: keyID, KeyPrefix: prefix, KeyHash: hash,
		Scopes: []store.Scope{store.ScopeRead, store.ScopeWrite, store.ScopeDLQ}})
	require.NoError(t, err)
	require.NoError(t, st.SetTenantStatus(ctx, id, store.TenantActive))
	return secret, keyID
}
