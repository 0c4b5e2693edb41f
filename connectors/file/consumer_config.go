package file

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatXML is an input format of the consumer: the records are the
// children of the document's root element.
const FormatXML = "xml"

// Consumer defaults.
const (
	DefaultBatchSize = 500
	DefaultSettle    = 2 * time.Second
	DefaultRescan    = 5 * time.Second
	DefaultDoneDir   = "done"
	DefaultFailedDir = "failed"
	// MaxBatchSize bounds batchSize: a batch is one Publish, held in memory.
	MaxBatchSize = 10_000
	// MaxBatchBytes bounds the bodies of one batch: a batch is published
	// early once its records reach it, so that large records never make a
	// batch of batchSize of them (a single larger record still goes alone).
	MaxBatchBytes = 16 << 20
)

// maxBatchBytes is MaxBatchBytes; a variable so tests can shrink it.
var maxBatchBytes = MaxBatchBytes

// ConsumerConfig is the file consumer's configuration.
type ConsumerConfig struct {
	// Dir is the directory watched for files, relative to the tenant's file
	// root; it is created when missing and can never leave the root.
	Dir string `json:"dir,omitempty" doc:"Directory relative to the tenant's file root; created when missing."`
	// Pattern selects files by name (a glob as in path.Match, default *).
	// Names starting with '.' or ending in .part or .tmp are never read.
	Pattern string `json:"pattern,omitempty" doc:"Glob on file names; default *. Hidden, .part and .tmp files are skipped."`
	// Format is how a file holds records: ndjson (the default: one JSON
	// object per line), json (an array of objects, or one object), csv
	// (one row per record) or xml (the children of the root element).
	Format string `json:"format,omitempty" enum:"ndjson,json,csv,xml" doc:"ndjson (default), json, csv or xml."`
	// CSV holds the options of the csv format.
	CSV CSVOptions `json:"csv,omitzero" doc:"Options of the csv format."`
	// BatchSize is how many records go into one publish (default 500).
	BatchSize int `json:"batchSize,omitempty" doc:"Records per publish; default 500."`
	// Settle is how long a file's size and modification time must stay
	// unchanged before it is read (a Go duration, default 2s).
	Settle string `json:"settle,omitempty" doc:"A file is complete once its size and mtime are unchanged this long (Go duration); default 2s."`
	// Rescan is how often the directory is listed (a Go duration, default
	// 5s).
	Rescan string `json:"rescan,omitempty" doc:"How often the directory is listed (Go duration); default 5s."`
	// DoneDir receives files whose records are all durable (default done,
	// inside dir).
	DoneDir string `json:"doneDir,omitempty" doc:"Where finished files go, relative to dir; default done."`
	// FailedDir receives files that cannot be parsed, each with a
	// NAME.reason.txt beside it (default failed, inside dir).
	FailedDir string `json:"failedDir,omitempty" doc:"Where unparseable files go with a .reason.txt, relative to dir; default failed."`
}

// CSVOptions are the options of the csv format.
type CSVOptions struct {
	// Delimiter separates fields: one character, default ','.
	Delimiter string `json:"delimiter,omitempty" doc:"Field delimiter, one character; default ','."`
	// Header says whether the first row names the columns (default true).
	Header *bool `json:"header,omitempty" doc:"The first row names the columns; default true."`
	// Columns names the columns. With a header row, the header is read and
	// ignored; without one and without columns, they are col1, col2…
	Columns []string `json:"columns,omitempty" doc:"Column names; override the header row. Without either: col1, col2…"`
}

// consumerSettings is a validated ConsumerConfig with its defaults applied.
type consumerSettings struct {
	dir       string
	pattern   string
	format    string
	delimiter rune
	header    bool
	columns   []string
	batchSize int
	settle    time.Duration
	rescan    time.Duration
	doneDir   string
	failedDir string
}

// Validate checks the config on its own; Build also checks it against the
// environment.
func (c *ConsumerConfig) Validate() error {
	_, err := c.settings()
	return err
}

