package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
)

// writeFakeStack makes dir look like the data directory of a running dev
// stack whose pid is pid.
func writeFakeStack(t *testing.T, dir string, ep devstack.Endpoints, pid int) {
	t.Helper()
	b, err := json.Marshal(ep)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, devstack.EndpointsFile), b, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, lockFile), []byte(strconv.Itoa(pid)+"\n"), 0o600))
}

func TestAttachStack(t *testing.T) {
	dir := t.TempDir()
	_, err := AttachStack(dir)
	require.ErrorContains(t, err, "is vrsky dev running?")

	ep := devstack.Endpoints{HTTP: "127.0.0.1:1", NATS: "nats://127.0.0.1:2"}
	writeFakeStack(t, dir, ep, os.Getpid())
	s, err := AttachStack(dir)
	require.NoError(t, err)
	require.Equal(t, ep, s.Endpoints)
	require.Equal(t, os.Getpid(), s.PID)
	require.False(t, s.Owned())
	require.NoError(t, s.Close())
	require.DirExists(t, dir, "an attached stack's directory is left alone")

	require.NoError(t, os.WriteFile(filepath.Join(dir, lockFile), []byte("nope"), 0o600))
	_, err = AttachStack(dir)
	require.ErrorContains(t, err, "is not a pid")
	require.NoError(t, os.WriteFile(filepath.Join(dir, lockFile), []byte("1073741824"), 0o600))
	_, err = AttachStack(dir)
	require.ErrorContains(t, err, "is vrsky dev running?")
	require.NoError(t, os.Remove(filepath.Join(dir, lockFile)))
	_, err = AttachStack(dir)
	require.ErrorContains(t, err, "read the stack's pid")
}

// fakeDev writes a script that behaves like `vrsky dev` for StartStack: it
// checks its flags and environment, writes endpoints.json and waits for
// SIGTERM.
func fakeDev(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vrsky")
	script := "#!/bin/sh\n" + body + "\n"
	require.NoError(t, os.WriteFile(path, []byte(script), 0o700))
	return path
}

func TestStartStackRunsAndStopsAChild(t *testing.T) {
	t.Setenv("VRSKY_WEBHOOK_TENANT_RATE", "5")
	t.Setenv("VRSKY_DEV_RUNNER", "false")
	bin := fakeDev(t, `
[ "$1" = dev ] && [ "$2" = --data-dir ] || exit 3
[ -z "$VRSKY_WEBHOOK_TENANT_RATE" ] && [ -z "$VRSKY_DEV_RUNNER" ] || exit 4
[ "$EXTRA" = yes ] || exit 5
for arg; do last=$arg; done
[ "$last" = --runner=false ] || exit 6
mkdir -p "$3"
trap 'exit 0' TERM
echo '{"http":"127.0.0.1:9","nats":"nats://127.0.0.1:8"}' > "$3/endpoints.json"
while :; do sleep 0.05; done`)
	s, err := StartStack(context.Background(), bin, []string{"EXTRA=yes"}, "--runner=false")
	require.NoError(t, err)
	require.True(t, s.Owned())
	require.Equal(t, "127.0.0.1:9", s.Endpoints.HTTP)
	require.Positive(t, s.PID)
	dir := s.DataDir
	require.DirExists(t, dir)
	require.NoError(t, s.Close())
	require.NoDirExists(t, dir, "the child's directory is removed")
	require.NoError(t, s.Close(), "Close is idempotent")
}

func TestStartStackReportsAChildThatDies(t *testing.T) {
	bin := fakeDev(t, `echo "postgres would not start" >&2; exit 1`)
	_, err := StartStack(context.Background(), bin, nil)
	require.ErrorContains(t, err, "exited before it was ready")
	require.ErrorContains(t, err, "postgres would not start")

	_, err = StartStack(context.Background(), filepath.Join(t.TempDir(), "missing"), nil)
	require.ErrorContains(t, err, "start stack")
}

func TestStartStackStopsWaitingWithItsContext(t *testing.T) {
	bin := fakeDev(t, `trap 'exit 0' TERM; while :; do sleep 0.05; done`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := StartStack(ctx, bin, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestLogTailKeepsTheEnd(t *testing.T) {
	s := &child{logPath: filepath.Join(t.TempDir(), "log")}
	var log []byte
	for i := range 1000 {
		log = append(log, "line "+strconv.Itoa(i)+"\n"...)
	}
	require.NoError(t, os.WriteFile(s.logPath, log, 0o600))
	tail := s.logTail()
	require.LessOrEqual(t, len(tail), logTailBytes)
	require.Contains(t, tail, "line 999\n")
	require.Regexp(t, "^line [0-9]+\n", tail, "starts at a whole line")
}

func TestWithoutEnv(t *testing.T) {
	require.Equal(t, []string{"A=1", "BB=3"}, withoutEnv([]string{"A=1", "B=2", "BB=3", "B=4"}, "B"))
	require.Equal(t, []string{"BB=3"}, withoutEnv([]string{"A=1", "B=2", "BB=3", "B=4"}, "A", "B"))
}
