package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSecretsAreTenantScoped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	for _, id := range []string{"acme", "evil"} {
		_, err := createTenant(ctx, s, id, id)
		require.NoError(t, err)
	}

	first, err := s.PutSecret(ctx, "acme", "token", "1", []byte("sealed-1"))
	require.NoError(t, err)
	require.Equal(t, TenantSecret{TenantID: "acme", Name: "token", Version: 1, KeyID: "1", CreatedAt: first.CreatedAt, UpdatedAt: first.UpdatedAt}, first)
	second, err := s.PutSecret(ctx, "acme", "token", "2", []byte("sealed-2"))
	require.NoError(t, err)
	require.Equal(t, 2, second.Version)
	require.Equal(t, "2", second.KeyID)
	require.Equal(t, first.CreatedAt, second.CreatedAt)
	require.False(t, second.UpdatedAt.Before(first.UpdatedAt))
	_, err = s.PutSecret(ctx, "acme", "a.db", "2", []byte("sealed-db"))
	require.NoError(t, err)

	list, err := s.ListSecrets(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "a.db", list[0].Name)
	require.Equal(t, "token", list[1].Name)
	sealed, err := s.SealedSecret(ctx, "acme", "token")
	require.NoError(t, err)
	require.Equal(t, "sealed-2", string(sealed))

	// Another tenant sees none of them and cannot remove them.
	list, err = s.ListSecrets(ctx, "evil")
	require.NoError(t, err)
	require.Empty(t, list)
	_, err = s.SealedSecret(ctx, "evil", "token")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, s.DeleteSecret(ctx, "evil", "token"), ErrNotFound)
	// Writing its own "token" leaves acme's alone.
	_, err = s.PutSecret(ctx, "evil", "token", "2", []byte("evil-sealed"))
	require.NoError(t, err)
	sealed, err = s.SealedSecret(ctx, "acme", "token")
	require.NoError(t, err)
	require.Equal(t, "sealed-2", string(sealed))

	for _, bad := range []struct{ name, sealed string }{{"bad name", "x"}, {"", "x"}, {"ok", ""}} {
		_, err = s.PutSecret(ctx, "acme", bad.name, "1", []byte(bad.sealed))
		require.ErrorIs(t, err, ErrInvalid)
	}
	_, err = s.PutSecret(ctx, "nobody", "token", "1", []byte("x"))
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, s.DeleteSecret(ctx, "acme", "token"))
	require.ErrorIs(t, s.DeleteSecret(ctx, "acme", "token"), ErrNotFound)
	n, err := s.DeleteTenantSecrets(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	list, err = s.ListSecrets(ctx, "evil")
	require.NoError(t, err)
	require.Len(t, list, 1, "the other tenant keeps its own")
}
