package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// aged writes a file whose modification time is an hour ago, as a file
// dropped well before a scheduled run.
func aged(t *testing.T, p, content string) {
	t.Helper()
	write(t, p, content)
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(p, old, old))
}

func TestPollTakesEverySettledFileAndReturns(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "in")
	aged(t, filepath.Join(in, "a.ndjson"), "{\"n\":1}\n{\"n\":2}\n")
	aged(t, filepath.Join(in, "b.csv.ndjson"), "{\"n\":3}\n")
	aged(t, filepath.Join(in, "bad.ndjson"), "{\"n\":4}\nnot json\n")
	write(t, filepath.Join(in, "fresh.ndjson"), "{\"n\":5}\n")
	c := newConsumer(t, root, `{"dir":"in","settle":"10m","rescan":"1h"}`)
	sink := newSink()

	began := time.Now()
	res, err := c.Poll(t.Context(), sink)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 5*time.Second, "one pass, no waiting for the rescan period or the settle time")
	require.Equal(t, 5, res.Messages, "every record of the settled files, the bad line included (it goes to the DLQ)")
	require.Len(t, sink.got(), 5)
	require.Equal(t, []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}, bodies(sink.got())[:3])
	for _, name := range []string{"a.ndjson", "b.csv.ndjson", "bad.ndjson"} {
		require.FileExists(t, filepath.Join(in, "done", name), "%s is acknowledged", name)
	}
	require.FileExists(t, filepath.Join(in, "fresh.ndjson"), "a file still settling waits for the next poll")

	// Nothing new: the next poll takes nothing and returns at once.
	res, err = c.Poll(t.Context(), sink)
	require.NoError(t, err)
	require.Zero(t, res.Messages)

	// Once it has settled, the next poll takes it.
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(filepath.Join(in, "fresh.ndjson"), old, old))
	res, err = c.Poll(t.Context(), sink)
	require.NoError(t, err)
	require.Equal(t, 1, res.Messages)
	require.FileExists(t, filepath.Join(in, "done", "fresh.ndjson"))
}

func TestPollMovesUnparseableFilesToFailed(t *testing.T) {
	root := t.TempDir()
	aged(t, filepath.Join(root, "in", "broken.json"), `[{"n":1},`)
	c := newConsumer(t, root, `{"dir":"in","format":"json"}`)
	sink := newSink()
	res, err := c.Poll(t.Context(), sink)
	require.NoError(t, err, "a bad file is handled, not a failed poll")
	require.Zero(t, res.Messages)
	require.Empty(t, sink.got())
	require.FileExists(t, filepath.Join(root, "in", "failed", "broken.json"))
	require.FileExists(t, filepath.Join(root, "in", "failed", "broken.json.reason.txt"))
}

func TestPollResumesAfterAFailedPublish(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "in", "big.ndjson")
	var lines []string
	for i := range 7 {
		lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
	}
	aged(t, p, strings.Join(lines, "\n")+"\n")
	cfg := `{"dir":"in","batchSize":3}`

	failing := &recordingSink{okCalls: 1}
	res, err := newConsumer(t, root, cfg).Poll(t.Context(), failing)
	require.ErrorContains(t, err, "jetstream unavailable")
	require.Equal(t, 3, res.Messages, "what was durable before the failure is reported")
	require.FileExists(t, p, "not acknowledged before every record is durable")

	sink := newSink()
	res, err = newConsumer(t, root, cfg).Poll(t.Context(), sink)
	require.NoError(t, err)
	require.Equal(t, 4, res.Messages, "the next poll publishes only the rest")
	require.Equal(t, `{"n":3}`, string(sink.got()[0].Body))
	require.FileExists(t, filepath.Join(root, "in", "done", "big.ndjson"))
	seen := map[string]bool{}
	for _, id := range append(ids(failing.got()), ids(sink.got())...) {
		require.False(t, seen[id], "duplicate ID %s", id)
		seen[id] = true
	}
	require.Len(t, seen, 7)
}

func TestPollStopsWhenItsContextEnds(t *testing.T) {
	t.Run("before it starts", func(t *testing.T) {
		root := t.TempDir()
		aged(t, filepath.Join(root, "a.ndjson"), "{}\n")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		sink := newSink()
		res, err := newConsumer(t, root, `{}`).Poll(ctx, sink)
		require.ErrorIs(t, err, context.Canceled)
		require.Zero(t, res.Messages)
		require.Empty(t, sink.got())
		require.FileExists(t, filepath.Join(root, "a.ndjson"))
	})
	t.Run("between batches", func(t *testing.T) {
		root := t.TempDir()
		aged(t, filepath.Join(root, "a.ndjson"), strings.Repeat("{}\n", 10))
		ctx, cancel := context.WithCancel(t.Context())
		sink := &cancellingSink{cancel: cancel}
		res, err := newConsumer(t, root, `{"batchSize":2}`).Poll(ctx, sink)
		require.ErrorIs(t, err, context.Canceled, "an interrupted poll says so")
		require.Equal(t, 2, res.Messages)
		require.Equal(t, 1, sink.calls)
		require.FileExists(t, filepath.Join(root, "a.ndjson"))
	})
	t.Run("file root gone", func(t *testing.T) {
		root := t.TempDir()
		c := newConsumer(t, root, `{"dir":"in"}`)
		require.NoError(t, os.RemoveAll(root))
		_, err := c.Poll(t.Context(), newSink())
		require.ErrorContains(t, err, "open file root")
	})
}
