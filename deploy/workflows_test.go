package deploy

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/rhysd/actionlint"
	"github.com/stretchr/testify/require"
)

// workflowsDir holds the repository's GitHub Actions workflows.
var workflowsDir = filepath.Join("..", ".github", "workflows")

// lint runs actionlint, as a library, on files, with shellcheck and pyflakes
// when they are installed, and returns its findings and the names of the
// rules it ran.
func lint(t *testing.T, files ...string) ([]*actionlint.Error, []string) {
	t.Helper()
	opts := &actionlint.LinterOptions{LogWriter: io.Discard}
	if p, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = p
	}
	if p, err := exec.LookPath("pyflakes"); err == nil {
		opts.Pyflakes = p
	}
	var rules []string
	opts.OnRulesCreated = func(rs []actionlint.Rule) []actionlint.Rule {
		for _, r := range rs {
			if !slices.Contains(rules, r.Name()) {
				rules = append(rules, r.Name())
			}
		}
		return rs
	}
	l, err := actionlint.NewLinter(io.Discard, opts)
	require.NoError(t, err)
	errs, err := l.LintFiles(files, nil)
	require.NoError(t, err)
	slices.Sort(rules)
	return errs, rules
}

func workflowFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(workflowsDir, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	slices.Sort(files)
	return files
}

// TestWorkflowsPassActionlint lints every workflow with actionlint and
// fails on any finding. The test log names the checks that ran: shellcheck
// and pyflakes only when installed.
func TestWorkflowsPassActionlint(t *testing.T) {
	files := workflowFiles(t)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	require.Subset(t, names, []string{"ci.yml", "image.yml", "release.yml", "staging.yml"})

	errs, rules := lint(t, files...)
	t.Logf("actionlint checks run: %s", strings.Join(rules, ", "))
	for _, e := range errs {
		t.Errorf("%s", e)
	}
}

// TestActionlintCatchesAKnownBadWorkflow: the lint above can fail. Each
// mistake in testdata/workflows/bad.yml is reported by the rule meant to
// catch it.
func TestActionlintCatchesAKnownBadWorkflow(t *testing.T) {
	errs, rules := lint(t, filepath.Join("testdata", "workflows", "bad.yml"))
	kinds := map[string]int{}
	for _, e := range errs {
		kinds[e.Kind]++
	}
	t.Logf("findings by rule: %v", kinds)
	require.Positive(t, kinds["events"], "the bad cron")
	require.Positive(t, kinds["job-needs"], "the missing job")
	require.GreaterOrEqual(t, kinds["expression"], 2, "the unknown property and the untrusted title in a script")
	if slices.Contains(rules, "shellcheck") {
		require.Positive(t, kinds["shellcheck"], "the unquoted loop")
	}
}

// fullSHA is a commit pin: 40 hex digits.
var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// steps returns every step of every workflow, with the file it is in.
func steps(t *testing.T) map[string][]*actionlint.Step {
	t.Helper()
	out := map[string][]*actionlint.Step{}
	for _, f := range workflowFiles(t) {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		w, errs := actionlint.Parse(src)
		require.Empty(t, errs, f)
		for _, j := range w.Jobs {
			out[filepath.Base(f)] = append(out[filepath.Base(f)], j.Steps...)
		}
	}
	return out
}

// TestWorkflowActionsArePinnedToCommits: a tag can be moved to other code;
// a commit cannot. Every action is used at a full commit SHA.
func TestWorkflowActionsArePinnedToCommits(t *testing.T) {
	n := 0
	for file, ss := range steps(t) {
		for _, s := range ss {
			a, ok := s.Exec.(*actionlint.ExecAction)
			if !ok || strings.HasPrefix(a.Uses.Value, "./") {
				continue
			}
			n++
			_, ref, _ := strings.Cut(a.Uses.Value, "@")
			require.Regexp(t, fullSHA, ref, "%s: %s is not pinned to a commit", file, a.Uses.Value)
		}
	}
	require.Positive(t, n)
}

// runScripts joins the run: scripts of a workflow.
func runScripts(t *testing.T, file string) string {
	t.Helper()
	var b strings.Builder
	for _, s := range steps(t)[file] {
		if r, ok := s.Exec.(*actionlint.ExecRun); ok {
			b.WriteString(r.Run.Value + "\n")
		}
	}
	return b.String()
}

// TestCIRunsEveryCheck: lint at a pinned golangci-lint, both modules tidy,
// govulncheck through the project's script, and `make test`.
func TestCIRunsEveryCheck(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(workflowsDir, "ci.yml"))
	require.NoError(t, err)
	require.Regexp(t, `GOLANGCI_LINT_VERSION: v\d+\.\d+\.\d+\n`, string(src), "golangci-lint at an exact version")
	scripts := runScripts(t, "ci.yml")
	for _, want := range []string{"golangci-lint@${GOLANGCI_LINT_VERSION}", "go mod tidy -diff", "scripts/govulncheck.sh", "make test", "go test -count=1 ./..."} {
		require.Contains(t, scripts, want)
	}
	require.Equal(t, 2, strings.Count(scripts, "go mod tidy -diff"), "the root module and deploy/")
}

// TestImageWorkflowStampsTheVersion: the image is pushed with the build
// arguments the Dockerfile stamps into the binary.
func TestImageWorkflowStampsTheVersion(t *testing.T) {
	img := readImage(t)
	var dockerArgs []string
	for _, a := range commands[*instructions.ArgCommand](img.stages[0]) {
		for _, kv := range a.Args {
			dockerArgs = append(dockerArgs, kv.Key)
		}
	}
	var buildArgs, platforms string
	for _, s := range steps(t)["image.yml"] {
		if a, ok := s.Exec.(*actionlint.ExecAction); ok && strings.HasPrefix(a.Uses.Value, "docker/build-push-action@") {
			buildArgs = a.Inputs["build-args"].Value.Value
			platforms = a.Inputs["platforms"].Value.Value
			require.Equal(t, "true", a.Inputs["push"].Value.Value)
		}
	}
	for _, arg := range []string{"VERSION", "COMMIT", "BUILD_DATE"} {
		require.Contains(t, dockerArgs, arg)
		require.Regexp(t, `(?m)^`+arg+`=\$\{\{ steps\.version\.outputs\.\w+ \}\}$`, buildArgs)
	}
	require.Contains(t, platforms, "linux/amd64")
	require.Contains(t, platforms, "linux/arm64")
}

// TestReleaseWorkflowAttachesEveryTarget: a tag's release gets the binaries
// `make dist` builds for every CROSS_TARGETS system and their checksums.
func TestReleaseWorkflowAttachesEveryTarget(t *testing.T) {
	scripts := runScripts(t, "release.yml")
	require.Contains(t, scripts, `make dist VERSION="${GITHUB_REF_NAME}"`)
	require.Contains(t, scripts, "gh release create")
	require.Contains(t, scripts, "dist/*")
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	require.NoError(t, err)
	targets := regexp.MustCompile(`(?m)^CROSS_TARGETS := (.*)$`).FindSubmatch(makefile)
	require.NotNil(t, targets)
	require.ElementsMatch(t, []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}, strings.Fields(string(targets[1])))
	require.Contains(t, string(makefile), "sha256sum vrsky-* > SHA256SUMS")
}
