//go:build !linux

package pgcluster

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// serverProcAttr puts the server in its own process group, so that a
// terminal's Ctrl-C reaches only us and we shut the server down in order.
//
// macOS and the BSDs have no parent-death signal (Linux's Pdeathsig), so
// here the server's lifetime rests on explicit cleanup instead:
//   - on SIGINT/SIGTERM, vrsky dev and the tests call Cluster.Stop, which
//     shuts the server down and waits for it;
//   - if vrsky is killed without the chance to do that (kill -9, a crash),
//     the server keeps running until the next Start on the same directory,
//     which finds it through postmaster.pid and stops it (stopStale) before
//     starting a new one. Until then it holds its port, so a second stack
//     on another directory with the same port fails to start with a clear
//     error rather than sharing it.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}

// processAlive reports whether pid names a running process. Without /proc
// a zombie cannot be told from a live process; the only zombie that could
// matter, our own server, is reaped by cmd.Wait before Stop returns.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// isClusterProcess reports whether pid is a live postmaster serving dir,
// so that a reused pid is never signalled. There is no /proc to read the
// working directory from; the postmaster keeps the command line it was
// started with ("postgres -D dir …", see launch), which ps shows. When ps
// cannot be run, the pid file is trusted, as on Linux without /proc.
func isClusterProcess(pid int, dir string) bool {
	if !processAlive(pid) {
		return false
	}
	out, err := exec.Command("ps", "-o", "args=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return false // ps ran and found no such process
		}
		return true
	}
	args := strings.Fields(string(out))
	if len(args) == 0 || filepath.Base(args[0]) != "postgres" {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "-D" && args[i+1] == dir {
			return true
		}
	}
	return false
}

// clusterProcesses lists the live postgres processes working in dir. Without
// /proc there is no portable way to find a process by its working directory,
// so it finds none: the postmaster's children watch it (PostgreSQL's
// postmaster-death pipe) and exit on their own once it is gone, and stop and
// stopStale signal the postmaster itself by its pid.
func clusterProcesses(string) []int { return nil }
