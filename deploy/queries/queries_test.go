package queries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	dashboardDir = "../helm/vrsky/files/dashboards"
	rulesFile    = "../helm/vrsky/files/alerts.yaml"
	alloyConfig  = "../alloy/config.alloy"
)

// allQueries returns every query of the dashboards and the alert rules.
func allQueries(t *testing.T) []Query {
	t.Helper()
	qs, err := FromDashboards(dashboardDir)
	require.NoError(t, err)
	rs, err := FromRules(rulesFile)
	require.NoError(t, err)
	return append(qs, rs...)
}

func logSchema(t *testing.T) LogSchema {
	t.Helper()
	s, err := SchemaFromAlloy(alloyConfig)
	require.NoError(t, err)
	return s
}

// TestEveryQueryParses parses each PromQL query with Prometheus' parser and
// checks each LogQL query against the labels and fields Alloy sends.
func TestEveryQueryParses(t *testing.T) {
	schema := logSchema(t)
	counts := map[Lang]int{}
	for _, q := range allQueries(t) {
		counts[q.Lang]++
		switch q.Lang {
		case PromQL:
			refs, err := Metrics(q.Expr)
			require.NoError(t, err, "%s: %s", q.Where, q.Expr)
			require.NotEmpty(t, refs, "%s reads no metric", q.Where)
		case LogQL:
			require.NoError(t, CheckLogQL(q.Expr, schema), q.Where)
		}
	}
	require.Greater(t, counts[PromQL], 50)
	require.GreaterOrEqual(t, counts[LogQL], 5)
}

func TestSchemaFromAlloy(t *testing.T) {
	s := logSchema(t)
	require.ElementsMatch(t, []string{"role", "level", "component"}, s.Labels)
	require.ElementsMatch(t, []string{"tenant", "integration", "request_id"}, s.Metadata)
	// tenant must stay out of the stream labels: one stream per tenant is
	// the cardinality Loki cannot carry.
	require.NotContains(t, s.Labels, "tenant")
	require.NotContains(t, s.Labels, "integration")

	dir := t.TempDir()
	for name, body := range map[string]string{
		"none.alloy":     "loki.write \"x\" {}\n",
		"unclosed.alloy": "rule { target_label = \"role\" }\nstage.labels {\n values = { level = \"\"\n",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		_, err := SchemaFromAlloy(p)
		require.Error(t, err, name)
	}
	_, err := SchemaFromAlloy(filepath.Join(dir, "missing.alloy"))
	require.Error(t, err)
}

func TestMetrics(t *testing.T) {
	refs, err := Metrics(`sum(rate(a_total{x="$tenant"}[$__rate_interval])) / histogram_quantile(0.9, sum by (le) (rate(b_bucket[$__rate_interval]))) or vector(0)`)
	require.NoError(t, err)
	require.Equal(t, []string{"a_total", "b_bucket"}, []string{refs[0].String(), refs[1].String()})
	require.True(t, refs[0].Matches("a_total"))
	require.False(t, refs[0].Matches("a"))

	refs, err = Metrics(`sum(rate({__name__=~"temporal_x(_total)?"}[5m]))`)
	require.NoError(t, err)
	require.Len(t, refs, 1)
	require.True(t, refs[0].Matches("temporal_x_total"))
	require.False(t, refs[0].Matches("temporal_y"))

	for _, bad := range []string{
		`sum(rate(x[5m])`,                  // unbalanced
		`rate(x[$__unknown])`,              // variable not expanded
		`{job="a"}`,                        // reads every metric
		`x{` + strings.Repeat("a", 1<<16),  // oversize garbage
		`x + on(` + strings.Repeat("(", 5), // nonsense
	} {
		_, err := Metrics(bad)
		require.Error(t, err, bad)
	}
}

