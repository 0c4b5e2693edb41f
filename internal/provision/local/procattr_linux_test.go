package local

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAnInstanceDiesWithItsParent kills -9 a process that started an
// instance and checks that the instance goes too, instead of holding its
// ports and store until someone notices.
func TestAnInstanceDiesWithItsParent(t *testing.T) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), childEnv+"=provisioner", childConfEnv+"="+t.TempDir())
	out, err := parent.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, parent.Start())
	t.Cleanup(func() { _ = parent.Process.Kill(); _ = parent.Wait() })

	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if pid, ok := strings.CutPrefix(sc.Text(), "instance pid "); ok {
				line <- pid
				return
			}
		}
		close(line)
	}()
	var pid int
	select {
	case s, ok := <-line:
		require.True(t, ok, "the parent ended without starting its instance")
		pid, err = strconv.Atoi(s)
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the parent did not start its instance")
	}
	require.NoError(t, syscall.Kill(pid, 0), "the instance runs")

	require.NoError(t, parent.Process.Kill())
	_ = parent.Wait()
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || zombie(pid)
	}, 10*time.Second, 20*time.Millisecond, "the instance outlived its parent")
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}
