package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// IngressQuota is what the webhook ingress holds one tenant to, where it
// differs from the platform's: 0 in a field means the platform's.
type IngressQuota struct {
	// MessagesPerSecond is the tenant's rate, with bursts of twice that.
	MessagesPerSecond int `json:"messages_per_second,omitempty"`
	// RememberedKeys bounds the delivery keys it has remembered at once
	// (Idempotency, docs/adr/0035).
	RememberedKeys int64 `json:"remembered_keys,omitempty"`
}

// IngressQuotas reads and writes TenantRatesBucket: the tenants' own
// ingress quotas. The zero value with JS set is ready; it is safe for
// concurrent use.
type IngressQuotas struct {
	JS jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue
	// quotas is what Follow has read: tenant → IngressQuota.
	quotas sync.Map
}

func (t *IngressQuotas) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kv != nil {
		return t.kv, nil
	}
	kv, err := OpenBucket(ctx, t.JS, jetstream.KeyValueConfig{Bucket: TenantRatesBucket, History: 1})
	if err != nil {
		return nil, err
	}
	t.kv = kv
	return kv, nil
}

// Put sets a tenant's ingress quota; the zero quota removes it, so the
// platform's apply.
func (t *IngressQuotas) Put(ctx context.Context, tenant string, q IngressQuota) error {
	if !spec.ValidName(tenant) {
		return fmt.Errorf("tenant ingress quota: %q is not a tenant ID", tenant)
	}
	kv, err := t.bucket(ctx)
	if err != nil {
		return err
	}
	q.MessagesPerSecond, q.RememberedKeys = max(q.MessagesPerSecond, 0), max(q.RememberedKeys, 0)
	if q == (IngressQuota{}) {
		if err := kv.Purge(ctx, tenant); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete the ingress quota of %s: %w", tenant, err)
		}
		return nil
	}
	value, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("encode the ingress quota of %s: %w", tenant, err)
	}
	if _, err := kv.Put(ctx, tenant, value); err != nil {
		return fmt.Errorf("put the ingress quota of %s: %w", tenant, err)
	}
	return nil
}

// parseIngressQuota reads an entry's value: the JSON of an IngressQuota,
// or a bare rate as the entries written before remembered keys had a
// quota.
func parseIngressQuota(value []byte) (IngressQuota, bool) {
	if n, err := strconv.Atoi(string(value)); err == nil {
		return IngressQuota{MessagesPerSecond: n}, n > 0
	}
	var q IngressQuota
	if err := json.Unmarshal(value, &q); err != nil || q.MessagesPerSecond < 0 || q.RememberedKeys < 0 {
		return IngressQuota{}, false
	}
	return q, q != IngressQuota{}
}

// Follow keeps the quotas current until ctx ends; it returns once the
// quotas present when it started are read, and follows changes in the
// background.
func (t *IngressQuotas) Follow(ctx context.Context) error {
	kv, err := t.bucket(ctx)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", TenantRatesBucket, err)
	}
	apply := func(e jetstream.KeyValueEntry) {
		q, ok := parseIngressQuota(e.Value())
		if e.Operation() != jetstream.KeyValuePut || !ok {
			t.quotas.Delete(e.Key())
			return
		}
		t.quotas.Store(e.Key(), q)
	}
	for e := range w.Updates() {
		if e == nil { // the initial values are in
			break
		}
		apply(e)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for e := range w.Updates() {
			if e != nil {
				apply(e)
			}
		}
	}()
	return nil
}

func (t *IngressQuotas) quota(tenant string) IngressQuota {
	if t == nil {
		return IngressQuota{}
	}
	v, ok := t.quotas.Load(tenant)
	if !ok {
		return IngressQuota{}
	}
	return v.(IngressQuota)
}

// Rate returns a tenant's own ingress rate, if it has one.
func (t *IngressQuotas) Rate(tenant string) (float64, bool) {
	n := t.quota(tenant).MessagesPerSecond
	return float64(n), n > 0
}

// RememberedKeys returns a tenant's own limit of remembered delivery
// keys, if it has one.
func (t *IngressQuotas) RememberedKeys(tenant string) (int64, bool) {
	n := t.quota(tenant).RememberedKeys
	return n, n > 0
}
