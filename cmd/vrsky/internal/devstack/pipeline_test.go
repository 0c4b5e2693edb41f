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
	"github.com/vrsky/vrsky/internal/spec"
)

// TestWebhookToFileThroughTheDevStack runs the benchmark's integration shape
// on the real stack: webhook → json-transform → router → file producer.
func TestWebhookToFileThroughTheDevStack(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, testConfig(dir))
	ep := s.Endpoints()
	ctx := context.Background()

	nc, err := nats.Connect(ep.NATS, ep.NATSOptions()...)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)

	in, err := spec.ParseYAML([]byte(`
name: orders
consumer: { connector: http-webhook }
steps:
  - connector: json-transform
    config: { set: { total: "sum(map(items, #.qty * #.price))" } }
  - connector: router
    config:
      routes:
        - { when: "total > 100", to: [big] }
      default: [all]
producers:
  big: { connector: file, config: { dir: big } }
  all: { connector: file, config: { dir: all } }
`))
	require.NoError(t, err)
	// The tenant's NATS account comes with it.
	require.Equal(t, http.StatusAccepted, postTenant(t, ep, readAdminKey(t, dir), `{"id":"acme","name":"Acme"}`))
	awaitTenantActive(t, ep, readAdminKey(t, dir), "acme")
	d := dataplane.Desired{Tenant: "acme", Integration: "orders", Version: 1, Status: dataplane.DesiredRunning, Spec: in}
	require.NoError(t, state.PutDesired(ctx, d))
	var st dataplane.Status
	require.Eventually(t, func() bool {
		st, _, _ = state.GetStatus(ctx, d.Pipeline())
		return st.Status == dataplane.StatusRunning
	}, 20*time.Second, 20*time.Millisecond, "status: %+v", st)

	for i := range 10 {
		body := fmt.Sprintf(`{"id":%d,"items":[{"qty":%d,"price":20}]}`, i, i)
		resp, err := http.Post("http://"+ep.HTTP+"/v1/hooks/acme/orders", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	lines := func(sub string) []string { return producedLines(dir, "acme", sub) }
	require.Eventually(t, func() bool { return len(lines("big"))+len(lines("all")) == 10 }, 20*time.Second, 50*time.Millisecond)
	require.Len(t, lines("big"), 4, "orders 6..9 have totals over 100")
	require.Contains(t, strings.Join(lines("big"), "\n"), `"total":180`)
}
