package hotpath

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

// NATS headers the hot path writes. User headers travel as one JSON header so
// their keys keep their exact spelling.
const (
	hdrMsgID       = "Vrsky-Msg-Id"
	hdrContentType = "Vrsky-Content-Type"
	hdrReceived    = "Vrsky-Received"
	hdrHeaders     = "Vrsky-Headers"
	hdrBodyRef     = "Vrsky-Body-Ref"
	hdrBodySize    = "Vrsky-Body-Size"

	// Dead-letter headers.
	HeaderDLQReason   = "Vrsky-Dlq-Reason"
	HeaderDLQStage    = "Vrsky-Dlq-Stage"
	HeaderDLQAttempts = "Vrsky-Dlq-Attempts"
	HeaderDLQSubject  = "Vrsky-Dlq-Subject"
	HeaderDLQAt       = "Vrsky-Dlq-At"
)

// envelope is a message as it sits in a stream: the body, or a reference to
// it in the blob store.
type envelope struct {
	msg     sdk.Message
	bodyRef string
	size    int64
	// owned is a claim-checked body no other message refers to, deleted
	// once this one is finished (delivered or dead-lettered).
	owned string
}

// encodeHeaders is how many headers encode writes at most.
const encodeHeaders = 7

// encode builds the NATS message for subject. dedupID becomes Nats-Msg-Id,
// so JetStream drops a second publish of it within the duplicate window.
func encode(subject, dedupID string, env envelope) *nats.Msg {
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
	set(hdrMsgID, env.msg.ID)
	if env.msg.ContentType != "" {
		set(hdrContentType, env.msg.ContentType)
	}
	if !env.msg.Received.IsZero() {
		set(hdrReceived, strconv.FormatInt(env.msg.Received.UnixNano(), 10))
	}
	if len(env.msg.Headers) > 0 {
		set(hdrHeaders, encodeUserHeaders(env.msg.Headers))
	}
	if env.bodyRef != "" {
		set(hdrBodyRef, env.bodyRef)
		set(hdrBodySize, strconv.FormatInt(env.size, 10))
		return m
	}
	m.Data = env.msg.Body
	return m
}

// decode reads a message of pipeline p from NATS headers and data.
func decode(p Pipeline, h nats.Header, data []byte) (envelope, error) {
	env := envelope{msg: sdk.Message{
		ID:          h.Get(hdrMsgID),
		Tenant:      p.Tenant,
		Integration: p.Integration,
		ContentType: h.Get(hdrContentType),
		Body:        data,
	}}
	if env.msg.ID == "" {
		env.msg.ID = h.Get(nats.MsgIdHdr)
	}
	if env.msg.ID == "" {
		return env, fmt.Errorf("message has no ID")
	}
	if r := h.Get(hdrReceived); r != "" {
		ns, err := strconv.ParseInt(r, 10, 64)
		if err != nil {
			return env, fmt.Errorf("message %s: bad %s header: %w", env.msg.ID, hdrReceived, err)
		}
		env.msg.Received = time.Unix(0, ns)
	}
	if raw := h.Get(hdrHeaders); raw != "" {
		headers, err := decodeUserHeaders(raw)
		if err != nil {
			return env, fmt.Errorf("message %s: bad %s header: %w", env.msg.ID, hdrHeaders, err)
		}
		env.msg.Headers = headers
	}
	if ref := h.Get(hdrBodyRef); ref != "" {
		if err := checkRef(p, ref); err != nil {
			return env, fmt.Errorf("message %s: %w", env.msg.ID, err)
		}
		env.bodyRef = ref
		env.size, _ = strconv.ParseInt(h.Get(hdrBodySize), 10, 64)
		env.msg.Body = nil
	}
	return env, nil
}

// Decode reads a message of pipeline p as one of its stage subjects
// carries it: the message with its body, or, when the body is claim-checked,
// without it and with its object's key (ref) and size. The API's message
// inspection uses it; it never fetches a claim-checked body.
func Decode(p Pipeline, h nats.Header, data []byte) (msg sdk.Message, ref string, size int64, err error) {
	env, err := decode(p, h, data)
	if env.bodyRef == "" {
		env.size = int64(len(env.msg.Body))
	}
	return env.msg, env.bodyRef, env.size, err
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
