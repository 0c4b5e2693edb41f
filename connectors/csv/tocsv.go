package csv

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// toCSV converts JSON rows to CSV. The body is one object (one row), an
// array of objects, or {"rows": [...]}. Columns are the configured ones or
// the sorted keys of all rows; values are written as text (null as an
// empty cell, objects and arrays as JSON).
func (s *settings) toCSV(data []byte) ([]byte, error) {
	rows, err := decodeRows(data)
	if err != nil {
		return nil, err
	}
	if s.mode == ModeRow && len(rows) != 1 {
		return nil, sdk.Permanentf("row mode writes one record, the body holds %d rows", len(rows))
	}
	columns := s.columns
	if columns == nil {
		seen := map[string]bool{}
		for _, row := range rows {
			for k := range row {
				if !seen[k] {
					seen[k] = true
					columns = append(columns, k)
				}
			}
		}
		slices.Sort(columns)
	}
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	w.Comma = s.delimiter
	record := make([]string, len(columns))
	if s.header && s.mode == ModeDocument {
		for i, col := range columns {
			record[i] = s.defuse(col)
		}
		if err := w.Write(record); err != nil {
			return nil, sdk.PermanentError(fmt.Errorf("write CSV header: %w", err))
		}
	}
	for n, row := range rows {
		for i, col := range columns {
			cell, err := s.cell(row[col])
			if err != nil {
				return nil, sdk.Permanentf("row %d, column %q: %w", n+1, col, err)
			}
			record[i] = cell
		}
		if err := w.Write(record); err != nil {
			return nil, sdk.PermanentError(fmt.Errorf("write CSV row %d: %w", n+1, err))
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, sdk.PermanentError(fmt.Errorf("write CSV: %w", err))
	}
	return out.Bytes(), nil
}

func decodeRows(data []byte) ([]map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, sdk.Permanentf("malformed JSON at line 1, column 1: empty body")
		}
		return nil, sdk.PermanentError(fmt.Errorf("malformed JSON: %w", jsonbody.Locate(data, err)))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := jsonbody.Position(data, dec.InputOffset()+1)
		return nil, sdk.Permanentf("malformed JSON at line %d, column %d: data after the top-level value", line, col)
	}
	var list []any
	switch x := v.(type) {
	case map[string]any:
		if rows, ok := x["rows"].([]any); ok && len(x) == 1 {
			list = rows
		} else {
			return []map[string]any{x}, nil
		}
	case []any:
		list = x
	default:
		return nil, sdk.Permanentf("JSON body is %s, want an object, an array of objects or {\"rows\": [...]}", jsonbody.TypeName(v))
	}
	rows := make([]map[string]any, len(list))
	for i, e := range list {
		row, ok := e.(map[string]any)
		if !ok {
			return nil, sdk.Permanentf("row %d is %s, want an object", i+1, jsonbody.TypeName(e))
		}
		rows[i] = row
	}
	return rows, nil
}

// cell stringifies a JSON value for a CSV cell.
func (s *settings) cell(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return s.defuse(x), nil
	case json.Number:
		return x.String(), nil // a number cannot be a formula
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	default:
		b, err := jsonbody.Encode(x)
		if err != nil {
			return "", err
		}
		return s.defuse(string(b)), nil
	}
}

// defuse prefixes a cell a spreadsheet would run as a formula with a
// single quote (OWASP's advice against CSV injection).
func (s *settings) defuse(text string) string {
	if s.escapeFormulas && text != "" && strings.ContainsRune("=+-@\t\r", rune(text[0])) {
		return "'" + text
	}
	return text
}
