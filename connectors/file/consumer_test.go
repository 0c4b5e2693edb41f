package file

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

func TestConsumerConformance(t *testing.T) {
	env := sdk.Env{Tenant: "t1", Integration: "orders", FileRoot: t.TempDir()}
	sdktest.Conformance(t, ConsumerConnector, env, json.RawMessage(`{"dir":"in","format":"csv","csv":{"delimiter":";"}}`), map[string]json.RawMessage{
		"absolute dir":        json.RawMessage(`{"dir":"/etc"}`),
		"parent dir":          json.RawMessage(`{"dir":"../x"}`),
		"parent inside":       json.RawMessage(`{"dir":"a/../../x"}`),
		"bad format":          json.RawMessage(`{"format":"yaml"}`),
		"bad pattern":         json.RawMessage(`{"pattern":"[a"}`),
		"pattern with slash":  json.RawMessage(`{"pattern":"a/*.csv"}`),
		"negative batch":      json.RawMessage(`{"batchSize":-1}`),
		"huge batch":          json.RawMessage(`{"batchSize":1000000}`),
		"bad settle":          json.RawMessage(`{"settle":"soon"}`),
		"negative settle":     json.RawMessage(`{"settle":"-1s"}`),
		"zero rescan":         json.RawMessage(`{"rescan":"0s"}`),
		"done outside":        json.RawMessage(`{"doneDir":"../done"}`),
		"done is dir":         json.RawMessage(`{"doneDir":"."}`),
		"hidden failed":       json.RawMessage(`{"failedDir":".vrsky-progress"}`),
		"done equals failed":  json.RawMessage(`{"doneDir":"x","failedDir":"x/"}`),
		"csv options on json": json.RawMessage(`{"format":"json","csv":{"header":false}}`),
		"long delimiter":      json.RawMessage(`{"format":"csv","csv":{"delimiter":";;"}}`),
		"quote delimiter":     json.RawMessage(`{"format":"csv","csv":{"delimiter":"\""}}`),
		"empty column":        json.RawMessage(`{"format":"csv","csv":{"columns":["a",""]}}`),
		"duplicate column":    json.RawMessage(`{"format":"csv","csv":{"columns":["a","a"]}}`),
	})
}

func TestConsumerDefaults(t *testing.T) {
	var cfg ConsumerConfig
	require.NoError(t, cfg.Validate())
	s, err := cfg.settings()
	require.NoError(t, err)
	require.Equal(t, consumerSettings{
		dir: ".", pattern: "*", format: FormatNDJSON, delimiter: ',', header: true,
		batchSize: DefaultBatchSize, settle: DefaultSettle, rescan: DefaultRescan,
		doneDir: DefaultDoneDir, failedDir: DefaultFailedDir,
	}, s)

	_, err = buildConsumer(t.Context(), sdk.Env{}, nil)
	require.ErrorContains(t, err, "no file root")
	_, err = buildConsumer(t.Context(), sdk.Env{FileRoot: filepath.Join(t.TempDir(), "missing")}, nil)
	require.ErrorContains(t, err, "open file root")
}

// recordingSink keeps what it is given; it fails every call after the
// first okCalls successful ones when okCalls >= 0.
type recordingSink struct {
	mu   sync.Mutex
	msgs []sdk.Message
	// batchBytes are the body bytes of each successful Publish.
	batchBytes []int
	calls      int
	okCalls    int
	// block makes Publish wait for its context to end.
	block bool
}

func newSink() *recordingSink { return &recordingSink{okCalls: -1} }

func (s *recordingSink) Publish(ctx context.Context, msgs []sdk.Message) error {
	s.mu.Lock()
	block := s.block
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.okCalls >= 0 && s.calls > s.okCalls {
		return sdk.RetryableError(errors.New("jetstream unavailable"), 0)
	}
	s.msgs = append(s.msgs, msgs...)
	size := 0
	for _, m := range msgs {
		size += len(m.Body)
	}
	s.batchBytes = append(s.batchBytes, size)
	return nil
}

