// Package controltest starts a real control plane for tests: an
// in-process Temporal server with a worker running every VRSky workflow on
// the real activities, and a control.Client on it. It is for tests only;
// the roles (cmd/vrsky/internal/roles) assemble the production worker.
package controltest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/worker"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/testenv"
	"github.com/vrsky/vrsky/workflows"
)

// Deps are what the activities act on. Store and JS are required.
type Deps struct {
	Store *store.Store
	// JS is the account every tenant shares in the test.
	JS jetstream.JetStream
	// State is the hot path's KV buckets; nil opens them on JS.
	State *dataplane.State
	// Blobs is the object store; nil starts one (testenv.S3).
	Blobs *blobstore.Store
	// PollEvery is how often the lifecycle reads the runners' status;
	// zero means 20 ms.
	PollEvery time.Duration
}

// Start starts the control plane on d and returns its client. Everything
// stops when the test ends.
func Start(t testing.TB, d Deps) *control.Client {
	t.Helper()
	if d.State == nil {
		state, err := dataplane.OpenState(context.Background(), d.JS)
		if err != nil {
			t.Fatalf("open hot-path state: %v", err)
		}
		d.State = state
	}
	if d.Blobs == nil {
		d.Blobs, _ = testenv.S3(t)
	}
	if d.PollEvery == 0 {
		d.PollEvery = 20 * time.Millisecond
	}
	ts := testenv.TemporalServer(t)
	ctl := control.New(ts.GetDefaultClient())
	accounts := dataplane.SharedAccount{JS: d.JS}
	ts.NewWorker(wire.ControlTaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.BlobJanitor)
		r.RegisterActivity(&activities.Blobs{Store: d.Blobs})
		r.RegisterWorkflow(workflows.IntegrationLifecycle)
		r.RegisterWorkflow(workflows.IntegrationRun)
		r.RegisterActivity(&activities.Integrations{Store: d.Store, State: d.State, PollEvery: d.PollEvery})
		r.RegisterActivity(&activities.Schedules{Store: d.Store, Control: ctl})
		r.RegisterWorkflow(workflows.DLQReplay)
		r.RegisterActivity(&activities.DLQ{Accounts: accounts})
		r.RegisterWorkflow(workflows.TenantProvision)
		r.RegisterWorkflow(workflows.TenantDecommission)
		r.RegisterWorkflow(workflows.TenantLimits)
		r.RegisterActivity(&activities.Tenants{Store: d.Store, Accounts: accounts, Blobs: d.Blobs, State: d.State, Control: ctl})
		// No provisioner: a move to a dedicated instance is refused and
		// recorded, and decommissioning finds no instance to remove.
		r.RegisterWorkflow(workflows.TenantPlacement)
		r.RegisterWorkflow(workflows.PlacementSweep)
		r.RegisterActivity(&activities.Placement{Store: d.Store, JS: d.JS, Accounts: located{accounts},
			Policy: activities.DefaultPlacementPolicy, Request: ctl.RequestPlacement})
	})
	return ctl
}

// located is the shared account as LocatedAccounts: every tenant is
// shared in these tests.
type located struct{ dataplane.SharedAccount }

func (l located) At(ctx context.Context, p dataplane.Placement, loc dataplane.Location) (jetstream.JetStream, error) {
	if loc != dataplane.Shared {
		return nil, fmt.Errorf("tenant %s: no %s location in tests", p.Tenant, loc)
	}
	return l.JetStream(ctx, p.Tenant)
}

// Wait waits until the workflow with that ID ends and decodes its result
// into result (nil: none), failing the test if it failed or a minute
// passed.
func Wait(t testing.TB, ctl *control.Client, workflowID string, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ctl.Temporal().GetWorkflow(ctx, workflowID, "").Get(ctx, result); err != nil {
		t.Fatalf("workflow %s: %v", workflowID, err)
	}
}
