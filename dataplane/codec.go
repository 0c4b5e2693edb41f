package dataplane

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// NATS headers the data plane writes. User headers travel as one JSON header
// so their keys keep their exact spelling.
const (
	// HeaderMsgID carries the message's own ID (Nats-Msg-Id carries the
	// ID JetStream deduplicates on, which may differ).
	HeaderMsgID    = "Vrsky-Msg-Id"
	hdrContentType = "Vrsky-Content-Type"
	hdrReceived    = "Vrsky-Received"
	hdrHeaders     = "Vrsky-Headers"
	// HeaderBodyRef carries the blob-store key of a claim-checked body.
	HeaderBodyRef = "Vrsky-Body-Ref"
	hdrBodySize   = "Vrsky-Body-Size"

	// Dead-letter headers.
	HeaderDLQReason   = "Vrsky-Dlq-Reason"
	HeaderDLQStage    = "Vrsky-Dlq-Stage"
	HeaderDLQAttempts = "Vrsky-Dlq-Attempts"
	HeaderDLQSubject  = "Vrsky-Dlq-Subject"
	HeaderDLQAt       = "Vrsky-Dlq-At"
)

// Envelope is a message as it sits in a stream: the body, or a reference to
// it in the blob store.
type Envelope struct {
	Msg sdk.Message
	// BodyRef is the blob-store key of a claim-checked body; Size is then
	// the body's size.
	BodyRef string
	Size    int64
	// Owned is a claim-checked body no other message refers to, deleted
	// once this one is finished (delivered or dead-lettered).
	Owned string
}

// encodeHeaders is how many headers Encode writes at most.
const encodeHeaders = 7

// Encode builds the NATS message for subject. dedupID becomes Nats-Msg-Id,
// so JetStream drops a second publish of it within the duplicate window.
func Encode(subject, dedupID string, env Envelope) *nats.Msg {
	// The header keys are canonical already, so the values go straight in,
	// all backed by one array: nats.Header.Set allocates a slice per header.
	m := &nats.Msg{Subject: subject, Header: make(nats.Header, encodeHeaders)}
	values := make([]string, 0, encodeHeaders)
	set := func(key, value string) {
		values = append(values, value)
		n := len(values)
		m.Header[key] = values[n-1 : n : n]
	}
	set(nats.MsgIdHdr, dedupID)
	set(HeaderMsgID, env.Msg.ID)
	if env.Msg.ContentType != "" {
		set(hdrContentType, env.Msg.ContentType)
	}
	if !env.Msg.Received.IsZero() {
		set(hdrReceived, strconv.FormatInt(env.Msg.Received.UnixNano(), 10))
	}
	if len(env.Msg.Headers) > 0 {
		set(hdrHeaders, encodeUserHeaders(env.Msg.Headers))
	}
	if env.BodyRef != "" {
		set(HeaderBodyRef, env.BodyRef)
		set(hdrBodySize, strconv.FormatInt(env.Size, 10))
		return m
	}
	m.Data = env.Msg.Body
	return m
}

// DecodeEnvelope reads a message of pipeline p from NATS headers and data.
func DecodeEnvelope(p Pipeline, h nats.Header, data []byte) (Envelope, error) {
	env := Envelope{Msg: sdk.Message{
		ID:          h.Get(HeaderMsgID),
		Tenant:      p.Tenant,
		Integration: p.Integration,
		ContentType: h.Get(hdrContentType),
		Body:        data,
	}}
	if env.Msg.ID == "" {
		env.Msg.ID = h.Get(nats.MsgIdHdr)
	}
	if env.Msg.ID == "" {
		return env, fmt.Errorf("message has no ID")
	}
	if r := h.Get(hdrReceived); r != "" {
		ns, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			return env, fmt.Errorf("message %s: bad %s header: %w", env.Msg.ID, hdrReceived, err)
		}
		env.Msg.Received = time.Unix(0, ns)
	}
	if raw := h.Get(hdrHeaders); raw != "" {
		headers, err := decodeUserHeaders(raw)
		if err != nil {
			return env, fmt.Errorf("message %s: bad %s header: %w", env.Msg.ID, hdrHeaders, err)
		}
		env.Msg.Headers = headers
	}
	if ref := h.Get(HeaderBodyRef); ref != "" {
		if err := checkRef(p, ref); err != nil {
			return env, fmt.Errorf("message %s: %w", env.Msg.ID, err)
		}
		env.BodyRef = ref
		env.Size, _ = strconv.ParseInt(h.Get(hdrBodySize), 10, 64)
		env.Msg.Body = nil
	}
	return env, nil
}

// Decode reads a message of pipeline p as one of its stage subjects
// carries it: the message with its body, or, when the body is claim-checked,
// without it and with its object's key (ref) and size. The API's message
// inspection uses it; it never fetches a claim-checked body.
func Decode(p Pipeline, h nats.Header, data []byte) (msg sdk.Message, ref string, size int64, err error) {
	env, err := DecodeEnvelope(p, h, data)
	if env.BodyRef == "" {
		env.Size = int64(len(env.Msg.Body))
	}
	return env.Msg, env.BodyRef, env.Size, err
}

// encodeUserHeaders is json.Marshal of headers, written directly when every
// key and value is plain text that json.Marshal copies verbatim.
func encodeUserHeaders(headers map[string]string) string {
	var small [16]string
	keys := small[:0]
	size := len("{}")
	for k, v := range headers {
		if !plainJSONText(k) || !plainJSONText(v) {
			b, _ := json.Marshal(headers) // map[string]string always marshals
			return string(b)
		}
		keys = append(keys, k)
		size += len(`"":"",`) + len(k) + len(v)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(k)
		b.WriteString(`":"`)
		b.WriteString(headers[k])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// decodeUserHeaders is json.Unmarshal of a Vrsky-Headers value. The compact
// form encodeUserHeaders writes for plain text is read directly, its keys
// and values sharing raw's memory; anything else goes to encoding/json.
func decodeUserHeaders(raw string) (map[string]string, error) {
	if headers, ok := readPlainHeaders(raw); ok {
		return headers, nil
	}
	var headers map[string]string
	if err := json.Unmarshal([]byte(raw), &headers); err != nil {
		return nil, err
	}
	return headers, nil
}

// readPlainHeaders reads {"k":"v",...} whose keys and values are plain
// text; it reports false for any other input.
func readPlainHeaders(raw string) (map[string]string, bool) {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' || !utf8.ValidString(raw) {
		return nil, false
	}
	headers := make(map[string]string, strings.Count(raw, `":"`))
	rest := raw[1 : len(raw)-1]
	for rest != "" {
		k, after, ok := readPlainString(rest)
		if !ok || after == "" || after[0] != ':' {
			return nil, false
		}
		v, after, ok := readPlainString(after[1:])
		if !ok {
			return nil, false
		}
		headers[k] = v
		if after == "" {
			break
		}
		if after[0] != ',' || len(after) == 1 {
			return nil, false
		}
		rest = after[1:]
	}
	return headers, true
}

// readPlainString reads a quoted plain-text string at the start of s.
func readPlainString(s string) (text, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 || !plainJSONText(s[1:1+end]) {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}

// plainJSONText reports whether json.Marshal writes s between quotes as it
// is: valid UTF-8 with no control character, quote, backslash, HTML
// character (< > &), U+2028 or U+2029.
func plainJSONText(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c >= utf8.RuneSelf:
			return utf8.ValidString(s[i:]) && !strings.ContainsAny(s[i:], "\u2028\u2029")
		}
	}
	return true
}
