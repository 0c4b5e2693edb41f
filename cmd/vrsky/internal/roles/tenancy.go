package roles

import (
	"context"
	"errors"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/tenancy"
)

// ErrSecretsWithoutKey refuses to start a role that would have to resolve
// tenant secrets without the key ring that opens them.
var ErrSecretsWithoutKey = errors.New("tenants have secrets but no key to open them is configured: set " +
	secretbox.KeyVar + " or " + secretbox.KeyFileVar + " to the platform's key ring")

// WireTenancy gives d the platform's Tenancy: the operator's allow-list of
// environment variables tenants may read (envAllow), tenant secrets
// opened with keys from the mirror in d.JS, and each tenant's egress policy
// as a platform admin set it (dataplane.EgressBucket; the default policy for
// a tenant without one). Without keys a role still
// starts while no tenant has a secret (put-secret answers 503 and
// {"secret": NAME} does not resolve); once one has, it refuses to start
// (ErrSecretsWithoutKey) rather than run integrations that cannot start.
func WireTenancy(ctx context.Context, d *Deps, envAllow []string, keys *secretbox.KeyRing) error {
	mirror, err := tenancy.OpenSecretsKV(ctx, d.JS, keys)
	if err != nil {
		return err
	}
	if keys == nil {
		any, err := mirror.Any(ctx)
		if err != nil {
			return err
		}
		if any {
			return ErrSecretsWithoutKey
		}
	}
	platform := &tenancy.Platform{EnvAllow: envAllow, Secrets: mirror.Resolver, Egress: (&dataplane.EgressPolicies{JS: d.JS}).Policy}
	d.Tenancy, d.TenantEnvAllowed, d.SecretKeys, d.Secrets = platform, platform.EnvAllowed, keys, mirror
	return nil
}
