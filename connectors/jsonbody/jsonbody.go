// Package jsonbody decodes and encodes the JSON object bodies that the JSON
// converters and filters work on.
//
// Decode keeps every number exact: integers become int, other numbers
// float64, and numbers that neither can hold without losing digits stay
// json.Number so they are written back verbatim. Malformed input yields a
// permanent error that names the line and column, so the message goes to the
// DLQ with a reason a person can act on.
//
// Decode and Encode give, value for value and byte for byte, what they give
// when built on encoding/json alone (decodeStandard, encodeStandard): for
// the values JSON bodies hold they work on encoding/json/jsontext directly,
// several times faster, and they leave everything else, errors included,
// to encoding/json.
//
// Object, ObjectCopy and SetObject let a chain of JSON steps decode a
// message's body once: a converter records the object it wrote next to the
// bytes, and the next step reads it from there.
//
// This package must never log, retry or hold state between calls beyond
// reusable buffers: it is called on the hot path from many goroutines at
// once.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Decode parses body as a single JSON object. Malformed JSON, trailing data
// and any other top-level value than an object give a permanent error; a
// malformed body's error names the line and column.
func Decode(body []byte) (map[string]any, error) {
	if obj, ok := readObject(body); ok {
		return obj, nil
	}
	return decodeStandard(body)
}

// decodeStandard is Decode done by encoding/json: the reference for what
// Decode returns, and the source of its error messages.
func decodeStandard(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, sdk.Permanentf("malformed JSON at line 1, column 1: empty body")
		}
		return nil, sdk.PermanentError(fmt.Errorf("malformed JSON: %w", Locate(body, err)))
	}
	// A second value, or garbage after the first, is malformed too.
	if at, ok := trailing(body, dec.InputOffset()); ok {
		line, col := Position(body, int64(at)+1)
		return nil, sdk.Permanentf("malformed JSON at line %d, column %d: data after the top-level value", line, col)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, sdk.Permanentf("JSON body is %s, want an object", TypeName(v))
	}
	normalizeObject(obj)
	return obj, nil
}

// Encode marshals v as compact JSON without HTML escaping and without a
// trailing newline.
func Encode(v any) ([]byte, error) {
	if b, ok := write(v); ok {
		return b, nil
	}
	return encodeStandard(v)
}

// encodeStandard is Encode done by encoding/json: the reference for what
// Encode returns, and the source of its error messages.
func encodeStandard(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Locate adds the line and column of a *json.SyntaxError or
// *json.UnmarshalTypeError in data to err's message; other errors are
// returned unchanged. The result still wraps err.
func Locate(data []byte, err error) error {
	var off int64
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off = syn.Offset
	case errors.As(err, &typ):
		off = typ.Offset
	case errors.Is(err, io.ErrUnexpectedEOF):
		off = int64(len(data)) + 1
	default:
		return err
	}
	line, col := Position(data, off)
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// Position converts the offset encoding/json reports (the number of bytes
// read when the error was found, so the bad byte is at offset-1) to a
// 1-based line and column. Columns count characters, not bytes.
func Position(data []byte, offset int64) (line, column int) {
	at := int(offset) - 1
	if at < 0 {
		at = 0
	}
	if at > len(data) {
		at = len(data)
	}
	// The offset may point inside a multi-byte character: back up to its
	// first byte.
	for at > 0 && at < len(data) && !utf8.RuneStart(data[at]) {
		at--
	}
	before := data[:at]
	line = 1 + bytes.Count(before, []byte{'\n'})
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	column = 1 + utf8.RuneCount(before[lineStart:])
	return line, column
}

// TypeName names the JSON type of a decoded value for error messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64, json.Number:
		return "a number"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// ScalarText renders a decoded JSON string, boolean or number as text:
// strings as they are, booleans as true or false, int and json.Number in
// decimal, and float64 with strconv.FormatFloat's format floatFormat ('f'
// or 'g') and the fewest digits that keep it exact. It reports false for
// null, objects, arrays and anything else.
func ScalarText(v any, floatFormat byte) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, floatFormat, -1, 64), true
	case json.Number:
		return string(x), true
	}
	return "", false
}

// trailing returns the index of the first non-space byte at or after off.
func trailing(data []byte, off int64) (int, bool) {
	for i := int(off); i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
		default:
			return i, true
		}
	}
	return 0, false
}

func normalizeObject(m map[string]any) {
	for k, v := range m {
		if nv, changed := normalize(v); changed {
			m[k] = nv
		}
	}
}

// normalize replaces json.Number with int or float64 where that keeps the
// value exact, recursing into objects and arrays in place.
func normalize(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		return number(x), true
	case map[string]any:
		normalizeObject(x)
	case []any:
		for i, e := range x {
			if ne, changed := normalize(e); changed {
				x[i] = ne
			}
		}
	}
	return v, false
}

func number(n json.Number) any {
	s := string(n)
	if i, err := strconv.Atoi(s); err == nil {
		return i
	}
	if isInteger(s) {
		// Too big for int: float64 would drop digits, keep it verbatim.
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return n
	}
	return f
}

func isInteger(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && !(i == 0 && c == '-') {
			return false
		}
	}
	return true
}

// validNumber reports whether s is a JSON number literal.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}
