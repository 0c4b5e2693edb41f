package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Split-runner timings.
const (
	// RunnerStartTimeout bounds how long a split runner may take to report
	// itself ready.
	RunnerStartTimeout = 30 * time.Second
	// runnerStopTimeout bounds a split runner's drain after SIGTERM (the
	// runner role drains within 30 s).
	runnerStopTimeout = 35 * time.Second
)

// SplitRunnerName is the name the split runner reports in integrations'
// status, so the bench can tell its runs from another runner's.
const SplitRunnerName = "vrsky-bench-runner"

// RunnerProcess is a hot-path runner in a process of its own, `vrsky runner
// --dev DATA_DIR`, attached to a stack started without one (`vrsky dev
// --runner=false`), so that its CPU and memory are measured apart from the
// stack's.
type RunnerProcess struct {
	// PID is the runner's process, measured for CPU and memory.
	PID int
	// Name is the name the runner reports itself under.
	Name string

	proc *child
	tmp  string
}

// StartRunner starts `binary runner --dev dataDir` as a child process named
// SplitRunnerName, with its health endpoints on a free port, and waits up
// to RunnerStartTimeout until it logs that it is ready. env is added to the
// bench's own environment. The child's log goes to a file quoted in errors.
func StartRunner(ctx context.Context, binary, dataDir string, env []string) (*RunnerProcess, error) {
	return StartNamedRunner(ctx, binary, dataDir, SplitRunnerName, env)
}

// StartNamedRunner is StartRunner with the runner named name.
func StartNamedRunner(ctx context.Context, binary, dataDir, name string, env []string) (_ *RunnerProcess, err error) {
	tmp, err := os.MkdirTemp("", "vrsky-bench-runner-")
	if err != nil {
		return nil, fmt.Errorf("create runner directory: %w", err)
	}
	r := &RunnerProcess{Name: name, tmp: tmp}
	defer func() {
		if err != nil {
			_ = r.Close()
		}
	}()
	cmd := exec.Command(binary, "runner", "--dev", dataDir, "--name", name,
		"--http-addr", "127.0.0.1:0", "--log-level", "info")
	cmd.Env = append(os.Environ(), env...)
	logPath := filepath.Join(tmp, "runner.log")
	if r.proc, err = startChild("runner", cmd, logPath); err != nil {
		return nil, err
	}
	r.PID = r.proc.cmd.Process.Pid
	if err := r.proc.waitUntil(ctx, RunnerStartTimeout, func() bool { return loggedReady(logPath) }); err != nil {
		return nil, err
	}
	return r, nil
}

// Close stops the runner with SIGTERM (killing it if it does not stop in
// time) and removes its directory.
func (r *RunnerProcess) Close() error {
	var err error
	if r.proc != nil {
		err = r.proc.stop(runnerStopTimeout)
	}
	if r.tmp != "" {
		if rerr := os.RemoveAll(r.tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove runner directory: %w", rerr))
		}
		r.tmp = ""
	}
	return err
}

// loggedReady reports whether the JSON log at path has the role's "ready"
// line.
func loggedReady(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "ready" {
			return true
		}
	}
	return false
}
