package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// EgressPolicies keeps the tenants' egress policies in EgressBucket of the
// platform account, where tenants cannot read or write: the API writes a
// policy there after storing it in PostgreSQL, the decommissioning deletes
// it, and runners read it (Policy) each time they build a tenant's
// pipeline. The zero value with JS set is ready; it opens the bucket on
// first use and is safe for concurrent use.
type EgressPolicies struct {
	JS jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue
}

// bucket opens EgressBucket, creating it when missing.
func (e *EgressPolicies) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.kv != nil {
		return e.kv, nil
	}
	kv, err := OpenBucket(ctx, e.JS, jetstream.KeyValueConfig{Bucket: EgressBucket, History: 1})
	if err != nil {
		return nil, err
	}
	e.kv = kv
	return kv, nil
}

func checkEgressTenant(tenant string) error {
	if !spec.ValidName(tenant) {
		return fmt.Errorf("egress policy: tenant %q: not a tenant ID", tenant)
	}
	return nil
}

// Put writes a tenant's policy.
func (e *EgressPolicies) Put(ctx context.Context, tenant string, p sdk.EgressPolicy) error {
	if err := checkEgressTenant(tenant); err != nil {
		return err
	}
	kv, err := e.bucket(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, tenant, b); err != nil {
		return fmt.Errorf("put egress policy of %s: %w", tenant, err)
	}
	return nil
}

// Delete removes a tenant's policy; deleting a missing one succeeds.
func (e *EgressPolicies) Delete(ctx context.Context, tenant string) error {
	if err := checkEgressTenant(tenant); err != nil {
		return err
	}
	kv, err := e.bucket(ctx)
	if err != nil {
		return err
	}
	if err := kv.Purge(ctx, tenant); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("delete egress policy of %s: %w", tenant, err)
	}
	return nil
}

// Policy returns a tenant's policy as the bucket holds it now; a tenant
// without one gets the default policy (public addresses only). It is
// tenancy.Platform's Egress in the runners and the API.
func (e *EgressPolicies) Policy(ctx context.Context, tenant string) (sdk.EgressPolicy, error) {
	if err := checkEgressTenant(tenant); err != nil {
		return sdk.EgressPolicy{}, err
	}
	kv, err := e.bucket(ctx)
	if err != nil {
		return sdk.EgressPolicy{}, err
	}
	entry, err := kv.Get(ctx, tenant)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return sdk.EgressPolicy{}, nil
	}
	if err != nil {
		return sdk.EgressPolicy{}, fmt.Errorf("read egress policy of %s: %w", tenant, err)
	}
	var p sdk.EgressPolicy
	if err := json.Unmarshal(entry.Value(), &p); err != nil {
		return sdk.EgressPolicy{}, fmt.Errorf("read egress policy of %s: %w", tenant, err)
	}
	return p, nil
}
