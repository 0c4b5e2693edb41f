package csv

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vrsky/vrsky/connectors/sdk"
)

var bom = []byte("\xEF\xBB\xBF")

// toJSON converts CSV to JSON: {"rows": [...]} in document mode, one
// object in row mode. Fields keep the column order.
func (s *settings) toJSON(data []byte) ([]byte, error) {
	data = bytes.TrimPrefix(data, bom)
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = s.delimiter
	r.FieldsPerRecord = -1 // ragged records are handled below, by policy
	r.ReuseRecord = true

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)

	if s.mode == ModeRow {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil, sdk.Permanentf("row is empty")
		}
		if err != nil {
			return nil, malformed(err)
		}
		line, _ := r.FieldPos(0)
		if err := s.writeRow(&out, enc, s.columns, record, 1, line); err != nil {
			return nil, err
		}
		switch _, err := r.Read(); {
		case errors.Is(err, io.EOF):
		case err != nil:
			return nil, malformed(err)
		default:
			line, _ := r.FieldPos(0)
			return nil, sdk.Permanentf("line %d: row mode takes one record, the body holds more", line)
		}
		return out.Bytes(), nil
	}

	for i := 0; i < s.skipRows; i++ {
		if _, err := r.Read(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, malformed(err)
		}
	}
	columns := s.columns
	if s.header {
		record, err := r.Read()
		switch {
		case errors.Is(err, io.EOF):
			return nil, sdk.Permanentf("no header record")
		case err != nil:
			return nil, malformed(err)
		}
		line, _ := r.FieldPos(0)
		if columns == nil {
			if columns, err = s.headerColumns(record, line); err != nil {
				return nil, err
			}
		}
	}
	for _, col := range slices.Sorted(maps.Keys(s.types)) {
		if !slices.Contains(columns, col) {
			return nil, sdk.Permanentf("types names column %q, which the header lacks", col)
		}
	}
	out.WriteString(`{"rows":[`)
	for row := 1; ; row++ {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, malformed(err)
		}
		if row > 1 {
			out.WriteByte(',')
		}
		line, _ := r.FieldPos(0)
		if err := s.writeRow(&out, enc, columns, record, row, line); err != nil {
			return nil, err
		}
	}
	out.WriteString("]}")
	return out.Bytes(), nil
}

func (s *settings) headerColumns(record []string, line int) ([]string, error) {
	if len(record) > MaxColumns {
		return nil, sdk.Permanentf("line %d: header has %d columns, more than %d", line, len(record), MaxColumns)
	}
	columns := make([]string, len(record))
	seen := make(map[string]int, len(record))
	for i, name := range record {
		if s.trimSpace {
			name = strings.TrimSpace(name)
		}
		if name == "" {
			return nil, sdk.Permanentf("line %d: header column %d is empty", line, i+1)
		}
		if first, dup := seen[name]; dup {
			return nil, sdk.Permanentf("line %d: header column %d %q repeats column %d", line, i+1, name, first)
		}
		seen[name] = i + 1
		columns[i] = name
	}
	return columns, nil
}

// writeRow writes one record as a JSON object, applying the ragged policy
// and the column types.
func (s *settings) writeRow(out *bytes.Buffer, enc *json.Encoder, columns, record []string, row, line int) error {
	if n := len(record); n != len(columns) {
		switch {
		case s.ragged == RaggedError,
			s.ragged == RaggedPad && n > len(columns):
			return sdk.Permanentf("line %d: row %d has %d fields, want %d (set ragged to pad or truncate to accept it)", line, row, n, len(columns))
		case n > len(columns):
			record = record[:len(columns)]
		}
	}
	out.WriteByte('{')
	for i, col := range columns {
		if i > 0 {
			out.WriteByte(',')
		}
		if err := encode(out, enc, col); err != nil {
			return err
		}
		out.WriteByte(':')
		var v any // a padded field is null
		if i < len(record) {
			field := record[i]
			if s.trimSpace {
				field = strings.TrimSpace(field)
			}
			var err error
			if v, err = convertField(field, s.types[col]); err != nil {
				return sdk.Permanentf("line %d: row %d, column %q: %w", line, row, col, err)
			}
		}
		if err := encode(out, enc, v); err != nil {
			return err
		}
	}
	out.WriteByte('}')
	return nil
}

func encode(out *bytes.Buffer, enc *json.Encoder, v any) error {
	if err := enc.Encode(v); err != nil {
		return sdk.PermanentError(fmt.Errorf("encode JSON: %w", err))
	}
	out.Truncate(out.Len() - 1) // Encode's newline
	return nil
}

// convertField converts a field to its column's type; empty fields of
// non-string columns are null.
func convertField(field, typ string) (any, error) {
	if typ == "" || typ == TypeString {
		return field, nil
	}
	s := strings.TrimSpace(field)
	if s == "" {
		return nil, nil
	}
	switch typ {
	case TypeInt:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an int", quote(field))
		}
		return i, nil
	case TypeFloat:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s is not a finite float", quote(field))
		}
		return f, nil
	default: // TypeBool, checked by Validate
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%s is not a bool", quote(field))
		}
		return b, nil
	}
}

// quote quotes a field for an error, cutting long ones short.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// malformed reports a *csv.ParseError with its line and column.
func malformed(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return sdk.Permanentf("malformed CSV at line %d, column %d: %w", pe.Line, pe.Column, pe.Err)
	}
	return sdk.Permanentf("malformed CSV: %w", err)
}
