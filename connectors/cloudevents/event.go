package cloudevents

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Media types of the content modes.
const (
	// StructuredType is the JSON event format: one event per request.
	StructuredType = "application/cloudevents+json"
	// BatchType is the JSON batch format: an array of events.
	BatchType = "application/cloudevents-batch+json"
	// SpecVersion is the only specversion taken.
	SpecVersion = "1.0"
	// HeaderPrefix starts a binary-mode attribute header, and the header
	// of every attribute a message carries.
	HeaderPrefix = "ce-"
)

// stringAttributes are the specification's attributes whose JSON form is a
// string (a Timestamp and URI-references included).
var stringAttributes = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "subject": true,
	"time": true, "dataschema": true, "datacontenttype": true,
}

// required are the attributes every event has.
var required = [...]string{"specversion", "id", "source", "type"}

// event is one decoded event: its attributes as canonical strings, its
// data and the data's content type.
type event struct {
	attrs       map[string]string
	contentType string
	data        []byte
}

func malformed(format string, args ...any) error {
	return sdk.Refuse(sdk.RefuseMalformed, fmt.Sprintf(format, args...))
}

// mediaType is a Content-Type without its parameters, in lower case.
func mediaType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// decode reads the request's events in its content mode: structured or
// batched by the Content-Type, binary otherwise. batch reports the batched
// mode.
func decode(h http.Header, body []byte) (events []event, batch bool, err error) {
	ct := h.Get("Content-Type")
	switch mt := mediaType(ct); {
	case mt == StructuredType:
		e, err := decodeStructured(body)
		if err != nil {
			return nil, false, err
		}
		return []event{e}, false, nil
	case mt == BatchType:
		events, err := decodeBatch(body)
		return events, true, err
	case strings.HasPrefix(mt, "application/cloudevents"):
		return nil, false, sdk.Refuse(sdk.RefuseUnsupported, fmt.Sprintf("event format %q is not taken: send binary mode, %s or %s", mt, StructuredType, BatchType))
	}
	e, err := decodeBinary(h, ct, body)
	if err != nil {
		return nil, false, err
	}
	return []event{e}, false, nil
}

// decodeBinary reads an event in binary mode: each attribute in its own
// ce- header, percent-encoded; the body is the data, Content-Type its
// datacontenttype.
func decodeBinary(h http.Header, contentType string, body []byte) (event, error) {
	e := event{attrs: map[string]string{}, contentType: contentType, data: body}
	for k, v := range h {
		if len(k) <= len(HeaderPrefix) || !strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix) {
			continue
		}
		name := strings.ToLower(k[len(HeaderPrefix):])
		if err := checkName(name); err != nil {
			return event{}, err
		}
		if name == "datacontenttype" {
			return event{}, malformed("binary mode: the data's content type is the Content-Type header, never a ce-datacontenttype header")
		}
		if len(v) != 1 {
			return event{}, malformed("attribute %s: given %d times", name, len(v))
		}
		if len(e.attrs) >= MaxAttributes {
			return event{}, malformed("more than %d attributes", MaxAttributes)
		}
		value, err := headerValue(v[0])
		if err != nil {
			return event{}, malformed("attribute %s: %v", name, err)
		}
		e.attrs[name] = value
	}
	if len(e.attrs) == 0 {
		return event{}, malformed("not a CloudEvent: binary mode needs the ce-specversion, ce-id, ce-source and ce-type headers; structured mode Content-Type %s", StructuredType)
	}
	return e, e.check()
}

// headerValue decodes a binary-mode header value: a quoted string is
// unquoted, then one round of percent-decoding; the result must be UTF-8
// without control characters.
func headerValue(raw string) (string, error) {
	v := strings.TrimSpace(raw)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(v)-1; i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v)-1 {
				i++
				c = v[i]
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if len(v) > 3*MaxAttributeValue {
		return "", fmt.Errorf("longer than %d bytes", MaxAttributeValue)
	}
	var b []byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("a %% not followed by two hex digits")
		}
		x, err := hex.DecodeString(v[i+1 : i+3])
		if err != nil {
			return "", fmt.Errorf("a %% not followed by two hex digits")
		}
		b = append(b, x[0])
		i += 2
	}
	s := string(b)
	return s, checkValue(s)
}

// checkValue refuses values that are too long, not UTF-8 (overlong forms
// included) or hold control characters (U+0000-001F, U+007F-009F).
func checkValue(s string) error {
	if len(s) > MaxAttributeValue {
		return fmt.Errorf("longer than %d bytes", MaxAttributeValue)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return fmt.Errorf("holds a control character")
		}
	}
	return nil
}