func (s *recordingSink) got() []sdk.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sdk.Message(nil), s.msgs...)
}

func ids(msgs []sdk.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func bodies(msgs []sdk.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

func newConsumer(t *testing.T, root, cfg string) *Consumer {
	t.Helper()
	c, err := buildConsumer(t.Context(), sdk.Env{Tenant: "t1", Integration: "orders", FileRoot: root}, json.RawMessage(cfg))
	require.NoError(t, err)
	return c
}

// running is a consumer's Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, c *Consumer, sink sdk.Sink) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx, sink) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns what it returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

// exists reports whether a path exists, without following a symlink.
func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, what)
}

func write(t *testing.T, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o750))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o640))
}

// readAll runs a consumer on one file until it leaves dir, and returns the
// messages.
func readAll(t *testing.T, format, name, content string, extra string) ([]sdk.Message, string) {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "in", name), content)
	c := newConsumer(t, root, fmt.Sprintf(`{"dir":"in","format":%q,"settle":"0s","rescan":"10ms"%s}`, format, extra))
	sink := newSink()
	r := start(t, c, sink)
	waitFor(t, "the file leaves the directory", func() bool { return !exists(filepath.Join(root, "in", name)) })
	require.NoError(t, r.stop(t))
	return sink.got(), root
}

func TestConsumerCSVWithHeaderAndBOM(t *testing.T) {
	content := "\xEF\xBB\xBFid,name,note\n1,apple,\"ripe, red\"\n\n2,pear,\"two\nlines\"\r\n3,plum,\"say \"\"hi\"\"\"\n"
	got, root := readAll(t, "csv", "orders.csv", content, "")
	info, err := os.Stat(filepath.Join(root, "in", "done", "orders.csv"))
	require.NoError(t, err, "the file is moved to done")

	require.Equal(t, []string{
		`{"id":"1","name":"apple","note":"ripe, red"}`,
		`{"id":"2","name":"pear","note":"two\nlines"}`,
		`{"id":"3","name":"plum","note":"say \"hi\""}`,
	}, bodies(got))
	for i, want := range []string{"2", "4", "6"} {
		m := got[i]
		require.Equal(t, want, m.Header(HeaderLine))
		require.Equal(t, "orders.csv", m.Header(HeaderFile))
		require.Empty(t, m.Header(ErrorHeader))
		require.Equal(t, "application/json", m.ContentType)
		require.Equal(t, "t1", m.Tenant)
		require.Equal(t, "orders", m.Integration)
		require.Equal(t, fmt.Sprintf("orders.csv:%d:%d:%d", info.Size(), info.ModTime().Unix(), i), m.ID)
		require.False(t, m.Received.IsZero())
	}
	entries, err := os.ReadDir(filepath.Join(root, "in", ProgressDir))
	require.NoError(t, err)
	require.Empty(t, entries, "the checkpoint is removed once the file is done")
}

func TestConsumerCSVBadRows(t *testing.T) {
	content := "a,b\n1,2\n3\n4,5,6\n7,x\"y\n8,9\n"
	got, root := readAll(t, "csv", "rows.csv", content, "")
	require.True(t, exists(filepath.Join(root, "in", "done", "rows.csv")), "bad rows do not block the file")
	require.Len(t, got, 5)
	require.Equal(t, `{"a":"1","b":"2"}`, string(got[0].Body))
	require.Equal(t, `{"a":"8","b":"9"}`, string(got[4].Body))

	bad := got[1:4]
	for i, want := range []struct{ line, raw, problem string }{
		{"3", "3", "line 3: 1 fields, want 2 (a, b)"},
		{"4", "4,5,6", "line 4: 3 fields, want 2 (a, b)"},
		{"5", `7,x"y`, "line 5, column 4: malformed CSV"},
	} {
		require.Equal(t, want.line, bad[i].Header(HeaderLine))
		require.Equal(t, want.raw, string(bad[i].Body))
		require.Contains(t, bad[i].Header(ErrorHeader), want.problem)
		require.Equal(t, "text/plain; charset=utf-8", bad[i].ContentType)
	}
}

