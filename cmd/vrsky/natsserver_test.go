//go:build !vrsky_production

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestNATSServerRunsTheConfigurationUntilStopped(t *testing.T) {
	dir := t.TempDir()
	port := freePorts(t, 1)[0]
	conf := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil,
		"listen: \"127.0.0.1:%d\"\nauthorization { user: \"vrsky\", password: \"p\" }\njetstream { store_dir: %q }\n",
		port, filepath.Join(dir, "js")), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"nats-server", "-c", conf}, &bytes.Buffer{}, &stderr) }()

	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var nc *nats.Conn
	require.Eventually(t, func() bool {
		nc, err = nats.Connect(url, nats.UserInfo("vrsky", "p"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	resp, err := nc.Request("$JS.API.INFO", nil, 2*time.Second)
	require.NoError(t, err)
	require.NotContains(t, string(resp.Data), `"error"`, "JetStream is on")
	nc.Close()

	cancel() // what SIGINT or SIGTERM does to main's context
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("vrsky nats-server did not stop")
	}
}

func TestNATSServerRefusesBadUse(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("jetstream {\n"), 0o600))
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", []string{"nats-server"}, true, "vrsky nats-server -c FILE"},
		{"extra argument", []string{"nats-server", "-c", bad, "more"}, true, `unexpected argument "more"`},
		{"unknown flag", []string{"nats-server", "-p", "4222"}, true, "flag provided but not defined"},
		{"missing file", []string{"nats-server", "-c", filepath.Join(t.TempDir(), "none.conf")}, false, "nats-server configuration"},
		{"unparsable file", []string{"nats-server", "-c", bad}, false, "nats-server configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out, &out)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, tc.usage, errors.Is(err, errUsage), "%v", err)
		})
	}

	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"nats-server", "-h"}, &out, &errOut))
	require.Contains(t, out.String(), "Usage: vrsky nats-server -c FILE")
	require.Empty(t, errOut.String())

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"help"}, &out, &out))
	require.NotContains(t, out.String(), "nats-server ", "a hidden command")
}
