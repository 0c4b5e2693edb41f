package roles

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/natsserver"
)

func TestNATSReplicasFromEnv(t *testing.T) {
	t.Setenv("VRSKY_NATS_REPLICAS", "3")
	cfg, err := FromEnv()
	require.NoError(t, err)
	require.Equal(t, 3, cfg.NATSReplicas)
	t.Setenv("VRSKY_NATS_REPLICAS", "")
	cfg, err = FromEnv()
	require.NoError(t, err)
	require.Equal(t, 1, cfg.NATSReplicas)
	for _, bad := range []string{"0", "6", "three", "-3"} {
		t.Setenv("VRSKY_NATS_REPLICAS", bad)
		_, err = FromEnv()
		require.ErrorContains(t, err, "VRSKY_NATS_REPLICAS", bad)
	}
}

// operatorServer starts a NATS server in operator mode for the test, with
// the keys it trusts, and a context that ends with the test (30 s at most).
func operatorServer(t *testing.T) (context.Context, *natsauth.Keys, *natsserver.Server) {
	t.Helper()
	keys, err := natsauth.NewKeys()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	srv, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir(), Accounts: keys})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	return ctx, keys, srv
}

// TestConnectNATSCreatesStreamsAtTheReplicaCount: the count reaches the
// server through the platform account and through a tenant's. A single
// server does not take more than one replica, so it refuses them: that refusal is
// the proof the setting arrived.
func TestConnectNATSCreatesStreamsAtTheReplicaCount(t *testing.T) {
	ctx, keys, srv := operatorServer(t)

	one, err := ConnectNATS(srv.ClientURL(), keys, "test", 1)
	require.NoError(t, err)
	defer one.Close()
	_, err = one.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}})
	require.NoError(t, err)

	_, err = ConnectNATS(srv.ClientURL()+","+srv.ClientURL(), keys, "test", 3)
	require.ErrorContains(t, err, "replicas > 1 not supported",
		"a URL list is taken, and three replicas asked of one server are refused by the first bucket a role opens (placements)")

	_, err = one.Admin.PutTenant(ctx, "acme", natsauth.DefaultLimits)
	require.NoError(t, err)
	pool := natsauth.NewPool(srv.ClientURL(), keys, "test")
	pool.Replicas = 3
	defer pool.Close()
	tjs, err := pool.JetStream(ctx, "acme")
	require.NoError(t, err)
	_, err = tjs.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "b"})
	require.ErrorContains(t, err, "replicas > 1 not supported", "a tenant's buckets get the count too")
}

// TestConnectNATSPassesItsOptionsToEveryConnection: the options given
// reach the platform connection and each tenant's.
func TestConnectNATSPassesItsOptionsToEveryConnection(t *testing.T) {
	ctx, keys, srv := operatorServer(t)

	const ping = 7 * time.Minute
	n, err := ConnectNATS(srv.ClientURL(), keys, "test", 1, nats.PingInterval(ping))
	require.NoError(t, err)
	defer n.Close()
	require.Equal(t, ping, n.Conn.Opts.PingInterval)
	_, err = n.Admin.PutTenant(ctx, "acme", natsauth.DefaultLimits)
	require.NoError(t, err)
	tjs, err := n.Accounts.JetStream(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, ping, tjs.Conn().Opts.PingInterval, "a tenant's connection")

	plain, err := ConnectNATS(srv.ClientURL(), keys, "test", 1)
	require.NoError(t, err)
	defer plain.Close()
	require.Equal(t, natscluster.PingInterval, plain.Conn.Opts.PingInterval, "without options, every role's")
}
