package sdk

import "time"

// HeaderRecordError marks a message a consumer could not read properly (a
// malformed line, a ragged CSV row): its value says what is wrong and where,
// and the body holds the raw input. The hot path sends such a message to the
// dead-letter queue with that reason instead of processing it, so one bad
// record never blocks the good ones around it.
const HeaderRecordError = "vrsky-error"

// Message is what flows through an integration. It is a plain value: stages
// return new or modified copies and never keep references after returning.
type Message struct {
	// ID is unique per message and deterministic where the source allows
	// (a webhook idempotency key, a CDC commit LSN + ordinal, a file path +
	// offset); JetStream drops a second publish of the same ID.
	ID          string
	Tenant      string
	Integration string
	// Headers carry metadata; keys are case-sensitive. Keys starting with
	// "Vrsky-" are reserved for the platform.
	Headers     map[string]string
	ContentType string
	// Body is the payload. The hot path fetches claim-checked bodies before
	// a stage sees the message, so a stage always sees the bytes. A stage
	// replaces Body rather than writing into it (Clone first to edit the
	// bytes in place): copies of the message share them.
	Body []byte
	// Received is when the consumer took the message in.
	Received time.Time

	// decoded is Body's decoded JSON value, as recorded by SetJSON.
	decoded *decodedBody
}

// decodedBody pairs a body with its decoded JSON value. It never changes
// once made, so copies of a message can share it.
type decodedBody struct {
	body  []byte
	value any
}

// JSON returns the decoded JSON value of Body that SetJSON recorded, and
// false when none was recorded or Body has been replaced since. The value is
// shared by every copy of the message and must not be modified. Connectors
// reach it through package jsonbody rather than directly.
func (m Message) JSON() (any, bool) {
	d := m.decoded
	if d == nil || len(d.body) == 0 || len(d.body) != len(m.Body) || &d.body[0] != &m.Body[0] {
		return nil, false
	}
	return d.value, true
}

// SetJSON sets Body to body and records v as its decoded JSON value, so the
// next step of a chain need not decode body again. v must be exactly what
// decoding body gives (package jsonbody's Decode), and neither may change
// afterwards.
func (m *Message) SetJSON(body []byte, v any) {
	m.Body = body
	m.decoded = &decodedBody{body: body, value: v}
}

// Clone returns a copy whose Headers and Body can be changed without
// touching m. The copy carries no decoded JSON value.
func (m Message) Clone() Message {
	c := m
	c.decoded = nil
	if m.Headers != nil {
		c.Headers = make(map[string]string, len(m.Headers))
		for k, v := range m.Headers {
			c.Headers[k] = v
		}
	}
	if m.Body != nil {
		c.Body = append([]byte(nil), m.Body...)
	}
	return c
}

// Header returns a header's value, or "".
func (m Message) Header(key string) string { return m.Headers[key] }

// SetHeader sets a header, allocating the map when needed.
func (m *Message) SetHeader(key, value string) {
	if m.Headers == nil {
		m.Headers = make(map[string]string)
	}
	m.Headers[key] = value
}
