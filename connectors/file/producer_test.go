package file

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	env := sdk.Env{Tenant: "t1", Integration: "orders", FileRoot: t.TempDir()}
	sdktest.Conformance(t, ProducerConnector, env, json.RawMessage(`{"dir":"out"}`), map[string]json.RawMessage{
		"absolute dir":      json.RawMessage(`{"dir":"/etc"}`),
		"parent dir":        json.RawMessage(`{"dir":"../x"}`),
		"parent inside":     json.RawMessage(`{"dir":"a/../../x"}`),
		"backslash parent":  json.RawMessage(`{"dir":"a\\..\\..\\x"}`),
		"nul in dir":        json.RawMessage(`{"dir":"a\u0000b"}`),
		"bad format":        json.RawMessage(`{"format":"xml"}`),
		"negative rotate":   json.RawMessage(`{"rotateBytes":-1}`),
		"bad interval":      json.RawMessage(`{"rotateInterval":"soon"}`),
		"zero interval":     json.RawMessage(`{"rotateInterval":"0s"}`),
		"prefix with slash": json.RawMessage(`{"prefix":"a/b"}`),
		"prefix dot-dot":    json.RawMessage(`{"prefix":".."}`),
		"sync not bool":     json.RawMessage(`{"sync":"yes"}`),
	})
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock {
	return &clock{t: time.Date(2031, 5, 6, 7, 8, 9, 0, time.FixedZone("X", 3600))}
}

func newProducer(t *testing.T, root, cfg string, c *clock) *Producer {
	t.Helper()
	p, err := build(t.Context(), sdk.Env{Integration: "orders", FileRoot: root}, json.RawMessage(cfg), c.now)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func msgs(bodies ...string) []sdk.Message {
	out := make([]sdk.Message, len(bodies))
	for i, b := range bodies {
		out[i] = sdk.Message{ID: "m" + string(rune('a'+i)), Body: []byte(b)}
	}
	return out
}

// files lists dir's file names, sorted.
func files(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

func TestNDJSON(t *testing.T) {
	root := t.TempDir()
	c := newClock()
	p := newProducer(t, root, `{"dir":"out/orders"}`, c)
	dir := filepath.Join(root, "out", "orders")

	require.NoError(t, p.Write(t.Context(), msgs(`{"a":1}`, "{\n  \"b\": [1,\n 2]\n}")))
	// Durable and visible as a part file as soon as Write returns.
	part := "orders-20310506T060809Z-000001.ndjson.part"
	require.Equal(t, []string{part}, files(t, dir))
	require.Equal(t, "{\"a\":1}\n{\"b\":[1,2]}\n", read(t, filepath.Join(dir, part)))

	err := p.Write(t.Context(), msgs(`{"c":3}`, "{\n\"d\": tru\n}", `"text"`, ``, `{"e":5} x`))
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 3)
	require.True(t, sdk.IsPermanent(be.Failed[1]))
	require.ErrorContains(t, be.Failed[1], "message mb: body is not valid JSON: line 2, column 9")
	require.ErrorContains(t, be.Failed[3], "body is empty")
	require.ErrorContains(t, be.Failed[4], "line 1, column 9")

	require.NoError(t, p.Close(t.Context()))
	require.Equal(t, []string{"orders-20310506T060809Z-000001.ndjson"}, files(t, dir))
	require.Equal(t, "{\"a\":1}\n{\"b\":[1,2]}\n{\"c\":3}\n\"text\"\n", read(t, filepath.Join(dir, "orders-20310506T060809Z-000001.ndjson")))

	require.ErrorContains(t, p.Write(t.Context(), msgs(`{}`)), "write after close")
}

func TestAllFailedWritesNothing(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{}`, newClock())
	err := p.Write(t.Context(), msgs(`nope`))
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.Empty(t, files(t, root))
	require.NoError(t, p.Close(t.Context()))
	require.Empty(t, files(t, root))
}

func TestJSONFormat(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{"format":"json","prefix":"export","sync":false}`, newClock())
	require.NoError(t, p.Write(t.Context(), msgs(`{"a":1}`, `[1, 2]`)))
	require.NoError(t, p.Write(t.Context(), msgs(`{"big":123456789012345678901234567890}`)))
	require.NoError(t, p.Close(t.Context()))

	names := files(t, root)
	require.Equal(t, []string{"export-20310506T060809Z-000001.json"}, names)
	var got []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(read(t, filepath.Join(root, names[0]))), &got))
	require.Equal(t, []json.RawMessage{json.RawMessage(`{"a":1}`), json.RawMessage(`[1,2]`), json.RawMessage(`{"big":123456789012345678901234567890}`)}, got)
}

