package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIntegrationsCommands applies the README's example and reads and
// changes it with `vrsky integrations`, as a user of a dev stack would.
func TestIntegrationsCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	stack := startDevStack(t, dir)

	// vrsky runs the command line and returns its standard output.
	vrsky := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(ctx, append(args, "--tenant", "acme", "--data-dir", dir), &out, &errOut)
		return out.String(), err
	}
	ok := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := vrsky(t, args...)
		require.NoError(t, err)
		return out
	}
	example := filepath.Join("..", "..", "examples", "webhook-to-file.yaml")
	ok(t, "apply", "-f", example)
	ok(t, "apply", "-f", example)
	// apply waits for the runners; deploy also waits until the lifecycle
	// recorded the change, so what follows reads version 2 running.
	require.Equal(t, "deploy of order-files version 2 accepted\norder-files version 2 running\n",
		ok(t, "integrations", "deploy", "order-files"))

	t.Run("list", func(t *testing.T) {
		out := ok(t, "integrations", "list")
		require.Regexp(t, `(?m)^ID\s+VERSION\s+DEPLOYED\s+STATUS\s+DESIRED\s+UPDATED$`, out)
		require.Regexp(t, `(?m)^order-files\s+2\s+2\s+running\s+running\s+\d{4}-`, out)
		require.Equal(t, "no integrations\n", ok(t, "integrations", "list", "--status", "stopped"))
	})
	t.Run("get", func(t *testing.T) {
		out := ok(t, "integrations", "get", "order-files")
		for _, line := range []string{
			`id:\s+order-files`,
			`version:\s+2 \(deployed: 2\)`,
			`status:\s+running \(desired: running\)`,
			`consumer:\s+http-webhook`,
			`steps:\s+json-transform → router`,
			`producers:\s+big-orders \(file\), orders \(file\)`,
		} {
			require.Regexp(t, "(?m)^"+line+"$", out)
		}
	})
	t.Run("status", func(t *testing.T) {
		out := ok(t, "integrations", "status", "order-files")
		for _, line := range []string{
			`status:\s+running \(desired: running\)`,
			`version:\s+2 \(latest: 2\)`,
			`runner:\s+\S+ reports version 2 running at .+`,
			`dead letters:\s+0`,
			`  process\s+0\s+0\s+0\s+0`,
		} {
			require.Regexp(t, "(?m)^"+line+"$", out)
		}
	})
	t.Run("versions", func(t *testing.T) {
		out := ok(t, "integrations", "versions", "order-files")
		require.Regexp(t, `(?m)^2\s+\S+ \S+\s+\S+\s+http-webhook\s+big-orders \(file\), orders \(file\)\n1\s`, out)
	})
	t.Run("logs", func(t *testing.T) {
		out := ok(t, "integrations", "logs", "order-files")
		require.Regexp(t, `(?m)^AT\s+ACTION\s+FROM\s+TO\s+ACTOR\s+REASON$`, out)
		require.Contains(t, out, "vrsky apply -f webhook-to-file.yaml")
		lines := strings.Split(strings.TrimSpace(ok(t, "integrations", "logs", "order-files", "--limit", "2")), "\n")
		require.Len(t, lines, 3, "a header and two entries")
	})
	t.Run("json is the API's", func(t *testing.T) {
		for _, args := range [][]string{
			{"list"}, {"get", "order-files"}, {"status", "order-files"}, {"logs", "order-files"}, {"versions", "order-files"},
		} {
			out := ok(t, append([]string{"integrations"}, append(args, "--json")...)...)
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &v), "%v: %s", args, out)
			require.True(t, strings.HasPrefix(out, "{\n  \""), "indented: %s", out)
		}
		var it struct {
			ID   string `json:"id"`
			Spec struct {
				Consumer struct{ Connector string } `json:"consumer"`
			} `json:"spec"`
		}
		require.NoError(t, json.Unmarshal([]byte(ok(t, "integrations", "get", "order-files", "--json")), &it))
		require.Equal(t, "order-files", it.ID)
		require.Equal(t, "http-webhook", it.Spec.Consumer.Connector)
	})

	t.Run("stop and start", func(t *testing.T) {
		out := ok(t, "integrations", "stop", "order-files", "--reason", "maintenance window")
		require.Equal(t, "stop of order-files accepted\norder-files version 2 stopped\n", out)
		require.Regexp(t, `(?m)^status:\s+stopped \(desired: stopped\)$`, ok(t, "integrations", "status", "order-files"))
		require.Regexp(t, `(?m)^order-files\s+2\s+2\s+stopped\s+stopped\s`, ok(t, "integrations", "list", "--status", "stopped"))
		require.Regexp(t, `(?m)\sstop\s+running\s+stopped\s+\S+\s+maintenance window$`, ok(t, "integrations", "logs", "order-files", "--limit", "1"))

		out = ok(t, "integrations", "start", "order-files")
		require.Equal(t, "start of order-files accepted\norder-files version 2 running\n", out)
		out = ok(t, "integrations", "deploy", "order-files", "--json")
		var accepted struct {
			Action  string `json:"action"`
			Version int    `json:"version"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &accepted), out)
		require.Equal(t, "deploy", accepted.Action)
		require.Equal(t, 2, accepted.Version)
	})

	t.Run("problems are readable", func(t *testing.T) {
		_, err := vrsky(t, "integrations", "list", "--status", "sideways")
		require.ErrorContains(t, err, "list integrations: 422 Unprocessable Entity")
		require.ErrorContains(t, err, "; query.status: ")
		require.False(t, errorsIsUsage(err))
	})

	t.Run("another tenant sees nothing", func(t *testing.T) {
		var out, errOut bytes.Buffer
		require.NoError(t, run(ctx, []string{"integrations", "list", "--tenant", "globex", "--data-dir", dir}, &out, &errOut))
		require.Equal(t, "no integrations\n", out.String())

		key, err := os.ReadFile(filepath.Join(dir, "keys", "globex.key"))
		require.NoError(t, err)
		t.Setenv("VRSKY_API_URL", "http://"+stack.Endpoints().HTTP)
		t.Setenv("VRSKY_API_KEY", strings.TrimSpace(string(key)))
		for _, cmd := range []string{"get", "status", "versions", "logs", "stop", "delete"} {
			err := run(ctx, []string{"integrations", cmd, "order-files", "--data-dir", t.TempDir()}, &out, &errOut)
			require.ErrorContains(t, err, "order-files: 404 Not Found: not found", cmd)
		}
	})

	t.Run("delete", func(t *testing.T) {
		out := ok(t, "integrations", "delete", "order-files")
		require.Equal(t, "delete of order-files accepted\ndeleted order-files\n", out)
		_, err := vrsky(t, "integrations", "get", "order-files")
		require.EqualError(t, err, "get integration order-files: 404 Not Found: not found")
		require.Equal(t, "no integrations\n", ok(t, "integrations", "list"))
		require.Regexp(t, `(?m)^\S+ \S+\s+delete\s`, ok(t, "integrations", "logs", "order-files"), "the log outlives the integration")
	})

	t.Run("stop right after apply", func(t *testing.T) {
		// apply returns once the runners run the new integration; the
		// lifecycle may still be recording that, and the stop waits for
		// its own outcome all the same.
		ok(t, "apply", "-f", example)
		require.Equal(t, "stop of order-files accepted\norder-files version 1 stopped\n", ok(t, "integrations", "stop", "order-files"))
		require.Regexp(t, `(?m)^status:\s+stopped \(desired: stopped\)$`, ok(t, "integrations", "status", "order-files"))
		require.Equal(t, "start of order-files accepted\n", ok(t, "integrations", "start", "order-files", "--wait=false"))
	})
}

func TestIntegrationsUsage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"integrations"}, "vrsky integrations COMMAND [ID]"},
		{"unknown command", []string{"integrations", "explode", "x"}, `unknown integrations command "explode"`},
		{"missing ID", []string{"integrations", "get"}, "vrsky integrations get ID: no integration ID given"},
		{"missing ID with flags", []string{"integrations", "delete", "--wait=false"}, "no integration ID given"},
		{"ID to list", []string{"integrations", "list", "orders"}, `takes no ID, got "orders"`},
		{"two IDs", []string{"integrations", "stop", "a", "b"}, `unexpected argument "b"`},
		{"unknown flag", []string{"integrations", "get", "a", "--bogus"}, "bogus"},
		{"flag of another command", []string{"integrations", "get", "a", "--limit", "3"}, "limit"},
		{"zero limit", []string{"integrations", "logs", "a", "--limit", "0"}, "--limit must be at least 1"},
		{"bad tenant", []string{"integrations", "list", "--tenant", "../x"}, "invalid tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(ctx, tt.args, &out, &errOut)
			require.ErrorContains(t, err, tt.want)
			require.True(t, errorsIsUsage(err), "a usage error: %v", err)
		})
	}

	var out, errOut bytes.Buffer
	require.Error(t, run(ctx, []string{"integrations", "explode"}, &out, &errOut))
	require.Contains(t, errOut.String(), "status ID", "the usage lists the commands")
	out.Reset()
	require.NoError(t, run(ctx, []string{"integrations", "help"}, &out, &errOut))
	require.Contains(t, out.String(), "logs ID [--limit N]")

	// Without a running stack the command says so.
	err := run(ctx, []string{"integrations", "list", "--data-dir", t.TempDir()}, &out, &errOut)
	require.ErrorContains(t, err, "is vrsky dev running?")
	require.False(t, errorsIsUsage(err))
}
