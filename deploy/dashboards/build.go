// Package dashboards builds VRSky's Grafana dashboards in Go with the
// Grafana Foundation SDK and writes them as JSON to
// deploy/helm/vrsky/files/dashboards/, where the Helm chart and the compose
// stack's Grafana provisioning load them. The JSON files are generated:
// edit this package and run `go generate ./dashboards` in deploy/, never the
// JSON. Every query names only metrics from the metric contract the roles
// expose; the tests in deploy/queries check that against a running
// `vrsky dev`.
package dashboards

//go:generate go run ./generate -out ../helm/vrsky/files/dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/logs"
	"github.com/grafana/grafana-foundation-sdk/go/loki"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The data source variables every dashboard has; panels refer to them, so
// the dashboards work with whatever the Prometheus and Loki data sources are
// called where they are loaded.
const (
	promVar = "datasource"
	lokiVar = "loki"
)

// Tags every VRSky dashboard carries, so Grafana lists them together.
var tags = []string{"vrsky"}

var (
	promDS = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + promVar + "}")}
	lokiDS = common.DataSourceRef{Type: cog.ToPtr("loki"), Uid: cog.ToPtr("${" + lokiVar + "}")}
)

// Dashboard is one generated dashboard: the file it is written to and its
// builder.
type Dashboard struct {
	File    string
	Builder *dashboard.DashboardBuilder
}

// All returns every VRSky dashboard, in file-name order.
func All() []Dashboard {
	all := []Dashboard{
		{File: "vrsky-overview.json", Builder: Overview()},
		{File: "vrsky-tenant.json", Builder: Tenant()},
		{File: "vrsky-integration.json", Builder: Integration()},
		{File: "vrsky-nats.json", Builder: NATS()},
	}
	sort.Slice(all, func(i, j int) bool { return all[i].File < all[j].File })
	return all
}

// Render builds every dashboard and returns its JSON by file name. The JSON
// is indented and ends in a newline, so a regenerated file diffs cleanly.
func Render() (map[string][]byte, error) {
	out := make(map[string][]byte)
	for _, d := range All() {
		built, err := d.Builder.Build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", d.File, err)
		}
		b, err := json.MarshalIndent(built, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("marshal %s: %w", d.File, err)
		}
		out[d.File] = append(b, '\n')
	}
	return out, nil
}

// Write renders every dashboard into dir, replacing the files there.
func Write(dir string) error {
	files, err := Render()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// base is the part every dashboard shares: uid, title, tags, time range and
// the two data source variables.
func base(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(tags).
		Editable().
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder(promVar).Label("Prometheus").Type("prometheus")).
		WithVariable(dashboard.NewDatasourceVariableBuilder(lokiVar).Label("Loki").Type("loki"))
}

// labelVariable is a variable listing the values of label on the series of
// selector, for example the tenants that have hot-path metrics.
func labelVariable(name, label, selector, description string) *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, %s)", selector, label)
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Description(description).
		Datasource(promDS).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

// promQuery is a Prometheus query with a legend.
func promQuery(expr, legend string) cog.Builder[variants.Dataquery] {
	return prometheus.NewDataqueryBuilder().Datasource(promDS).Expr(expr).LegendFormat(legend)
}

// lokiQuery is a LogQL query.
func lokiQuery(expr, legend string) cog.Builder[variants.Dataquery] {
	return loki.NewDataqueryBuilder().Datasource(lokiDS).Expr(expr).LegendFormat(legend)
}

// graph is a time series panel, half the dashboard wide.
func graph(title, description, unit string, queries ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(promDS).
		Unit(unit).
		Min(0).
		Height(8).
		Span(12).
		FillOpacity(10)
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

// logGraph is a time series panel over LogQL metric queries.
func logGraph(title, description string, queries ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	p := graph(title, description, "short", queries...)
	p.Datasource(lokiDS)
	return p
}

// single is a stat panel, a quarter of the dashboard wide.
func single(title, description, unit string, query cog.Builder[variants.Dataquery]) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(promDS).
		Unit(unit).
		Height(5).
		Span(6).
		GraphMode(common.BigValueGraphModeArea).
		ColorMode(common.BigValueColorModeValue).
		WithTarget(query)
}

// logLines is a logs panel, the whole dashboard wide.
func logLines(title, description, expr string) *logs.PanelBuilder {
	return logs.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(lokiDS).
		Height(10).
		Span(24).
		ShowTime(true).
		WrapLogMessage(true).
		EnableLogDetails(true).
		SortOrder(common.LogsSortOrderDescending).
		WithTarget(lokiQuery(expr, ""))
}
