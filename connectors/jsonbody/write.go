//go:build go1.27 && goexperiment.jsonv2

package jsonbody

import (
	"encoding/json"
	"encoding/json/jsontext"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// The fast writer encodes the values Decode produces (objects, arrays,
// strings, booleans, null, int, float64 and json.Number) byte for byte as
// encoding/json does with HTML escaping off: keys sorted, U+2028 and U+2029
// escaped, floats in the ES6 format. For anything else (another Go type,
// NaN, invalid UTF-8, an invalid json.Number, nesting deep enough to hide a
// cycle) it gives up and Encode falls back to encoding/json.

// maxWriteDepth is how deep the fast writer nests before giving up;
// encoding/json starts looking for cycles at this depth.
const maxWriteDepth = 1000

// writeBuffers reuses output buffers; write copies the result out.
var writeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// write encodes v, reporting false when encoding/json must do it.
func write(v any) ([]byte, bool) { return writeWith(v, false) }

// writeSettled is write for an object that SetObject records: on success
// it has also settled obj (see settleObject), so obj equals what Decode
// returns for the bytes written. On failure obj is unchanged.
func writeSettled(obj map[string]any) ([]byte, bool) { return writeWith(obj, true) }

func writeWith(v any, settle bool) ([]byte, bool) {
	bp := writeBuffers.Get().(*[]byte)
	w := writer{buf: (*bp)[:0], settle: settle}
	_, _, ok := w.value(v, 0)
	var out []byte
	if ok {
		out = slices.Clone(w.buf)
		for _, e := range w.edits {
			e.apply()
		}
	}
	if cap(w.buf) <= maxPooledBody {
		*bp = w.buf
		writeBuffers.Put(bp)
	}
	return out, ok
}

// writer is one run of the fast writer. With settle it notes every value
// that decoding the output gives as another value or type, to replace once
// the whole value is written.
type writer struct {
	buf    []byte
	settle bool
	edits  []edit
}

// edit replaces obj[key], or arr[index] when obj is nil, with value.
type edit struct {
	obj   map[string]any
	key   string
	arr   []any
	index int
	value any
}

func (e edit) apply() {
	if e.obj != nil {
		e.obj[e.key] = e.value
		return
	}
	e.arr[e.index] = e.value
}

// value appends v. It returns what decoding the appended text gives when
// that differs from v (changed), and false when encoding/json must write v.
func (w *writer) value(v any, depth int) (decoded any, changed, ok bool) {
	switch x := v.(type) {
	case nil:
		w.buf = append(w.buf, "null"...)
		return nil, false, true
	case bool:
		w.buf = strconv.AppendBool(w.buf, x)
		return nil, false, true
	case string:
		w.buf, ok = appendString(w.buf, x)
		return nil, false, ok
	case int:
		w.buf = strconv.AppendInt(w.buf, int64(x), 10)
		return nil, false, true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, false, false
		}
		start := len(w.buf)
		w.buf = jsontext.AppendFloat(w.buf, x, 64)
		// Only whole numbers below 1e21 are written without a fraction
		// or exponent, and so read back as int or json.Number; any other
		// float reads back as itself.
		if w.settle && x == math.Trunc(x) && math.Abs(x) < 1e21 {
			return numberBytes(w.buf[start:]), true, true
		}
		return nil, false, true
	case json.Number:
		if !validNumber(string(x)) {
			return nil, false, false
		}
		w.buf = append(w.buf, x...)
		if !w.settle {
			return nil, false, true
		}
		n := number(x)
		return n, n != any(x), true
	case map[string]any:
		if x == nil {
			w.buf = append(w.buf, "null"...)
			return nil, true, true
		}
		if depth >= maxWriteDepth {
			return nil, false, false
		}
		return nil, false, w.object(x, depth+1)
	case []any:
		if x == nil {
			w.buf = append(w.buf, "null"...)
			return nil, true, true
		}
		if depth >= maxWriteDepth {
			return nil, false, false
		}
		w.buf = append(w.buf, '[')
		for i, e := range x {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			d, changed, ok := w.value(e, depth+1)
			if !ok {
				return nil, false, false
			}
			if changed && w.settle {
				w.edits = append(w.edits, edit{arr: x, index: i, value: d})
			}
		}
		w.buf = append(w.buf, ']')
		return nil, false, true
	}
	return nil, false, false
}

// member is one key and value of an object being written.
type member struct {
	key   string
	value any
}

func (w *writer) object(m map[string]any, depth int) bool {
	var small [16]member
	members := small[:0]
	for k, v := range m {
		members = append(members, member{k, v})
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	w.buf = append(w.buf, '{')
	for i, e := range members {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		var ok bool
		if w.buf, ok = appendString(w.buf, e.key); !ok {
			return false
		}
		w.buf = append(w.buf, ':')
		d, changed, ok := w.value(e.value, depth)
		if !ok {
			return false
		}
		if changed && w.settle {
			w.edits = append(w.edits, edit{obj: m, key: e.key, value: d})
		}
	}
	w.buf = append(w.buf, '}')
	return true
}

// appendString quotes s as encoding/json does without HTML escaping. It
// reports false for invalid UTF-8.
func appendString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i += plainPrefix(s[i:]); i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, `\b`...)
			case '\f':
				dst = append(dst, `\f`...)
			case '\n':
				dst = append(dst, `\n`...)
			case '\r':
				dst = append(dst, `\r`...)
			case '\t':
				dst = append(dst, `\t`...)
			default:
				dst = append(dst, `\u00`...)
				dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return dst, false
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
			i += size
			start = i
		default:
			i += size
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}

const hexDigits = "0123456789abcdef"

// plainPrefix returns the length of the longest prefix of s, rounded down
// to eight bytes, that is ASCII a JSON string holds verbatim: no control
// character, quote or backslash. It looks at eight bytes at a time.
func plainPrefix(s string) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		quote := w ^ (ones * '"')
		backslash := w ^ (ones * '\\')
		bad := w | // non-ASCII
			((w - ones*0x20) &^ w) | // below 0x20
			((quote - ones) &^ quote) |
			((backslash - ones) &^ backslash)
		if bad&highs != 0 {
			break
		}
	}
	return i
}
