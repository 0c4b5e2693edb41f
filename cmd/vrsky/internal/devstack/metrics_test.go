package devstack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
)

// The cardinality budget of docs/metrics.md.
const (
	// budgetPerTenant: the stage-duration histogram's 2 stage kinds × 18
	// series, the end-to-end histogram's 20, the DLQ size, and the 5
	// webhook outcomes.
	budgetPerTenant = 62
	// budgetFixed bounds the series that carry no tenant in vrsky dev.
	budgetFixed = 2500
)

// budgetPerIntegration: 7 stage counters and the consumer lag for each of
// the 1 + producers stages, and the CDC slot lag.
func budgetPerIntegration(producers int) int { return 8*(1+producers) + 1 }

// series is one line of the Prometheus text format.
type series struct {
	name   string
	labels map[string]string
}

var (
	seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? `)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// scrapeMetrics reads the stack's /metrics.
func scrapeMetrics(t *testing.T, ep Endpoints) []series {
	t.Helper()
	resp, err := http.Get("http://" + ep.HTTP + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out []series
	for _, line := range strings.Split(string(body), "\n") {
		m := seriesLine.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		s := series{name: m[1], labels: map[string]string{}}
		for _, l := range labelPair.FindAllStringSubmatch(m[3], -1) {
			s.labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out
}

func count(all []series, match func(series) bool) int {
	n := 0
	for _, s := range all {
		if match(s) {
			n++
		}
	}
	return n
}

// has reports whether name is exposed, as itself or as a histogram.
func has(all []series, name string) bool {
	return count(all, func(s series) bool { return s.name == name || s.name == name+"_count" }) > 0
}

// contractMetrics are the metric names docs/metrics.md lists in its tables.
func contractMetrics(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "metrics.md"))
	require.NoError(t, err)
	var names []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(vrsky_[a-z_]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		names = append(names, m[1])
	}
	require.GreaterOrEqual(t, len(names), 28, "the tables list every metric")
	return names
}

// TestMetricsStayWithinTheCardinalityBudget starts the real stack, adds
// tenants and integrations, moves messages through them, and holds what
// each added tenant and integration adds to /metrics to docs/metrics.md's
// budget; every metric the document lists is then exposed.
func TestMetricsStayWithinTheCardinalityBudget(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, testConfig(dir))
	ep := s.Endpoints()
	require.NotEmpty(t, ep.NATSMonitor, "the embedded NATS serves its monitoring endpoints")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	admin := adminClient(t, ep, dir)

	tenant := func(id string) *client.API {
		c, _, err := tenantkey.Ensure(ctx, admin, id, filepath.Join(dir, "keys", id))
		require.NoError(t, err)
		return c
	}
	webhook := func(c *client.API, tenantID, name string, messages int) {
		_, err := c.Deploy(ctx, name, []byte(fmt.Sprintf(`
name: %s
consumer: { connector: http-webhook }
producers:
  out: { connector: file, config: { dir: %s, format: ndjson } }
`, name, name)), "metrics test", false)
		require.NoError(t, err)
		for i := range messages {
			resp, err := http.Post("http://"+ep.HTTP+"/v1/hooks/"+tenantID+"/"+name, "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, i)))
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusAccepted, resp.StatusCode)
		}
		require.Eventually(t, func() bool { return len(producedLines(dir, tenantID, name)) == messages }, 30*time.Second, 50*time.Millisecond)
	}

	// Tenant acme: a webhook integration and a PostgreSQL CDC one reading
	// the stack's own database.
	acme := tenant("acme")
	webhook(acme, "acme", "hooks1", 5)
	dbURL, err := url.Parse(ep.Postgres)
	require.NoError(t, err)
	pr, err := admin.UpdateTenantWithResponse(ctx, "acme", client.TenantPatch{Egress: &client.EgressPolicy{AllowHosts: &[]string{dbURL.Host}}})
	require.NoError(t, client.Check("update tenant", pr, err, http.StatusOK))
	sr, err := acme.PutSecretWithResponse(ctx, "db", client.PutSecretJSONRequestBody{Value: ep.Postgres})
	require.NoError(t, client.Check("store secret", sr, err, http.StatusOK, http.StatusCreated))
	conn, err := pgx.Connect(ctx, ep.Postgres)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "CREATE TABLE metrics_src (id bigint PRIMARY KEY, v text)")
	require.NoError(t, err)
	_, err = acme.Deploy(ctx, "cdc1", []byte(`
name: cdc1
consumer: { connector: postgres-cdc, config: { url: { secret: db }, tables: [metrics_src] } }
producers:
  out: { connector: file, config: { dir: cdc1, format: ndjson } }
`), "metrics test", false)
	require.NoError(t, err)
	// A row per try: rows written before the replication slot exists are
	// never sent, so inserting the same row again would never show.
	row := 0
	require.Eventually(t, func() bool {
		row++
		_, err := conn.Exec(ctx, "INSERT INTO metrics_src VALUES ($1, 'x')", row)
		return err == nil && len(producedLines(dir, "acme", "cdc1")) >= 1
	}, 60*time.Second, 500*time.Millisecond, "the CDC integration never delivered")
	require.Eventually(t, func() bool {
		return has(scrapeMetrics(t, ep), "vrsky_cdc_slot_lag_bytes")
	}, 30*time.Second, 200*time.Millisecond, "the CDC consumer's slot lag is reported")

	// One more integration in acme.
	webhook(acme, "acme", "hooks2", 5)
	// A second tenant with one integration.
	beta := tenant("beta")
	webhook(beta, "beta", "hooks3", 5)

	var all []series
	require.Eventually(t, func() bool {
		all = scrapeMetrics(t, ep)
		return count(all, func(s series) bool { return s.name == "vrsky_dlq_messages" && s.labels["tenant"] == "beta" }) == 1 &&
			count(all, func(s series) bool {
				return s.name == "vrsky_stage_consumer_lag" && s.labels["integration"] == "hooks3"
			}) == 2
	}, 20*time.Second, 200*time.Millisecond, "the runner reads the new tenant's DLQ and its consumers' lag")

	perIntegration := func(integration string) int {
		return count(all, func(s series) bool { return s.labels["integration"] == integration })
	}
	perTenant := func(tenant string) int {
		return count(all, func(s series) bool { _, ok := s.labels["integration"]; return s.labels["tenant"] == tenant && !ok })
	}
	fixed := count(all, func(s series) bool { _, ok := s.labels["tenant"]; return !ok })
	t.Logf("series: hooks2 %d, hooks3 %d, cdc1 %d, tenant beta %d, tenant acme %d, fixed %d, all %d",
		perIntegration("hooks2"), perIntegration("hooks3"), perIntegration("cdc1"), perTenant("beta"), perTenant("acme"), fixed, len(all))
	for _, integration := range []string{"hooks1", "hooks2", "hooks3", "cdc1"} {
		require.Positive(t, perIntegration(integration), integration)
		require.LessOrEqual(t, perIntegration(integration), budgetPerIntegration(1), integration)
	}
	require.Equal(t, perIntegration("hooks2"), perIntegration("hooks3"), "an integration costs the same in any tenant")
	require.Equal(t, perIntegration("hooks2")+1, perIntegration("cdc1"), "a CDC integration adds its slot lag")
	for _, tenant := range []string{"acme", "beta"} {
		require.Positive(t, perTenant(tenant), tenant)
		require.LessOrEqual(t, perTenant(tenant), budgetPerTenant, tenant)
	}
	require.LessOrEqual(t, fixed, budgetFixed)

	// Every metric of the contract is there, tenant-labelled ones since
	// messages moved; but a stage's counter series are made by its first
	// count (ADR 0028), and nothing here was filtered, retried,
	// dead-lettered or claim-checked.
	uncounted := map[string]bool{"vrsky_stage_messages_filtered_total": true, "vrsky_stage_retries_total": true,
		"vrsky_stage_dlq_total": true, "vrsky_claimcheck_bytes_total": true}
	for _, name := range contractMetrics(t) {
		require.Equal(t, !uncounted[name], has(all, name), "%s exposed", name)
	}
	require.True(t, has(all, "temporal_workflow_completed_total"), "the Temporal SDK's metrics are exposed")
	require.Equal(t, 1, count(all, func(s series) bool {
		return s.name == "vrsky_build_info" && s.labels["role"] == "dev" && s.labels["version"] == "test"
	}))
	require.Equal(t, 1, count(all, func(s series) bool {
		return s.name == "vrsky_nats_up" && s.labels["server"] == strings.TrimPrefix(ep.NATSMonitor, "http://")
	}))
	for _, s := range all {
		if s.name == "vrsky_http_requests_total" {
			require.NotContains(t, s.labels["route"], "acme", "routes are patterns, never paths")
		}
	}
}
