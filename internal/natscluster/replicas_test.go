package natscluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/natsserver"
)

// startCluster starts three embedded nodes and returns a JetStream
// connected to all of them.
func startCluster(t *testing.T) (*natsserver.Cluster, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := natsserver.StartCluster(ctx, natsserver.ClusterOptions{Nodes: 3, StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(c.Shutdown)
	nc, err := nats.Connect(c.ClientURLs(), natscluster.ClientOptions("test")...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return c, js
}

func TestWithReplicasReachesEveryStreamBucketAndObjectStore(t *testing.T) {
	_, raw := startCluster(t)
	js := natscluster.WithReplicas(raw, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	replicas := func(stream string) int {
		t.Helper()
		s, err := raw.Stream(ctx, stream)
		require.NoError(t, err)
		info, err := s.Info(ctx)
		require.NoError(t, err)
		return info.Config.Replicas
	}
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "A", Subjects: []string{"a"}})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("A"))
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "B", Subjects: []string{"b"}})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("B"))
	_, err = js.UpdateStream(ctx, jetstream.StreamConfig{Name: "B", Subjects: []string{"b", "b2"}})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("B"), "an update keeps the replicas")

	// A stream made at one replica is raised by the next create-or-update.
	_, err = raw.CreateStream(ctx, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"old"}})
	require.NoError(t, err)
	require.Equal(t, 1, replicas("OLD"))
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "OLD", Subjects: []string{"old"}})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("OLD"))

	// An explicit count wins.
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "ONE", Subjects: []string{"one"}, Replicas: 1})
	require.NoError(t, err)
	require.Equal(t, 1, replicas("ONE"))

	_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kv1"})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("KV_kv1"))
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kv2"})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("KV_kv2"))
	_, err = js.UpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "kv2", History: 2})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("KV_kv2"))

	_, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "os1"})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("OBJ_os1"))
	_, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "os2"})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("OBJ_os2"))
	_, err = js.UpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "os2", Description: "x"})
	require.NoError(t, err)
	require.Equal(t, 3, replicas("OBJ_os2"))

	// Durable consumers take their stream's count.
	s, err := js.Stream(ctx, "A")
	require.NoError(t, err)
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	ci, err := cons.Info(ctx)
	require.NoError(t, err)
	require.NotNil(t, ci.Cluster)
	require.Len(t, ci.Cluster.Replicas, 2, "a leader and two replicas")
}

func TestWithReplicasOfOneChangesNothing(t *testing.T) {
	require.Nil(t, natscluster.WithReplicas(nil, 3))
	_, js := startCluster(t)
	require.Same(t, js.(any), natscluster.WithReplicas(js, 1).(any))
	require.Same(t, js.(any), natscluster.WithReplicas(js, 0).(any))
}

func TestParseReplicas(t *testing.T) {
	for in, want := range map[string]int{"": 1, "1": 1, "3": 3, "5": 5} {
		got, err := natscluster.ParseReplicas(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"0", "-1", "6", "three", "3.0", " 3", "99999999999999999999", strings.Repeat("9", 4096)} {
		_, err := natscluster.ParseReplicas(bad)
		require.ErrorContains(t, err, natscluster.ReplicasEnv, bad)
	}
	t.Setenv(natscluster.ReplicasEnv, "3")
	n, err := natscluster.ReplicasFromEnv()
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

func TestClientOptionsReconnectForever(t *testing.T) {
	o := nats.GetDefaultOptions()
	for _, opt := range natscluster.ClientOptions("role") {
		require.NoError(t, opt(&o))
	}
	require.Equal(t, "role", o.Name)
	require.Equal(t, -1, o.MaxReconnect)
	require.Equal(t, natscluster.ReconnectWait, o.ReconnectWait)
	require.Equal(t, natscluster.ReconnectJitter, o.ReconnectJitter)
	require.Equal(t, natscluster.PingInterval, o.PingInterval)
	require.Equal(t, natscluster.MaxPingsOut, o.MaxPingsOut)
}
