package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// devOnlyPackages are what only vrsky dev, bench and demo need; the
// production build must link none of them.
var devOnlyPackages = []string{
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack",
	"github.com/vrsky/vrsky/internal/temporaldev",
	"github.com/vrsky/vrsky/internal/s3dev",
	"github.com/vrsky/vrsky/internal/pgcluster",
	"github.com/vrsky/vrsky/internal/natsserver",
	"github.com/vrsky/vrsky/cmd/vrsky/internal/bench",
	"github.com/vrsky/vrsky/cmd/vrsky/internal/demo",
	"github.com/vrsky/vrsky/internal/testenv",
	"go.temporal.io/server",
	"github.com/temporalio/ui-server",
	"github.com/nats-io/nats-server",
	"github.com/johannesboyne/gofakes3",
}

// linked lists what `go list -deps` says the binary links with tags.
func linked(t *testing.T, tags string) []string {
	t.Helper()
	args := []string{"list", "-deps"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := exec.Command("go", append(args, ".")...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("go list: %v: %s", err, exit.Stderr)
	}
	require.NoError(t, err)
	return strings.Fields(string(out))
}

// devOnlyIn returns the dev-only packages (or modules' packages) in pkgs.
func devOnlyIn(pkgs []string) []string {
	var found []string
	for _, p := range pkgs {
		for _, d := range devOnlyPackages {
			if inPackage(p, d) {
				found = append(found, p)
				break
			}
		}
	}
	return found
}

func TestProductionBuildLinksNoDevelopmentServer(t *testing.T) {
	require.Empty(t, devOnlyIn(linked(t, productionTag)), "linked into the production build")

	// The development build, what `make dev` runs, keeps every one of them
	// (so the list above names real packages, and vrsky dev still works).
	dev := devOnlyIn(linked(t, ""))
	for _, d := range devOnlyPackages {
		if d == "github.com/vrsky/vrsky/internal/testenv" {
			continue // a test helper, linked by neither
		}
		require.True(t, slices.ContainsFunc(dev, func(p string) bool { return inPackage(p, d) }), "the development build links %s", d)
	}
}

// inPackage reports whether package p is pkg or below it.
func inPackage(p, pkg string) bool { return p == pkg || strings.HasPrefix(p, pkg+"/") }

func TestVersionPrintsTheStampedBuild(t *testing.T) {
	saved := [3]string{version, commit, buildDate}
	t.Cleanup(func() { version, commit, buildDate = saved[0], saved[1], saved[2] })

	version, commit, buildDate = "v1.4.0", "0123abcd", "2026-12-06T12:00:00Z"
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, &out, &out))
	require.Equal(t, "vrsky v1.4.0\ncommit: 0123abcd\nbuilt:  2026-12-06T12:00:00Z\ngo:     "+
		runtime.Version()+"/"+runtime.GOOS+" "+runtime.GOARCH+"\nbuild:  development (includes vrsky dev, bench and demo)\n", out.String())

	// Unstamped: the commit falls back to what the go command recorded,
	// or says it is unknown; never an empty field.
	version, commit, buildDate = "dev", "", ""
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"--version"}, &out, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 5)
	require.Equal(t, "vrsky dev", lines[0])
	for _, l := range lines[1:] {
		_, v, ok := strings.Cut(l, ":")
		require.True(t, ok, l)
		require.NotEmpty(t, strings.TrimSpace(v), l)
	}
	require.Equal(t, "built:  unknown", lines[2])
}

// TestProductionBinary builds vrsky as the Dockerfile does, with the
// production tag and a stamped version, and checks what a user of that
// binary sees: the version, a clear refusal of every development command,
// and the same version in the API's OpenAPI document.
func TestProductionBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vrsky")
	const stamp = "v9.8.7-rc.1"
	build := exec.Command("go", "build", "-tags", productionTag, "-o", bin,
		"-ldflags", "-X main.version="+stamp+" -X main.commit=feedface -X main.buildDate=2026-12-06T00:00:00Z", ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	out, err = exec.Command(bin, "version").Output()
	require.NoError(t, err)
	require.Contains(t, string(out), "vrsky "+stamp+"\ncommit: feedface\nbuilt:  2026-12-06T00:00:00Z\n")
	require.Contains(t, string(out), "build:  production (-tags vrsky_production)")

	for _, args := range [][]string{
		{"dev"},
		{"dev", "--data-dir", t.TempDir()},
		{"bench", "--duration", "1s"},
		{"demo", "1"},
		{"runner", "--dev", t.TempDir()},
		{"integrations", "list", "--data-dir", t.TempDir()},
		{"nats-server", "-c", filepath.Join(t.TempDir(), "nats.conf")},
	} {
		t.Run(strings.Join(args[:1], " "), func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "VRSKY_API_URL=", "VRSKY_API_KEY=")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "%s", out)
			require.Equal(t, 1, exit.ExitCode(), "%s", out)
			require.Contains(t, string(out), "left out of the production build (-tags vrsky_production)")
			require.Contains(t, string(out), "make build")
		})
	}

	t.Run("openapi info.version", func(t *testing.T) {
		natsURL := testenv.NATS(t)
		_, s3 := testenv.S3(t)
		temporal := testenv.TemporalServer(t)
		db := testenv.PostgresMigrated(t)
		cmd := exec.Command(bin, "api")
		cmd.Env = append(os.Environ(),
			"VRSKY_NATS_URL="+natsURL,
			"VRSKY_DATABASE_URL="+db,
			"VRSKY_TEMPORAL_ADDR="+temporal.GetFrontendHostPort(),
			"VRSKY_TEMPORAL_NAMESPACE="+temporal.GetDefaultNamespace(),
			"VRSKY_S3_ENDPOINT="+s3.Endpoint,
			"VRSKY_S3_BUCKET="+s3.Bucket,
			"VRSKY_S3_ACCESS_KEY=k", "VRSKY_S3_SECRET_KEY=s",
			"VRSKY_HTTP_ADDR=127.0.0.1:0", "VRSKY_ADMIN_ADDR=127.0.0.1:0")
		stderr, err := cmd.StderrPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				var line map[string]any
				if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "ready" {
					addr, _ := line["http"].(string)
					ready <- addr
				}
			}
		}()
		var addr string
		select {
		case addr = <-ready:
		case <-time.After(60 * time.Second):
			t.Fatal("the api role never became ready")
		}
		resp, err := http.Get("http://" + addr + "/openapi.json")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var doc struct {
			Info struct {
				Version string `json:"version"`
			} `json:"info"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
		require.Equal(t, stamp, doc.Info.Version)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	})
}
