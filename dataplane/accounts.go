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

// TenantStore is what a tenant's streams hold now.
type TenantStore struct {
	// Bytes is what its streams (its pipelines' and its DLQ) hold: what
	// counts against its disk quota.
	Bytes int64
	// Subjects is how many subjects its pipelines' streams hold: its
	// remembered delivery keys, one each (docs/adr/0035), and each stage
	// holding messages.
	Subjects int64
}

// TenantStored returns what the tenant's streams hold now, in either
// account mode.
func TenantStored(ctx context.Context, js jetstream.JetStream, tenant string) (TenantStore, error) {
	if !spec.ValidName(tenant) {
		return TenantStore{}, fmt.Errorf("invalid tenant name %q", tenant)
	}
	var total TenantStore
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if !IsTenantStream(tenant, info.Config.Name) {
			continue
		}
		total.Bytes += int64(info.State.Bytes) //nolint:gosec // a stream's bytes fit in int64
		if info.Config.Name != DLQStream(tenant) {
			total.Subjects += int64(info.State.NumSubjects) //nolint:gosec // so do its subjects
		}
	}
	if err := streams.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return TenantStore{}, fmt.Errorf("list streams of %s: %w", tenant, err)
	}
	return total, nil
}