func TestConsumerCSVOptions(t *testing.T) {
	tests := []struct {
		name, options, content string
		want                   []string
	}{
		{"no header", `{"delimiter":";","header":false}`, "1;2\n3;4\n", []string{`{"col1":"1","col2":"2"}`, `{"col1":"3","col2":"4"}`}},
		{"columns replace the header", `{"columns":["x","y"]}`, "a,b\n1,2\n", []string{`{"x":"1","y":"2"}`}},
		{"columns without header", `{"header":false,"columns":["x","y"]}`, "1,2\n", []string{`{"x":"1","y":"2"}`}},
		{"empty header name", `{}`, "a,,c\n1,2,3\n", []string{`{"a":"1","col2":"2","c":"3"}`}},
		{"tab and unicode", `{"delimiter":"\t"}`, "k\tv\n<ü>\t&\n", []string{`{"k":"<ü>","v":"&"}`}},
		{"header only", `{}`, "a,b\n", []string{}},
		{"empty file", `{}`, "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, root := readAll(t, "csv", "x.csv", tt.content, `,"csv":`+tt.options)
			require.Equal(t, tt.want, bodies(got))
			require.True(t, exists(filepath.Join(root, "in", "done", "x.csv")))
		})
	}
}

func TestConsumerNDJSONWithMalformedLine(t *testing.T) {
	content := "{\"a\":1}\n\n{\"a\": 2,}\n[1]\n{\"a\":3, \"big\": 12345678901234567890}\r\n{\"a\":4}"
	got, root := readAll(t, "ndjson", "events.ndjson", content, `,"batchSize":2`)
	require.True(t, exists(filepath.Join(root, "in", "done", "events.ndjson")))
	require.Equal(t, []string{`{"a":1}`, `{"a": 2,}`, `[1]`, `{"a":3,"big":12345678901234567890}`, `{"a":4}`}, bodies(got))
	require.Equal(t, []string{"1", "3", "4", "5", "6"}, []string{
		got[0].Header(HeaderLine), got[1].Header(HeaderLine), got[2].Header(HeaderLine), got[3].Header(HeaderLine), got[4].Header(HeaderLine),
	})
	require.Contains(t, got[1].Header(ErrorHeader), "line 3, column 9: malformed JSON")
	require.Equal(t, "text/plain; charset=utf-8", got[1].ContentType)
	require.Equal(t, "line 4: JSON value is an array, want an object", got[2].Header(ErrorHeader))
	for _, i := range []int{0, 3, 4} {
		require.Empty(t, got[i].Header(ErrorHeader))
		require.Equal(t, "application/json", got[i].ContentType)
	}
	require.True(t, strings.HasSuffix(got[4].ID, ":4"))
}

func TestConsumerJSON(t *testing.T) {
	t.Run("array", func(t *testing.T) {
		content := "[\n  {\"id\": 1},\n  {\"id\": 2, \"tags\": [\"a\", \"b\"]},\n  7,\n  {\"id\": 3}\n]\n"
		got, root := readAll(t, "json", "list.json", content, "")
		require.True(t, exists(filepath.Join(root, "in", "done", "list.json")))
		require.Equal(t, []string{`{"id":1}`, `{"id":2,"tags":["a","b"]}`, `7`, `{"id":3}`}, bodies(got))
		require.Equal(t, "2", got[0].Header(HeaderLine))
		require.Equal(t, "5", got[3].Header(HeaderLine))
		require.Equal(t, "line 4: record is a number, want an object", got[2].Header(ErrorHeader))
	})
	t.Run("one object", func(t *testing.T) {
		got, _ := readAll(t, "json", "one.json", "\xEF\xBB\xBF\n {\"id\": {\"n\": [1, {}]}}\n", "")
		require.Equal(t, []string{`{"id":{"n":[1,{}]}}`}, bodies(got))
		require.Equal(t, "2", got[0].Header(HeaderLine))
	})
	t.Run("empty array", func(t *testing.T) {
		got, root := readAll(t, "json", "none.json", "[ ]", "")
		require.Empty(t, got)
		require.True(t, exists(filepath.Join(root, "in", "done", "none.json")))
	})
}

