package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultTenantKeys bounds the delivery keys a tenant has remembered at
// once (Idempotency.MaxTenantKeys). Each is an entry of the NATS server's
// subject index and TTL wheel for the key TTL: about 470 bytes of its
// heap just after it is stored, of which about 150 are the index's and
// the wheel's, kept for its whole life (docs/adr/0035). A million keys is
// a day of 11.6 keyed requests a second, and 150–470 MB of that heap.
const DefaultTenantKeys = 1_000_000

// TenantKeyLimits gives a tenant's own limit of remembered keys, when it
// has one (IngressQuotas).
type TenantKeyLimits interface {
	RememberedKeys(tenant string) (limit int64, ok bool)
}

// keyLimit is the tenant's limit of remembered keys: its own, or
// MaxTenantKeys; 0 or less is none.
func (i *Idempotency) keyLimit(tenant string) int64 {
	if i.TenantKeys != nil {
		if n, ok := i.TenantKeys.RememberedKeys(tenant); ok {
			return n
		}
	}
	return i.MaxTenantKeys
}

// limited reports whether any tenant may have a limit.
func (i *Idempotency) limited() bool { return i.MaxTenantKeys > 0 || i.TenantKeys != nil }

// How often CountKeys counts the pipelines that recorded a key since its
// last count, and every pipeline it knows (records expire on their own).
const (
	keyCountEvery      = 10 * time.Second
	keyRecountAllEvery = 5 * time.Minute
)

// keyCounts is what Idempotency knows of the keys each tenant has
// remembered: each pipeline's count at its last counting, and which
// pipelines recorded a key since. It is safe for concurrent use.
type keyCounts struct {
	mu       sync.Mutex
	counts   map[Pipeline]int64
	recorded map[Pipeline]bool
	full     map[string]bool // tenant → at or past the limit
}

// remember reports whether p may record a new key: its tenant is under
// limit (limit 0 or less: always). It notes that p records one.
func (k *keyCounts) remember(p Pipeline, limit int64) bool {
	if limit <= 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.full[p.Tenant] {
		return false
	}
	if k.recorded == nil {
		k.recorded = make(map[Pipeline]bool)
	}
	k.recorded[p] = true
	return true
}

// due returns the pipelines to count: those that recorded a key since the
// last count, or with all every pipeline known.
func (k *keyCounts) due(all bool) []Pipeline {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ps []Pipeline
	for p := range k.recorded {
		ps = append(ps, p)
	}
	if all {
		for p := range k.counts {
			if !k.recorded[p] {
				ps = append(ps, p)
			}
		}
	}
	clear(k.recorded)
	return ps
}

// set stores counted (a pipeline whose stream is gone counts -1: it is
// forgotten) and returns the tenants whose state against their limit
// changed.
func (k *keyCounts) set(counted map[Pipeline]int64, limit func(tenant string) int64) (filled, freed []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.counts == nil {
		k.counts, k.full = make(map[Pipeline]int64), make(map[string]bool)
	}
	tenants := make(map[string]int64)
	for p, n := range counted {
		if n < 0 {
			delete(k.counts, p)
		} else {
			k.counts[p] = n
		}
		tenants[p.Tenant] = 0
	}
	for p, n := range k.counts {
		if _, ok := tenants[p.Tenant]; ok {
			tenants[p.Tenant] += n
		}
	}
	for tenant, n := range tenants {
		l := limit(tenant)
		full := l > 0 && n >= l
		switch {
		case full && !k.full[tenant]:
			filled = append(filled, tenant)
		case !full && k.full[tenant]:
			freed = append(freed, tenant)
		}
		if full {
			k.full[tenant] = true
		} else {
			delete(k.full, tenant)
		}
	}
	return filled, freed
}

// TenantsAtKeyLimit is how many tenants were at or past their limit of
// remembered keys at the last count.
func (i *Idempotency) TenantsAtKeyLimit() int { return i.keys.fullTenants() }

// fullTenants is how many tenants are at or past their limit.
func (k *keyCounts) fullTenants() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.full)
}

// tenantKeys is the tenant's keys at the last counts of its pipelines.
func (k *keyCounts) tenantKeys(tenant string) int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	var n int64
	for p, c := range k.counts {
		if p.Tenant == tenant {
			n += c
		}
	}
	return n
}

// CountKeys keeps the tenants' counts of remembered keys current for
// their limits until ctx ends: every 10 seconds it counts the pipelines
// that recorded a key since, and every 5 minutes every pipeline it knows.
// It does nothing without a limit. One that fails to count is logged and
// tried again at the next turn.
func (i *Idempotency) CountKeys(ctx context.Context) {
	if !i.limited() {
		return
	}
	tick := time.NewTicker(keyCountEvery)
	defer tick.Stop()
	lastAll := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			all := now.Sub(lastAll) >= keyRecountAllEvery
			if all {
				lastAll = now
			}
			if err := i.countKeys(ctx, all); err != nil && ctx.Err() == nil && i.Logger != nil {
				i.Logger.WarnContext(ctx, "count the tenants' remembered delivery keys", "error", err)
			}
		}
	}
}

// countKeys counts the key records of the pipelines due (all: every
// pipeline known) and updates which tenants are at their limit.
func (i *Idempotency) countKeys(ctx context.Context, all bool) error {
	if !i.limited() {
		return nil
	}
	counted := make(map[Pipeline]int64)
	var errs []error
	for _, p := range i.keys.due(all) {
		n, err := i.countRecords(ctx, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		counted[p] = n
	}
	filled, freed := i.keys.set(counted, i.keyLimit)
	if i.Logger != nil {
		for _, tenant := range filled {
			i.Logger.WarnContext(ctx, "tenant at its limit of remembered delivery keys: new keys are remembered for 2 minutes, not for the key TTL, until its records expire",
				"tenant", tenant, "keys", i.keys.tenantKeys(tenant), "limit", i.keyLimit(tenant))
		}
		for _, tenant := range freed {
			i.Logger.InfoContext(ctx, "tenant under its limit of remembered delivery keys again", "tenant", tenant, "keys", i.keys.tenantKeys(tenant))
		}
	}
	return errors.Join(errs...)
}

// countRecords is how many key records p's stream holds, or -1 when p has
// no stream: the subjects it holds less its stage subjects. The server
// keeps both counts; reading them costs two requests (the stream, its
// subjects).
func (i *Idempotency) countRecords(ctx context.Context, p Pipeline) (int64, error) {
	js, err := i.Publisher.Accounts.JetStream(ctx, p.Tenant)
	if err != nil {
		return 0, fmt.Errorf("count the keys of %s: %w", p, err)
	}
	stream, err := js.Stream(ctx, p.Stream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count the keys of %s: %w", p, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(p.AllSubjects()))
	if err != nil {
		return 0, fmt.Errorf("count the keys of %s: %w", p, err)
	}
	return int64(info.State.NumSubjects) - int64(len(info.State.Subjects)), nil //nolint:gosec // a stream's subjects fit in int64
}
