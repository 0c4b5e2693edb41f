package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// serverProcAttr puts the server in its own process group and asks the
// kernel to send it SIGINT (a fast shutdown, which does not wait for open
// sessions) if our process dies, however it dies: even a kill -9 of vrsky
// leaves no server behind. The parent-death signal is Linux-only; see
// proc_other.go for the other systems.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: cred,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGINT,
	}
}

// processAlive reports whether pid names a running (not zombie) process.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// isClusterProcess reports whether pid is a live postgres process working
// in dir, so that a reused pid is never signalled. PostgreSQL processes
// run with the data directory as their working directory.
func isClusterProcess(pid int, dir string) bool {
	if !processAlive(pid) {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		// No /proc to ask: trust the pid file.
		return errors.Is(err, os.ErrNotExist) && processAlive(pid)
	}
	if strings.TrimSpace(string(comm)) != "postgres" {
		return false
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		// Not ours to inspect; the name is all we know.
		return true
	}
	return cwd == dir
}

// clusterProcesses lists the live postgres processes working in dir.
func clusterProcesses(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil || cwd != dir {
			continue
		}
		if isClusterProcess(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}
