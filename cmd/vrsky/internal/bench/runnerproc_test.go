package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeRunner is a script that behaves like `vrsky runner --dev DIR` for
// StartRunner: it checks its flags, logs the role's ready line, and on
// SIGTERM touches $STOPPED and exits (its trap is set before it says it is
// ready, or a quick Close would kill it before the trap is in place).
const fakeRunner = `
[ "$1" = runner ] && [ "$2" = --dev ] && [ "$3" = "$WANT_DIR" ] || exit 3
[ "$4" = --name ] && [ "$5" = vrsky-bench-runner ] || exit 4
trap 'touch "$STOPPED"; exit 0' TERM
echo '{"level":"INFO","msg":"connecting"}' >&2
echo '{"level":"INFO","component":"runner","msg":"ready","http":"127.0.0.1:1"}' >&2
while :; do sleep 0.05; done`

func TestStartRunnerRunsAndStopsAChild(t *testing.T) {
	dir := t.TempDir()
	stopped := filepath.Join(t.TempDir(), "stopped")
	r, err := StartRunner(context.Background(), fakeDev(t, fakeRunner), dir, []string{"WANT_DIR=" + dir, "STOPPED=" + stopped})
	require.NoError(t, err)
	require.Positive(t, r.PID)
	require.NoError(t, r.proc.exitErr(), "still running")
	tmp := r.tmp
	require.DirExists(t, tmp)
	require.NoError(t, r.Close())
	require.FileExists(t, stopped, "stopped with SIGTERM")
	require.NoDirExists(t, tmp, "its directory is removed")
	require.NoError(t, r.Close(), "Close is idempotent")
}

func TestStartRunnerReportsARunnerThatDies(t *testing.T) {
	bin := fakeDev(t, `echo "attach to vrsky dev: is vrsky dev running?" >&2; exit 1`)
	_, err := StartRunner(context.Background(), bin, t.TempDir(), nil)
	require.ErrorContains(t, err, "runner exited before it was ready")
	require.ErrorContains(t, err, "is vrsky dev running?")

	_, err = StartRunner(context.Background(), filepath.Join(t.TempDir(), "missing"), t.TempDir(), nil)
	require.ErrorContains(t, err, "start runner")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = StartRunner(ctx, fakeDev(t, `trap 'exit 0' TERM; while :; do sleep 0.05; done`), t.TempDir(), nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestChildExitAndStop(t *testing.T) {
	start := func(script string) *child {
		t.Helper()
		c, err := startChild("runner", exec.Command("sh", "-c", script), filepath.Join(t.TempDir(), "log"))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.cmd.Process.Kill() })
		return c
	}

	died := start(`echo "lost NATS" >&2; exit 2`)
	<-died.exited
	require.ErrorContains(t, died.exitErr(), "runner exited (exit status 2)")
	require.ErrorContains(t, died.exitErr(), "lost NATS")
	require.ErrorContains(t, died.stop(time.Second), "lost NATS", "a child that exited on its own is reported when stopped")
	require.NoError(t, died.stop(time.Second), "once")

	failing := start(`trap 'echo "drain failed" >&2; exit 3' TERM; while :; do sleep 0.05; done`)
	time.Sleep(100 * time.Millisecond) // let the shell set its trap
	err := failing.stop(10 * time.Second)
	require.ErrorContains(t, err, "stop runner: exit status 3")
	require.ErrorContains(t, err, "drain failed")

	stubborn := start(`trap '' TERM; while :; do sleep 0.05; done`)
	time.Sleep(100 * time.Millisecond)
	require.ErrorContains(t, stubborn.stop(200*time.Millisecond), "not stopped 200ms after SIGTERM, killed")
}

func TestLoggedReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	require.False(t, loggedReady(path), "no log yet")
	require.NoError(t, os.WriteFile(path, []byte("not json\n{\"msg\":\"starting\"}\n"), 0o600))
	require.False(t, loggedReady(path))
	require.NoError(t, os.WriteFile(path, []byte("not json\n{\"msg\":\"ready\",\"http\":\"127.0.0.1:1\"}\n"), 0o600))
	require.True(t, loggedReady(path))
}
