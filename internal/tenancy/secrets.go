package tenancy

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/secretbox"
)

// ErrSecretNotFound is returned when a tenant has no secret of that name.
var ErrSecretNotFound = errors.New("no such tenant secret")

// SecretsKV is the mirror of tenants' sealed secrets in the platform
// account's dataplane.SecretsBucket: the API writes it after PostgreSQL, the
// runners and the webhook ingress read it. It holds only sealed values;
// Keys, when set, opens them for Resolver.
type SecretsKV struct {
	KV jetstream.KeyValue
	// Keys opens sealed values; nil: Resolver refuses every name.
	Keys *secretbox.KeyRing
}

// OpenSecretsKV creates or opens the mirror's bucket in js (the platform
// account).
func OpenSecretsKV(ctx context.Context, js jetstream.JetStream, keys *secretbox.KeyRing) (*SecretsKV, error) {
	kv, err := dataplane.OpenBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: dataplane.SecretsBucket, History: 1, Description: "tenant secrets, sealed",
	})
	if err != nil {
		return nil, err
	}
	return &SecretsKV{KV: kv, Keys: keys}, nil
}

// Put stores tenant's sealed secret name.
func (s *SecretsKV) Put(ctx context.Context, tenant, name string, sealed []byte) error {
	key, err := dataplane.SecretKey(tenant, name)
	if err != nil {
		return err
	}
	if _, err := s.KV.Put(ctx, key, sealed); err != nil {
		return fmt.Errorf("mirror secret %s of %s: %w", name, tenant, err)
	}
	return nil
}

// Delete removes tenant's secret name; removing a missing one succeeds.
func (s *SecretsKV) Delete(ctx context.Context, tenant, name string) error {
	key, err := dataplane.SecretKey(tenant, name)
	if err != nil {
		return err
	}
	if err := s.KV.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("remove mirrored secret %s of %s: %w", name, tenant, err)
	}
	return nil
}

// DeleteTenant removes every secret of tenant and returns how many there
// were.
func (s *SecretsKV) DeleteTenant(ctx context.Context, tenant string) (int, error) {
	if _, err := dataplane.SecretKey(tenant, "_"); err != nil {
		return 0, err
	}
	lister, err := s.KV.ListKeysFiltered(ctx, dataplane.TenantSecretsFilter(tenant))
	if err != nil {
		return 0, fmt.Errorf("list mirrored secrets of %s: %w", tenant, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop() // the listing ended on its own
	for i, k := range keys {
		if err := s.KV.Purge(ctx, k); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return i, fmt.Errorf("remove mirrored secrets of %s: %w", tenant, err)
		}
	}
	return len(keys), nil
}

// Any reports whether the mirror holds any tenant's secret.
func (s *SecretsKV) Any(ctx context.Context) (bool, error) {
	lister, err := s.KV.ListKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("list mirrored secrets: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	for range lister.Keys() {
		return true, nil
	}
	return false, nil
}

// Resolver returns the resolver of tenant's secrets, for
// Platform.Secrets: it reads only "<tenant>.<name>" and opens it for that
// tenant and name, so no other tenant's secret can come out of it.
func (s *SecretsKV) Resolver(tenant string) sdk.SecretResolver {
	return func(ctx context.Context, name string) (string, error) {
		if s.Keys == nil {
			return "", errors.New("tenant secrets are not configured on this platform (no VRSKY_SECRETS_KEY)")
		}
		key, err := dataplane.SecretKey(tenant, name)
		if err != nil {
			return "", err
		}
		entry, err := s.KV.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return "", fmt.Errorf("%w: set it with PUT /v1/secrets/%s", ErrSecretNotFound, name)
		}
		if err != nil {
			return "", fmt.Errorf("read tenant secret: %w", err)
		}
		plain, err := s.Keys.Open(tenant, name, entry.Value())
		if err != nil {
			return "", err
		}
		return string(plain), nil
	}
}
