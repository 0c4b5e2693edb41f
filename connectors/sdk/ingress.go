package sdk

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Ingress is a consumer the platform pushes to: the platform's HTTP ingress
// receives a request for an integration whose consumer is an ingress
// connector (Connector.Ingress) and hands it to the Ingress its Build
// returned. No runner runs it and nothing polls it.
//
// The platform keeps what is the platform's: routing by tenant and
// integration, per-tenant rates and quotas, per-address limits on refused
// requests, trusted proxies, reading the body within its size cap and
// time, metrics and request IDs. The connector owns what is the sender's
// protocol: authenticating the request, what messages its body makes, their
// IDs, and the answer.
//
// An Ingress is built once per version of the integration's desired state
// and then called by many requests at once: its methods must be safe for
// concurrent use, must not keep the request or its body after returning,
// and do no I/O of their own besides sink.Publish.
type Ingress interface {
	// BodyLimit is the largest body the connector takes, in bytes; 0
	// leaves the integration's limit.
	BodyLimit() int64
	// Admit checks what the request's line and headers prove before its
	// body is read (a URL token, a malformed header): a request it refuses
	// costs no body read. req.Body is nil. It returns nil or a *Refusal.
	Admit(req Request) error
	// Receive turns the request into messages and hands them to sink in
	// one Delivery, then returns the answer to send. It acknowledges the
	// sender (returns a 2xx Answer) only after sink.Publish returned nil;
	// when Publish fails it returns that error (wrapped or not) and the
	// platform answers it. A request it refuses returns a *Refusal and
	// stores nothing; a request it takes without storing anything (an
	// event type the integration ignores) returns a 2xx Answer without
	// calling sink. It must honour ctx.
	Receive(ctx context.Context, req Request, sink IngressSink) (Answer, error)
}

// Request is one HTTP request to an ingress connector.
type Request struct {
	Header http.Header
	// URL is the request's URL (its query may carry a token).
	URL *url.URL
	// Body is the whole body, read by the platform within the limit; nil
	// in Admit. It is the platform's buffer: copy what outlives the call
	// (a Message may hold slices of it until sink.Publish returns).
	Body []byte
	// Received is when the platform took the request in.
	Received time.Time
}

// Answer is what an ingress connector answers a request it took: a 2xx
// status, and a body of its own format.
type Answer struct {
	// Status is 200, 201, 202 or 204; the platform answers anything else
	// as a server error.
	Status      int
	ContentType string
	Body        []byte
}

// Delivery is what one request stores: all its messages, or none of them.
type Delivery struct {
	// Key is the sender's name for the request (an Idempotency-Key, a
	// delivery ID, an event's ID), "" when it gave none or the connector's
	// KeyMemory is KeyMemoryWindow (KeyMemory.DeliveryKey). The platform
	// remembers each key with a digest of the request's body beyond
	// JetStream's duplicate window: the same key with the same body stores
	// nothing again (PubAck.Duplicate), the same key with another body is
	// refused and stores nothing. A valid key is a valid message ID.
	Key string
	// Messages are stored in order. Each message's ID is deterministic
	// where the sender named the request (so that JetStream drops a
	// repeat), and a valid message ID (ValidMessageID); at most
	// MaxDeliveryMessages.
	Messages []Message
}

// KeyMemory is how long the platform recognises a repeated delivery key,
// as an ingress connector's config chooses (docs/adr/0033).
type KeyMemory string

// Key memories.
const (
	// KeyMemoryRemember (also the zero value) hands the key to the
	// platform as Delivery.Key: it is remembered with the body's digest
	// for the platform's key TTL: one waited publish and one unwaited
	// record per request (docs/adr/0034).
	KeyMemoryRemember KeyMemory = "remember"
	// KeyMemoryWindow leaves repeats to JetStream's 2-minute duplicate
	// window of the messages' deterministic IDs: Delivery.Key stays empty
	// and nothing else remembers the key: one waited publish per request.
	KeyMemoryWindow KeyMemory = "window"
)

// Validate refuses a key memory that is not "", remember or window.
func (m KeyMemory) Validate() error {
	switch m {
	case "", KeyMemoryRemember, KeyMemoryWindow:
		return nil
	}
	return fmt.Errorf("keyMemory: unknown value %q, want remember or window", string(m))
}

// DeliveryKey is the Delivery.Key of a request the sender named key.
func (m KeyMemory) DeliveryKey(key string) string {
	if m == KeyMemoryWindow {
		return ""
	}
	return key
}

// PubAck is the platform's receipt for a stored Delivery.
type PubAck struct {
	// Duplicate reports that the Delivery's key was already stored with
	// the same body, so nothing was stored again. A repeat that only
	// JetStream's duplicate window caught reports false.
	Duplicate bool
}

// IngressSink stores what an ingress connector takes in; the platform
// implements it for each request.
type IngressSink interface {
	// Publish stores d's messages in the integration and returns once
	// JetStream acknowledged every one of them (durable), or with an
	// error: then the connector returns that error and the platform
	// answers it (429 over the tenant's rate, 409 for a reused key, 503 or
	// 507 when the store cannot take it). Call it at most once per
	// request.
	Publish(ctx context.Context, d Delivery) (PubAck, error)
}

// Limits of what an ingress connector hands the platform.
const (
	// MaxMessageID is the longest message ID the platform stores.
	MaxMessageID = 256
	// MaxDeliveryMessages is the most messages one request may store.
	MaxDeliveryMessages = 1000
)

// ValidMessageID reports whether id may name a message: 1 to MaxMessageID
// printable ASCII characters (0x21 to 0x7e), so it can travel in a NATS
// header as it is.
func ValidMessageID(id string) bool {
	if len(id) == 0 || len(id) > MaxMessageID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// RefusalKind says why an ingress connector refused a request; the
// platform turns it into the HTTP status.
type RefusalKind int

// The refusal kinds.
const (
	// RefuseMalformed is a request the connector cannot read (400).
	RefuseMalformed RefusalKind = iota
	// RefuseUnauthenticated is a request that does not prove it comes
	// from the sender (401): a missing or wrong signature or token. The
	// platform gives the tenant's rate back and charges the client's
	// address instead.
	RefuseUnauthenticated
	// RefuseUnsupported is a content type the connector does not take
	// (415).
	RefuseUnsupported
	// RefuseTooLarge is a request over one of the connector's own
	// bounds other than the body limit (413), such as too many records.
	RefuseTooLarge
)

// Refusal is an ingress connector's answer to a request it does not take;
// nothing was stored. Detail is shown to the sender: it never holds a
// secret or an expected signature.
type Refusal struct {
	Kind   RefusalKind
	Detail string
}

func (r *Refusal) Error() string { return r.Detail }

// Refuse returns a *Refusal.
func Refuse(kind RefusalKind, detail string) error {
	return &Refusal{Kind: kind, Detail: detail}
}
