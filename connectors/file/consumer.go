package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Headers set on every message the consumer publishes.
const (
	// HeaderFile is the name of the file the record came from.
	HeaderFile = "file"
	// HeaderLine is the 1-based line the record starts on.
	HeaderLine = "line"
	// HeaderElement is an xml record's element name.
	HeaderElement = "element"
	// ErrorHeader marks a record that could not be read: its value says
	// why, with the line (and column where known), and the body is the
	// record's raw text as text/plain. The runtime routes such messages to
	// the tenant's DLQ.
	ErrorHeader = sdk.HeaderRecordError
)

// ProgressDir is the hidden directory, inside the consumer's dir, that
// holds one checkpoint per file being read.
const ProgressDir = ".vrsky-progress"

// ConsumerConnector registers the file consumer.
var ConsumerConnector = sdk.Connector{
	Name:      "file",
	Kind:      sdk.KindConsumer,
	Summary:   "Read csv, json, ndjson or xml files dropped under the tenant's file root, one message per record.",
	Example:   json.RawMessage(`{"dir": "inbox", "pattern": "*.csv", "format": "csv", "doneDir": "done"}`),
	NewConfig: func() any { return new(ConsumerConfig) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		return buildConsumer(ctx, env, raw)
	},
	Polls: true,
}

// Consumer reads the complete files of a directory record by record.
//
// Every file operation goes through an *os.Root opened on the tenant's
// file root, so no config, file name or symlink reaches outside it: a
// symlink that points outside the root cannot be opened, and the file is
// moved to the failed directory with the reason.
//
// A file is read once its size and modification time have not changed for
// the settle time; names starting with '.' and ending in .part or .tmp are
// never read. Files are read in name order. Each record becomes one
// message whose ID is NAME:SIZE:MTIME:INDEX (MTIME in Unix seconds, INDEX
// the record's 0-based position), so reading the same file again yields
// the same IDs and JetStream drops the duplicates within its duplicate
// window.
//
// Records are published in batches. After each batch is durable a
// checkpoint is written to ProgressDir; a file whose checkpoint matches
// its size and modification time resumes after the last durable batch.
// Only when every record is durable is the file moved to the done
// directory (the file is acknowledged) and its checkpoint removed.
//
// A bad record (a malformed ndjson line, a ragged csv row, an invalid xml
// element, an array element that is not an object) does not stop the
// file: it is published as a text/plain message holding its raw text,
// with ErrorHeader saying what is wrong and where, so that it reaches the
// DLQ. A file that cannot be parsed at all (a json or xml file that is
// malformed, cut off or holds a DTD, a csv header that is not valid, a
// file that cannot be opened) is moved to the failed directory with a
// NAME.reason.txt beside it. json and xml files are checked whole before
// their first record is published, so none of a failed file's records is
// published.
//
// Run and Poll (one pass, for scheduled integrations) must not be called
// concurrently on the same directory: the runtime holds a lease so that
// only one runner reads it.
type Consumer struct {
	cfg      consumerSettings
	fileRoot string
	tenant   string
	integ    string
	log      *slog.Logger
	now      func() time.Time
}

var _ sdk.Consumer = (*Consumer)(nil)

func buildConsumer(_ context.Context, env sdk.Env, raw json.RawMessage) (*Consumer, error) {
	var cfg ConsumerConfig
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	if env.FileRoot == "" {
		return nil, errors.New("file: this role has no file root")
	}
	root, err := os.OpenRoot(env.FileRoot)
	if err != nil {
		return nil, fmt.Errorf("file: open file root: %w", err)
	}
	defer root.Close()
	if err := root.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("file: create dir %q: %w", s.dir, err)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Consumer{
		cfg:      s,
		fileRoot: env.FileRoot,
		tenant:   env.Tenant,
		integ:    env.Integration,
		log:      log.With("connector", "file", "dir", s.dir),
		now:      time.Now,
	}, nil
}

// seen is what a scan last saw of a file that is not yet complete.
type seen struct {
	size  int64
	mtime time.Time
	since time.Time
}