func TestCSVFormat(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{"format":"csv"}`, newClock())
	err := p.Write(t.Context(), msgs(
		`{"name":"Ann, \"A\"","id":1,"price":2.5,"tags":["x"],"vip":true,"note":null}`,
		"{\"id\":123456789012345678901234567890,\"name\":\"multi\\nline\"}",
		`{"id":3,"unexpected":1,"other":2}`,
		`[1]`,
	))
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	require.ErrorContains(t, be.Failed[2], "fields other, unexpected are not columns")
	require.ErrorContains(t, be.Failed[3], "want an object")
	require.NoError(t, p.Write(t.Context(), msgs(`{"id":4}`)))
	require.NoError(t, p.Close(t.Context()))

	names := files(t, root)
	require.Equal(t, []string{"orders-20310506T060809Z-000001.csv"}, names)
	rows, err := csv.NewReader(strings.NewReader(read(t, filepath.Join(root, names[0])))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"id", "name", "note", "price", "tags", "vip"},
		{"1", `Ann, "A"`, "", "2.5", `["x"]`, "true"},
		{"123456789012345678901234567890", "multi\nline", "", "", "", ""},
		{"4", "", "", "", "", ""},
	}, rows)
}

func TestRotateBySize(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{"rotateBytes":20}`, newClock())
	for range 3 {
		// 16 bytes a batch: the second batch goes to the same file, then
		// the file is over 20 bytes and the third starts a new one.
		require.NoError(t, p.Write(t.Context(), msgs(`{"n":1}`, `{"n":2}`)))
	}
	require.Equal(t, []string{
		"orders-20310506T060809Z-000001.ndjson",
		"orders-20310506T060809Z-000002.ndjson.part",
	}, files(t, root))
	require.NoError(t, p.Close(t.Context()))
	names := files(t, root)
	require.Len(t, names, 2)
	require.Equal(t, strings.Repeat("{\"n\":1}\n{\"n\":2}\n", 2), read(t, filepath.Join(root, names[0])))
	require.Equal(t, "{\"n\":1}\n{\"n\":2}\n", read(t, filepath.Join(root, names[1])))
}

func TestRotateByTime(t *testing.T) {
	root := t.TempDir()
	c := newClock()
	p := newProducer(t, root, `{"rotateInterval":"10m","format":"json"}`, c)
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":1}`)))
	c.add(9 * time.Minute)
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":2}`)))
	c.add(time.Minute)
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":3}`)))
	require.Equal(t, []string{
		"orders-20310506T060809Z-000001.json",
		"orders-20310506T061809Z-000002.json.part",
	}, files(t, root))
	require.JSONEq(t, `[{"n":1},{"n":2}]`, read(t, filepath.Join(root, "orders-20310506T060809Z-000001.json")))
	require.NoError(t, p.Close(t.Context()))
	require.JSONEq(t, `[{"n":3}]`, read(t, filepath.Join(root, "orders-20310506T061809Z-000002.json")))
}

func TestNamesNeverReused(t *testing.T) {
	root := t.TempDir()
	// A finished file from an earlier run, and a symlink planted at the
	// next part name that points outside the root.
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "orders-20310506T060809Z-000001.ndjson"), []byte("old\n"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(outside, "stolen"), filepath.Join(root, "orders-20310506T060809Z-000002.ndjson.part")))

	p := newProducer(t, root, `{}`, newClock())
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":1}`)))
	require.NoError(t, p.Close(t.Context()))

	require.Equal(t, "old\n", read(t, filepath.Join(root, "orders-20310506T060809Z-000001.ndjson")))
	require.Equal(t, "{\"n\":1}\n", read(t, filepath.Join(root, "orders-20310506T060809Z-000003.ndjson")))
	require.Empty(t, files(t, outside), "nothing may be written outside the root")
}

func TestDirCannotEscapeTheRoot(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "link")))
	require.NoError(t, os.Symlink("../..", filepath.Join(root, "up")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "abs")))

	tests := []struct {
		dir  string
		want string
	}{
		{"link", "link"},
		{"link/sub", "link"},
		{"up", "up"},
		{"abs/x", "abs"},
		{"../x", "must not contain '..'"},
		{"/tmp", "not absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]string{"dir": tt.dir})
			_, err := ProducerConnector.Build(t.Context(), sdk.Env{Integration: "orders", FileRoot: root}, raw)
			require.ErrorContains(t, err, tt.want)
			require.Empty(t, files(t, outside))
		})
	}
}

func TestDirSwappedForSymlinkAfterBuild(t *testing.T) {
	outside := t.TempDir()
	root := t.TempDir()
	p := newProducer(t, root, `{"dir":"out"}`, newClock())
	require.NoError(t, os.RemoveAll(filepath.Join(root, "out")))
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "out")))

	err := p.Write(t.Context(), msgs(`{"n":1}`))
	require.Error(t, err, "the producer's directory is gone")
	require.False(t, sdk.IsPermanent(err))
	require.Empty(t, files(t, outside))
}

