//go:build go1.27 && goexperiment.jsonv2

package jsonbody

import (
	"bytes"
	"encoding/json"
	"encoding/json/jsontext"
	"math"
	"strconv"
	"sync"
)

// The fast reader builds decoded values straight from jsontext tokens,
// without the reflection of encoding/json and without a second pass to
// normalise numbers. It accepts only what encoding/json decodes to the same
// value; everything else (malformed input, duplicate keys, invalid UTF-8,
// nesting deeper than encoding/json allows) makes it give up, and Decode
// falls back to encoding/json, which then decides and words the error.

// fastPaths says whether this build has the fast reader and writer.
const fastPaths = true

// maxPooledBody bounds the bodies whose reader or writer buffer goes back to
// its pool, so a rare huge body does not keep its buffers alive.
const maxPooledBody = 64 << 10

// reader is a reusable token reader; see readers.
type reader struct {
	src bytes.Buffer
	dec jsontext.Decoder
}

// readers reuses token readers across calls and goroutines.
var readers = sync.Pool{New: func() any { return new(reader) }}

// readObject decodes body as a single JSON object with the number rules of
// Decode. It reports false when body is anything else or when it cannot
// vouch that encoding/json would decode body to the same value.
func readObject(body []byte) (map[string]any, bool) {
	r := readers.Get().(*reader)
	// The decoder reads a bytes.Buffer in place, without copying body.
	r.src = *bytes.NewBuffer(body)
	r.dec.Reset(&r.src)
	var obj map[string]any
	ok := r.dec.PeekKind() == jsontext.KindBeginObject
	if ok {
		var v any
		v, ok = r.value()
		obj, _ = v.(map[string]any)
	}
	if ok {
		_, more := trailing(body, r.dec.InputOffset())
		ok = !more
	}
	// Drop every reference to body before pooling the reader.
	r.src = bytes.Buffer{}
	r.dec.Reset(&r.src)
	if len(body) <= maxPooledBody {
		readers.Put(r)
	}
	if !ok {
		return nil, false
	}
	return obj, true
}

// value reads the next JSON value.
func (r *reader) value() (any, bool) {
	switch r.dec.PeekKind() {
	case jsontext.KindBeginObject:
		return r.object()
	case jsontext.KindBeginArray:
		return r.array()
	case jsontext.KindString:
		return r.string()
	case jsontext.KindNumber:
		raw, err := r.dec.ReadValue()
		if err != nil {
			return nil, false
		}
		return numberBytes(raw), true
	case jsontext.KindTrue, jsontext.KindFalse:
		tok, err := r.dec.ReadToken()
		if err != nil {
			return nil, false
		}
		return tok.Bool(), true
	case jsontext.KindNull:
		if _, err := r.dec.ReadToken(); err != nil {
			return nil, false
		}
		return nil, true
	}
	return nil, false
}

func (r *reader) object() (any, bool) {
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, false
	}
	m := make(map[string]any)
	for r.dec.PeekKind() == jsontext.KindString {
		name, ok := r.string()
		if !ok {
			return nil, false
		}
		v, ok := r.value()
		if !ok {
			return nil, false
		}
		m[name] = v
	}
	if _, err := r.dec.ReadToken(); err != nil { // '}', or the error
		return nil, false
	}
	return m, true
}

// string reads a string. The decoder has checked it, so one without
// escapes is its text between the quotes.
func (r *reader) string() (string, bool) {
	raw, err := r.dec.ReadValue()
	if err != nil {
		return "", false
	}
	return unquote(raw)
}

// unquote returns the text of a string the decoder has checked.
func unquote(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	text, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return "", false
	}
	return string(text), true
}

func (r *reader) array() (any, bool) {
	if _, err := r.dec.ReadToken(); err != nil {
		return nil, false
	}
	s := []any{} // an empty array is an empty slice, never nil
	for {
		switch r.dec.PeekKind() {
		case jsontext.KindEndArray:
			if _, err := r.dec.ReadToken(); err != nil {
				return nil, false
			}
			return s, true
		case jsontext.KindInvalid:
			return nil, false
		}
		v, ok := r.value()
		if !ok {
			return nil, false
		}
		s = append(s, v)
	}
}

// numberBytes is number for a valid JSON number literal, without the
// allocations of number's failed integer parse.
func numberBytes(raw []byte) any {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	whole := true
	for _, c := range digits {
		if c < '0' || c > '9' {
			whole = false
			break
		}
	}
	switch {
	case whole && len(digits) <= 18:
		// 18 digits always fit an int.
		n := 0
		for _, c := range digits {
			n = n*10 + int(c-'0')
		}
		if len(digits) != len(raw) {
			n = -n
		}
		return n
	case whole:
		return number(json.Number(raw))
	}
	// A fraction or an exponent: number's integer parse would fail.
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) {
		return json.Number(raw)
	}
	return f
}
