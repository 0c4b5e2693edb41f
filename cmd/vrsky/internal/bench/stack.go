package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
)

// Stack timings.
const (
	// StackStartTimeout bounds how long a child stack may take to write its
	// endpoints file.
	StackStartTimeout = 120 * time.Second
	// stackStopTimeout bounds a child stack's shutdown after SIGTERM.
	stackStopTimeout = devstack.ShutdownTimeout + 5*time.Second
	logTailBytes     = 4 << 10
)

// lockFile is the dev stack's lock file in its data directory; it holds the
// stack's pid.
const lockFile = "vrsky.lock"

// Stack is the dev stack under test: either a child process the bench
// started, or a `vrsky dev` that was already running.
type Stack struct {
	// DataDir is the stack's data directory.
	DataDir string
	// Endpoints are where the stack listens.
	Endpoints devstack.Endpoints
	// PID is the stack's process, measured for CPU and memory.
	PID int

	proc *child // nil when attached
	tmp  string // removed by Close when the bench made it
}

// StartStack starts `binary dev` as a child process on free ports with a
// fresh data directory under a temporary directory, and waits up to
// StackStartTimeout for it to be ready. args are added to the dev command
// line (--runner=false, say); env is added to the bench's own environment,
// from which VRSKY_WEBHOOK_TENANT_RATE and VRSKY_DEV_RUNNER are removed so
// the stack runs with its default rate limit and, unless args say
// otherwise, its own runner. The child's log (warnings and errors) goes to
// a file quoted in errors.
func StartStack(ctx context.Context, binary string, env []string, args ...string) (_ *Stack, err error) {
	tmp, err := os.MkdirTemp("", "vrsky-bench-")
	if err != nil {
		return nil, fmt.Errorf("create stack directory: %w", err)
	}
	s := &Stack{DataDir: filepath.Join(tmp, "data"), tmp: tmp}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	cmd := exec.Command(binary, append([]string{"dev", "--data-dir", s.DataDir,
		"--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--temporal-addr", "127.0.0.1:0",
		"--temporal-ui-addr", "127.0.0.1:0", "--s3-addr", "127.0.0.1:0", "--postgres-port", "0",
		"--log-level", "warn"}, args...)...)
	cmd.Env = append(withoutEnv(os.Environ(), "VRSKY_WEBHOOK_TENANT_RATE", "VRSKY_DEV_RUNNER"), env...)
	if s.proc, err = startChild("stack", cmd, filepath.Join(tmp, "stack.log")); err != nil {
		return nil, err
	}
	s.PID = s.proc.cmd.Process.Pid
	err = s.proc.waitUntil(ctx, StackStartTimeout, func() bool {
		ep, err := devstack.ReadEndpoints(s.DataDir)
		s.Endpoints = ep
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// AttachStack uses the `vrsky dev` already running on dataDir; its pid comes
// from the data directory's lock file.
func AttachStack(dataDir string) (*Stack, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", dataDir, err)
	}
	ep, err := devstack.ReadEndpoints(abs)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(abs, lockFile))
	if err != nil {
		return nil, fmt.Errorf("read the stack's pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil, fmt.Errorf("read the stack's pid from %s: %q is not a pid", lockFile, strings.TrimSpace(string(b)))
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return nil, fmt.Errorf("stack pid %d from %s: %w (is vrsky dev running?)", pid, lockFile, err)
	}
	return &Stack{DataDir: abs, Endpoints: ep, PID: pid}, nil
}

// Owned reports whether the bench started the stack (and Close stops it).
func (s *Stack) Owned() bool { return s.proc != nil }

// Close stops a child stack with SIGTERM (killing it if it does not stop in
// time) and removes its directory; an attached stack is left alone.
func (s *Stack) Close() error {
	var err error
	if s.proc != nil {
		err = s.proc.stop(stackStopTimeout)
	}
	if s.tmp != "" {
		if rerr := os.RemoveAll(s.tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove stack directory: %w", rerr))
		}
		s.tmp = ""
	}
	return err
}

// child is a process the bench started, with its output in a log file that
// errors quote.
type child struct {
	what    string // "stack" or "runner", in errors
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error // set before exited is closed
	stopped bool  // stop was called
}

// startChild starts cmd with its output going to logPath.
func startChild(what string, cmd *exec.Cmd, logPath string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", what, err)
	}
	defer logFile.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", what, cmd.Path, err)
	}
	c := &child{what: what, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// waitUntil polls ready every 50 ms until it reports true; it fails when
// the child exits, ctx ends or timeout passes first.
func (c *child) waitUntil(ctx context.Context, timeout time.Duration, ready func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.exited:
			return fmt.Errorf("%s exited before it was ready (%v); its log ends with:\n%s", c.what, c.waitErr, c.logTail())
		case <-deadline.C:
			return fmt.Errorf("%s not ready after %s; its log ends with:\n%s", c.what, timeout, c.logTail())
		case <-poll.C:
		}
	}
}

// exitErr describes the child's exit, or is nil while it runs.
func (c *child) exitErr() error {
	select {
	case <-c.exited:
		return fmt.Errorf("%s exited (%v); its log ends with:\n%s", c.what, c.waitErr, c.logTail())
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to timeout for the child to exit, then
// kills it. A child that had exited on its own before its first stop is an
// error too; stopping it again is not.
func (c *child) stop(timeout time.Duration) error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	if err := c.exitErr(); err != nil {
		return err
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("stop %s: %w; its log ends with:\n%s", c.what, c.waitErr, c.logTail())
		}
		return nil
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("stop %s: not stopped %s after SIGTERM, killed", c.what, timeout)
	}
}

// logTail returns the end of the child's log.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// withoutEnv returns env without the variables names.
func withoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}
