package queries

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// promSynthesised are series Prometheus makes itself while scraping; no
// role exposes them.
var promSynthesised = map[string]bool{"up": true}

// eventOnly are metrics that appear on /metrics only after an event this
// test cannot cause on a healthy dev stack. When one is missing from the
// scrape the test checks instead that the code defines it: vrsky_* names as
// a string in the repository's Go code, temporal_* names (the SDK's
// counters, to which the SDK's Prometheus naming adds _total) in the
// Temporal Go SDK's metric names.
var eventOnly = map[string]string{
	"vrsky_claimcheck_errors_total":                 "a failed blob store call",
	"vrsky_claimcheck_bytes_total":                  "a claim-checked body fetched by a stage (a stage's counters appear with its first count)",
	"vrsky_stage_retries_total":                     "a retried message (a stage's counters appear with its first count)",
	"vrsky_provisioning_failures_total":             "a failed tenant operation",
	"vrsky_cdc_slot_lag_bytes":                      "a running PostgreSQL CDC integration",
	"temporal_workflow_failed_total":                "a failed workflow",
	"temporal_activity_execution_failed_total":      "a failed activity",
	"temporal_workflow_task_execution_failed_total": "a failed workflow task",
}

// observedSpec is the integration the test deploys: a webhook, a
// transform that fails on bodies that are not JSON (DLQ), a filter that
// drops some messages, and a file producer.
const observedSpec = `name: observed
consumer:
  connector: http-webhook
steps:
  - connector: json-transform
    config:
      set:
        doubled: "n * 2"
  - connector: filter
    config:
      keep: "n > 0"
producers:
  out:
    connector: file
    config: { dir: observed, format: ndjson }
`

// TestDashboardAndAlertMetricsAreExposedByVrskyDev starts `vrsky dev` (the
// binary in $VRSKY_BIN, or one built from the repository), creates a tenant
// and an integration, sends webhooks, scrapes /metrics and checks that every
// metric a dashboard or alert query reads is exposed.
func TestDashboardAndAlertMetricsAreExposedByVrskyDev(t *testing.T) {
	refs := map[string]MetricRef{}
	where := map[string]string{}
	for _, q := range allQueries(t) {
		if q.Lang != PromQL {
			continue
		}
		rs, err := Metrics(q.Expr)
		require.NoError(t, err, q.Where)
		for _, r := range rs {
			refs[r.String()] = r
			where[r.String()] = q.Where
		}
	}

	bin := vrskyBinary(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	stack := startDev(t, bin, dataDir)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const tenant = "observed"
	specFile := filepath.Join(t.TempDir(), "observed.yaml")
	require.NoError(t, os.WriteFile(specFile, []byte(observedSpec), 0o600))
	apply := exec.CommandContext(ctx, bin, "apply", "--data-dir", dataDir, "--tenant", tenant, "-f", specFile, "--timeout", "120s")
	out, err := apply.CombinedOutput()
	require.NoError(t, err, "vrsky apply: %s\n%s", out, stack.logTail())

	hook := "http://" + stack.http + "/v1/hooks/" + tenant + "/observed"
	send := func(body, key string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		require.Less(t, send(fmt.Sprintf(`{"n": %d}`, i+1), fmt.Sprintf("k%d", i)), 300)
	}
	send(`{"n": 1}`, "k0")  // a duplicate
	send(`{"n": 0}`, "k-0") // filtered
	send(`not json`, "k-x") // fails in json-transform: DLQ
	// An unmatched route for the HTTP metrics' "unmatched" series.
	if resp, err := http.Get("http://" + stack.http + "/no/such/route"); err == nil {
		resp.Body.Close()
	}

	// Wait until the hot path has delivered and the DLQ and NATS gauges
	// have been sampled, then compare.
	var exposed map[string]bool
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		exposed = scrape(t, "http://"+stack.http+"/metrics")
		missing = missing[:0]
		for key, r := range refs {
			if promSynthesised[key] || eventOnly[key] != "" {
				continue
			}
			if !anyMatches(r, exposed) {
				missing = append(missing, key)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s (read by %s) is not exposed by vrsky dev", m, where[m])
	}
	for name, why := range eventOnly {
		if _, used := refs[name]; !used {
			t.Errorf("eventOnly lists %s, which no query reads", name)
			continue
		}
		if exposed[name] {
			continue
		}
		t.Logf("%s is not on /metrics (it needs %s); checking that the code defines it", name, why)
		require.True(t, definedInCode(t, name), "%s is neither exposed nor defined in the code", name)
	}
}

func anyMatches(r MetricRef, exposed map[string]bool) bool {
	if r.Matcher == nil {
		return exposed[r.Name]
	}
	for name := range exposed {
		if r.Matches(name) {
			return true
		}
	}
	return false
}

// repoRoot is the root module's directory, the parent of deploy/.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "cmd", "vrsky"))
	require.NoError(t, err, "deploy/ sits in the repository next to cmd/vrsky")
	return root
}

// vrskyBinary returns $VRSKY_BIN or builds the binary from the repository.
func vrskyBinary(t *testing.T) string {
	if bin := os.Getenv("VRSKY_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "vrsky")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vrsky")
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "build vrsky: %s", out)
	return bin
}

type devStack struct {
	http    string
	logPath string
}

func (s *devStack) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// startDev starts `vrsky dev` on free ports and waits for its
// endpoints.json; the stack is stopped with SIGTERM at the end of the test.
func startDev(t *testing.T, bin, dataDir string) *devStack {
	logPath := filepath.Join(t.TempDir(), "dev.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)
	defer logFile.Close()
	cmd := exec.Command(bin, "dev", "--data-dir", dataDir,
		"--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--temporal-addr", "127.0.0.1:0",
		"--temporal-ui-addr", "127.0.0.1:0", "--s3-addr", "127.0.0.1:0", "--postgres-port", "0",
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s := &devStack{logPath: logPath}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.After(3 * time.Minute)
	for {
		b, err := os.ReadFile(filepath.Join(dataDir, "endpoints.json"))
		if err == nil {
			var ep struct {
				HTTP string `json:"http"`
			}
			if json.Unmarshal(b, &ep) == nil && ep.HTTP != "" {
				s.http = ep.HTTP
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("vrsky dev exited before it was ready:\n%s", s.logTail())
		case <-deadline:
			t.Fatalf("vrsky dev not ready after 3 minutes:\n%s", s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sampleName is the metric name at the start of a sample line of the
// Prometheus text format.
var sampleName = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]`)

// scrape returns the names of the series on a /metrics page (histograms
// as their _bucket, _sum and _count series).
func scrape(t *testing.T, url string) map[string]bool {
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	names := map[string]bool{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := sampleName.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, names)
	return names
}

// definedInCode reports whether the repository's Go code (vrsky_* names)
// or the Temporal SDK's metric names (temporal_* names, without the _total
// the SDK's Prometheus naming adds) define name.
func definedInCode(t *testing.T, name string) bool {
	root := repoRoot(t)
	if strings.HasPrefix(name, "temporal_") {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/sdk")
		cmd.Dir = root
		dir, err := cmd.Output()
		require.NoError(t, err, "find the Temporal SDK")
		b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "internal", "common", "metrics", "constants.go"))
		require.NoError(t, err)
		base := strings.TrimSuffix(strings.TrimPrefix(name, "temporal_"), "_total")
		return bytes.Contains(b, []byte(`TemporalMetricsPrefix + "`+base+`"`))
	}
	found := false
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == "deploy" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = bytes.Contains(b, []byte(`"`+name+`"`))
		return nil
	})
	require.NoError(t, err)
	return found
}
