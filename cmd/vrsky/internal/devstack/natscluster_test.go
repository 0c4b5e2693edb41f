package devstack

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/spec"
)

// TestDevStackOnThreeNATSNodes runs the stack on an embedded three-node
// cluster: every URL in endpoints.json, the pipeline's stream and the
// state buckets at three replicas, and webhooks still stored while the
// node leading the pipeline's stream is down.
func TestDevStackOnThreeNATSNodes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.NATSNodes = 3
	s := startStack(t, cfg)
	ep := s.Endpoints()
	require.Len(t, strings.Split(ep.NATS, ","), 3, "endpoints.json lists every node")
	require.Equal(t, 3, ep.NATSReplicas)
	written, err := ReadEndpoints(dir)
	require.NoError(t, err)
	require.Equal(t, ep.NATS, written.NATS)
	role, err := RoleConfig(dir)
	require.NoError(t, err)
	require.Equal(t, ep.NATS, role.NATSURL)
	require.Equal(t, 3, role.NATSReplicas, "an attached role creates streams at the stack's replica count")
	cluster := s.NATSCluster()
	require.NotNil(t, cluster)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nc, err := nats.Connect(ep.NATS, ep.NATSOptions()...)
	require.NoError(t, err)
	defer nc.Close()
	raw, err := jetstream.New(nc)
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, natscluster.WithReplicas(raw, ep.NATSReplicas))
	require.NoError(t, err)
	kv, err := raw.KeyValue(ctx, dataplane.DesiredStateBucket)
	require.NoError(t, err)
	status, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, status.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas)

	in, err := spec.ParseYAML([]byte(`
name: orders
consumer: { connector: http-webhook }
producers:
  all: { connector: file, config: { dir: all } }
`))
	require.NoError(t, err)
	key := readAdminKey(t, dir)
	require.Equal(t, http.StatusAccepted, postTenant(t, ep, key, `{"id":"acme","name":"Acme"}`))
	awaitTenantActive(t, ep, key, "acme")
	d := dataplane.Desired{Tenant: "acme", Integration: "orders", Version: 1, Status: dataplane.DesiredRunning, Spec: in}
	require.NoError(t, state.PutDesired(ctx, d))
	require.Eventually(t, func() bool {
		st, _, _ := state.GetStatus(ctx, d.Pipeline())
		return st.Status == dataplane.StatusRunning
	}, 30*time.Second, 20*time.Millisecond)

	post := func(i int) int {
		resp, err := http.Post("http://"+ep.HTTP+"/v1/hooks/acme/orders", "application/json", strings.NewReader(fmt.Sprintf(`{"id":%d}`, i)))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		require.Equal(t, http.StatusAccepted, post(i))
	}
	// Delivered: the stage made its consumer with the first message.
	require.Eventually(t, func() bool { return len(producedLines(dir, "acme", "all")) == 5 }, 30*time.Second, 20*time.Millisecond)

	// The stream lives in the tenant's account; find its leader there.
	keys, err := natsauth.LoadKeys(dir + "/" + NATSKeysFile)
	require.NoError(t, err)
	creds, err := keys.TenantUser("acme", "test")
	require.NoError(t, err)
	tnc, err := nats.Connect(ep.NATS, creds.Option())
	require.NoError(t, err)
	defer tnc.Close()
	tjs, err := jetstream.New(tnc)
	require.NoError(t, err)
	stream, err := tjs.Stream(ctx, d.Pipeline().Stream())
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, info.Config.Replicas)
	leader := -1
	for i := range 3 {
		if info.Cluster.Leader == fmt.Sprintf("vrsky-dev-%d", i+1) {
			leader = i
		}
	}
	require.GreaterOrEqual(t, leader, 0, "leader %q", info.Cluster.Leader)

	require.NoError(t, cluster.StopNode(leader))
	for i := 5; i < 15; i++ {
		require.Equal(t, http.StatusAccepted, post(i), "stored with two of three nodes")
	}
	require.NoError(t, cluster.RestartNode(ctx, leader))
	require.NoError(t, cluster.WaitReady(ctx))
	require.Eventually(t, func() bool { return len(producedLines(dir, "acme", "all")) == 15 }, 30*time.Second, 50*time.Millisecond)
}
