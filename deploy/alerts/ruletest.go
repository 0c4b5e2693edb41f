// Package alerts runs alert-rule unit tests written in Prometheus'
// rule-test format (the files `promtool test rules` reads) against VRSky's
// alert rules, with the Prometheus rule manager and PromQL engine
// in-process, so no promtool binary is needed. It reads only the parts of
// the format VRSky's tests use: rule_files, evaluation_interval and, per
// test, name, interval, external_labels, input_series and alert_rule_test;
// any other field is an error rather than silently ignored.
package alerts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// MaxTestFileBytes bounds a test file; VRSky's are a few KiB.
const MaxTestFileBytes = 1 << 20

// File is a rule-test file.
type File struct {
	RuleFiles          []string       `yaml:"rule_files"`
	EvaluationInterval model.Duration `yaml:"evaluation_interval"`
	Tests              []Test         `yaml:"tests"`
}

// Test is one test group: input series and the alerts expected at given
// times.
type Test struct {
	Name           string            `yaml:"name"`
	Interval       model.Duration    `yaml:"interval"`
	ExternalLabels map[string]string `yaml:"external_labels"`
	InputSeries    []Series          `yaml:"input_series"`
	AlertRuleTests []AlertTest       `yaml:"alert_rule_test"`
}

// Series is one input series in promtool's expanding notation
// ("1+1x10", "0 0 _ 5x3").
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

// AlertTest lists the alerts of one name expected to fire at EvalTime; an
// empty ExpAlerts expects none.
type AlertTest struct {
	EvalTime  model.Duration  `yaml:"eval_time"`
	Alertname string          `yaml:"alertname"`
	ExpAlerts []ExpectedAlert `yaml:"exp_alerts"`
}

// ExpectedAlert is one firing alert: the labels the rule gives it (besides
// alertname) and all its annotations.
type ExpectedAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// Load reads and decodes a test file, refusing unknown fields, oversize
// files and tests without an alert name or input.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxTestFileBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, len(b), MaxTestFileBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(f.RuleFiles) == 0 {
		return nil, fmt.Errorf("%s: no rule_files", path)
	}
	if len(f.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", path)
	}
	for i, t := range f.Tests {
		for _, a := range t.AlertRuleTests {
			if a.Alertname == "" {
				return nil, fmt.Errorf("%s: test %d (%s): an alert_rule_test without alertname", path, i, t.Name)
			}
		}
		for _, s := range t.InputSeries {
			if strings.ContainsAny(s.Series+s.Values, "\n\r") {
				return nil, fmt.Errorf("%s: test %d (%s): a series or its values span lines", path, i, t.Name)
			}
		}
	}
	for i, rf := range f.RuleFiles {
		if !filepath.IsAbs(rf) {
			f.RuleFiles[i] = filepath.Join(filepath.Dir(path), rf)
		}
	}
	return &f, nil
}

// Run runs every test of the file at path and returns one error per failed
// expectation; err is set when the file or its rules cannot be loaded.
func Run(ctx context.Context, path string) (failures []error, err error) {
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	evalInterval := time.Duration(f.EvaluationInterval)
	if evalInterval <= 0 {
		evalInterval = time.Minute
	}
	for i, t := range f.Tests {
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("test #%d", i)
		}
		fails, err := runTest(ctx, t, evalInterval, f.RuleFiles)
		if err != nil {
			return failures, fmt.Errorf("%s: %w", name, err)
		}
		for _, e := range fails {
			failures = append(failures, fmt.Errorf("%s: %w", name, e))
		}
	}
	return failures, nil
}

// runTest loads t's series, evaluates the rules every evalInterval up to
// the last eval_time and compares the firing alerts at each eval_time.
func runTest(ctx context.Context, t Test, evalInterval time.Duration, ruleFiles []string) ([]error, error) {
	interval := time.Duration(t.Interval)
	if interval <= 0 {
		interval = evalInterval
	}
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", model.Duration(interval))
	for _, s := range t.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		return nil, fmt.Errorf("input_series: %w", err)
	}
	defer suite.Close()
	suite.SubqueryInterval = evalInterval

	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Queryable:    suite.Storage(),
		Context:      ctx,
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       promslog.NewNopLogger(),
	})
	groupMap, errs := m.LoadGroups(interval, labels.FromMap(t.ExternalLabels), "", nil, false, ruleFiles...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("load rules: %w", errors.Join(errs...))
	}
	groups := make([]*rules.Group, 0, len(groupMap))
	known := map[string]bool{}
	for _, g := range groupMap {
		groups = append(groups, g)
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true) // a fresh rule, not one restored after a restart
				known[ar.Name()] = true
			}
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name() < groups[j].Name() })

	checks := slices.Clone(t.AlertRuleTests)
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].EvalTime < checks[j].EvalTime })
	var failures []error
	for _, c := range checks {
		if !known[c.Alertname] {
			failures = append(failures, fmt.Errorf("alert %s: no such alerting rule", c.Alertname))
		}
	}
	if len(checks) == 0 {
		return failures, nil
	}
	start := time.Unix(0, 0).UTC()
	end := start.Add(time.Duration(checks[len(checks)-1].EvalTime))
	next := 0
	for ts := start; !ts.After(end); ts = ts.Add(evalInterval) {
		var evalErr error
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				evalErr = err
				return
			}
			for _, g := range groups {
				g.Eval(ctx, ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						evalErr = errors.Join(evalErr, fmt.Errorf("rule %s at %s: %w", r.Name(), ts.Sub(start), r.LastError()))
					}
				}
			}
		})
		if evalErr != nil {
			return failures, evalErr
		}
		// An eval_time between two evaluations is checked against the
		// earlier one, as Prometheus would show it.
		for next < len(checks) && start.Add(time.Duration(checks[next].EvalTime)).Before(ts.Add(evalInterval)) {
			c := checks[next]
			next++
			got := firing(groups, c.Alertname)
			want := expected(c)
			if !slices.Equal(got, want) {
				failures = append(failures, fmt.Errorf("alert %s at %s:\n  want %s\n  got  %s",
					c.Alertname, c.EvalTime, describe(want), describe(got)))
			}
		}
	}
	return failures, nil
}

// firing returns the firing alerts named name, each as its labels and
// annotations in one sorted string.
func firing(groups []*rules.Group, name string) []string {
	var out []string
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != name {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					out = append(out, a.Labels.String()+" "+a.Annotations.String())
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// expected renders c's expectations as firing renders alerts.
func expected(c AlertTest) []string {
	var out []string
	for _, a := range c.ExpAlerts {
		l := map[string]string{labels.AlertName: c.Alertname}
		for k, v := range a.ExpLabels {
			l[k] = v
		}
		out = append(out, labels.FromMap(l).String()+" "+labels.FromMap(a.ExpAnnotations).String())
	}
	sort.Strings(out)
	return out
}

func describe(alerts []string) string {
	if len(alerts) == 0 {
		return "no alert"
	}
	return strings.Join(alerts, "\n       ")
}
