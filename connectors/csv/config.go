package csv

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/vrsky/vrsky/connectors/formatconv"
)

// Directions, modes, ragged-row policies and column types.
const (
	ToJSON = formatconv.ToJSON
	ToCSV  = "toCsv"

	ModeDocument = "document"
	ModeRow      = "row"

	RaggedError    = "error"
	RaggedPad      = "pad"
	RaggedTruncate = "truncate"

	TypeString = "string"
	TypeInt    = "int"
	TypeFloat  = "float"
	TypeBool   = "bool"
)

// Limits.
const (
	DefaultMaxBytes = formatconv.DefaultMaxBytes
	MaxMaxBytes     = formatconv.MaxMaxBytes
	// MaxColumns bounds the columns of a document.
	MaxColumns = 10000
)

// Config is the csv converter's configuration.
type Config struct {
	// Direction is toJson (the default: the body is CSV) or toCsv (the body
	// is JSON).
	Direction string `json:"direction,omitempty" enum:"toJson,toCsv" doc:"toJson (default) or toCsv."`
	// Mode is document (the default: the body is a whole CSV document and
	// becomes one JSON message {"rows": [...]}) or row (the body is one
	// CSV record and becomes one JSON object; columns names its fields and
	// there is no header). A consumer that splits files into records
	// produces row messages.
	Mode string `json:"mode,omitempty" enum:"document,row" doc:"document (default): the body is a whole CSV document; row: the body is one record."`
	// Delimiter separates fields: one character, default ",".
	Delimiter string `json:"delimiter,omitempty" doc:"Field delimiter, one character; default comma."`
	// Header says whether the first record (after SkipRows) names the
	// columns (default true in document mode). When Columns is also set,
	// the header record is skipped and Columns names the fields.
	Header *bool `json:"header,omitempty" doc:"The first record names the columns; default true (document mode)."`
	// Columns names the fields, in order: required without a header and in
	// row mode. For toCsv it picks and orders the columns written; by
	// default they are the sorted keys of all rows.
	Columns []string `json:"columns,omitempty" doc:"Column names in order; required without a header."`
	// Types converts columns to string, int, float or bool (toJson).
	// Empty cells of non-string columns become null; a cell that does not
	// convert fails the message naming its row and column.
	Types map[string]string `json:"types,omitempty" doc:"Column to string, int, float or bool."`
	// TrimSpace removes leading and trailing white space from every field
	// and column name (toJson).
	TrimSpace bool `json:"trimSpace,omitempty" doc:"Trim white space around fields."`
	// SkipRows skips this many records before the header (toJson document
	// mode), such as a title line.
	SkipRows int `json:"skipRows,omitempty" doc:"Records to skip before the header."`
	// Ragged says what a record with another number of fields than there
	// are columns does: error (the default: the message fails naming the
	// line), pad (missing trailing fields become null; longer records
	// still fail) or truncate (extra fields are dropped, missing ones
	// become null).
	Ragged string `json:"ragged,omitempty" enum:"error,pad,truncate" doc:"Records with a wrong field count: error (default), pad or truncate."`
	// EscapeFormulas prefixes with a single quote every written cell that
	// starts with = + - @ tab or carriage return, so a spreadsheet does not
	// run it as a formula (toCsv; default true). JSON numbers are left
	// alone.
	EscapeFormulas *bool `json:"escapeFormulas,omitempty" doc:"Defuse spreadsheet formulas in cells (toCsv); default true."`
	// MaxBytes bounds the body (default 16 MiB, at most 64 MiB).
	MaxBytes int64 `json:"maxBytes,omitempty" doc:"Largest body accepted in bytes; default 16 MiB."`
}

// settings is a validated Config with its defaults applied.
type settings struct {
	direction      string
	mode           string
	delimiter      rune
	header         bool
	columns        []string
	types          map[string]string
	trimSpace      bool
	skipRows       int
	ragged         string
	escapeFormulas bool
	maxBytes       int64
}

// Validate checks the config.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c *Config) settings() (settings, error) {
	s := settings{
		mode:           cmp.Or(c.Mode, ModeDocument),
		delimiter:      ',',
		header:         c.Header == nil || *c.Header,
		columns:        c.Columns,
		types:          c.Types,
		trimSpace:      c.TrimSpace,
		skipRows:       c.SkipRows,
		ragged:         cmp.Or(c.Ragged, RaggedError),
		escapeFormulas: c.EscapeFormulas == nil || *c.EscapeFormulas,
	}
	var errs []error
	direction, err := format.CheckDirection(c.Direction)
	if err != nil {
		errs = append(errs, err)
	}
	s.direction = direction
	switch s.mode {
	case ModeDocument:
	case ModeRow:
		if c.Header != nil && *c.Header {
			errs = append(errs, errors.New("header: row mode has no header; name the fields with columns"))
		}
		if c.SkipRows != 0 {
			errs = append(errs, errors.New("skipRows: row mode has one record"))
		}
		s.header = false
	default:
		errs = append(errs, fmt.Errorf("mode: %q is not document or row", c.Mode))
	}
	if c.Delimiter != "" {
		r, size := utf8.DecodeRuneInString(c.Delimiter)
		if size != len(c.Delimiter) || r == utf8.RuneError || r == '"' || r == '\r' || r == '\n' {
			errs = append(errs, fmt.Errorf("delimiter: %q is not one character other than a quote or line break", c.Delimiter))
		}
		s.delimiter = r
	}
	if !s.header && len(c.Columns) == 0 && s.direction == ToJSON {
		errs = append(errs, errors.New("columns: required when there is no header"))
	}
	if s.mode == ModeRow && len(c.Columns) == 0 {
		errs = append(errs, errors.New("columns: required in row mode"))
	}
	if len(c.Columns) > MaxColumns {
		errs = append(errs, fmt.Errorf("columns: more than %d", MaxColumns))
	}
	for i, name := range c.Columns {
		if name == "" {
			errs = append(errs, fmt.Errorf("columns[%d]: empty name", i))
		} else if slices.Index(c.Columns, name) != i {
			errs = append(errs, fmt.Errorf("columns[%d]: %q is listed twice", i, name))
		}
	}
	for _, col := range slices.Sorted(maps.Keys(c.Types)) {
		switch typ := c.Types[col]; typ {
		case TypeString, TypeInt, TypeFloat, TypeBool:
		default:
			errs = append(errs, fmt.Errorf("types %q: unknown type %q, want string, int, float or bool", col, typ))
		}
		if len(c.Columns) > 0 && !slices.Contains(c.Columns, col) {
			errs = append(errs, fmt.Errorf("types %q: not one of the columns", col))
		}
	}
	if c.SkipRows < 0 {
		errs = append(errs, fmt.Errorf("skipRows: %d is negative", c.SkipRows))
	}
	switch s.ragged {
	case RaggedError, RaggedPad, RaggedTruncate:
	default:
		errs = append(errs, fmt.Errorf("ragged: %q is not error, pad or truncate", c.Ragged))
	}
	maxBytes, err := formatconv.CheckMaxBytes(c.MaxBytes)
	if err != nil {
		errs = append(errs, err)
	}
	s.maxBytes = maxBytes
	return s, errors.Join(errs...)
}
