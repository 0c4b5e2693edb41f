package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	dockerfile "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
)

// productionTag is the build tag of the production binary
// (cmd/vrsky/production.go).
const productionTag = "vrsky_production"

// image is the Dockerfile as BuildKit reads it.
type image struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
}

// parseDockerfile parses src with BuildKit's own parser and returns the
// stages and every warning of BuildKit's Dockerfile linter.
func parseDockerfile(t *testing.T, src []byte) (image, []string, error) {
	t.Helper()
	res, err := dockerfile.Parse(bytes.NewReader(src))
	if err != nil {
		return image{}, nil, err
	}
	var warnings []string
	for _, w := range res.Warnings {
		warnings = append(warnings, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []dockerfile.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		warnings = append(warnings, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	return image{stages: stages, metaArgs: metaArgs}, warnings, err
}

func readImage(t *testing.T) image {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	img, warnings, err := parseDockerfile(t, src)
	require.NoError(t, err)
	require.Empty(t, warnings, "BuildKit's Dockerfile checks")
	require.Len(t, img.stages, 2, "a build stage and the runtime stage")
	return img
}

// commands returns the stage's commands of type T.
func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// stampedVariables returns the package-level variables of
// cmd/vrsky/buildinfo.go, where the ones -ldflags -X sets are declared.
func stampedVariables(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "cmd", "vrsky", "buildinfo.go"), nil, 0)
	require.NoError(t, err)
	var names []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				names = append(names, n.Name)
			}
		}
	}
	return names
}

