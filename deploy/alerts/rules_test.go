package alerts

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

const (
	rulesFile  = "../helm/vrsky/files/alerts.yaml"
	runbookDoc = "../../docs/operations.md"
	runbookURL = "https://github.com/vrsky/vrsky/blob/main/docs/operations.md#"
)

func testFiles(t *testing.T) []string {
	files, err := filepath.Glob("*_test.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	return files
}

func alertRules(t *testing.T) []rulefmt.Rule {
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), promslog.NewNopLogger())
	require.Empty(t, errs)
	var out []rulefmt.Rule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "alerts.yaml holds alerting rules only, not %q", r.Record)
			out = append(out, r)
		}
	}
	return out
}

// TestAlertRules runs every rule test file against alerts.yaml.
func TestAlertRules(t *testing.T) {
	for _, f := range testFiles(t) {
		t.Run(f, func(t *testing.T) {
			failures, err := Run(context.Background(), f)
			require.NoError(t, err)
			for _, e := range failures {
				t.Error(e)
			}
		})
	}
}

// TestEveryAlertIsTestedFiringAndQuiet: each alert has a test where it
// fires and one where it must not.
func TestEveryAlertIsTestedFiringAndQuiet(t *testing.T) {
	fires, quiet := map[string]int{}, map[string]int{}
	for _, f := range testFiles(t) {
		file, err := Load(f)
		require.NoError(t, err)
		for _, tc := range file.Tests {
			for _, a := range tc.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname]++
				} else {
					quiet[a.Alertname]++
				}
			}
		}
	}
	rules := alertRules(t)
	require.GreaterOrEqual(t, len(rules), 9)
	for _, r := range rules {
		require.Positive(t, fires[r.Alert], "%s has no test where it fires", r.Alert)
		require.Positive(t, quiet[r.Alert], "%s has no test where it stays quiet", r.Alert)
	}
}

// TestEveryAlertHasARunbook: runbook_url points at the alert's own section
// of docs/operations.md, which exists, and every alert has a severity, a
// summary and a description.
func TestEveryAlertHasARunbook(t *testing.T) {
	doc, err := os.ReadFile(runbookDoc)
	require.NoError(t, err)
	for _, r := range alertRules(t) {
		require.Equal(t, runbookURL+strings.ToLower(r.Alert), r.Annotations["runbook_url"], r.Alert)
		heading := regexp.MustCompile(`(?m)^#{2,4} ` + regexp.QuoteMeta(r.Alert) + `\s*$`)
		require.Regexp(t, heading, string(doc), "docs/operations.md has a section titled %s", r.Alert)
		require.Contains(t, []string{"critical", "warning"}, r.Labels["severity"], r.Alert)
		require.NotEmpty(t, r.Annotations["summary"], r.Alert)
		require.NotEmpty(t, r.Annotations["description"], r.Alert)
	}
}

// TestRunnerReportsWrongExpectations: the runner fails a test whose
// expectation is wrong, so the passing tests above mean something.
func TestRunnerReportsWrongExpectations(t *testing.T) {
	abs, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	cases := map[string]string{
		"expects an alert that does not fire": `
tests:
  - input_series:
      - series: 'up{job="vrsky-api", instance="a"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: VRSkyServiceDown
        exp_alerts:
          - exp_labels: { severity: critical, job: vrsky-api, instance: a }
`,
		"expects silence where the alert fires": `
tests:
  - input_series:
      - series: 'up{job="vrsky-api", instance="a"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: VRSkyServiceDown
`,
		"expects the wrong labels": `
tests:
  - input_series:
      - series: 'vrsky_nats_up{server="n1"}'
        values: '0x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: VRSkyNATSNodeDown
        exp_alerts:
          - exp_labels: { severity: warning, server: n1 }
`,
		"names an alert that does not exist": `
tests:
  - input_series:
      - series: 'up{job="vrsky-api", instance="a"}'
        values: '1x10'
    alert_rule_test:
      - eval_time: 5m
        alertname: VRSkyNoSuchAlert
`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "case_test.yaml")
			require.NoError(t, os.WriteFile(path, []byte("rule_files: ["+abs+"]\n"+body), 0o600))
			failures, err := Run(context.Background(), path)
			require.NoError(t, err)
			require.NotEmpty(t, failures)
		})
	}
}

// TestLoadRefusesMalformedTestFiles: malformed, hostile and oversize test
// files are errors, never a silent pass.
func TestLoadRefusesMalformedTestFiles(t *testing.T) {
	abs, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	head := "rule_files: [" + abs + "]\n"
	cases := map[string]string{
		"unknown field":           head + "tests:\n  - name: x\n    promql_expr_test: []\n",
		"no tests":                head,
		"no rule files":           "tests:\n  - name: x\n",
		"alert test without name": head + "tests:\n  - alert_rule_test:\n      - eval_time: 1m\n",
		"not yaml":                "rule_files: [\n",
		"series spanning lines":   head + "tests:\n  - input_series:\n      - series: \"up\\nload 1m\"\n        values: '1'\n",
		"oversize":                head + "# " + strings.Repeat("x", MaxTestFileBytes) + "\ntests: [{}]\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "case_test.yaml")
			require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
			_, err := Run(context.Background(), path)
			require.Error(t, err)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := Run(context.Background(), filepath.Join(t.TempDir(), "none.yaml"))
		require.Error(t, err)
	})
	t.Run("bad series notation", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "case_test.yaml")
		require.NoError(t, os.WriteFile(path, []byte(head+"tests:\n  - input_series:\n      - series: 'up{'\n        values: 'one two'\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: VRSkyServiceDown\n"), 0o600))
		_, err := Run(context.Background(), path)
		require.Error(t, err)
	})
	t.Run("rule file that does not parse", func(t *testing.T) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'rate(x[5m]'\n"), 0o600))
		path := filepath.Join(dir, "case_test.yaml")
		require.NoError(t, os.WriteFile(path, []byte("rule_files: [bad.yaml]\ntests:\n  - alert_rule_test:\n      - eval_time: 1m\n        alertname: A\n"), 0o600))
		_, err := Run(context.Background(), path)
		require.Error(t, err)
	})
}
