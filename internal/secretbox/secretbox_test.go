package secretbox_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/secretbox"
)

func ring(t *testing.T, spec string) *secretbox.KeyRing {
	t.Helper()
	r, err := secretbox.Parse(spec)
	require.NoError(t, err)
	return r
}

func TestSealOpensOnlyForItsTenantAndName(t *testing.T) {
	t.Parallel()
	r := ring(t, secretbox.GenerateKey())
	sealed, err := r.Seal("acme", "token", []byte("s3cret"))
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "s3cret")

	plain, err := r.Open("acme", "token", sealed)
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(plain))

	// Tenant B copying tenant A's ciphertext under its own name, or A
	// renaming it, gets nothing: the tenant and name are additional data.
	for _, tt := range []struct{ tenant, name string }{
		{"evil", "token"}, {"acme", "other"}, {"acmet", "oken"}, {"", "acme\x00token"},
	} {
		_, err := r.Open(tt.tenant, tt.name, sealed)
		require.ErrorIs(t, err, secretbox.ErrCannotOpen, "%s/%s", tt.tenant, tt.name)
	}

	// Any changed byte, header included, fails.
	for i := range sealed {
		altered := bytes.Clone(sealed)
		altered[i] ^= 0x01
		_, err := r.Open("acme", "token", altered)
		require.Error(t, err, "byte %d", i)
	}
	for _, bad := range [][]byte{nil, {1}, {2, 1, '1'}, {1, 9, '1'}, sealed[:10]} {
		_, err := r.Open("acme", "token", bad)
		require.ErrorIs(t, err, secretbox.ErrCannotOpen)
	}

	// Two seals of one value differ (random nonce).
	again, err := r.Seal("acme", "token", []byte("s3cret"))
	require.NoError(t, err)
	require.NotEqual(t, sealed, again)
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := secretbox.GenerateKey(), secretbox.GenerateKey()
	before := ring(t, oldKey)
	sealedOld, err := before.Seal("acme", "token", []byte("v1"))
	require.NoError(t, err)
	id, err := secretbox.KeyID(sealedOld)
	require.NoError(t, err)
	require.Equal(t, secretbox.DefaultKeyID, id)

	// The new key first: it seals, the old one still opens.
	after := ring(t, "2:"+newKey+", 1:"+oldKey)
	require.Equal(t, "2", after.CurrentID())
	plain, err := after.Open("acme", "token", sealedOld)
	require.NoError(t, err)
	require.Equal(t, "v1", string(plain))
	sealedNew, err := after.Seal("acme", "token", []byte("v2"))
	require.NoError(t, err)
	id, err = secretbox.KeyID(sealedNew)
	require.NoError(t, err)
	require.Equal(t, "2", id)

	// Once the old key is retired, what it sealed no longer opens, and the
	// error names the missing key.
	retired := ring(t, "2:"+newKey)
	_, err = retired.Open("acme", "token", sealedOld)
	require.ErrorIs(t, err, secretbox.ErrCannotOpen)
	require.Contains(t, err.Error(), "key 1")
	_, err = before.Open("acme", "token", sealedNew)
	require.ErrorIs(t, err, secretbox.ErrCannotOpen)
}

func TestParseRefusesBadKeysWithoutShowingThem(t *testing.T) {
	t.Parallel()
	good := secretbox.GenerateKey()
	short := base64.StdEncoding.EncodeToString([]byte("too short"))
	for _, tt := range []struct{ spec, want string }{
		{"", "no key"},
		{"notbase64!", "not standard base64"},
		{short, "want 32 bytes"},
		{"a b:" + good, "want id:base64"},
		{"x!y:" + good + ",1:" + good, "letters"},
		{"1:" + good + ",1:" + good, "twice"},
	} {
		_, err := secretbox.Parse(tt.spec)
		require.ErrorContains(t, err, tt.want, tt.spec)
		require.NotContains(t, err.Error(), good)
	}
	_, err := secretbox.New()
	require.Error(t, err)
	var none *secretbox.KeyRing
	_, err = none.Seal("a", "b", nil)
	require.Error(t, err)
	_, err = none.Open("a", "b", nil)
	require.Error(t, err)
}

func TestFromEnvAndFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	r, err := secretbox.FromEnv(getenv)
	require.NoError(t, err)
	require.Nil(t, r, "no key configured: no ring")

	env[secretbox.KeyVar] = "2:" + secretbox.GenerateKey()
	r, err = secretbox.FromEnv(getenv)
	require.NoError(t, err)
	require.Equal(t, "2", r.CurrentID())

	env[secretbox.KeyVar] = "nope"
	_, err = secretbox.FromEnv(getenv)
	require.ErrorContains(t, err, secretbox.KeyVar)

	path := filepath.Join(dir, "secrets-key")
	env[secretbox.KeyVar] = ""
	env[secretbox.KeyFileVar] = path
	_, err = secretbox.FromEnv(getenv)
	require.ErrorContains(t, err, secretbox.KeyFileVar)

	// Created on first use with mode 0600, then the same key again.
	first, err := secretbox.LoadOrCreateFile(path)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	sealed, err := first.Seal("acme", "n", []byte("v"))
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, 0o644))
	second, err := secretbox.LoadOrCreateFile(path)
	require.NoError(t, err)
	info, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	plain, err := second.Open("acme", "n", sealed)
	require.NoError(t, err)
	require.Equal(t, "v", string(plain))

	fromFile, err := secretbox.FromEnv(getenv)
	require.NoError(t, err)
	require.Equal(t, secretbox.DefaultKeyID, fromFile.CurrentID())

	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad"), []byte("junk"), 0o600))
	_, err = secretbox.LoadOrCreateFile(filepath.Join(dir, "bad"))
	require.Error(t, err)
	_, err = secretbox.LoadOrCreateFile(filepath.Join(dir, "missing-dir", "key"))
	require.Error(t, err)
	require.False(t, strings.Contains(err.Error(), "base64"))
}
