// Package queries collects every PromQL and LogQL query of VRSky's Grafana
// dashboards and alert rules, checks that each one parses, and says which
// metrics each PromQL query reads, so the tests can compare them with what
// a running `vrsky dev` exposes on /metrics.
//
// PromQL is parsed with Prometheus' own parser. LogQL is checked by Check
// LogQL, a deliberately small check, because Loki's parser is AGPL and is
// not imported: see CheckLogQL for exactly what it covers.
package queries

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Lang is a query language.
type Lang string

// The query languages found in the dashboards and rules.
const (
	PromQL Lang = "promql"
	LogQL  Lang = "logql"
)

// Query is one query and where it was found.
type Query struct {
	Where string // file and panel, variable or alert
	Lang  Lang
	Expr  string
}

// MaxFileBytes bounds a dashboard or rule file read here.
const MaxFileBytes = 4 << 20

// grafanaVars are Grafana's built-in interval variables and what they stand
// for when a query is parsed outside Grafana.
var grafanaVars = strings.NewReplacer(
	"${__rate_interval}", "5m", "$__rate_interval", "5m",
	"${__interval}", "1m", "$__interval", "1m",
	"${__auto}", "1m", "$__auto", "1m",
	"${__range}", "1h", "$__range", "1h",
)

// Expand replaces Grafana's interval variables with durations. Dashboard
// variables such as $tenant stay: they only occur inside label values,
// which are strings to PromQL and LogQL.
func Expand(expr string) string { return grafanaVars.Replace(expr) }

// dashboardJSON is the part of a dashboard this package reads.
type dashboardJSON struct {
	Title      string      `json:"title"`
	Panels     []panelJSON `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *dsJSON         `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type dsJSON struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelJSON struct {
	Title      string      `json:"title"`
	Datasource *dsJSON     `json:"datasource"`
	Panels     []panelJSON `json:"panels"` // a collapsed row's panels
	Targets    []struct {
		Expr       string  `json:"expr"`
		Datasource *dsJSON `json:"datasource"`
	} `json:"targets"`
}

// labelValues matches Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// FromDashboard returns the queries of one dashboard JSON file: every
// panel target, and the selector of every label_values variable.
func FromDashboard(path string) ([]Query, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var d dashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	name := filepath.Base(path)
	var out []Query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			return nil, fmt.Errorf("%s: variable %s: query is not a string", name, v.Name)
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			return nil, fmt.Errorf("%s: variable %s: %q is not label_values(selector, label)", name, v.Name, q)
		}
		out = append(out, Query{Where: name + ": variable " + v.Name, Lang: PromQL, Expr: m[1]})
	}
	var walk func(ps []panelJSON) error
	walk = func(ps []panelJSON) error {
		for _, p := range ps {
			for i, t := range p.Targets {
				ds := t.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds == nil {
					return fmt.Errorf("%s: panel %q target %d has no data source", name, p.Title, i)
				}
				var lang Lang
				switch ds.Type {
				case "prometheus":
					lang = PromQL
				case "loki":
					lang = LogQL
				default:
					return fmt.Errorf("%s: panel %q: data source type %q", name, p.Title, ds.Type)
				}
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("%s: panel %q target %d has no query", name, p.Title, i)
				}
				out = append(out, Query{Where: fmt.Sprintf("%s: panel %q", name, p.Title), Lang: lang, Expr: t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	return out, nil
}

// FromDashboards returns the queries of every *.json file in dir.
func FromDashboards(dir string) ([]Query, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no dashboards in %s", dir)
	}
	var out []Query
	for _, f := range files {
		qs, err := FromDashboard(f)
		if err != nil {
			return nil, err
		}
		out = append(out, qs...)
	}
	return out, nil
}

// FromRules returns the expression of every rule in a Prometheus rule file.
func FromRules(path string) ([]Query, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, Query{Where: filepath.Base(path) + ": " + r.Alert + r.Record, Lang: PromQL, Expr: r.Expr})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no rules", path)
	}
	return out, nil
}

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), MaxFileBytes)
	}
	return os.ReadFile(path)
}

// promParser parses PromQL as a Prometheus server with default flags does.
var promParser = parser.NewParser(parser.Options{})

// MetricRef is a metric a PromQL query reads: a name, or, for a selector
// without one, the matcher on __name__ it uses.
type MetricRef struct {
	Name    string
	Matcher *labels.Matcher
}

// Matches reports whether an exposed metric name satisfies the reference.
func (r MetricRef) Matches(name string) bool {
	if r.Matcher != nil {
		return r.Matcher.Matches(name)
	}
	return r.Name == name
}

func (r MetricRef) String() string {
	if r.Matcher != nil {
		return "{" + r.Matcher.String() + "}"
	}
	return r.Name
}

// Metrics parses a PromQL query (after Expand) and returns the metrics it
// reads, sorted. A selector with neither a name nor a __name__ matcher is
// an error: it would read every metric.
func Metrics(expr string) ([]MetricRef, error) {
	e, err := promParser.ParseExpr(Expand(expr))
	if err != nil {
		return nil, err
	}
	seen := map[string]MetricRef{}
	var selErr error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			seen[vs.Name] = MetricRef{Name: vs.Name}
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				seen[m.String()] = MetricRef{Matcher: m}
				return nil
			}
		}
		selErr = errors.Join(selErr, fmt.Errorf("selector %s names no metric", vs))
		return nil
	})
	if selErr != nil {
		return nil, selErr
	}
	out := make([]MetricRef, 0, len(seen))
	for _, r := range seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}
