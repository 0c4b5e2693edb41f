package dataplane

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// Accounts gives the JetStream context of each tenant's NATS account: a
// tenant's integration streams and its DLQ live there. Desired state,
// status, leases and message state stay in the platform's own account.
type Accounts interface {
	JetStream(ctx context.Context, tenant string) (jetstream.JetStream, error)
}

// SharedAccount keeps every tenant in one account: isolation then rests on
// VRSky's subject and stream names alone, and no tenant has a disk quota of
// its own — only its DLQ's size and its integrations quota hold
// (docs/adr/0016). Tests and single-tenant or trusted deployments use it;
// the dev stack gives each tenant its own account.
type SharedAccount struct{ JS jetstream.JetStream }

// JetStream returns the shared context.
func (a SharedAccount) JetStream(context.Context, string) (jetstream.JetStream, error) {
	return a.JS, nil
}

// TenantStoredBytes returns the bytes the tenant's streams (its pipelines'
// and its DLQ) hold now, in either account mode: what counts against its
// disk quota.
func TenantStoredBytes(ctx context.Context, js jetstream.JetStream, tenant string) (int64, error) {
	if !spec.ValidName(tenant) {
		return 0, fmt.Errorf("invalid tenant name %q", tenant)
	}
	var total int64
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if IsTenantStream(tenant, info.Config.Name) {
			total += int64(info.State.Bytes) //nolint:gosec // a stream's bytes fit in int64
		}
	}
	if err := streams.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return 0, fmt.Errorf("list streams of %s: %w", tenant, err)
	}
	return total, nil
}
