package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. Linux
// fixes it at 100 on every architecture Go supports.
const clockTicks = 100

// ProcCPU returns the CPU time (user + system) process pid has used so far,
// from /proc/PID/stat.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat
// line.
func parseStatCPU(b []byte) (time.Duration, error) {
	st, err := parseStat(b)
	if err != nil {
		return 0, err
	}
	return st.cpu, nil
}

// procStat is what the bench reads from a /proc/PID/stat line.
type procStat struct {
	ppid int
	// cpu is utime + stime: the process's own CPU time.
	cpu time.Duration
	// reaped is cutime + cstime: the CPU time of its children that exited
	// and that it waited for.
	reaped time.Duration
}

// parseStat reads ppid (field 4), utime, stime, cutime and cstime (fields
// 14 to 17) of a /proc/PID/stat line. The command name (field 2) may hold
// spaces and parentheses, so the fields are counted from its last ')'.
func parseStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, fmt.Errorf("parse /proc stat: no command name in %q", b)
	}
	// After ")" come field 3 (state) onwards.
	fields := strings.Fields(string(b[end+1:]))
	const ppid, utime, stime, cutime, cstime = 4 - 3, 14 - 3, 15 - 3, 16 - 3, 17 - 3
	if len(fields) <= cstime {
		return procStat{}, fmt.Errorf("parse /proc stat: %d fields after the command name, want more than %d", len(fields), cstime)
	}
	var v [5]int64
	for i, f := range []int{ppid, utime, stime, cutime, cstime} {
		n, err := strconv.ParseInt(fields[f], 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("parse /proc stat field %d: %w", f+3, err)
		}
		v[i] = n
	}
	ticks := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return procStat{ppid: int(v[0]), cpu: ticks(v[1] + v[2]), reaped: ticks(v[3] + v[4])}, nil
}

// TreeCPU returns the CPU time process pid and its children have used so
// far: its own, that of its children still running, and that of the
// children it reaped. It fits a server that forks a process per session
// (PostgreSQL's postmaster); grandchildren still running are not counted.
func TreeCPU(pid int) (time.Duration, error) {
	return treeCPU("/proc", pid)
}

func treeCPU(procDir string, pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	root, err := parseStat(b)
	if err != nil {
		return 0, err
	}
	total := root.cpu + root.reaped
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procDir, e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile: its time is in root.reaped next time
		}
		st, err := parseStat(b)
		if err != nil || st.ppid != pid {
			continue
		}
		total += st.cpu
	}
	return total, nil
}

// Memory is a process's resident set size, in bytes, from /proc/PID/status.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the highest resident size since the process started
}

// ProcMemory reads process pid's current and peak RSS.
func ProcMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.Peak
		default:
			continue
		}
		kb, err := parseKB(line)
		if err != nil {
			return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
		}
		*dst = kb << 10
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	if m.Peak == 0 {
		return Memory{}, fmt.Errorf("read memory of pid %d: no VmHWM line", pid)
	}
	return m, nil
}

// parseKB parses a "VmHWM:	  123456 kB" line.
func parseKB(line string) (int64, error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[2] != "kB" {
		return 0, fmt.Errorf("parse %q: want NAME: VALUE kB", line)
	}
	v, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", line, err)
	}
	return v, nil
}

// SelfCPU returns the CPU time (user + system) this process has used so far.
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("read own CPU time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// Machine describes where a run took place.
type Machine struct {
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
}

// ThisMachine describes the machine the bench runs on.
func ThisMachine() Machine {
	return Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPUModel:   cpuModel("/proc/cpuinfo"),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// cpuModel returns the first "model name" of a cpuinfo file, or "unknown".
func cpuModel(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