func TestCheckLogQLRefusesWhatItDoesNotKnow(t *testing.T) {
	schema := LogSchema{Labels: []string{"role", "level"}, Metadata: []string{"tenant"}}
	good := []string{
		`{role="api"}`,
		`{role=~"api|worker", level="ERROR"} | tenant="acme" |= "timeout"`,
		`sum by (role, tenant) (count_over_time({role="api"} | tenant=~"a.*" [$__auto]))`,
		`{role="api"} | json | anything="x"`,
		"sum(rate({role=\"api\"} |~ `fail(ed)?` [5m]))",
	}
	for _, q := range good {
		require.NoError(t, CheckLogQL(q, schema), q)
	}
	bad := map[string]string{
		"tenant as stream label":  `{tenant="acme"}`,
		"only empty matchers":     `{role=~".*"}`,
		"unknown field":           `{role="api"} | customer="x"`,
		"unknown function":        `quantile_over_time({role="api"}[5m])`,
		"bad regex":               `{role="api"} | tenant=~"("`,
		"bad line regex":          `{role="api"} |~ "("`,
		"unterminated selector":   `{role="api"`,
		"unterminated string":     `{role="api"} |= "x`,
		"missing range":           `count_over_time({role="api"})`,
		"bad range":               `count_over_time({role="api"}[five])`,
		"trailing text":           `{role="api"} garbage`,
		"group by unknown":        `sum by (customer) (count_over_time({role="api"}[5m]))`,
		"not a selector":          `role="api"`,
		"empty":                   ``,
		"hostile long":            `{role="api"} |= "` + strings.Repeat("\\", 1<<16),
		"bad matcher":             `{role~"api"}`,
		"missing op":              `{role="api"} | tenant "x"`,
		"grouping missing paren":  `sum by role (count_over_time({role="api"}[5m]))`,
		"unclosed aggregation":    `sum(count_over_time({role="api"}[5m])`,
		"unexpected char":         `{role="api"} # x`,
		"unterminated range":      `count_over_time({role="api"}[5m`,
		"grouping bad separator":  `sum by (role tenant) (count_over_time({role="api"}[5m]))`,
		"metric without paren":    `sum count_over_time({role="api"}[5m])`,
		"range fn without paren":  `rate {role="api"}[5m]`,
		"filter value not string": `{role="api"} | tenant=acme`,
	}
	for name, q := range bad {
		require.Error(t, CheckLogQL(q, schema), name)
	}
}

func TestFromDashboardRefusesBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"not json":         `{"panels": [`,
		"no data source":   `{"panels":[{"title":"p","targets":[{"expr":"up"}]}]}`,
		"unknown source":   `{"panels":[{"title":"p","datasource":{"type":"mysql"},"targets":[{"expr":"x"}]}]}`,
		"empty query":      `{"panels":[{"title":"p","datasource":{"type":"prometheus"},"targets":[{"expr":" "}]}]}`,
		"odd variable":     `{"templating":{"list":[{"name":"v","type":"query","query":"query_result(up)"}]}}`,
		"variable not str": `{"templating":{"list":[{"name":"v","type":"query","query":{"a":1}}]}}`,
		"nested no source": `{"panels":[{"title":"row","panels":[{"title":"p","targets":[{"expr":"up"}]}]}]}`,
	}
	for name, body := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		_, err := FromDashboard(p)
		require.Error(t, err, name)
	}
	big := filepath.Join(dir, "big.json")
	require.NoError(t, os.WriteFile(big, make([]byte, MaxFileBytes+1), 0o600))
	_, err := FromDashboard(big)
	require.Error(t, err)

	_, err = FromDashboards(t.TempDir())
	require.Error(t, err, "an empty directory has no dashboards")

	good := filepath.Join(dir, "good.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"templating":{"list":[{"name":"t","type":"query","query":"label_values(m{a=\"b\"}, t)"},{"name":"d","type":"datasource"}]},
	 "panels":[{"title":"row","panels":[{"title":"p","datasource":{"type":"loki"},"targets":[{"expr":"{role=\"api\"}"}]}]}]}`), 0o600))
	qs, err := FromDashboard(good)
	require.NoError(t, err)
	require.Equal(t, []Query{
		{Where: "good.json: variable t", Lang: PromQL, Expr: `m{a="b"}`},
		{Where: `good.json: panel "p"`, Lang: LogQL, Expr: `{role="api"}`},
	}, qs)
}

func TestFromRulesRefusesBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"empty.yaml":   "groups: []\n",
		"notyaml.yaml": "groups: [\n",
	} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		_, err := FromRules(p)
		require.Error(t, err, name)
	}
	_, err := FromRules(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
}