// checkName refuses attribute names that are not lower-case ASCII letters
// and digits, or too long.
func checkName(name string) error {
	if name == "" || len(name) > MaxAttributeName {
		return malformed("attribute names are 1 to %d characters", MaxAttributeName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return malformed("attribute %q: names are lower-case letters and digits", truncate(name))
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// check verifies the required attributes and the ones with a type.
func (e event) check() error {
	for _, name := range required {
		if e.attrs[name] == "" {
			return malformed("attribute %s: required", name)
		}
	}
	if v := e.attrs["specversion"]; v != SpecVersion {
		return malformed("specversion %q: only %s is taken", truncate(v), SpecVersion)
	}
	if v, ok := e.attrs["time"]; ok {
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			return malformed("attribute time: not an RFC 3339 timestamp")
		}
	}
	if err := checkValue(e.contentType); err != nil {
		return malformed("datacontenttype: %v", err)
	}
	return nil
}

// decodeBatch reads a JSON array of structured events.
func decodeBatch(body []byte) ([]event, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, malformed("batch: not a JSON array of events: %v", err)
	}
	if len(raws) > MaxEvents {
		return nil, sdk.Refuse(sdk.RefuseTooLarge, fmt.Sprintf("batch: more than %d events", MaxEvents))
	}
	events := make([]event, 0, len(raws))
	for i, raw := range raws {
		e, err := decodeStructured(raw)
		if err != nil {
			var r *sdk.Refusal
			if asRefusal(err, &r) {
				return nil, sdk.Refuse(r.Kind, fmt.Sprintf("batch event %d: %s", i, r.Detail))
			}
			return nil, err
		}
		events = append(events, e)
	}
	return events, nil
}

func asRefusal(err error, r **sdk.Refusal) bool {
	f, ok := err.(*sdk.Refusal)
	*r = f
	return ok
}

// decodeStructured reads one event in the JSON event format.
func decodeStructured(body []byte) (event, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil || members == nil {
		return event{}, malformed("not a JSON object")
	}
	if len(members) > MaxAttributes+2 {
		return event{}, malformed("more than %d attributes", MaxAttributes)
	}
	e := event{attrs: make(map[string]string, len(members))}
	data, hasData := members["data"]
	data64, hasData64 := members["data_base64"]
	for name, raw := range members {
		if name == "data" || name == "data_base64" {
			continue
		}
		if err := checkName(name); err != nil {
			return event{}, err
		}
		v, err := attributeValue(raw)
		if err != nil {
			return event{}, malformed("attribute %s: %v", name, err)
		}
		if stringAttributes[name] && bytes.TrimSpace(raw)[0] != '"' {
			return event{}, malformed("attribute %s: a JSON string", name)
		}
		if name == "datacontenttype" {
			e.contentType = v
			continue
		}
		e.attrs[name] = v
	}
	switch {
	case hasData && hasData64:
		return event{}, malformed("data and data_base64: give one")
	case hasData64:
		var s string
		if err := json.Unmarshal(data64, &s); err != nil {
			return event{}, malformed("data_base64: not a string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return event{}, malformed("data_base64: not base64")
		}
		e.data = b
		if e.contentType == "" {
			e.contentType = "application/octet-stream"
		}
	case hasData:
		if e.contentType == "" {
			e.contentType = "application/json"
		}
		e.data = bytes.TrimSpace(data)
		if !jsonType(e.contentType) && len(e.data) > 0 && e.data[0] == '"' {
			var s string
			if err := json.Unmarshal(e.data, &s); err != nil {
				return event{}, malformed("data: %v", err)
			}
			e.data = []byte(s)
		}
	}
	return e, e.check()
}

// attributeValue is an attribute's canonical string: a JSON string's
// text, or a number's or boolean's literal.
func attributeValue(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", fmt.Errorf("empty")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, checkValue(s)
	case 't', 'f', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if len(raw) > 64 {
			return "", fmt.Errorf("too long")
		}
		return string(raw), nil
	case 'n':
		return "", fmt.Errorf("null is not a value")
	}
	return "", fmt.Errorf("a string, number or boolean, not an object or array")
}

// jsonType reports a JSON media type: application/json, text/json or a
// +json suffix.
func jsonType(contentType string) bool {
	mt := mediaType(contentType)
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// messageID names an event by its source and id (their SHA-256, in hex):
// the specification makes the pair an event's identity, so two sources
// may use the same id without one's event being taken for the other's.
func messageID(source, id string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s\n%s", len(source), source, id)
	return "ce-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// batchKey names a batch by its events' message IDs.
func batchKey(msgs []sdk.Message) string {
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte(m.ID))
		h.Write([]byte{'\n'})
	}
	return "ceb-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// message is the event as a message of the request.
func (e event) message(req sdk.Request) sdk.Message {
	m := sdk.Message{
		ID:          messageID(e.attrs["source"], e.attrs["id"]),
		ContentType: e.contentType,
		Body:        e.data,
		Received:    req.Received,
		Headers:     make(map[string]string, len(e.attrs)),
	}
	for k, v := range e.attrs {
		m.Headers[HeaderPrefix+k] = v
	}
	return m
}
