package natsserver

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsauth"
)

func TestStartPublishRestartKeepsStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()

	srv, err := Start(ctx, Options{StoreDir: dir})
	require.NoError(t, err)
	require.NoError(t, srv.Healthy())

	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "keep.a", []byte("hello"))
	require.NoError(t, err)
	nc.Close()
	srv.Shutdown()
	srv.Shutdown() // idempotent
	require.Error(t, srv.Healthy())

	srv, err = Start(ctx, Options{StoreDir: dir})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err = nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err = jetstream.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(ctx, "KEEP")
	require.NoError(t, err)
	msg, err := stream.GetLastMsgForSubject(ctx, "keep.a")
	require.NoError(t, err)
	require.Equal(t, "hello", string(msg.Data))
}

func TestStartRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opts Options
	}{
		{"no store dir", Options{}},
		{"address without port", Options{Addr: "127.0.0.1", StoreDir: t.TempDir()}},
		{"port not a number", Options{Addr: "127.0.0.1:http", StoreDir: t.TempDir()}},
		{"port out of range", Options{Addr: "127.0.0.1:70000", StoreDir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(ctx, tt.opts)
			require.Error(t, err)
		})
	}
}

func TestSplitAddrDefaultsToLoopback(t *testing.T) {
	host, port, err := splitAddr(":0")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)
	require.Equal(t, 0, port)
}

// TestOperatorModeNeedsCredentialsAndKeepsAccounts: with keys the server
// trusts only their operator's accounts, and keeps them across a restart.
func TestOperatorModeNeedsCredentialsAndKeepsAccounts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys, err := natsauth.NewKeys()
	require.NoError(t, err)
	dir := t.TempDir()
	srv, err := Start(ctx, Options{StoreDir: dir, Accounts: keys})
	require.NoError(t, err)
	_, err = nats.Connect(srv.ClientURL())
	require.Error(t, err, "no anonymous connections")

	platform, err := keys.PlatformUser("test")
	require.NoError(t, err)
	nc, err := nats.Connect(srv.ClientURL(), platform.Option())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kept"})
	require.NoError(t, err)
	nc.Close()
	srv.Shutdown()

	srv, err = Start(ctx, Options{StoreDir: dir, Accounts: keys})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err = nats.Connect(srv.ClientURL(), platform.Option())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err = jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.KeyValue(ctx, "kept")
	require.NoError(t, err)

	other, err := natsauth.NewKeys()
	require.NoError(t, err)
	stranger, err := other.PlatformUser("x")
	require.NoError(t, err)
	_, err = nats.Connect(srv.ClientURL(), stranger.Option())
	require.Error(t, err, "another operator's users are refused")
}