func TestConsumerXML(t *testing.T) {
	content := `<?xml version="1.0" encoding="UTF-8"?>
<!-- exported -->
<orders>
  <order id="1"><sku>A</sku><sku>B</sku><qty>2</qty></order>
  <order id="2">rush<note xml:lang="en">hi &amp; bye</note></order>
  <order><a>1</b></order>
  stray
  <item/>
  <p:item xmlns:p="urn:x"><![CDATA[<raw>]]></p:item>
</orders>
`
	got, root := readAll(t, "xml", "orders.xml", content, "")
	require.True(t, exists(filepath.Join(root, "in", "done", "orders.xml")))
	require.Equal(t, []string{
		`{"@id":"1","sku":["A","B"],"qty":"2"}`,
		`{"@id":"2","#text":"rush","note":{"@xml:lang":"en","#text":"hi & bye"}}`,
		`<order><a>1</b></order>`,
		`stray`,
		`{}`,
		`{"@xmlns:p":"urn:x","#text":"<raw>"}`,
	}, bodies(got))
	require.Equal(t, "order", got[0].Header(HeaderElement))
	require.Equal(t, "4", got[0].Header(HeaderLine))
	require.Equal(t, "line 6, column 14: invalid XML element: end tag </b> does not match <a>", got[2].Header(ErrorHeader))
	require.Equal(t, "line 7, column 3: text between records", got[3].Header(ErrorHeader))
	require.Equal(t, "item", got[4].Header(HeaderElement))
	require.Equal(t, "p:item", got[5].Header(HeaderElement))
	require.Equal(t, "9", got[5].Header(HeaderLine))
}

func TestConsumerUnparseableFilesGoToFailed(t *testing.T) {
	tests := []struct {
		name, format, content, reason string
	}{
		{"json scalar", "json", `42`, "want a JSON array of objects, or one object"},
		{"json string", "json", ` "x"`, "line 1, column 2: the file holds a string"},
		{"json empty", "json", "  \n", "the file is empty"},
		{"json cut off", "json", "[{\"a\":1},\n{\"a\":", "line 2, column 6: the JSON ends too early"},
		{"json malformed", "json", "[{\"a\":1},\n {\"a\" 2}]", "line 2, column 7: malformed JSON"},
		{"json missing comma", "json", "[{\"a\":1} {\"a\":2}]", "line 1, column 10: malformed JSON"},
		{"json trailing data", "json", "[{\"a\":1}]\n{}", "line 2, column 1: data after the top-level JSON value"},
		{"json trailing garbage", "json", "{\"a\":1} x", "line 1, column 9: malformed JSON"},
		{"json object cut off", "json", "{\"a\":[1,", "ends too early"},
		{"xml dtd", "xml", "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY a \"aaaa\">]>\n<r><x>&a;</x></r>", "line 2, column 1: malformed XML: DTDs and other directives are not allowed"},
		{"xml cut off", "xml", "<r>\n<x>1</x>\n<x>2", "is not closed"},
		{"xml root not closed", "xml", "<r>\n<x>1</x>\n", "root element <r> is not closed"},
		{"xml empty", "xml", "", "no root element"},
		{"xml two roots", "xml", "<r></r><s></s>", "more than one root element"},
		{"xml text outside", "xml", "hello <r></r>", "text outside the root element"},
		{"xml bad end", "xml", "<r></s>", "end tag </s> does not match <r>"},
		{"xml stray end", "xml", "</r>", "without a start tag"},
		{"xml syntax", "xml", "<r>\n  <x a=1/></r>", "line 2, column"},
		{"xml undefined entity", "xml", "<r><x>&bomb;</x></r>", "malformed XML"},
		{"csv duplicate header", "csv", "a,a\n1,2\n", "column \"a\" appears twice"},
		{"csv malformed header", "csv", "a,\"b\n", "header: line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, root := readAll(t, tt.format, "bad.dat", tt.content, "")
			require.Empty(t, got, "nothing of an unparseable file is published")
			require.FileExists(t, filepath.Join(root, "in", "failed", "bad.dat"))
			reason, err := os.ReadFile(filepath.Join(root, "in", "failed", "bad.dat.reason.txt"))
			require.NoError(t, err)
			require.Contains(t, string(reason), tt.reason)
		})
	}
}

