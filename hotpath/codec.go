package hotpath

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

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
}

// encode builds the NATS message for subject. dedupID becomes Nats-Msg-Id,
// so JetStream drops a second publish of it within the duplicate window.
func encode(subject, dedupID string, env envelope) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Header.Set(nats.MsgIdHdr, dedupID)
	m.Header.Set(hdrMsgID, env.msg.ID)
	if env.msg.ContentType != "" {
		m.Header.Set(hdrContentType, env.msg.ContentType)
	}
	if !env.msg.Received.IsZero() {
		m.Header.Set(hdrReceived, strconv.FormatInt(env.msg.Received.UnixNano(), 10))
	}
	if len(env.msg.Headers) > 0 {
		b, _ := json.Marshal(env.msg.Headers) // map[string]string always marshals
		m.Header.Set(hdrHeaders, string(b))
	}
	if env.bodyRef != "" {
		m.Header.Set(hdrBodyRef, env.bodyRef)
		m.Header.Set(hdrBodySize, strconv.FormatInt(env.size, 10))
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
		if err := json.Unmarshal([]byte(raw), &env.msg.Headers); err != nil {
			return env, fmt.Errorf("message %s: bad %s header: %w", env.msg.ID, hdrHeaders, err)
		}
	}
	if ref := h.Get(hdrBodyRef); ref != "" {
		env.bodyRef = ref
		env.size, _ = strconv.ParseInt(h.Get(hdrBodySize), 10, 64)
		env.msg.Body = nil
	}
	return env, nil
}
