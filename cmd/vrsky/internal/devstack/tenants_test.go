package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
	"github.com/vrsky/vrsky/internal/natsauth"
)

const tenantSpec = `
name: orders
consumer: { connector: http-webhook }
producers:
  out: { connector: file, config: { dir: out, format: ndjson } }
`

// TestTenantsRunSideBySideInTheirOwnAccounts: three tenants provisioned
// through the API run integrations at the same time; each sees only its own
// data, in files and in NATS, where the server enforces the separation.
// Deleting one removes its account and streams and leaves the others
// running.
func TestTenantsRunSideBySideInTheirOwnAccounts(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, testConfig(dir))
	ep := s.Endpoints()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := adminClient(t, ep, dir)

	tenants := []string{"red", "green", "blue"}
	for _, tenant := range tenants {
		c, created, err := tenantkey.Ensure(ctx, admin, tenant, filepath.Join(dir, "keys", tenant+".key"))
		require.NoError(t, err)
		require.True(t, created)
		_, err = c.Deploy(ctx, "orders", []byte(tenantSpec), "test", false)
		require.NoError(t, err)
	}

	const perTenant = 30
	var wg sync.WaitGroup
	for _, tenant := range tenants {
		wg.Go(func() {
			for i := range perTenant {
				body := fmt.Sprintf(`{"tenant":%q,"n":%d}`, tenant, i)
				resp, err := http.Post("http://"+ep.HTTP+"/v1/hooks/"+tenant+"/orders", "application/json", strings.NewReader(body))
				if !assertNoError(t, err) {
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Errorf("%s: webhook answered %d", tenant, resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, tenant := range tenants {
		require.Eventually(t, func() bool { return len(outLines(dir, tenant)) == perTenant }, 30*time.Second, 50*time.Millisecond, tenant)
		for _, line := range outLines(dir, tenant) {
			require.Contains(t, line, `"tenant":"`+tenant+`"`)
		}
	}

	// NATS: red's credentials see red's stream and nothing of green's.
	keys, err := natsauth.LoadKeys(filepath.Join(dir, NATSKeysFile))
	require.NoError(t, err)
	red := tenantConn(t, ep, keys, "red")
	redJS, err := jetstream.New(red)
	require.NoError(t, err)
	_, err = redJS.Stream(ctx, "VRSKY_red_orders")
	require.NoError(t, err)
	_, err = redJS.Stream(ctx, "VRSKY_green_orders")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	spy, err := red.SubscribeSync(">")
	require.NoError(t, err)
	require.NoError(t, red.Flush())
	resp, err := http.Post("http://"+ep.HTTP+"/v1/hooks/green/orders", "application/json", strings.NewReader(`{"tenant":"green","n":99}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, func() bool { return len(outLines(dir, "green")) == perTenant+1 }, 10*time.Second, 50*time.Millisecond)
	// Red's account carries red's own traffic (its consumers' heartbeats);
	// nothing of green's may show up in it.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		msg, err := spy.NextMsg(200 * time.Millisecond)
		if errors.Is(err, nats.ErrTimeout) {
			break
		}
		require.NoError(t, err)
		require.NotContains(t, msg.Subject+" "+string(msg.Data), "green", "red saw %s: %s", msg.Subject, msg.Data)
	}

	// Deleting blue removes its account and its streams; red still runs.
	dr, err := admin.DeleteTenantWithResponse(ctx, "blue")
	require.NoError(t, client.Check("delete tenant blue", dr, err, http.StatusAccepted))
	require.Eventually(t, func() bool {
		got, err := admin.GetTenantWithResponse(ctx, "blue")
		return err == nil && got.JSON200 != nil && got.JSON200.Status == client.TenantStatusDeleted
	}, 30*time.Second, 100*time.Millisecond)
	blue, err := keys.TenantUser("blue", "test")
	require.NoError(t, err)
	_, err = nats.Connect(ep.NATS, blue.Option())
	require.Error(t, err, "blue's account is gone")
	resp, err = http.Post("http://"+ep.HTTP+"/v1/hooks/blue/orders", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, err = http.Post("http://"+ep.HTTP+"/v1/hooks/red/orders", "application/json", strings.NewReader(`{"tenant":"red","n":100}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, func() bool { return len(outLines(dir, "red")) == perTenant+1 }, 10*time.Second, 50*time.Millisecond)
}

// adminClient is a client of the stack's API with its admin key.
func adminClient(t *testing.T, ep Endpoints, dir string) *client.API {
	t.Helper()
	c, err := client.New("http://"+ep.HTTP, readAdminKey(t, dir))
	require.NoError(t, err)
	return c
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// tenantConn connects to the stack's NATS as a user of tenant's account.
func tenantConn(t *testing.T, ep Endpoints, keys *natsauth.Keys, tenant string) *nats.Conn {
	t.Helper()
	creds, err := keys.TenantUser(tenant, "test")
	require.NoError(t, err)
	nc, err := nats.Connect(ep.NATS, creds.Option())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// outLines returns the lines the tenant's file producer wrote to out/.
func outLines(dir, tenant string) []string { return producedLines(dir, tenant, "out") }

// producedLines returns the lines file producers wrote to sub of the
// tenant's file root.
func producedLines(dir, tenant, sub string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "files", tenant, sub, "*"))
	var out []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}