func TestConsumerWaitsForFileToSettle(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "in", "slow.ndjson")
	write(t, p, "{\"n\":1}\n")
	clk := &clock{t: time.Now()}
	c := newConsumer(t, root, `{"dir":"in","settle":"1h","rescan":"5ms"}`)
	c.now = clk.now
	sink := newSink()
	start(t, c, sink)

	time.Sleep(100 * time.Millisecond)
	require.Empty(t, sink.got(), "a fresh file is not read before it settles")

	// Still being written: each change restarts the settle time.
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("{\"n\":2}\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	clk.add(59 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	require.Empty(t, sink.got())
	require.True(t, exists(p))

	clk.add(61 * time.Minute)
	waitFor(t, "the settled file is read", func() bool { return len(sink.got()) == 2 })
	waitFor(t, "and moved to done", func() bool { return exists(filepath.Join(root, "in", "done", "slow.ndjson")) })
}

func TestConsumerOldFileIsReadAtOnce(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "in", "old.ndjson")
	write(t, p, "{\"n\":1}\n")
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.Chtimes(p, old, old))
	sink := newSink()
	start(t, newConsumer(t, root, `{"dir":"in","settle":"1h","rescan":"1h"}`), sink)
	waitFor(t, "a file older than the settle time is read on the first scan", func() bool { return len(sink.got()) == 1 })
}

func TestConsumerSkipsPartialHiddenAndUnmatchedFiles(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "in")
	for _, name := range []string{"a.ndjson.part", "b.ndjson.tmp", ".c.ndjson", "d.txt", "e.ndjson"} {
		write(t, filepath.Join(in, name), "{\"n\":1}\n")
	}
	require.NoError(t, os.MkdirAll(filepath.Join(in, "sub.ndjson"), 0o750))
	sink := newSink()
	r := start(t, newConsumer(t, root, `{"dir":"in","pattern":"*.ndjson","settle":"0s","rescan":"10ms"}`), sink)
	waitFor(t, "e is read", func() bool { return exists(filepath.Join(in, "done", "e.ndjson")) })
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, r.stop(t))
	require.Len(t, sink.got(), 1)
	require.Equal(t, "e.ndjson", sink.got()[0].Header(HeaderFile))
	for _, name := range []string{"a.ndjson.part", "b.ndjson.tmp", ".c.ndjson", "d.txt", "sub.ndjson"} {
		require.True(t, exists(filepath.Join(in, name)), name)
	}
}

