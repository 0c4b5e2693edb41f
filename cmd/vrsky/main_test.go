package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestMain lets the tests run this binary as `vrsky` in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("VRSKY_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"vrsky"}, os.Args[1:]...)
		main()
		os.Exit(0)
	}
	testenv.Main(m)
}

// vrsky returns the command for running the binary with args.
func vrsky(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VRSKY_TEST_RUN_MAIN=1")
	return cmd
}

func freeAddrs() []string {
	return []string{"--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--temporal-addr", "127.0.0.1:0",
		"--temporal-ui-addr", "127.0.0.1:0", "--s3-addr", "127.0.0.1:0", "--postgres-port", "0"}
}

// TestDevSIGTERMExitsCleanlyAndLeavesNoChild runs `vrsky dev` as a user
// would, waits for ready, sends SIGTERM and checks the exit status, the time
// it took and that no postgres process is left behind.
func TestDevSIGTERMExitsCleanlyAndLeavesNoChild(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cmd := vrsky(append([]string{"dev", "--data-dir", dir}, freeAddrs()...)...)
	cmd.Stderr = &logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var ep devstack.Endpoints
	require.Eventually(t, func() bool {
		var err error
		ep, err = devstack.ReadEndpoints(dir)
		return err == nil
	}, 90*time.Second, 100*time.Millisecond, "never became ready: %s", &logs)
	resp, err := http.Get("http://" + ep.HTTP + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	pidFile, err := os.ReadFile(filepath.Join(dir, "postgres", "postmaster.pid"))
	require.NoError(t, err)
	pgPid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)

	began := time.Now()
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "exit status 0 after SIGTERM; logs: %s", &logs)
	require.Less(t, time.Since(began), devstack.ShutdownTimeout)
	require.ErrorIs(t, syscall.Kill(pgPid, 0), syscall.ESRCH, "postgres must not outlive vrsky dev")

	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var entry map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &entry), "every log line is JSON: %q", line)
		require.NotEmpty(t, entry["component"], "every log line names its component: %q", line)
	}
	require.Contains(t, logs.String(), "VRSky dev stack ready")
	require.Contains(t, logs.String(), "VRSky dev stack stopped")
}

func TestCommandLine(t *testing.T) {
	ctx := context.Background()
	db := testenv.Postgres(t)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		wantOut string
		isUsage bool
	}{
		{name: "version", args: []string{"version"}, wantOut: "vrsky dev"},
		{name: "help", args: []string{"help"}, wantOut: "vrsky dev [flags]"},
		{name: "no command", args: nil, wantErr: "no command", isUsage: true},
		{name: "unknown command", args: []string{"fly"}, wantErr: `unknown command "fly"`, isUsage: true},
		{name: "migrate without url", args: []string{"migrate", "up"}, env: map[string]string{"VRSKY_DATABASE_URL": ""}, wantErr: "VRSKY_DATABASE_URL is not set", isUsage: true},
		{name: "migrate bad action", args: []string{"migrate", "sideways"}, env: map[string]string{"VRSKY_DATABASE_URL": db}, wantErr: "unknown migrate action", isUsage: true},
		{name: "migrate no action", args: []string{"migrate"}, wantErr: "up|down|version", isUsage: true},
		{name: "migrate version before", args: []string{"migrate", "version"}, env: map[string]string{"VRSKY_DATABASE_URL": db}, wantOut: "schema version 0"},
		{name: "migrate up", args: []string{"migrate", "up"}, env: map[string]string{"VRSKY_DATABASE_URL": db}, wantOut: "schema version 7"},
		{name: "migrate up again", args: []string{"migrate", "up"}, env: map[string]string{"VRSKY_DATABASE_URL": db}, wantOut: "schema version 7"},
		{name: "migrate down", args: []string{"migrate", "down"}, env: map[string]string{"VRSKY_DATABASE_URL": db}, wantOut: "schema version 0"},
		{name: "migrate unreachable", args: []string{"migrate", "up"}, env: map[string]string{"VRSKY_DATABASE_URL": "postgres://nobody@127.0.0.1:1/x"}, wantErr: "migrat"},
		{name: "dev bad flag", args: []string{"dev", "--bogus"}, wantErr: "bogus", isUsage: true},
		{name: "dev extra arg", args: []string{"dev", "extra"}, wantErr: "unexpected argument", isUsage: true},
		{name: "dev bad port env", args: []string{"dev"}, env: map[string]string{"VRSKY_POSTGRES_PORT": "x"}, wantErr: "VRSKY_POSTGRES_PORT", isUsage: true},
		{name: "dev bad runner env", args: []string{"dev"}, env: map[string]string{"VRSKY_DEV_RUNNER": "sometimes"}, wantErr: "VRSKY_DEV_RUNNER", isUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errOut bytes.Buffer
			err := run(ctx, tt.args, &out, &errOut)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.Equal(t, tt.isUsage, errorsIsUsage(err))
				return
			}
			require.NoError(t, err)
			require.Contains(t, out.String(), tt.wantOut)
		})
	}
}

func errorsIsUsage(err error) bool { return errors.Is(err, errUsage) }

// TestSecondDevOnSameDirRefuses starts one stack in-process and a second as
// a user would.
func TestSecondDevOnSameDirRefuses(t *testing.T) {
	dir := t.TempDir()
	first := vrsky(append([]string{"dev", "--data-dir", dir}, freeAddrs()...)...)
	require.NoError(t, first.Start())
	t.Cleanup(func() { _ = first.Process.Signal(syscall.SIGTERM); _ = first.Wait() })
	require.Eventually(t, func() bool { _, err := devstack.ReadEndpoints(dir); return err == nil }, 90*time.Second, 100*time.Millisecond)

	second := vrsky(append([]string{"dev", "--data-dir", dir}, freeAddrs()...)...)
	out, err := second.CombinedOutput()
	require.Error(t, err)
	require.Equal(t, 1, second.ProcessState.ExitCode())
	require.Contains(t, string(out), "already running on data directory")
}