// TestImageBuildsTheStampedProductionBinary: the build stage compiles
// ./cmd/vrsky with the production tag, without cgo, with the toolchain
// go.mod names, and stamps every variable `vrsky version` prints from a
// build argument.
func TestImageBuildsTheStampedProductionBinary(t *testing.T) {
	img := readImage(t)
	build := img.stages[0]
	require.Equal(t, "build", build.Name)
	require.Equal(t, "$BUILDPLATFORM", build.Platform, "cross-compiles on the builder's platform, no emulation")

	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	require.NoError(t, err)
	toolchain := regexp.MustCompile(`(?m)^toolchain (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, toolchain, "go.mod names its toolchain")
	env := map[string]string{}
	for _, e := range commands[*instructions.EnvCommand](build) {
		for _, kv := range e.Env {
			env[kv.Key] = kv.Value
		}
	}
	for _, e := range commands[*instructions.EnvCommand](build) {
		for _, kv := range e.Env {
			require.False(t, kv.NoDelim, "ENV %s=value, not the legacy ENV %s value", kv.Key, kv.Key)
		}
	}
	require.Equal(t, string(toolchain[1]), env["GOTOOLCHAIN"])
	require.Equal(t, "0", env["CGO_ENABLED"], "a static binary for the distroless base")

	var args []string
	for _, a := range commands[*instructions.ArgCommand](build) {
		for _, kv := range a.Args {
			args = append(args, kv.Key)
		}
	}
	var goBuild string
	for _, r := range commands[*instructions.RunCommand](build) {
		line := strings.Join(r.CmdLine, " ")
		if strings.Contains(line, "go build") {
			require.Empty(t, goBuild, "one go build")
			goBuild = line
		}
	}
	require.NotEmpty(t, goBuild)
	require.Contains(t, goBuild, "-tags "+productionTag)
	require.Contains(t, goBuild, "-trimpath")
	require.Contains(t, goBuild, "GOOS=$TARGETOS GOARCH=$TARGETARCH")
	require.True(t, strings.HasSuffix(strings.TrimSpace(goBuild), "./cmd/vrsky"), goBuild)
	require.Subset(t, args, []string{"TARGETOS", "TARGETARCH"})

	stamped := stampedVariables(t)
	require.Subset(t, stamped, []string{"version", "commit", "buildDate"})
	argFor := map[string]string{"version": "VERSION", "commit": "COMMIT", "buildDate": "BUILD_DATE"}
	makefile, err := os.ReadFile(filepath.Join("..", "Makefile"))
	require.NoError(t, err)
	for v, arg := range argFor {
		require.Contains(t, args, arg, "ARG %s in the build stage", arg)
		require.Contains(t, goBuild, "-X main."+v+"=${"+arg+"}")
		require.Contains(t, string(makefile), "-X main."+v+"=$("+arg+")", "the Makefile stamps the same variable")
	}
}

// TestImageRunsAsNonRootOnAMinimalBase: the runtime stage is distroless
// (no shell, no package manager), holds only the binary and the keys
// directory, and runs as the nonroot user.
func TestImageRunsAsNonRootOnAMinimalBase(t *testing.T) {
	img := readImage(t)
	run := img.stages[1]
	require.Regexp(t, `^gcr\.io/distroless/static(-debian\d+)?:nonroot$`, run.BaseName)
	require.Empty(t, commands[*instructions.RunCommand](run), "nothing runs in the runtime stage: it has no shell")

	users := commands[*instructions.UserCommand](run)
	require.NotEmpty(t, users)
	last := users[len(users)-1].User
	require.NotContains(t, []string{"root", "0", "0:0", "root:root"}, last)
	require.Equal(t, "nonroot", last)

	var copied []string
	for _, c := range commands[*instructions.CopyCommand](run) {
		require.Equal(t, "build", c.From, "the runtime stage copies only from the build stage")
		copied = append(copied, c.DestPath)
		if c.DestPath == "/keys" {
			require.Equal(t, "nonroot:nonroot", c.Chown, "the roles (nonroot) own the keys volume")
		}
	}
	require.ElementsMatch(t, []string{"/usr/local/bin/vrsky", "/keys"}, copied)

	entry := commands[*instructions.EntrypointCommand](run)
	require.Len(t, entry, 1)
	require.False(t, entry[0].PrependShell, "exec form: the binary is PID 1 and gets SIGTERM")
	require.Equal(t, []string{"/usr/local/bin/vrsky"}, entry[0].CmdLine)
}

// TestDockerfileChecksCatchABadImage feeds the checks' parser Dockerfiles
// that must not pass, so a broken Dockerfile cannot slip through.
func TestDockerfileChecksCatchABadImage(t *testing.T) {
	// The rules BuildKit runs while parsing (the others run when it builds).
	for name, src := range map[string]string{
		"FROM and AS in different case": "FROM golang:1.26 as build\nRUN true\n",
		"stage name casing":             "FROM golang:1.26 AS Build\nRUN true\n",
		"MAINTAINER":                    "FROM scratch\nMAINTAINER someone\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, warnings, err := parseDockerfile(t, []byte(src))
			require.NoError(t, err)
			require.NotEmpty(t, warnings)
		})
	}
	_, _, err := parseDockerfile(t, []byte("FROM scratch\nCOPY\n"))
	require.Error(t, err, "COPY without arguments")
	_, _, err = parseDockerfile(t, []byte("RUN true\n"))
	require.Error(t, err, "no FROM")
}

// TestDockerignoreKeepsWhatTheBuildReads lists every file the production
// build of ./cmd/vrsky reads from the repository (Go files and embedded
// files, from `go list -deps`) and checks .dockerignore keeps each of them
// in the build context, while it leaves out the repository's history,
// local state and build output.
func TestDockerignoreKeepsWhatTheBuildReads(t *testing.T) {
	f, err := os.Open(filepath.Join("..", ".dockerignore"))
	require.NoError(t, err)
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	excluded := func(p string) bool {
		m, err := pm.MatchesOrParentMatches(filepath.ToSlash(p))
		require.NoError(t, err)
		return m
	}

	root, err := filepath.Abs("..")
	require.NoError(t, err)
	cmd := exec.Command("go", "list", "-deps", "-tags", productionTag,
		"-f", `{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}`,
		"./cmd/vrsky")
	cmd.Dir = root
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && errors.As(err, &exit) {
		t.Fatalf("go list: %v: %s", err, exit.Stderr)
	}
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum"}
	for _, p := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		if !strings.HasPrefix(rel, "..") { // not a module dependency
			needed = append(needed, rel)
		}
	}
	require.Greater(t, len(needed), 100, "the build reads the repository's packages")
	require.True(t, slices.ContainsFunc(needed, func(p string) bool { return strings.HasPrefix(p, "migrations/") && strings.HasSuffix(p, ".sql") }),
		"embedded migrations are among them")
	for _, p := range needed {
		require.False(t, excluded(p), "%s is read by the build but .dockerignore leaves it out", p)
	}
	for _, p := range []string{".git/HEAD", "bin/vrsky", "dist/SHA256SUMS", ".vrsky/admin-key", "deploy/go.mod", "ui/node_modules/x/package.json"} {
		require.True(t, excluded(p), "%s stays out of the build context", p)
	}
}
