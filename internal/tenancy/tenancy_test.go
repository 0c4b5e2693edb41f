package tenancy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/tenancy"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestParseEnvAllow(t *testing.T) {
	t.Parallel()
	got, err := tenancy.ParseEnvAllow(" SHOP_*, PARTNER_API_KEY\tX ")
	require.NoError(t, err)
	require.Equal(t, []string{"SHOP_*", "PARTNER_API_KEY", "X"}, got)
	got, err = tenancy.ParseEnvAllow("")
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = tenancy.ParseEnvAllow("GOOD,[bad")
	require.ErrorContains(t, err, tenancy.EnvAllowVar)
}

// The platform's own variables stay out of reach unless the operator
// allow-lists them; the zero Platform allows nothing.
func TestCompleteLetsTenantsReadOnlyAllowedVariables(t *testing.T) {
	t.Setenv("VRSKY_DATABASE_URL", "postgres://vrsky:platform-password@db/vrsky")
	t.Setenv("VRSKY_SECRETS_KEY", "platform-key")
	t.Setenv("SHOP_API_KEY", "shop-key")

	for _, tt := range []struct {
		name    string
		allow   []string
		allowed map[string]string
	}{
		{"zero platform", nil, map[string]string{}},
		{"operator allows SHOP_*", []string{"SHOP_*"}, map[string]string{"SHOP_API_KEY": "shop-key"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &tenancy.Platform{EnvAllow: tt.allow}
			env := sdk.Env{Tenant: "evil"}
			require.NoError(t, p.Complete(context.Background(), &env))
			require.NotNil(t, env.LookupEnv)
			for _, name := range []string{"VRSKY_DATABASE_URL", "VRSKY_SECRETS_KEY", "SHOP_API_KEY", "HOME", "PATH"} {
				v, ok := env.LookupEnv(name)
				want, allowed := tt.allowed[name]
				require.Equal(t, allowed, ok, name)
				require.Equal(t, want, v, name)
				require.Equal(t, allowed, p.EnvAllowed(name), name)
				_, err := sdk.Secret{Env: name}.Resolve(context.Background(), env)
				require.Equal(t, !allowed, err != nil, name)
			}
		})
	}
}

func TestCompleteFillsSecretsAndEgress(t *testing.T) {
	t.Parallel()
	p := &tenancy.Platform{
		Secrets: func(tenant string) sdk.SecretResolver {
			return func(_ context.Context, name string) (string, error) { return tenant + ":" + name, nil }
		},
		Egress: func(_ context.Context, tenant string) (sdk.EgressPolicy, error) {
			if tenant == "broken" {
				return sdk.EgressPolicy{}, errors.New("no policy")
			}
			return sdk.EgressPolicy{AllowPrivate: true}, nil
		},
	}
	env := sdk.Env{Tenant: "acme"}
	require.NoError(t, p.Complete(context.Background(), &env))
	v, err := env.Secrets(context.Background(), "token")
	require.NoError(t, err)
	require.Equal(t, "acme:token", v)
	require.True(t, env.Egress.AllowPrivate)
	require.Error(t, p.Complete(context.Background(), &sdk.Env{Tenant: "broken"}))
}

func TestSecretsKVResolvesOnlyTheTenantsOwnSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	keys, err := secretbox.Parse(secretbox.GenerateKey())
	require.NoError(t, err)
	kv, err := tenancy.OpenSecretsKV(ctx, js, keys)
	require.NoError(t, err)

	any, err := kv.Any(ctx)
	require.NoError(t, err)
	require.False(t, any)

	put := func(tenant, name, value string) []byte {
		sealed, err := keys.Seal(tenant, name, []byte(value))
		require.NoError(t, err)
		require.NoError(t, kv.Put(ctx, tenant, name, sealed))
		return sealed
	}
	sealedA := put("tenant-a", "token", "a-token")
	put("tenant-a", "db.password", "a-db")
	put("tenant-b", "other", "b-other")
	any, err = kv.Any(ctx)
	require.NoError(t, err)
	require.True(t, any)

	platform := &tenancy.Platform{Secrets: kv.Resolver}
	envOf := func(tenant string) sdk.Env {
		env := sdk.Env{Tenant: tenant}
		require.NoError(t, platform.Complete(ctx, &env))
		return env
	}
	v, err := sdk.Secret{Secret: "token"}.Resolve(ctx, envOf("tenant-a"))
	require.NoError(t, err)
	require.Equal(t, "a-token", v)
	v, err = sdk.Secret{Secret: "db.password"}.Resolve(ctx, envOf("tenant-a"))
	require.NoError(t, err)
	require.Equal(t, "a-db", v)

	// Tenant B asks for A's secret by its name: B has none of that name.
	_, err = sdk.Secret{Secret: "token"}.Resolve(ctx, envOf("tenant-b"))
	require.ErrorIs(t, err, tenancy.ErrSecretNotFound)
	// Nor can B reach A's key with a crafted name.
	for _, name := range []string{"tenant-a.token", "..tenant-a.token", "*", ">"} {
		_, err = envOf("tenant-b").Secrets(ctx, name)
		require.Error(t, err, name)
	}
	// A sealed value copied from A's key to B's (someone with write access
	// to the bucket) does not open for B.
	_, err = kv.KV.Put(ctx, "tenant-b.token", sealedA)
	require.NoError(t, err)
	_, err = sdk.Secret{Secret: "token"}.Resolve(ctx, envOf("tenant-b"))
	require.ErrorIs(t, err, secretbox.ErrCannotOpen)
	// Nor copied to another of A's names.
	_, err = kv.KV.Put(ctx, "tenant-a.renamed", sealedA)
	require.NoError(t, err)
	_, err = sdk.Secret{Secret: "renamed"}.Resolve(ctx, envOf("tenant-a"))
	require.ErrorIs(t, err, secretbox.ErrCannotOpen)

	// Delete one, then all of a tenant's: the other tenant keeps its own.
	require.NoError(t, kv.Delete(ctx, "tenant-a", "token"))
	require.NoError(t, kv.Delete(ctx, "tenant-a", "token"), "deleting twice succeeds")
	_, err = sdk.Secret{Secret: "token"}.Resolve(ctx, envOf("tenant-a"))
	require.ErrorIs(t, err, tenancy.ErrSecretNotFound)
	n, err := kv.DeleteTenant(ctx, "tenant-a")
	require.NoError(t, err)
	require.Equal(t, 2, n, "db.password and renamed")
	_, err = sdk.Secret{Secret: "db.password"}.Resolve(ctx, envOf("tenant-a"))
	require.ErrorIs(t, err, tenancy.ErrSecretNotFound)
	v, err = sdk.Secret{Secret: "other"}.Resolve(ctx, envOf("tenant-b"))
	require.NoError(t, err)
	require.Equal(t, "b-other", v)

	require.Error(t, kv.Put(ctx, "Bad", "x", nil))
	require.Error(t, kv.Delete(ctx, "acme", "a..b"))
	_, err = kv.DeleteTenant(ctx, "a.b")
	require.Error(t, err)

	// Without a key ring nothing resolves, with a clear reason.
	noKeys := &tenancy.SecretsKV{KV: kv.KV}
	_, err = noKeys.Resolver("tenant-b")(ctx, "other")
	require.ErrorContains(t, err, "VRSKY_SECRETS_KEY")
	require.Equal(t, dataplane.SecretsBucket, kv.KV.Bucket())
}
