package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// TestProductionRolesStartReadyAndDrain runs `vrsky api`, `vrsky worker` and
// `vrsky runner` as separate processes against real servers, as production
// does, checks each reports ready, and stops each with SIGTERM.
func TestProductionRolesStartReadyAndDrain(t *testing.T) {
	natsURL := testenv.NATS(t)
	_, s3 := testenv.S3(t)
	temporal := testenv.TemporalServer(t)
	db := testenv.PostgresMigrated(t)
	env := []string{
		"VRSKY_NATS_URL=" + natsURL,
		"VRSKY_DATABASE_URL=" + db,
		"VRSKY_TEMPORAL_ADDR=" + temporal.GetFrontendHostPort(),
		"VRSKY_TEMPORAL_NAMESPACE=" + temporal.GetDefaultNamespace(),
		"VRSKY_S3_ENDPOINT=" + s3.Endpoint,
		"VRSKY_S3_BUCKET=" + s3.Bucket,
		"VRSKY_S3_ACCESS_KEY=k", "VRSKY_S3_SECRET_KEY=s",
		"VRSKY_HTTP_ADDR=127.0.0.1:0", "VRSKY_ADMIN_ADDR=127.0.0.1:0",
	}
	for _, role := range []string{"runner", "worker", "api"} {
		t.Run(role, func(t *testing.T) {
			cmd := vrsky(role)
			cmd.Env = append(cmd.Env, env...)
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })

			addr := make(chan [2]string, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					var line map[string]any
					if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "ready" {
						admin, _ := line["admin"].(string)
						addr <- [2]string{line["http"].(string), admin}
					}
				}
			}()
			var base, adminBase string
			select {
			case a := <-addr:
				base, adminBase = "http://"+a[0], "http://"+a[0]
				if role == "api" {
					require.NotEmpty(t, a[1], "the api role has an admin listener")
					adminBase = "http://" + a[1]
				}
			case <-time.After(60 * time.Second):
				t.Fatal("role never became ready")
			}
			resp, err := http.Get(base + "/readyz")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
			resp, err = http.Get(adminBase + "/metrics")
			require.NoError(t, err)
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Contains(t, string(metrics), "go_goroutines")
			require.Contains(t, string(metrics), `role="`+role+`"`, "vrsky_build_info names the role")
			for _, b := range []string{base, adminBase} {
				resp, err = http.Get(b + "/debug/pprof/")
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusNotFound, resp.StatusCode, "production roles serve no profiles")
			}
			if role == "api" {
				resp, err = http.Get(base + "/metrics")
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusNotFound, resp.StatusCode, "no metrics on the public listener")
				require.NotContains(t, string(body), "dependencies", "the public /readyz names no dependency")
				resp, err = http.Get(adminBase + "/readyz")
				require.NoError(t, err)
				details, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.Contains(t, string(details), `"postgres"`, "the admin /readyz does")
				resp, err = http.Post(base+"/v1/hooks/acme/none", "text/plain", strings.NewReader("x"))
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusNotFound, resp.StatusCode)
			}
			require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
			require.NoError(t, cmd.Wait(), "exit 0 after SIGTERM")
		})
	}
}

func TestRoleRefusesMissingConfiguration(t *testing.T) {
	cmd := vrsky("runner")
	cmd.Env = append(cmd.Env, "VRSKY_NATS_URL=", "VRSKY_S3_ENDPOINT=")
	out, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "missing configuration: VRSKY_NATS_URL, VRSKY_S3_ENDPOINT")
}

func TestRoleDevAttachesOnlyToARunningStack(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"runner", "--dev", t.TempDir()}, &out, &errOut)
	require.ErrorContains(t, err, "attach to vrsky dev")
	require.ErrorContains(t, err, "is vrsky dev running?")
	require.False(t, errorsIsUsage(err))

	err = run(context.Background(), []string{"runner", "extra"}, &out, &errOut)
	require.ErrorContains(t, err, `unexpected argument "extra"`)
	require.True(t, errorsIsUsage(err))
}

func TestAPIRoleRefusesAShortWebhookKeyTTL(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"api", "--webhook-key-ttl", "2m"}, &out, &errOut)
	require.ErrorContains(t, err, "at least 24h0m0s")
	require.True(t, errorsIsUsage(err))
}
