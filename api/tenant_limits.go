package api

import (
	"context"
	"log/slog"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/store"
)

// TenantLimits are a tenant's quotas: what its NATS account may hold in
// JetStream, the size of its DLQ and how many integrations it may have.
type TenantLimits struct {
	DiskBytes         int64 `json:"disk_bytes" minimum:"1048576" doc:"Bytes all the tenant's streams may hold on disk together; a publish beyond it is refused (JetStream error 10002, 'resource limits exceeded for account'), for this tenant only."`
	MemoryBytes       int64 `json:"memory_bytes" minimum:"0" doc:"Bytes of memory streams; the tenant's streams are on disk, so 0 unless told otherwise."`
	Streams           int64 `json:"streams" minimum:"1" maximum:"100000" doc:"Streams in the tenant's account: one per integration, plus its DLQ."`
	Consumers         int64 `json:"consumers" minimum:"1" maximum:"1000000"`
	DLQBytes          int64 `json:"dlq_bytes,omitempty" minimum:"0" doc:"Bytes the tenant's DLQ keeps (the oldest dead letters go first); 0: 128 MiB or disk_bytes if smaller. At most disk_bytes."`
	Integrations      int   `json:"integrations" minimum:"0" maximum:"100000" doc:"Integrations the tenant may have; creating one more is refused with 422."`
	MessagesPerSecond int   `json:"messages_per_second,omitempty" minimum:"0" maximum:"1000000" doc:"Webhook messages per second the ingress takes from the tenant (a record of an NDJSON batch counts as one), with bursts of twice that; past it requests answer 429 with Retry-After, for this tenant only. 0: the platform's rate (the api role's --webhook-tenant-rate)."`
	RememberedKeys    int64 `json:"remembered_keys,omitempty" minimum:"0" maximum:"1000000000" doc:"Delivery keys (Idempotency-Keys, delivery IDs, CloudEvent ids) the tenant may have remembered at once, over all its integrations; each costs the NATS server 150–470 bytes of memory while remembered (a day). Past it new keys are remembered for 2 minutes, not a day; no delivery is refused. 0: the platform's limit (the api role's --webhook-tenant-keys, 1,000,000 by default)."`
}

func limitsIn(l TenantLimits) store.TenantLimits {
	return store.TenantLimits{Limits: natsauth.Limits{DiskBytes: l.DiskBytes, MemoryBytes: l.MemoryBytes, Streams: l.Streams,
		Consumers: l.Consumers, DLQBytes: l.DLQBytes}, Integrations: l.Integrations, MessagesPerSecond: l.MessagesPerSecond,
		RememberedKeys: l.RememberedKeys}
}

// ingressQuota is what of l the webhook ingress holds the tenant to.
func ingressQuota(l store.TenantLimits) dataplane.IngressQuota {
	return dataplane.IngressQuota{MessagesPerSecond: l.MessagesPerSecond, RememberedKeys: l.RememberedKeys}
}

// limitsWire is l as the provisioning workflow takes it.
func limitsWire(l store.TenantLimits) wire.TenantLimits {
	return wire.TenantLimits{Limits: wire.Limits(l.Limits), Integrations: l.Integrations, MessagesPerSecond: l.MessagesPerSecond,
		RememberedKeys: l.RememberedKeys}
}

func limitsOut(l store.TenantLimits) TenantLimits {
	return TenantLimits{DiskBytes: l.DiskBytes, MemoryBytes: l.MemoryBytes, Streams: l.Streams, Consumers: l.Consumers,
		DLQBytes: l.DLQ(), Integrations: l.Integrations, MessagesPerSecond: l.MessagesPerSecond, RememberedKeys: l.RememberedKeys}
}

// TenantUsage is what a tenant uses of its quotas now.
type TenantUsage struct {
	Integrations   int      `json:"integrations" doc:"Integrations the tenant has."`
	StoredBytes    *int64   `json:"stored_bytes,omitempty" doc:"Bytes the tenant's streams hold now (its pipelines' and its DLQ), against limits.disk_bytes; absent when NATS did not answer."`
	StoredFraction *float64 `json:"stored_fraction,omitempty" doc:"stored_bytes / limits.disk_bytes."`
	RememberedKeys *int64   `json:"remembered_keys,omitempty" doc:"Delivery keys (Idempotency-Keys, delivery IDs, CloudEvent ids) the tenant's integrations remember now, one subject each in NATS, plus one for each stage holding messages; against limits.remembered_keys. Absent when NATS did not answer."`
}

// tenantUsage reads what an active tenant uses; it is nil for a tenant
// that is not active, and a part NATS or the store cannot give is left out
// (and logged) rather than failing the whole GET.
func tenantUsage(ctx context.Context, st *store.Store, accounts dataplane.Accounts, t store.Tenant, log *slog.Logger) *TenantUsage {
	if t.Status != store.TenantActive {
		return nil
	}
	u := &TenantUsage{}
	n, err := st.CountTenantIntegrations(ctx, t.ID)
	if err != nil {
		log.ErrorContext(ctx, "tenant usage", "tenant", t.ID, "error", err)
	}
	u.Integrations = n
	if accounts == nil {
		return u
	}
	js, err := accounts.JetStream(ctx, t.ID)
	if err == nil {
		var stored dataplane.TenantStore
		if stored, err = dataplane.TenantStored(ctx, js, t.ID); err == nil {
			fraction := float64(stored.Bytes) / float64(t.Limits.DiskBytes)
			u.StoredBytes, u.StoredFraction, u.RememberedKeys = &stored.Bytes, &fraction, &stored.Subjects
		}
	}
	if err != nil {
		log.WarnContext(ctx, "tenant usage: stored bytes unknown", "tenant", t.ID, "error", err)
	}
	return u
}

// changeTenantLimits stores a tenant's new quotas and starts the
// TenantLimits run that applies them to its NATS account and DLQ (a newer
// change replaces a run still going); it does not wait for it. The
// integrations quota holds from the next create on.
func changeTenantLimits(ctx context.Context, st *store.Store, ctl *control.Client, tenant string, limits TenantLimits) (store.Tenant, error) {
	t, err := st.SetTenantLimits(ctx, tenant, limitsIn(limits))
	if err != nil {
		return store.Tenant{}, err
	}
	if err := ctl.ChangeTenantLimits(ctx, tenant, wire.Limits(t.Limits.Limits)); err != nil {
		return store.Tenant{}, errControlPlane{err}
	}
	return t, nil
}

// errControlPlane is a control plane that did not take a request.
type errControlPlane struct{ err error }

func (e errControlPlane) Error() string { return "start the control plane's run: " + e.err.Error() }
func (e errControlPlane) Unwrap() error { return e.err }