func TestConsumerResumesAfterPublishFailure(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "in", "big.ndjson")
	var lines []string
	for i := range 7 {
		lines = append(lines, fmt.Sprintf(`{"n":%d}`, i))
	}
	write(t, p, strings.Join(lines, "\n")+"\n")
	cfg := `{"dir":"in","batchSize":3,"settle":"0s","rescan":"10ms"}`

	// The sink fails after the first batch: Run returns the error.
	failing := &recordingSink{okCalls: 1}
	err := newConsumer(t, root, cfg).Run(t.Context(), failing)
	require.ErrorContains(t, err, "jetstream unavailable")
	require.False(t, sdk.IsPermanent(err))
	require.ErrorContains(t, err, "publish records 3-5 of in/big.ndjson")
	first := failing.got()
	require.Len(t, first, 3)
	require.True(t, exists(p), "the file is not acknowledged before all its records are durable")

	c := newConsumer(t, root, cfg)
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(c.checkpointPath("big.ndjson"))))
	require.NoError(t, err)
	var cp checkpoint
	require.NoError(t, json.Unmarshal(b, &cp))
	info, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, checkpoint{File: "big.ndjson", Size: info.Size(), Mtime: info.ModTime().UnixNano(), NextRecord: 3}, cp)

	// A new Run publishes only the rest.
	sink := newSink()
	r := start(t, c, sink)
	waitFor(t, "the file is done", func() bool { return exists(filepath.Join(root, "in", "done", "big.ndjson")) })
	require.NoError(t, r.stop(t))
	rest := sink.got()
	require.Len(t, rest, 4)
	require.Equal(t, `{"n":3}`, string(rest[0].Body))

	all := append(ids(first), ids(rest)...)
	unique := map[string]bool{}
	for _, id := range all {
		require.False(t, unique[id], "duplicate ID %s", id)
		unique[id] = true
	}
	require.Len(t, unique, 7)
	require.False(t, exists(filepath.Join(root, filepath.FromSlash(c.checkpointPath("big.ndjson")))), "the checkpoint is removed")
}

func TestConsumerIgnoresCheckpointOfAnotherVersion(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "in", "f.ndjson")
	write(t, p, "{\"n\":0}\n{\"n\":1}\n")
	c := newConsumer(t, root, `{"dir":"in","settle":"0s","rescan":"10ms"}`)
	cpPath := filepath.Join(root, filepath.FromSlash(c.checkpointPath("f.ndjson")))
	write(t, cpPath, `{"file":"f.ndjson","size":3,"mtime":1,"nextRecord":1}`)
	sink := newSink()
	start(t, c, sink)
	waitFor(t, "both records are read", func() bool { return len(sink.got()) == 2 })

	// A torn checkpoint is ignored too.
	write(t, filepath.Join(root, "in", "g.ndjson"), "{\"n\":0}\n")
	write(t, filepath.Join(root, filepath.FromSlash(c.checkpointPath("g.ndjson"))), `{"file":`)
	waitFor(t, "g is read", func() bool { return len(sink.got()) == 3 })
}

func TestConsumerRedroppedFileGetsTheSameIDs(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "in", "same.ndjson")
	content := "{\"n\":1}\n{\"n\":2}\n"
	mtime := time.Now().Add(-time.Minute).Truncate(time.Second)
	write(t, p, content)
	require.NoError(t, os.Chtimes(p, mtime, mtime))
	sink := newSink()
	start(t, newConsumer(t, root, `{"dir":"in","settle":"0s","rescan":"10ms"}`), sink)
	waitFor(t, "first copy done", func() bool { return exists(filepath.Join(root, "in", "done", "same.ndjson")) })
	first := ids(sink.got())

	write(t, p, content)
	require.NoError(t, os.Chtimes(p, mtime, mtime))
	waitFor(t, "second copy done", func() bool { return exists(filepath.Join(root, "in", "done", "same.ndjson.1")) })
	got := sink.got()
	require.Len(t, got, 4)
	require.Equal(t, first, ids(got[2:]), "JetStream drops the second copy's messages as duplicates")
}

