package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
)

// TestApplyTheExampleAndSendAWebhook follows the README: start the stack,
// apply examples/webhook-to-file.yaml, POST an order, find it in the files.
func TestApplyTheExampleAndSendAWebhook(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	stack := startDevStack(t, dir)

	var out, errOut bytes.Buffer
	example := filepath.Join("..", "..", "examples", "webhook-to-file.yaml")
	require.NoError(t, run(ctx, []string{"apply", "-f", example, "--tenant", "acme", "--data-dir", dir}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "integration acme/order-files version 1 running")
	require.Contains(t, out.String(), "/v1/hooks/acme/order-files")

	resp, err := http.Post("http://"+stack.Endpoints().HTTP+"/v1/hooks/acme/order-files", "application/json",
		strings.NewReader(`{"id":"o-1","items":[{"qty":3,"price":500}]}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	for _, sub := range []string{"orders", "big-orders"} {
		require.Eventually(t, func() bool {
			files, _ := filepath.Glob(filepath.Join(dir, "files", "acme", sub, "*"))
			for _, f := range files {
				if b, _ := os.ReadFile(f); strings.Contains(string(b), `"total":1500`) {
					return true
				}
			}
			return false
		}, 15*time.Second, 50*time.Millisecond, sub)
	}

	// Applying again makes a new version.
	out.Reset()
	require.NoError(t, run(ctx, []string{"apply", "-f", example, "--tenant", "acme", "--data-dir", dir, "--stop"}, &out, &errOut))
	require.Contains(t, out.String(), "version 2 stopped")

	// A spec naming a connector that does not exist is reported, not hidden.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("name: bad\nconsumer: {connector: http-webhook}\nproducers: {out: {connector: teleport}}\n"), 0o600))
	err = run(ctx, []string{"apply", "-f", bad, "--tenant", "acme", "--data-dir", dir}, &out, &errOut)
	require.ErrorContains(t, err, `unknown producer "teleport"`)
}

func TestApplyRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	empty := filepath.Join(t.TempDir(), "empty.yaml")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	twoDocs := filepath.Join(t.TempDir(), "two.yaml")
	spec := "name: a\nconsumer: {connector: http-webhook}\nproducers: {out: {connector: file}}\n"
	require.NoError(t, os.WriteFile(twoDocs, []byte(spec+"---\n"+strings.Replace(spec, "name: a", "name: b", 1)), 0o600))
	manyDocs := filepath.Join(t.TempDir(), "many.yaml")
	require.NoError(t, os.WriteFile(manyDocs, []byte(strings.Repeat(spec+"---\n", 500)+spec), 0o600))
	huge := filepath.Join(t.TempDir(), "huge.yaml")
	require.NoError(t, os.WriteFile(huge, []byte(spec+"# "+strings.Repeat("x", 2<<20)+"\n"), 0o600))
	invalid := filepath.Join(t.TempDir(), "invalid.yaml")
	require.NoError(t, os.WriteFile(invalid, []byte("name: Not Valid\nproducers: {}\n"), 0o600))
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"apply"}, "apply -f FILE"},
		{"missing file", []string{"apply", "-f", "/nonexistent.yaml"}, "read spec"},
		{"empty file", []string{"apply", "-f", empty}, "empty"},
		{"invalid spec", []string{"apply", "-f", invalid}, "not a valid name"},
		{"two documents", []string{"apply", "-f", twoDocs}, "holds 2 YAML documents; vrsky apply takes one integration spec a file"},
		{"hostile: 501 documents", []string{"apply", "-f", manyDocs}, "holds 501 YAML documents"},
		{"oversize", []string{"apply", "-f", huge}, "over the"},
		{"bad tenant", []string{"apply", "-f", filepath.Join("..", "..", "examples", "webhook-to-file.yaml"), "--tenant", "../x"}, "invalid tenant"},
		{"no stack", []string{"apply", "-f", filepath.Join("..", "..", "examples", "webhook-to-file.yaml"), "--data-dir", t.TempDir()}, "is vrsky dev running?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			require.ErrorContains(t, run(ctx, tt.args, &out, &errOut), tt.want)
		})
	}
}

// startDevStack starts a dev stack on free ports in dir, stopped when the
// test ends.
func startDevStack(t *testing.T, dir string) *devstack.Stack {
	t.Helper()
	stack, err := devstack.Start(context.Background(), devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Shutdown(context.Background()) })
	return stack
}
