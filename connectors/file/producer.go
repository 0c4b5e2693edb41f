// Package file holds the file connectors: the producer appends batches to
// rotating files under the tenant's file root, and the consumer reads the
// records of csv, json, ndjson and xml files dropped there, one message per
// record.
//
// Every file operation goes through an *os.Root (the producer's opened on
// its directory, the consumer's on the tenant's file root), so no config,
// file name or symlink can reach outside the tenant's root. The producer
// never acks and never retries: a batch is durable (written and, by
// default, fsynced) when Write returns nil, and disk failures are retryable
// errors for the hot path to redeliver. The consumer acknowledges a file,
// by moving it to its done directory, only after every record of it is
// durable in the platform; a checkpoint after each published batch lets it
// resume without publishing a durable record twice.
package file

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// PartSuffix ends the name of a file that is still being written.
const PartSuffix = ".part"

// ProducerConnector registers the file producer.
var ProducerConnector = sdk.Connector{
	Name:      "file",
	Kind:      sdk.KindProducer,
	Summary:   "Append messages to rotating ndjson, json or csv files under the tenant's file root.",
	Example:   json.RawMessage(`{"dir": "archive", "format": "ndjson", "rotateBytes": 67108864}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		return build(ctx, env, raw, time.Now)
	},
}

// Producer writes batches to the current part file of its directory.
// Write must be called by one goroutine at a time; Close may be called at
// any time, more than once.
type Producer struct {
	cfg settings
	now func() time.Time

	mu     sync.Mutex
	root   *os.Root
	closed bool
	seq    int
	cur    *partFile
	buf    bytes.Buffer
}

var _ sdk.Producer = (*Producer)(nil)

// partFile is the file being written.
type partFile struct {
	f      *os.File
	name   string // final name; the file is name + PartSuffix until finished
	opened time.Time
	size   int64
	// ended means the closing bytes are written: the file takes no more
	// records and only waits for its rename.
	ended bool
	// broken means a failed write could not be undone; finish it.
	broken bool
	layout layout
}

// layout is what the next record's encoding depends on.
type layout struct {
	records int
	header  []string
	columns map[string]int
}

func build(_ context.Context, env sdk.Env, raw json.RawMessage, now func() time.Time) (*Producer, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	s, err := cfg.settings(env)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	if env.FileRoot == "" {
		return nil, errors.New("file: this role has no file root")
	}
	base, err := os.OpenRoot(env.FileRoot)
	if err != nil {
		return nil, fmt.Errorf("file: open file root: %w", err)
	}
	defer base.Close()
	if err := base.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("file: create dir %q: %w", s.dir, err)
	}
	root, err := base.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("file: open dir %q: %w", s.dir, err)
	}
	return &Producer{cfg: s, now: now, root: root}, nil
}

// Write appends the batch to the current part file and, with Sync, fsyncs
// it before returning nil: that is the point where the batch is durable. A
// message the format cannot hold fails alone, permanently, in a
// *sdk.BatchError; disk errors fail the whole batch, retryably, and leave
// the file as it was before the batch.
func (p *Producer) Write(ctx context.Context, batch []sdk.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("file: write after close")
	}
	if p.cur != nil && p.due() {
		if err := p.finish(); err != nil {
			return err
		}
	}

	var lay layout
	if p.cur != nil {
		lay = p.cur.layout
	}
	p.buf.Reset()
	var failed map[int]error
	written := 0
	for i, msg := range batch {
		mark := p.buf.Len()
		next, err := p.encode(&p.buf, lay, msg)
		if err != nil {
			p.buf.Truncate(mark)
			if failed == nil {
				failed = make(map[int]error)
			}
			failed[i] = err
			continue
		}
		lay = next
		written++
	}

	if written > 0 {
		if err := p.append(lay); err != nil {
			return err
		}
	}
	if failed != nil {
		return &sdk.BatchError{Failed: failed}
	}
	return nil
}

// append writes p.buf to the current file, opening one when needed.
func (p *Producer) append(lay layout) error {
	if p.cur == nil {
		if err := p.open(); err != nil {
			return err
		}
	}
	c := p.cur
	n, err := c.f.Write(p.buf.Bytes())
	if err == nil && p.cfg.sync {
		err = c.f.Sync()
	}
	if err != nil {
		// Take back whatever reached the file: the batch will be
		// redelivered and must not appear twice.
		if n > 0 || p.cfg.sync {
			if terr := c.f.Truncate(c.size); terr != nil {
				c.broken = true
			} else if _, serr := c.f.Seek(c.size, 0); serr != nil {
				c.broken = true
			}
		}
		return diskError("write "+c.name+PartSuffix, err)
	}
	c.size += int64(n)
	c.layout = lay
	return nil
}

// due reports whether the current file must be finished before the next
// batch.
func (p *Producer) due() bool {
	c := p.cur
	return c.ended || c.broken || c.size >= p.cfg.rotateBytes || p.now().Sub(c.opened) >= p.cfg.interval
}

func (p *Producer) ext() string { return p.cfg.format }

// open creates a new part file with a name no other file in the directory
// has or had.
func (p *Producer) open() error {
	now := p.now()
	stamp := now.UTC().Format("20060102T150405Z")
	for range 1000 {
		p.seq++
		name := fmt.Sprintf("%s-%s-%06d.%s", p.cfg.prefix, stamp, p.seq, p.ext())
		// O_EXCL also refuses to follow a symlink planted at this name.
		f, err := p.root.OpenFile(name+PartSuffix, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return diskError("create "+name+PartSuffix, err)
		}
		// Owning the part name, check no finished file has the final name
		// (a previous run may have used it).
		if _, err := p.root.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
			f.Close()
			_ = p.root.Remove(name + PartSuffix)
			if err != nil {
				return diskError("check "+name, err)
			}
			continue
		}
		p.cur = &partFile{f: f, name: name, opened: now}
		return nil
	}
	return sdk.RetryableError(fmt.Errorf("file: no free file name for %s-%s", p.cfg.prefix, stamp), time.Second)
}

// finish ends the current file and renames it to its final name. It picks
// up where a failed call stopped.
func (p *Producer) finish() error {
	c := p.cur
	if !c.ended {
		if p.cfg.format == FormatJSON && c.layout.records > 0 {
			if _, err := c.f.Write([]byte("\n]\n")); err != nil {
				_ = c.f.Truncate(c.size)
				return diskError("end "+c.name+PartSuffix, err)
			}
		}
		if p.cfg.sync {
			if err := c.f.Sync(); err != nil {
				return diskError("sync "+c.name+PartSuffix, err)
			}
		}
		c.ended = true
	}
	if c.f != nil {
		if err := c.f.Close(); err != nil {
			return diskError("close "+c.name+PartSuffix, err)
		}
		c.f = nil
	}
	if err := p.root.Rename(c.name+PartSuffix, c.name); err != nil {
		return diskError("rename "+c.name+PartSuffix, err)
	}
	if p.cfg.sync {
		// The rename is durable once the directory is.
		if err := p.syncDir(); err != nil {
			return diskError("sync dir after renaming "+c.name, err)
		}
	}
	p.cur = nil
	return nil
}

func (p *Producer) syncDir() error {
	d, err := p.root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close finishes the current file. It is safe to call concurrently and
// more than once; only the first call does the work.
func (p *Producer) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var err error
	if p.cur != nil {
		err = p.finish()
		if p.cur != nil && p.cur.f != nil {
			_ = p.cur.f.Close()
		}
	}
	return errors.Join(err, p.root.Close())
}

// diskError wraps a file system failure as retryable: a full or failing
// disk may recover, and the hot path owns the retries.
func diskError(doing string, err error) error {
	return sdk.RetryableError(fmt.Errorf("file: %s: %w", doing, err), 0)
}

// encode appends one message's record to buf and returns the layout after
// it. A message the format cannot hold is a permanent error.
func (p *Producer) encode(buf *bytes.Buffer, lay layout, msg sdk.Message) (layout, error) {
	switch p.cfg.format {
	case FormatJSON:
		if lay.records == 0 {
			buf.WriteString("[\n")
		} else {
			buf.WriteString(",\n")
		}
		if err := compact(buf, msg); err != nil {
			return lay, err
		}
	case FormatCSV:
		return p.encodeCSV(buf, lay, msg)
	default:
		if err := compact(buf, msg); err != nil {
			return lay, err
		}
		buf.WriteByte('\n')
	}
	lay.records++
	return lay, nil
}

// compact appends msg's body without insignificant spaces, so a record is
// one line.
func compact(buf *bytes.Buffer, msg sdk.Message) error {
	if len(bytes.TrimSpace(msg.Body)) == 0 {
		return sdk.Permanentf("file: message %s: body is empty, want JSON", msg.ID)
	}
	if err := json.Compact(buf, msg.Body); err != nil {
		return sdk.PermanentError(fmt.Errorf("file: message %s: body is not valid JSON: %w", msg.ID, jsonbody.Locate(msg.Body, err)))
	}
	return nil
}

func (p *Producer) encodeCSV(buf *bytes.Buffer, lay layout, msg sdk.Message) (layout, error) {
	obj, err := jsonbody.Decode(msg.Body)
	if err != nil {
		return lay, fmt.Errorf("file: message %s: %w", msg.ID, err)
	}
	w := csv.NewWriter(buf)
	if lay.header == nil {
		lay.header = make([]string, 0, len(obj))
		for k := range obj {
			lay.header = append(lay.header, k)
		}
		slices.Sort(lay.header)
		lay.columns = make(map[string]int, len(lay.header))
		for i, k := range lay.header {
			lay.columns[k] = i
		}
		if err := w.Write(lay.header); err != nil {
			return lay, sdk.PermanentError(fmt.Errorf("file: message %s: header: %w", msg.ID, err))
		}
	}
	row := make([]string, len(lay.header))
	var extra []string
	for k, v := range obj {
		i, ok := lay.columns[k]
		if !ok {
			extra = append(extra, k)
			continue
		}
		row[i] = cell(v)
	}
	if extra != nil {
		slices.Sort(extra)
		return lay, sdk.Permanentf("file: message %s: fields %s are not columns of this csv file (%s)",
			msg.ID, strings.Join(extra, ", "), strings.Join(lay.header, ", "))
	}
	if err := w.Write(row); err != nil {
		return lay, sdk.PermanentError(fmt.Errorf("file: message %s: %w", msg.ID, err))
	}
	w.Flush()
	lay.records++
	return lay, nil
}

// cell renders a JSON value as a csv field: strings as they are, null as
// empty, objects and arrays as JSON.
func cell(v any) string {
	if v == nil {
		return ""
	}
	if text, ok := jsonbody.ScalarText(v, 'f'); ok {
		return text
	}
	b, err := jsonbody.Encode(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
