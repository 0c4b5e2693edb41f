package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTenantsKeysSecretsDLQAndSchedules drives the API commands against a
// dev stack: the admin creates a tenant, the tenant manages its keys and
// secrets, reads and replays its (empty) DLQ, and works a schedule.
func TestTenantsKeysSecretsDLQAndSchedules(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	startDevStack(t, dir)
	vrsky := func(t *testing.T, stdin string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		require.NoError(t, runWithInput(ctx, append(args, "--data-dir", dir), strings.NewReader(stdin), &out, &errOut),
			"vrsky %s: %s", strings.Join(args, " "), errOut.String())
		return out.String()
	}
	fails := func(t *testing.T, want string, args ...string) {
		t.Helper()
		var out, errOut bytes.Buffer
		require.ErrorContains(t, run(ctx, append(args, "--data-dir", dir), &out, &errOut), want)
	}

	// tenants, with the dev stack's admin key.
	keyFile := filepath.Join(t.TempDir(), "globex.key")
	out := vrsky(t, "", "tenants", "create", "globex", "--name", "Globex Corp", "--key-file", keyFile)
	require.Contains(t, out, "tenant globex: active")
	kept, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.Contains(t, out, "API key (shown only now): "+strings.TrimSpace(string(kept)))
	fails(t, "409 Conflict", "tenants", "create", "globex")
	require.Contains(t, vrsky(t, "", "tenants", "list"), "Globex Corp")
	var listed struct {
		Items []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(vrsky(t, "", "tenants", "list", "--json")), &listed))
	require.Contains(t, listed.Items, struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}{"globex", "active"})
	out = vrsky(t, "", "tenants", "get", "globex")
	require.Contains(t, out, "status:")
	require.Contains(t, out, "public addresses only")
	fails(t, "404 Not Found", "tenants", "get", "nobody")
	require.Contains(t, vrsky(t, "", "tenants", "delete", "globex"), "deletion of tenant globex accepted")

	// keys, with the tenant's key (created on first use, as for apply).
	out = vrsky(t, "", "keys", "create", "--tenant", "acme", "--scopes", "read,write")
	require.Contains(t, out, "(read,write) created")
	newKey := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	require.True(t, strings.HasPrefix(newKey, "vrsky_"), out)
	out = vrsky(t, "", "keys", "list", "--tenant", "acme")
	require.Contains(t, out, newKey[:12], "keys are listed by their prefix")
	require.NotContains(t, out, newKey, "never the key itself")
	var keys struct {
		Items []struct {
			ID     string `json:"id"`
			Prefix string `json:"prefix"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(vrsky(t, "", "keys", "list", "--tenant", "acme", "--json")), &keys))
	var newID string
	for _, k := range keys.Items {
		if k.Prefix == newKey[:12] {
			newID = k.ID
		}
	}
	require.NotEmpty(t, newID)
	require.Contains(t, vrsky(t, "", "keys", "delete", newID, "--tenant", "acme"), "revoked")
	fails(t, "401", "secrets", "list", "--key", newKey, "--api", apiOf(t, dir))

	// secrets: stdin, --value, --from-file; values never shown.
	require.Contains(t, vrsky(t, "hunter2\n", "secrets", "put", "db-password", "--tenant", "acme"), "secret db-password stored")
	require.Contains(t, vrsky(t, "", "secrets", "put", "token", "--value", "t0k3n", "--tenant", "acme"), "stored")
	file := filepath.Join(t.TempDir(), "webhook-url")
	require.NoError(t, os.WriteFile(file, []byte("https://example.org/hook"), 0o600))
	require.Contains(t, vrsky(t, "", "secrets", "put", "slack-url", "--from-file", file, "--tenant", "acme"), "stored")
	out = vrsky(t, "", "secrets", "list", "--tenant", "acme")
	for _, name := range []string{"db-password", "token", "slack-url"} {
		require.Contains(t, out, name)
	}
	require.NotContains(t, vrsky(t, "", "secrets", "list", "--tenant", "acme", "--json"), "hunter2")
	fails(t, "422", "secrets", "put", "Not A Name", "--value", "v", "--tenant", "acme")
	require.Contains(t, vrsky(t, "", "secrets", "delete", "token", "--tenant", "acme"), "secret token deleted")
	fails(t, "404", "secrets", "delete", "token", "--tenant", "acme")

	// dlq: empty, and a replay of nothing.
	require.Contains(t, vrsky(t, "", "dlq", "list", "--tenant", "acme"), "no dead letters")
	fails(t, "404", "dlq", "get", "12345", "--tenant", "acme")
	out = vrsky(t, "", "dlq", "replay", "--all", "--tenant", "acme")
	require.Contains(t, out, "replay accepted: replay-")
	replayID := strings.Fields(out)[2]
	require.Eventually(t, func() bool {
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"dlq", "replay-status", replayID, "--tenant", "acme", "--data-dir", dir}, &out, &errOut)
		return err == nil && strings.Contains(out.String(), "completed, 0 of 0 done, 0 failed")
	}, 30*time.Second, 200*time.Millisecond)

	// schedules: a polling integration that runs at 03:00 UTC on 1 January.
	spec := filepath.Join(t.TempDir(), "nightly.yaml")
	require.NoError(t, os.WriteFile(spec, []byte("name: nightly\nconsumer: { connector: file, config: { dir: in, format: ndjson } }\n"+
		"producers: { out: { connector: file, config: { dir: out } } }\nschedule: \"0 3 1 1 *\"\n"), 0o600))
	vrsky(t, "", "apply", "-f", spec, "--tenant", "acme")
	// The lifecycle creates the schedule once the deploy is carried out.
	require.Eventually(t, func() bool {
		var o, e bytes.Buffer
		err := run(ctx, []string{"schedules", "get", "nightly", "--tenant", "acme", "--data-dir", dir}, &o, &e)
		out = o.String()
		return err == nil
	}, 30*time.Second, 200*time.Millisecond)
	require.Contains(t, out, "0 3 1 1 *")
	require.Contains(t, out, "state:")
	require.Contains(t, vrsky(t, "", "schedules", "pause", "nightly", "--reason", "holiday", "--tenant", "acme"), "paused")
	require.Contains(t, vrsky(t, "", "schedules", "get", "nightly", "--tenant", "acme"), "holiday")
	require.Contains(t, vrsky(t, "", "schedules", "resume", "nightly", "--tenant", "acme"), "active")
	require.Contains(t, vrsky(t, "", "schedules", "trigger", "nightly", "--tenant", "acme"), "run of nightly triggered")
	// A window holding one 1 January 03:00 of the past.
	newYear := time.Date(time.Now().UTC().Year()-1, 1, 1, 3, 0, 0, 0, time.UTC)
	out = vrsky(t, "", "schedules", "backfill", "nightly", "--start", newYear.AddDate(0, 0, -10).Format(time.RFC3339),
		"--end", newYear.AddDate(0, 0, 10).Format(time.RFC3339), "--tenant", "acme")
	require.Contains(t, out, "backfill of nightly accepted; scheduled times in the window: 1")
	fails(t, "404", "schedules", "get", "nope", "--tenant", "acme")
}

// apiOf is the API address of the dev stack in dir.
func apiOf(t *testing.T, dir string) string {
	t.Helper()
	u, err := devAPIURL(dir)
	require.NoError(t, err)
	return u
}
