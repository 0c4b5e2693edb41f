package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func burnCPU(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		n++
	}
	return n
}

func TestProcReadersOnThisProcess(t *testing.T) {
	pid := os.Getpid()
	before, err := ProcCPU(pid)
	require.NoError(t, err)
	selfBefore, err := SelfCPU()
	require.NoError(t, err)
	burnCPU(150 * time.Millisecond)
	after, err := ProcCPU(pid)
	require.NoError(t, err)
	selfAfter, err := SelfCPU()
	require.NoError(t, err)
	// Ticks are 10 ms; allow for a busy machine giving the test less CPU.
	require.Greater(t, after, before, "the busy loop shows in /proc")
	require.Greater(t, selfAfter, selfBefore, "and in getrusage")

	mem, err := ProcMemory(pid)
	require.NoError(t, err)
	require.Positive(t, mem.RSS)
	require.GreaterOrEqual(t, mem.Peak, mem.RSS)
}

func TestProcReadersOnMissingProcess(t *testing.T) {
	_, err := ProcCPU(1 << 30)
	require.ErrorContains(t, err, "read CPU time")
	_, err = ProcMemory(1 << 30)
	require.ErrorContains(t, err, "read memory")
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift fields.
	line := "1234 (my (odd) cmd) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 100 0 0\n"
	d, err := parseStatCPU([]byte(line))
	require.NoError(t, err)
	require.Equal(t, 3*time.Second, d)

	for _, bad := range []string{"no parens", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u 50 0", "1 (x) S 1 2 3 4 5 6 7 8 9 10 1 s 0"} {
		_, err := parseStatCPU([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestParseKB(t *testing.T) {
	v, err := parseKB("VmHWM:\t  123456 kB")
	require.NoError(t, err)
	require.Equal(t, int64(123456), v)
	_, err = parseKB("VmHWM: 12 MB")
	require.Error(t, err)
	_, err = parseKB("VmHWM: x kB")
	require.Error(t, err)
}

func TestMachine(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(dir, "cpuinfo")
	require.NoError(t, os.WriteFile(info, []byte("processor\t: 0\nmodel name\t: Test CPU @ 1GHz\n\nprocessor\t: 1\nmodel name\t: Other\n"), 0o600))
	require.Equal(t, "Test CPU @ 1GHz", cpuModel(info))
	require.Equal(t, "unknown", cpuModel(filepath.Join(dir, "missing")))

	m := ThisMachine()
	require.Positive(t, m.NumCPU)
	require.NotEmpty(t, m.GoVersion)
	require.NotEmpty(t, m.CPUModel)
}
