package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTailFollowsPartFilesThroughRenames writes a sink directory the way the
// file producer does (a part file appended in pieces, renamed when done,
// then a second file) and checks every line is counted exactly once.
func TestTailFollowsPartFilesThroughRenames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sink") // created only after the tail starts
	s := Schedule{T0: time.Now(), Rate: 1000, Measured: 100}
	c := NewCollector(s, nil)
	for seq := range s.Total() {
		c.SetStatus(seq, http.StatusAccepted, time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewTail(dir, c).Run(ctx) }()

	time.Sleep(20 * time.Millisecond)
	require.NoError(t, os.MkdirAll(dir, 0o750))
	part := filepath.Join(dir, "bench-1.ndjson.part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o640)
	require.NoError(t, err)
	for seq := range 50 {
		line := fmt.Sprintf(`{"pad":"xx","seq":%d}`+"\n", seq)
		// Half a line now, the rest later: the tail must wait for the end.
		_, err := f.WriteString(line[:10])
		require.NoError(t, err)
		if seq%10 == 0 {
			time.Sleep(3 * time.Millisecond)
		}
		_, err = f.WriteString(line[10:])
		require.NoError(t, err)
	}
	_, err = f.WriteString("garbage line\n\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.Missing() == 50 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, f.Close())
	require.NoError(t, os.Rename(part, filepath.Join(dir, "bench-1.ndjson")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "not-a-file"), 0o750))

	var lines []byte
	for seq := 50; seq < 100; seq++ {
		lines = fmt.Appendf(lines, `{"seq":%d,"x":1}`+"\n", seq)
	}
	lines = append(lines, `{"seq":7}`+"\n"...) // a duplicate
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bench-2.ndjson.part"), lines, 0o640))
	require.Eventually(t, func() bool { return c.Missing() == 0 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)

	n := c.Counts()
	require.Equal(t, int64(100), n.Delivered)
	require.Equal(t, int64(1), n.Duplicates, "the renamed file is not read again")
	require.Equal(t, int64(1), n.Malformed)
	require.Equal(t, int64(100), c.ArrivalLatencies().Count)
}

func TestTailReportsAnUnreadableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	err := NewTail(file, NewCollector(Schedule{Rate: 1, Measured: 1}, nil)).Run(context.Background())
	require.ErrorContains(t, err, "list sink directory")
}
