package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vrsky/vrsky/internal/devstack"
)

// Stack timings.
const (
	// StackStartTimeout bounds how long a child stack may take to write its
	// endpoints file.
	StackStartTimeout = 120 * time.Second
	// stackStopTimeout bounds a child stack's shutdown after SIGTERM.
	stackStopTimeout = devstack.ShutdownTimeout + 5*time.Second
	stackLogTail     = 4 << 10
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

	cmd     *exec.Cmd
	tmp     string // removed by Close when the bench made it
	logPath string
	exited  chan struct{}
	waitErr error
}

// StartStack starts `binary dev` as a child process on free ports with a
// fresh data directory under a temporary directory, and waits up to
// StackStartTimeout for it to be ready. env is added to the bench's own
// environment; VRSKY_WEBHOOK_TENANT_RATE is removed so the stack runs with
// its default rate limit. The child's log (warnings and errors) goes to a
// file quoted in errors.
func StartStack(ctx context.Context, binary string, env []string) (_ *Stack, err error) {
	tmp, err := os.MkdirTemp("", "vrsky-bench-")
	if err != nil {
		return nil, fmt.Errorf("create stack directory: %w", err)
	}
	s := &Stack{DataDir: filepath.Join(tmp, "data"), tmp: tmp, logPath: filepath.Join(tmp, "stack.log"), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, fmt.Errorf("create stack log: %w", err)
	}
	defer logFile.Close()
	s.cmd = exec.Command(binary, "dev", "--data-dir", s.DataDir,
		"--http-addr", "127.0.0.1:0", "--nats-addr", "127.0.0.1:0", "--temporal-addr", "127.0.0.1:0",
		"--temporal-ui-addr", "127.0.0.1:0", "--s3-addr", "127.0.0.1:0", "--postgres-port", "0",
		"--log-level", "warn")
	s.cmd.Env = append(withoutEnv(os.Environ(), "VRSKY_WEBHOOK_TENANT_RATE"), env...)
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stack %s: %w", binary, err)
	}
	s.PID = s.cmd.Process.Pid
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()

	deadline := time.NewTimer(StackStartTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		if ep, err := devstack.ReadEndpoints(s.DataDir); err == nil {
			s.Endpoints = ep
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.exited:
			return nil, fmt.Errorf("stack exited before it was ready (%v); its log ends with:\n%s", s.waitErr, s.logTail())
		case <-deadline.C:
			return nil, fmt.Errorf("stack not ready after %s; its log ends with:\n%s", StackStartTimeout, s.logTail())
		case <-poll.C:
		}
	}
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
func (s *Stack) Owned() bool { return s.cmd != nil }

// Close stops a child stack with SIGTERM (killing it if it does not stop in
// time) and removes its directory; an attached stack is left alone.
func (s *Stack) Close() error {
	var err error
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
				if s.waitErr != nil {
					err = fmt.Errorf("stop stack: %w; its log ends with:\n%s", s.waitErr, s.logTail())
				}
			case <-time.After(stackStopTimeout):
				_ = s.cmd.Process.Kill()
				<-s.exited
				err = fmt.Errorf("stop stack: not stopped %s after SIGTERM, killed", stackStopTimeout)
			}
		}
	}
	if s.tmp != "" {
		if rerr := os.RemoveAll(s.tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove stack directory: %w", rerr))
		}
		s.tmp = ""
	}
	return err
}

// logTail returns the end of the child's log.
func (s *Stack) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > stackLogTail {
		b = b[len(b)-stackLogTail:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// withoutEnv returns env without the variable name.
func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