func TestConsumerDoesNotFollowSymlinksOutOfTheRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "tenant")
	secret := filepath.Join(base, "secret.ndjson")
	write(t, secret, "{\"password\":\"hunter2\"}\n")
	write(t, filepath.Join(root, "other", "inside.ndjson"), "{\"ok\":true}\n")
	require.NoError(t, os.MkdirAll(filepath.Join(root, "in"), 0o750))
	require.NoError(t, os.Symlink(secret, filepath.Join(root, "in", "a-out.ndjson")))
	require.NoError(t, os.Symlink("../../secret.ndjson", filepath.Join(root, "in", "b-relative.ndjson")))
	require.NoError(t, os.Symlink("../other/inside.ndjson", filepath.Join(root, "in", "c-inside.ndjson")))

	sink := newSink()
	r := start(t, newConsumer(t, root, `{"dir":"in","settle":"0s","rescan":"10ms"}`), sink)
	waitFor(t, "all links handled", func() bool {
		return exists(filepath.Join(root, "in", "failed", "a-out.ndjson")) &&
			exists(filepath.Join(root, "in", "failed", "b-relative.ndjson")) &&
			exists(filepath.Join(root, "in", "done", "c-inside.ndjson"))
	})
	require.NoError(t, r.stop(t))
	got := sink.got()
	require.Len(t, got, 1, "only the link that stays inside the root is read")
	require.Equal(t, `{"ok":true}`, string(got[0].Body))
	reason, err := os.ReadFile(filepath.Join(root, "in", "failed", "a-out.ndjson.reason.txt"))
	require.NoError(t, err)
	require.Contains(t, string(reason), "open:")
	require.FileExists(t, secret, "the target is never touched")
}

func TestConsumerFailedNamesDoNotCollide(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "in", "failed", "x.json"), "older")
	write(t, filepath.Join(root, "in", "failed", "x.json.1.reason.txt"), "older reason")
	got, _ := func() ([]sdk.Message, string) {
		write(t, filepath.Join(root, "in", "x.json"), "nope")
		sink := newSink()
		r := start(t, newConsumer(t, root, `{"dir":"in","format":"json","settle":"0s","rescan":"10ms"}`), sink)
		waitFor(t, "moved", func() bool { return !exists(filepath.Join(root, "in", "x.json")) })
		require.NoError(t, r.stop(t))
		return sink.got(), root
	}()
	require.Empty(t, got)
	require.FileExists(t, filepath.Join(root, "in", "failed", "x.json.2"))
	require.FileExists(t, filepath.Join(root, "in", "failed", "x.json.2.reason.txt"))
	b, err := os.ReadFile(filepath.Join(root, "in", "failed", "x.json"))
	require.NoError(t, err)
	require.Equal(t, "older", string(b))
}

func TestConsumerStopsPromptly(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		r := start(t, newConsumer(t, t.TempDir(), `{"rescan":"1h"}`), newSink())
		time.Sleep(20 * time.Millisecond)
		began := time.Now()
		require.NoError(t, r.stop(t))
		require.Less(t, time.Since(began), sdktest.Prompt)
	})
	t.Run("while publishing", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, "a.ndjson"), "{}\n")
		sink := &recordingSink{okCalls: -1, block: true}
		r := start(t, newConsumer(t, root, `{"settle":"0s","rescan":"1h"}`), sink)
		time.Sleep(50 * time.Millisecond)
		require.NoError(t, r.stop(t))
		require.True(t, exists(filepath.Join(root, "a.ndjson")), "nothing durable, nothing acknowledged")
	})
	t.Run("between batches", func(t *testing.T) {
		root := t.TempDir()
		write(t, filepath.Join(root, "a.ndjson"), strings.Repeat("{}\n", 10))
		ctx, cancel := context.WithCancel(t.Context())
		sink := &cancellingSink{cancel: cancel}
		require.NoError(t, newConsumer(t, root, `{"settle":"0s","batchSize":2}`).Run(ctx, sink))
		require.Equal(t, 1, sink.calls, "no batch is published after the context ends")
		require.True(t, exists(filepath.Join(root, "a.ndjson")))
	})
}

// cancellingSink accepts one batch and cancels the run's context.
type cancellingSink struct {
	cancel context.CancelFunc
	calls  int
}

func (s *cancellingSink) Publish(context.Context, []sdk.Message) error {
	s.calls++
	s.cancel()
	return nil
}

