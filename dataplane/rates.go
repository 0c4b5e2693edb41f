package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// TenantRates reads and writes TenantRatesBucket. The zero value with JS
// set is ready; it is safe for concurrent use.
type TenantRates struct {
	JS jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue
	// rates is what Follow has read: tenant → messages per second.
	rates sync.Map
}

func (t *TenantRates) bucket(ctx context.Context) (jetstream.KeyValue, error) {
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

// Put sets a tenant's ingress rate in messages per second; 0 or less
// removes it, so the platform's rate applies.
func (t *TenantRates) Put(ctx context.Context, tenant string, perSecond int) error {
	if !spec.ValidName(tenant) {
		return fmt.Errorf("tenant rate: %q is not a tenant ID", tenant)
	}
	kv, err := t.bucket(ctx)
	if err != nil {
		return err
	}
	if perSecond <= 0 {
		if err := kv.Purge(ctx, tenant); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("delete the rate of %s: %w", tenant, err)
		}
		return nil
	}
	if _, err := kv.Put(ctx, tenant, []byte(strconv.Itoa(perSecond))); err != nil {
		return fmt.Errorf("put the rate of %s: %w", tenant, err)
	}
	return nil
}

// Follow keeps Rate current until ctx ends; it returns once the rates
// present when it started are read, and follows changes in the
// background.
func (t *TenantRates) Follow(ctx context.Context) error {
	kv, err := t.bucket(ctx)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", TenantRatesBucket, err)
	}
	apply := func(e jetstream.KeyValueEntry) {
		n, err := strconv.Atoi(string(e.Value()))
		if e.Operation() != jetstream.KeyValuePut || err != nil || n <= 0 {
			t.rates.Delete(e.Key())
			return
		}
		t.rates.Store(e.Key(), float64(n))
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

// Rate returns a tenant's own ingress rate, if it has one.
func (t *TenantRates) Rate(tenant string) (float64, bool) {
	if t == nil {
		return 0, false
	}
	v, ok := t.rates.Load(tenant)
	if !ok {
		return 0, false
	}
	return v.(float64), true
}
