package natsserver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestRunConfigFileServesUntilTheContextEnds(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	conf := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil,
		"listen: \"127.0.0.1:%d\"\nauthorization { user: \"u\", password: \"p\" }\njetstream { store_dir: %q }\n",
		port, filepath.Join(dir, "js")), 0o600))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunConfigFile(ctx, conf) }()

	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var nc *nats.Conn
	require.Eventually(t, func() bool {
		nc, err = nats.Connect(url, nats.UserInfo("u", "p"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the server from the file accepts its user")
	_, err = nats.Connect(url, nats.UserInfo("u", "wrong"))
	require.Error(t, err, "and refuses a wrong password")
	// JetStream is on, with the file's store.
	resp, err := nc.Request("$JS.API.INFO", nil, 2*time.Second)
	require.NoError(t, err)
	require.NotContains(t, string(resp.Data), `"error"`)
	nc.Close()

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop when the context ended")
	}
	_, err = nats.Connect(url, nats.UserInfo("u", "p"), nats.Timeout(time.Second))
	require.Error(t, err, "stopped")
}

func TestRunConfigFileRefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("jetstream {\n  store_dir: \n"), 0o600))
	unknown := filepath.Join(dir, "unknown.conf")
	require.NoError(t, os.WriteFile(unknown, []byte("port: \"not a number\"\n"), 0o600))
	for name, file := range map[string]string{
		"none": "", "missing": filepath.Join(dir, "missing.conf"), "unbalanced": bad, "wrong type": unknown,
	} {
		t.Run(name, func(t *testing.T) {
			err := RunConfigFile(context.Background(), file)
			require.Error(t, err)
			require.Contains(t, err.Error(), "nats-server")
		})
	}
}
