package tenantkey_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
)

// TestEnsureKeepsAndReusesTheKey creates a tenant, keeps its key, reuses
// it, and reports a tenant whose key was lost.
func TestEnsureKeepsAndReusesTheKey(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := devstack.Start(ctx, devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Shutdown(context.Background()) })
	adminKey, err := os.ReadFile(filepath.Join(dir, devstack.AdminKeyFile))
	require.NoError(t, err)
	admin, err := client.New("http://"+stack.Endpoints().HTTP, string(adminKey))
	require.NoError(t, err)
	keyFile := filepath.Join(dir, "keys", "acme.key")

	c, created, err := tenantkey.Ensure(ctx, admin, "acme", keyFile)
	require.NoError(t, err)
	require.True(t, created)
	info, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	list, err := c.AllIntegrations(ctx, "")
	require.NoError(t, err, "the tenant's key works")
	require.Empty(t, list)

	again, created, err := tenantkey.Ensure(ctx, admin, "acme", keyFile)
	require.NoError(t, err)
	require.False(t, created)
	_, err = again.AllIntegrations(ctx, "")
	require.NoError(t, err)

	// A kept key that no longer works, or no key at all: the tenant
	// exists, so it is lost.
	require.NoError(t, os.WriteFile(keyFile, []byte("vrsky_bogus\n"), 0o600))
	_, _, err = tenantkey.Ensure(ctx, admin, "acme", keyFile)
	require.ErrorIs(t, err, tenantkey.ErrLost)
	require.NoError(t, os.Remove(keyFile))
	_, _, err = tenantkey.Ensure(ctx, admin, "acme", keyFile)
	require.ErrorIs(t, err, tenantkey.ErrLost)

	// A tenant the API refuses to create: its reason, and no key file.
	_, _, err = tenantkey.Ensure(ctx, admin, "Not Valid", filepath.Join(dir, "keys", "bad.key"))
	require.Equal(t, 422, client.StatusOf(err), "%v", err)
	require.NoFileExists(t, filepath.Join(dir, "keys", "bad.key"))
	// Nor with a key that is not the admin's.
	_, _, err = tenantkey.Ensure(ctx, admin.WithKey("nope"), "globex", filepath.Join(dir, "keys", "globex.key"))
	require.Equal(t, 401, client.StatusOf(err), "%v", err)
}