// Run lists the directory every rescan period and reads each complete file
// (see Consumer). It returns nil when ctx ends, and an error when a
// publish fails or the directory cannot be read: the runner restarts it,
// and the checkpoints make it resume where the last durable batch ended.
func (c *Consumer) Run(ctx context.Context, sink sdk.Sink) error {
	if ctx.Err() != nil {
		return nil
	}
	root, err := os.OpenRoot(c.fileRoot)
	if err != nil {
		return fmt.Errorf("file: open file root: %w", err)
	}
	defer root.Close()
	watch := map[string]seen{}
	for {
		wait, err := c.scan(ctx, root, sink, watch)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// scan reads every complete file once and returns how long to wait before
// the next scan: the rescan period, or less when a file will have settled
// sooner.
func (c *Consumer) scan(ctx context.Context, root *os.Root, sink sdk.Sink, watch map[string]seen) (time.Duration, error) {
	names, err := c.list(root)
	if err != nil {
		return 0, err
	}
	wait := c.cfg.rescan
	listed := make(map[string]bool, len(names))
	for _, name := range names {
		if ctx.Err() != nil {
			return 0, nil
		}
		listed[name] = true
		p := path.Join(c.cfg.dir, name)
		info, err := root.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err == nil && !info.Mode().IsRegular():
			continue
		case err == nil:
			if left := c.settling(name, info, watch); left > 0 {
				wait = min(wait, left)
				continue
			}
		}
		// A file that cannot even be stat'ed (a symlink out of the root)
		// is read now: opening it fails and it is moved to failed.
		delete(watch, name)
		if err := c.process(ctx, root, sink, name); err != nil {
			return 0, err
		}
	}
	for name := range watch {
		if !listed[name] {
			delete(watch, name)
		}
	}
	return wait, nil
}

// list returns the names in dir that may be records files, sorted.
func (c *Consumer) list(root *os.Root) ([]string, error) {
	d, err := root.Open(c.cfg.dir)
	if err != nil {
		return nil, fmt.Errorf("file: open dir %q: %w", c.cfg.dir, err)
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fmt.Errorf("file: list dir %q: %w", c.cfg.dir, err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, PartSuffix) || strings.HasSuffix(name, ".tmp") {
			continue
		}
		if ok, _ := path.Match(c.cfg.pattern, name); ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// settling returns how much longer a file must stay unchanged before it is
// complete, or 0 when it is. A file first seen with an mtime older than the
// settle time is complete at once.
func (c *Consumer) settling(name string, info fs.FileInfo, watch map[string]seen) time.Duration {
	now := c.now()
	w, ok := watch[name]
	if !ok || w.size != info.Size() || !w.mtime.Equal(info.ModTime()) {
		since := now
		if !ok && now.Sub(info.ModTime()) >= c.cfg.settle {
			since = info.ModTime()
		}
		w = seen{size: info.Size(), mtime: info.ModTime(), since: since}
		watch[name] = w
	}
	return max(c.cfg.settle-now.Sub(w.since), 0)
}

// process reads one file, publishes its records and moves it to done, or
// moves it to failed when it cannot be parsed. It returns an error only
// when the file must be tried again (a publish or disk failure).
func (c *Consumer) process(ctx context.Context, root *os.Root, sink sdk.Sink, name string) error {
	p := path.Join(c.cfg.dir, name)
	f, err := root.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return c.fail(root, name, fmt.Sprintf("open: %v", err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("file: stat %s: %w", p, err)
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	file := fileState{name: name, size: info.Size(), mtime: info.ModTime()}

	if c.cfg.format == FormatJSON || c.cfg.format == FormatXML {
		// Check the whole file first: a malformed or cut-off file must not
		// have half its records published.
		if err := c.check(f); err != nil {
			return c.failOrRetry(root, name, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("file: rewind %s: %w", p, err)
		}
	}

	next, err := c.loadCheckpoint(root, file)
	if err != nil {
		return err
	}
	recs, err := newRecordReader(f, &c.cfg)
	if err != nil {
		return c.failOrRetry(root, name, err)
	}
	batch := make([]sdk.Message, 0, c.cfg.batchSize)
	batchBytes := 0
	flush := func(upTo int) error {
		if len(batch) == 0 {
			return nil
		}
		if err := sink.Publish(ctx, batch); err != nil {
			return fmt.Errorf("file: publish records %d-%d of %s: %w", upTo-len(batch), upTo-1, p, err)
		}
		batch, batchBytes = make([]sdk.Message, 0, c.cfg.batchSize), 0
		file.next = upTo
		return c.saveCheckpoint(root, file)
	}
	index := 0
	for ; ; index++ {
		rec, err := recs.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// What was published stays published; the file goes to failed
			// so a person can look at the rest.
			if ferr := flush(index); ferr != nil {
				return ferr
			}
			return c.failOrRetry(root, name, err)
		}
		if index < next {
			continue
		}
		m := c.message(file, index, rec)
		batch, batchBytes = append(batch, m), batchBytes+len(m.Body)
		if len(batch) == c.cfg.batchSize || batchBytes >= maxBatchBytes {
			if err := flush(index + 1); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
	if err := flush(index); err != nil {
		return err
	}
	if now, err := f.Stat(); err == nil && (now.Size() != file.size || !now.ModTime().Equal(file.mtime)) {
		// Still being written after all: leave it for a later scan, which
		// reads the new version from the start.
		c.log.Warn("file changed while it was read; it will be read again", "file", name)
		return c.removeCheckpoint(root, name)
	}
	f.Close()
	moved, err := c.move(root, name, c.cfg.doneDir)
	if err != nil {
		return err
	}
	c.log.Debug("file read", "file", name, "records", index, "movedTo", moved)
	return c.removeCheckpoint(root, name)
}

// check reads the whole file, discarding the records, to find out whether
// it can be parsed.
func (c *Consumer) check(f io.Reader) error {
	recs, err := newRecordReader(f, &c.cfg)
	if err != nil {
		return err
	}
	for {
		if _, err := recs.next(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// failOrRetry moves the file to failed when err is the content's fault;
// other errors (the disk) are returned to be retried.
func (c *Consumer) failOrRetry(root *os.Root, name string, err error) error {
	var pe *parseError
	if errors.As(err, &pe) {
		return c.fail(root, name, pe.msg)
	}
	return fmt.Errorf("file: read %s: %w", path.Join(c.cfg.dir, name), err)
}

// message builds the message for record index of file.
func (c *Consumer) message(file fileState, index int, rec record) sdk.Message {
	msg := sdk.Message{
		ID:          fmt.Sprintf("%s:%d:%d:%d", file.name, file.size, file.mtime.Unix(), index),
		Tenant:      c.tenant,
		Integration: c.integ,
		Headers:     map[string]string{HeaderFile: file.name, HeaderLine: strconv.Itoa(rec.line)},
		ContentType: "application/json",
		Body:        rec.body,
		Received:    c.now(),
	}
	if rec.element != "" {
		msg.Headers[HeaderElement] = rec.element
	}
	if rec.problem != "" {
		msg.Headers[ErrorHeader] = rec.problem
		msg.ContentType = "text/plain; charset=utf-8"
	}
	return msg
}

// fail moves a file that cannot be parsed to the failed directory and
// writes the reason beside it. The failure is handled here, so it is
// logged and not returned.
func (c *Consumer) fail(root *os.Root, name, reason string) error {
	moved, err := c.move(root, name, c.cfg.failedDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	reasonPath := moved + ".reason.txt"
	if err := writeAtomic(root, reasonPath, []byte(reason+"\n")); err != nil {
		return fmt.Errorf("file: write %s: %w", reasonPath, err)
	}
	c.log.Warn("file cannot be read; moved to the failed directory", "file", name, "movedTo", moved, "reason", reason)
	return c.removeCheckpoint(root, name)
}

// move renames a file of dir into the subdirectory sub, adding .1, .2… to
// its name when that name is taken, and makes the rename durable. It
// returns the new path.
func (c *Consumer) move(root *os.Root, name, sub string) (string, error) {
	toDir := path.Join(c.cfg.dir, sub)
	if err := root.MkdirAll(toDir, 0o750); err != nil {
		return "", fmt.Errorf("file: create %s: %w", toDir, err)
	}
	to := path.Join(toDir, name)
	for i := 1; ; i++ {
		_, err := root.Lstat(to)
		if errors.Is(err, fs.ErrNotExist) {
			// A reason file may be in the way too.
			if _, err = root.Lstat(to + ".reason.txt"); errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("file: check %s: %w", to, err)
		}
		if i > 100_000 {
			return "", fmt.Errorf("file: no free name for %s in %s", name, toDir)
		}
		to = path.Join(toDir, name+"."+strconv.Itoa(i))
	}
	from := path.Join(c.cfg.dir, name)
	if err := root.Rename(from, to); err != nil {
		return "", fmt.Errorf("file: move %s to %s: %w", from, to, err)
	}
	if err := errors.Join(syncDir(root, toDir), syncDir(root, c.cfg.dir)); err != nil {
		return "", fmt.Errorf("file: move %s to %s: %w", from, to, err)
	}
	return to, nil
}

// fileState identifies one version of a file and how far it was read.
type fileState struct {
	name  string
	size  int64
	mtime time.Time
	next  int
}

// checkpoint is the sidecar that records a file's progress.
type checkpoint struct {
	File string `json:"file"`
	Size int64  `json:"size"`
	// Mtime is the modification time in Unix nanoseconds.
	Mtime int64 `json:"mtime"`
	// NextRecord is the index of the first record not yet durable.
	NextRecord int `json:"nextRecord"`
}

// checkpointPath names a file's checkpoint by a hash of its name, so that
// any file name gives a valid, fixed-length checkpoint name.
func (c *Consumer) checkpointPath(name string) string {
	sum := sha256.Sum256([]byte(name))
	return path.Join(c.cfg.dir, ProgressDir, hex.EncodeToString(sum[:16])+".json")
}

// loadCheckpoint returns the index of the first record of file that is not
// yet durable: 0 unless a checkpoint for this very version of the file
// exists.
func (c *Consumer) loadCheckpoint(root *os.Root, file fileState) (int, error) {
	p := c.checkpointPath(file.name)
	b, err := root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("file: read checkpoint %s: %w", p, err)
	}
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil || cp.File != file.name || cp.Size != file.size ||
		cp.Mtime != file.mtime.UnixNano() || cp.NextRecord < 0 {
		// A checkpoint of another version of the file, or a torn one:
		// start over, the IDs of this version are new anyway.
		return 0, nil
	}
	return cp.NextRecord, nil
}

// saveCheckpoint records that the records of file before file.next are
// durable. The write is atomic and durable: temp file, fsync, rename,
// fsync of the directory.
func (c *Consumer) saveCheckpoint(root *os.Root, file fileState) error {
	b, err := json.Marshal(checkpoint{File: file.name, Size: file.size, Mtime: file.mtime.UnixNano(), NextRecord: file.next})
	if err != nil {
		return fmt.Errorf("file: encode checkpoint of %s: %w", file.name, err)
	}
	if err := root.MkdirAll(path.Join(c.cfg.dir, ProgressDir), 0o750); err != nil {
		return fmt.Errorf("file: create %s: %w", ProgressDir, err)
	}
	p := c.checkpointPath(file.name)
	if err := writeAtomic(root, p, b); err != nil {
		return fmt.Errorf("file: write checkpoint of %s: %w", file.name, err)
	}
	return nil
}

func (c *Consumer) removeCheckpoint(root *os.Root, name string) error {
	p := c.checkpointPath(name)
	if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("file: remove checkpoint of %s: %w", name, err)
	}
	return nil
}

// writeAtomic replaces the file at p with data: a crash leaves either the
// old or the new content, never a mix.
func writeAtomic(root *os.Root, p string, data []byte) error {
	tmp := p + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, p)
	}
	if err != nil {
		_ = root.Remove(tmp)
		return err
	}
	return syncDir(root, path.Dir(p))
}

// syncDir makes the entries of a directory durable.
func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
