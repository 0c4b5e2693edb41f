package devstack

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func readAdminKey(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, AdminKeyFile)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

func TestAdminKeyFileIsPrivateAndKept(t *testing.T) {
	dir := t.TempDir()
	key, err := adminKey(dir)
	require.NoError(t, err)
	require.Regexp(t, `^vrsky_admin_[0-9a-f]{64}$`, key)
	require.Equal(t, key, readAdminKey(t, dir))

	again, err := adminKey(dir)
	require.NoError(t, err)
	require.Equal(t, key, again, "the key survives a restart")

	require.NoError(t, os.Chmod(filepath.Join(dir, AdminKeyFile), 0o644))
	again, err = adminKey(dir)
	require.NoError(t, err)
	require.Equal(t, key, again)
	require.Equal(t, key, readAdminKey(t, dir), "the mode is tightened back to 0600")

	other, err := adminKey(t.TempDir())
	require.NoError(t, err)
	require.NotEqual(t, key, other)

	require.NoError(t, os.WriteFile(filepath.Join(dir, AdminKeyFile), []byte("short\n"), 0o600))
	_, err = adminKey(dir)
	require.ErrorContains(t, err, "malformed")

	_, err = adminKey(filepath.Join(dir, "missing", "dir"))
	require.ErrorContains(t, err, "write admin key")
}

// postTenant creates a tenant through the stack's API with key and returns
// the status.
func postTenant(t *testing.T, ep Endpoints, key, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+ep.HTTP+"/v1/tenants", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// awaitTenantActive waits until the tenant's provisioning (after create's
// 202) finished.
func awaitTenantActive(t *testing.T, ep Endpoints, key, tenant string) {
	t.Helper()
	require.Eventually(t, func() bool {
		req, err := http.NewRequest(http.MethodGet, "http://"+ep.HTTP+"/v1/tenants/"+tenant, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var got struct {
			Status string `json:"status"`
		}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&got) == nil && got.Status == "active"
	}, 30*time.Second, 50*time.Millisecond, "tenant %s never became active", tenant)
}

// TestDevStackAdminKeyManagesTenantsAcrossRestarts: the key vrsky dev writes
// on first start creates a tenant through the API, and after a restart the
// same file holds the same key, which still works.
func TestDevStackAdminKeyManagesTenantsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, testConfig(dir))
	key := readAdminKey(t, dir)

	post := func(ep Endpoints, key, body string) int { return postTenant(t, ep, key, body) }
	require.Equal(t, http.StatusAccepted, post(s.Endpoints(), key, `{"id":"acme","name":"Acme"}`), "created; provisioned asynchronously")
	require.Equal(t, http.StatusUnauthorized, post(s.Endpoints(), key+"0", `{"id":"other","name":"Other"}`))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))

	s = startStack(t, testConfig(dir))
	require.Equal(t, key, readAdminKey(t, dir))
	require.Equal(t, http.StatusConflict, post(s.Endpoints(), key, `{"id":"acme","name":"Acme"}`), "the tenant and the key both survived")
}