func TestConsumerDirErrors(t *testing.T) {
	root := t.TempDir()
	c := newConsumer(t, root, `{"dir":"in"}`)
	require.NoError(t, os.RemoveAll(filepath.Join(root, "in")))
	require.ErrorContains(t, c.Run(t.Context(), newSink()), `open dir "in"`)

	require.NoError(t, os.RemoveAll(root))
	require.ErrorContains(t, c.Run(t.Context(), newSink()), "open file root")
}

func TestTrackerPositions(t *testing.T) {
	tr := &tracker{r: strings.NewReader("ab\ncdé\nf")}
	buf := make([]byte, 64)
	_, err := tr.Read(buf)
	require.NoError(t, err)
	line, col := tr.position(4)
	require.Equal(t, []int{2, 2}, []int{line, col})
	tr.release(5) // up to the middle of "cdé"
	line, col = tr.position(7)
	require.Equal(t, []int{2, 4}, []int{line, col})
	line, col = tr.position(8)
	require.Equal(t, []int{3, 1}, []int{line, col})
	line, col = tr.position(99)
	require.Equal(t, []int{3, 2}, []int{line, col}, "past the end")
	require.Equal(t, "é", string(tr.slice(5, 7)))
	require.Empty(t, tr.slice(8, 2))
}

func TestNDJSONLongLine(t *testing.T) {
	long := strings.Repeat("x", 3*BadPrefixBytes)
	n := &ndjsonReader{r: bufio.NewReaderSize(strings.NewReader("{\"a\":1}\n"+long+"\n{\"a\":2}"), 16), max: 2 * BadPrefixBytes}
	rec, err := n.next()
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(rec.body))
	rec, err = n.next()
	require.NoError(t, err)
	require.Equal(t, 2, rec.line)
	require.Equal(t, long[:BadPrefixBytes], string(rec.body))
	require.Contains(t, rec.problem, "line 2: longer than 8192 bytes")
	rec, err = n.next()
	require.NoError(t, err)
	require.Equal(t, []any{3, `{"a":2}`}, []any{rec.line, string(rec.body)})
	_, err = n.next()
	require.ErrorIs(t, err, io.EOF)
}

func TestJSONKinds(t *testing.T) {
	for in, want := range map[string]string{`{}`: "", `[]`: "an array", `"s"`: "a string", `true`: "a boolean", `null`: "null", `-1`: "a number"} {
		require.Equal(t, want, jsonKind([]byte(in)), in)
	}
	for tok, want := range map[json.Token]string{json.Delim(']'): "a stray ]", "s": "a string", true: "a boolean", nil: "null", 1.5: "a number"} {
		require.Equal(t, want, tokenKind(tok))
	}
}

// TestConsumerBatchesAreBoundedInBytes: large records are published in
// batches of at most maxBatchBytes of bodies, however many records the
// batch size allows, and none is lost or repeated.
func TestConsumerBatchesAreBoundedInBytes(t *testing.T) {
	defer func(old int) { maxBatchBytes = old }(maxBatchBytes)
	maxBatchBytes = 4 << 10
	var content strings.Builder
	for i := range 20 {
		fmt.Fprintf(&content, "{\"n\":%d,\"pad\":%q}\n", i, strings.Repeat("x", 1000))
	}
	root := t.TempDir()
	write(t, filepath.Join(root, "in", "big.ndjson"), content.String())
	c := newConsumer(t, root, `{"dir":"in","format":"ndjson","settle":"0s","rescan":"10ms","batchSize":500}`)
	sink := newSink()
	r := start(t, c, sink)
	waitFor(t, "the file leaves the directory", func() bool { return !exists(filepath.Join(root, "in", "big.ndjson")) })
	require.NoError(t, r.stop(t))
	require.Len(t, sink.got(), 20)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	require.GreaterOrEqual(t, len(sink.batchBytes), 4, "split by bytes, not one batch of 20")
	for _, n := range sink.batchBytes {
		require.LessOrEqual(t, n, maxBatchBytes+1100, "a batch stops at the first record reaching the bound")
	}
}
