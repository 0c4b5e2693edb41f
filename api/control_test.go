package api

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/controltest"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv/testtenant"
)

// startControlPlane starts an in-process Temporal server with a worker
// running every workflow on the real activities (every tenant in js's
// account) and returns the control-plane client on it. state, when set,
// is the hot path's buckets the lifecycle writes to.
func startControlPlane(t *testing.T, st *store.Store, js jetstream.JetStream, state *dataplane.State) *control.Client {
	t.Helper()
	return controltest.Start(t, controltest.Deps{Store: st, JS: js, State: state})
}

// activeTenant adds an active tenant and its first key through the store,
// for tests of an API without a control plane.
func activeTenant(t *testing.T, st *store.Store, id string) (secret, keyID string) {
	t.Helper()
	return testtenant.Active(t, st, id)
}
