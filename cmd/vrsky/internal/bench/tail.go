package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Tail polling intervals.
const (
	tailReadEvery = time.Millisecond
	tailListEvery = 100 * time.Millisecond
	tailReadSize  = 1 << 20
)

// Tail follows every file in sink directories, part files and finished
// files alike, and hands each complete line to the directory's Collector. A
// file is followed by its inode, so its rename from NAME.part to NAME keeps
// its place.
type Tail struct {
	dirs  []tailDir
	files map[uint64]*tailFile
	buf   []byte
	lines [][]byte
	// fromEnd skips what the files held at the first listing.
	fromEnd bool
	listed  bool
}

type tailDir struct {
	dir  string
	sink *Collector
}

type tailFile struct {
	f    *os.File
	sink *Collector
	rest []byte // the start of a line whose end has not been written yet
}

// NewTail returns a tail of dir feeding sink. The directory may not exist
// yet.
func NewTail(dir string, sink *Collector) *Tail {
	return NewTails(map[string]*Collector{dir: sink}, false)
}

// NewTails returns one tail of several directories, each feeding its own
// collector; one goroutine reads them all. With fromEnd, what the files
// already held when Run first lists them is skipped: only lines written
// after that are handed on. The directories may not exist yet.
func NewTails(dirs map[string]*Collector, fromEnd bool) *Tail {
	t := &Tail{files: map[uint64]*tailFile{}, buf: make([]byte, tailReadSize), fromEnd: fromEnd}
	for dir, sink := range dirs {
		t.dirs = append(t.dirs, tailDir{dir: dir, sink: sink})
	}
	return t
}

// Run reads new lines every millisecond and looks for new files every
// 100 ms until ctx ends; then it reads once more and closes every file.
func (t *Tail) Run(ctx context.Context) error {
	defer t.close()
	read := time.NewTicker(tailReadEvery)
	defer read.Stop()
	var listed time.Time
	for {
		if time.Since(listed) >= tailListEvery {
			if err := t.list(); err != nil {
				return err
			}
			listed = time.Now()
		}
		if err := t.readAll(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			if err := t.list(); err != nil {
				return err
			}
			return t.readAll()
		case <-read.C:
		}
	}
}

// list opens the files it does not follow yet.
func (t *Tail) list() error {
	for _, d := range t.dirs {
		if err := t.listDir(d); err != nil {
			return err
		}
	}
	t.listed = true
	return nil
}

// listDir opens the files of one directory it does not follow yet.
func (t *Tail) listDir(d tailDir) error {
	entries, err := os.ReadDir(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list sink directory: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed since the listing; the next one has it
		}
		if err != nil {
			return fmt.Errorf("stat sink file %s: %w", e.Name(), err)
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat sink file %s: no inode", e.Name())
		}
		if _, seen := t.files[st.Ino]; seen {
			continue
		}
		f, err := os.Open(filepath.Join(d.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open sink file: %w", err)
		}
		if t.fromEnd && !t.listed {
			if _, err := f.Seek(0, io.SeekEnd); err != nil {
				_ = f.Close()
				return fmt.Errorf("skip what sink file %s held: %w", e.Name(), err)
			}
		}
		t.files[st.Ino] = &tailFile{f: f, sink: d.sink}
	}
	return nil
}

// readAll reads what was appended to every followed file since the last
// call.
func (t *Tail) readAll() error {
	for _, tf := range t.files {
		for {
			n, err := tf.f.Read(t.buf)
			if n > 0 {
				t.consume(tf, t.buf[:n], time.Now())
			}
			if errors.Is(err, io.EOF) || (err == nil && n == 0) {
				break
			}
			if err != nil {
				return fmt.Errorf("read sink file %s: %w", tf.f.Name(), err)
			}
			if n < len(t.buf) {
				break
			}
		}
	}
	return nil
}

// consume splits data into lines, completing the file's pending partial
// line, and records them all as arrived at at.
func (t *Tail) consume(tf *tailFile, data []byte, at time.Time) {
	t.lines = t.lines[:0]
	if len(tf.rest) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			tf.rest = append(tf.rest, data...)
			return
		}
		tf.rest = append(tf.rest, data[:i]...)
		t.lines = append(t.lines, tf.rest)
		data = data[i+1:]
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if i > 0 {
			t.lines = append(t.lines, data[:i])
		}
		data = data[i+1:]
	}
	tf.sink.RecordLines(t.lines, at)
	// The pending line is copied: data is the read buffer, reused next time.
	tf.rest = append(tf.rest[:0:0], data...)
}

func (t *Tail) close() {
	for _, tf := range t.files {
		_ = tf.f.Close()
	}
}