func TestDiskErrorIsRetryableAndUndone(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{}`, newClock())
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":1}`)))

	// Make the next write fail the way a full disk would: the file
	// refuses it.
	good := p.cur.f
	name := good.Name()
	ro, err := os.Open(name)
	require.NoError(t, err)
	p.cur.f = ro
	err = p.Write(t.Context(), msgs(`{"n":2}`))
	require.Error(t, err)
	require.False(t, sdk.IsPermanent(err), "disk errors are retryable: %v", err)
	require.ErrorContains(t, err, "file: write orders-")
	require.True(t, p.cur.broken, "a read-only handle cannot truncate either")
	ro.Close()
	p.cur.f = good
	p.cur.broken = false

	require.NoError(t, p.Write(t.Context(), msgs(`{"n":3}`)))
	require.NoError(t, p.Close(t.Context()))
	names := files(t, root)
	require.Len(t, names, 1)
	require.Equal(t, "{\"n\":1}\n{\"n\":3}\n", read(t, filepath.Join(root, names[0])))
}

func TestBrokenFileIsFinishedAndReplaced(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{}`, newClock())
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":1}`)))
	p.cur.broken = true
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":2}`)))
	require.Equal(t, []string{
		"orders-20310506T060809Z-000001.ndjson",
		"orders-20310506T060809Z-000002.ndjson.part",
	}, files(t, root))
}

func TestFinishErrorsAreRetryable(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{"format":"json","rotateBytes":1}`, newClock())
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":1}`)))
	// The part file vanishes: the rename at rotation fails, retryably,
	// and keeps failing until the file is back.
	part := filepath.Join(root, p.cur.name+PartSuffix)
	require.NoError(t, os.Rename(part, part+".moved"))
	err := p.Write(t.Context(), msgs(`{"n":2}`))
	require.ErrorContains(t, err, "rename")
	require.False(t, sdk.IsPermanent(err))
	require.NoError(t, os.Rename(part+".moved", part))
	require.NoError(t, p.Write(t.Context(), msgs(`{"n":2}`)))
	require.NoError(t, p.Close(t.Context()))
	names := files(t, root)
	require.Len(t, names, 2)
	require.JSONEq(t, `[{"n":1}]`, read(t, filepath.Join(root, names[0])))
	require.JSONEq(t, `[{"n":2}]`, read(t, filepath.Join(root, names[1])))
}

func TestCloseConcurrentWithWrite(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{}`, newClock())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 50 {
			if err := p.Write(context.Background(), msgs(`{"n":1}`)); err != nil {
				require.ErrorContains(t, err, "write after close")
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		time.Sleep(time.Millisecond)
		require.NoError(t, p.Close(context.Background()))
	}()
	wg.Wait()
	require.NoError(t, p.Close(context.Background()))
	for _, n := range files(t, root) {
		require.False(t, strings.HasSuffix(n, PartSuffix), "Close leaves no part file: %s", n)
	}
}

func TestBuildNeedsFileRoot(t *testing.T) {
	_, err := ProducerConnector.Build(t.Context(), sdk.Env{Integration: "orders"}, nil)
	require.ErrorContains(t, err, "no file root")
	_, err = ProducerConnector.Build(t.Context(), sdk.Env{Integration: "orders", FileRoot: filepath.Join(t.TempDir(), "missing")}, nil)
	require.ErrorContains(t, err, "open file root")
}

func TestDefaults(t *testing.T) {
	var cfg Config
	require.NoError(t, cfg.Validate())
	s, err := cfg.settings(sdk.Env{Name: "archive"})
	require.NoError(t, err)
	require.Equal(t, settings{dir: ".", format: FormatNDJSON, prefix: "archive", rotateBytes: 64 << 20, interval: time.Hour, sync: true}, s)

	_, err = cfg.settings(sdk.Env{Integration: "bad name"})
	require.ErrorContains(t, err, `prefix "bad name"`)
	bad := Config{Dir: "../x", Format: "xml"}
	err = bad.Validate()
	require.ErrorContains(t, err, "dir")
	require.ErrorContains(t, err, "format")
}

func TestFileModesAndContent(t *testing.T) {
	root := t.TempDir()
	p := newProducer(t, root, `{"dir":"a/b"}`, newClock())
	require.NoError(t, p.Write(t.Context(), msgs(`{"html":"<a&b>"}`)))
	require.NoError(t, p.Close(t.Context()))
	names := files(t, filepath.Join(root, "a", "b"))
	require.Len(t, names, 1)
	info, err := os.Stat(filepath.Join(root, "a", "b", names[0]))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o640), info.Mode().Perm()&0o640)
	require.True(t, bytes.Contains([]byte(read(t, filepath.Join(root, "a", "b", names[0]))), []byte(`<a&b>`)))
}
