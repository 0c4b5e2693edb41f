package natsserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/natsauth"
)

// TestClusterKeepsAnR3StreamThroughTheLossOfItsLeader starts three nodes
// in operator mode, stores messages in a three-replica stream, stops the
// meta leader's node, keeps publishing, and brings the node back.
func TestClusterKeepsAnR3StreamThroughTheLossOfItsLeader(t *testing.T) {
	keys, err := natsauth.NewKeys()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := StartCluster(ctx, ClusterOptions{Nodes: 3, StoreDir: t.TempDir(), Accounts: keys, Monitor: true})
	require.NoError(t, err)
	t.Cleanup(c.Shutdown)
	require.NoError(t, c.Healthy())
	require.Len(t, strings.Split(c.ClientURLs(), ","), 3)
	require.Len(t, c.MonitorURLs(), 3)

	creds, err := keys.PlatformUser("test")
	require.NoError(t, err)
	nc, err := nats.Connect(c.ClientURLs(), creds.Option(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	// Healthy nodes may still be "offline" to the meta leader for a moment
	// on a loaded machine: placement is tried until every peer counts.
	require.Eventually(t, func() bool {
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Replicas: 3})
		return err == nil
	}, 15*time.Second, 200*time.Millisecond, "an R3 stream is placed: %v", &err)
	for range 10 {
		_, err := js.Publish(ctx, "s", []byte("before"))
		require.NoError(t, err)
	}

	leader := c.Leader()
	require.GreaterOrEqual(t, leader, 0)
	require.NoError(t, c.StopNode(leader))
	require.Error(t, c.StopNode(leader), "already stopped")
	require.Error(t, c.Healthy())
	require.Len(t, c.MonitorURLs(), 2)
	require.NoError(t, c.WaitReady(ctx), "the other two elect a leader")
	require.NotEqual(t, leader, c.Leader())
	require.Eventually(t, func() bool {
		_, err := js.Publish(ctx, "s", []byte("during"))
		return err == nil
	}, 30*time.Second, 100*time.Millisecond, "publishes go on with two of three nodes")

	require.NoError(t, c.RestartNode(ctx, leader))
	require.Error(t, c.RestartNode(ctx, leader), "already running")
	require.NoError(t, c.WaitReady(ctx))
	require.NoError(t, c.Healthy())
	s, err := js.Stream(ctx, "S")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, info.State.Msgs, uint64(11), "nothing stored before the loss is gone")
}

func TestClusterRefusesBadShapes(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 2, 4, 9} {
		_, err := StartCluster(ctx, ClusterOptions{Nodes: n, StoreDir: t.TempDir()})
		require.ErrorContains(t, err, "want 3, 5 or 7", n)
	}
	_, err := StartCluster(ctx, ClusterOptions{Nodes: 3, StoreDir: t.TempDir(), Addr: "nohost"})
	require.Error(t, err)
	_, err = Start(ctx, Options{StoreDir: t.TempDir(), Cluster: &ClusterNode{Name: "c", Addr: "127.0.0.1:0"}})
	require.ErrorContains(t, err, "fixed port")
	_, err = Start(ctx, Options{StoreDir: t.TempDir(), Cluster: &ClusterNode{Name: "c", Addr: "127.0.0.1:1", Routes: []string{"http://x:1"}}})
	require.ErrorContains(t, err, "nats://host:port")
	_, err = Start(ctx, Options{StoreDir: t.TempDir(), Cluster: &ClusterNode{Name: "c", Addr: "bad"}})
	require.Error(t, err)
	c := &Cluster{}
	require.Error(t, c.StopNode(0))
	require.Error(t, c.RestartNode(ctx, 3))
	require.Equal(t, -1, c.Leader())
}