func (c *ConsumerConfig) settings() (consumerSettings, error) {
	s := consumerSettings{
		dir:       cleanDir(c.Dir),
		pattern:   c.Pattern,
		format:    c.Format,
		delimiter: ',',
		header:    c.CSV.Header == nil || *c.CSV.Header,
		columns:   c.CSV.Columns,
		batchSize: c.BatchSize,
		settle:    DefaultSettle,
		rescan:    DefaultRescan,
		doneDir:   DefaultDoneDir,
		failedDir: DefaultFailedDir,
	}
	var errs []error
	if err := checkDir(c.Dir); err != nil {
		errs = append(errs, err)
	}
	if s.pattern == "" {
		s.pattern = "*"
	}
	if strings.ContainsAny(s.pattern, `/\`) {
		errs = append(errs, fmt.Errorf("pattern %q: matches file names and must not contain a path separator", c.Pattern))
	} else if _, err := path.Match(s.pattern, ""); err != nil {
		errs = append(errs, fmt.Errorf("pattern %q: %w", c.Pattern, err))
	}
	switch s.format {
	case "":
		s.format = FormatNDJSON
	case FormatNDJSON, FormatJSON, FormatCSV, FormatXML:
	default:
		errs = append(errs, fmt.Errorf("format %q: want ndjson, json, csv or xml", c.Format))
	}
	errs = append(errs, c.CSV.check(&s)...)
	switch {
	case s.batchSize == 0:
		s.batchSize = DefaultBatchSize
	case s.batchSize < 0 || s.batchSize > MaxBatchSize:
		errs = append(errs, fmt.Errorf("batchSize %d: want 1 to %d", c.BatchSize, MaxBatchSize))
	}
	errs = append(errs, duration("settle", c.Settle, true, &s.settle), duration("rescan", c.Rescan, false, &s.rescan))
	errs = append(errs, subdir("doneDir", c.DoneDir, &s.doneDir), subdir("failedDir", c.FailedDir, &s.failedDir))
	if s.doneDir == s.failedDir {
		errs = append(errs, fmt.Errorf("doneDir and failedDir are both %q: they must differ", s.doneDir))
	}
	return s, errors.Join(errs...)
}

// check validates the csv options into s.
func (o CSVOptions) check(s *consumerSettings) []error {
	if s.format != FormatCSV {
		if o.Delimiter != "" || o.Header != nil || o.Columns != nil {
			return []error{fmt.Errorf("csv options are set but format is %q", s.format)}
		}
		return nil
	}
	var errs []error
	if o.Delimiter != "" {
		r, size := utf8.DecodeRuneInString(o.Delimiter)
		switch {
		case size != len(o.Delimiter) || r == utf8.RuneError:
			errs = append(errs, fmt.Errorf("csv delimiter %q: want exactly one character", o.Delimiter))
		case r == '"' || r == '\r' || r == '\n' || r == 0xFEFF:
			errs = append(errs, fmt.Errorf("csv delimiter %q: not allowed", o.Delimiter))
		default:
			s.delimiter = r
		}
	}
	seen := make(map[string]bool, len(o.Columns))
	for i, name := range o.Columns {
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("csv columns[%d]: empty name", i))
		case seen[name]:
			errs = append(errs, fmt.Errorf("csv columns[%d]: %q appears twice", i, name))
		}
		seen[name] = true
	}
	return errs
}

// duration parses a Go duration option into dst, leaving dst's default
// when raw is empty.
func duration(name, raw string, zeroOK bool, dst *time.Duration) error {
	if raw == "" {
		return nil
	}
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", name, err)
	case d < 0 || d == 0 && !zeroOK:
		return fmt.Errorf("%s %q: must be positive", name, raw)
	}
	*dst = d
	return nil
}

// subdir checks a directory option that must name a subdirectory of dir.
func subdir(name, raw string, dst *string) error {
	if raw == "" {
		return nil
	}
	if err := checkDir(raw); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	clean := cleanDir(raw)
	if clean == "." {
		return fmt.Errorf("%s %q: must name a subdirectory of dir", name, raw)
	}
	if strings.HasPrefix(clean, ".") || strings.Contains(clean, "/.") {
		return fmt.Errorf("%s %q: must not be hidden", name, raw)
	}
	*dst = clean
	return nil
}

// cleanDir turns a checked relative directory into a clean slash path
// ("." for the directory itself).
func cleanDir(dir string) string {
	return path.Clean(filepath.ToSlash(strings.ReplaceAll(dir, `\`, "/")))
}
