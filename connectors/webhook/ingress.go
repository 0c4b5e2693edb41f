package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Where a request carries an integration's URL token.
const (
	// TokenQuery is the query parameter holding the token.
	TokenQuery = "token"
	// TokenHeader is the header holding the token, for senders that can
	// set headers but not sign.
	TokenHeader = "X-Webhook-Token"
)

// Headers naming a delivery, the same on every retry and redelivery.
const (
	// HeaderGitHubDelivery is the GUID of a GitHub delivery; GitHub's
	// "Redeliver" sends it again unchanged.
	HeaderGitHubDelivery = "X-GitHub-Delivery"
)

// ErrToken is what a missing or wrong URL token wraps.
var ErrToken = fmt.Errorf("%w: missing or wrong token", ErrSignature)

// Ingress is an http-webhook config built for the platform's ingress, its
// secrets resolved once: the sdk.Ingress that Build returns. It is safe for
// concurrent use and does no I/O besides the sink's.
type Ingress struct {
	// Verifier checks signatures; nil when requests are not signed.
	Verifier Verifier
	// MaxBytes is the configured body limit; 0 leaves the integration's.
	MaxBytes int64

	scheme      string
	token       *[sha256.Size]byte
	events      []string
	ignore      []string
	eventHeader string
	keyMemory   sdk.KeyMemory
}

// Build decodes raw strictly and resolves its secrets.
func Build(ctx context.Context, env sdk.Env, raw json.RawMessage) (*Ingress, error) {
	cfg, err := Decode(raw)
	if err != nil {
		return nil, err
	}
	v, err := newVerifier(ctx, env, cfg)
	if err != nil {
		return nil, err
	}
	in := &Ingress{Verifier: v, MaxBytes: cfg.MaxBytes, events: cfg.Events, ignore: cfg.Ignore, eventHeader: cfg.EventHeader,
		keyMemory: cfg.KeyMemory}
	if cfg.Signature != nil {
		in.scheme = cfg.Signature.Scheme
	}
	if in.eventHeader == "" {
		in.eventHeader = DefaultEventHeader
	}
	if in.events == nil && in.ignore == nil {
		in.ignore = DefaultIgnore
	}
	if cfg.Token != nil {
		token, err := cfg.Token.Resolve(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: resolve token: %w", Name, err)
		}
		if len(token) < 16 {
			return nil, fmt.Errorf("%s: token %s is shorter than 16 characters", Name, *cfg.Token)
		}
		sum := sha256.Sum256([]byte(token))
		in.token = &sum
	}
	return in, nil
}

// Authenticated reports whether requests must prove they come from the
// sender: a signature or a URL token.
func (in *Ingress) Authenticated() bool { return in.Verifier != nil || in.token != nil }

// CheckToken returns nil when no token is configured or the request
// carries it (in u's query or the header), and an error wrapping ErrToken
// otherwise. It compares in constant time.
func (in *Ingress) CheckToken(h http.Header, u *url.URL) error {
	if in.token == nil {
		return nil
	}
	var got string
	if u != nil {
		got = u.Query().Get(TokenQuery)
	}
	if got == "" {
		got = h.Get(TokenHeader)
	}
	sum := sha256.Sum256([]byte(got))
	if got == "" || subtle.ConstantTimeCompare(sum[:], in.token[:]) != 1 {
		return ErrToken
	}
	return nil
}

// Skip reports whether a request is answered 2xx without being stored, and
// its event type: with Events set, when its event type (from the event
// header) is not listed; otherwise when it is in Ignore (default [ping]).
func (in *Ingress) Skip(h http.Header) (event string, skip bool) {
	event = h.Get(in.eventHeader)
	if in.events != nil {
		return event, !slices.Contains(in.events, event)
	}
	return event, event != "" && slices.Contains(in.ignore, event)
}

// DeliveryID is the sender's own ID of the delivery, the same when it
// retries or an operator redelivers it: X-GitHub-Delivery, Standard
// Webhooks' webhook-id, or the event_id of a Slack Events API callback
// (Slack names deliveries in the body only). Empty when there is none.
func (in *Ingress) DeliveryID(h http.Header, body []byte) string {
	if id := h.Get(HeaderGitHubDelivery); id != "" {
		return id
	}
	if id := h.Get(HeaderStandardID); id != "" {
		return id
	}
	if in.scheme == SchemeSlack && len(body) > 0 && body[0] == '{' {
		var cb struct {
			EventID string `json:"event_id"`
		}
		if json.Unmarshal(body, &cb) == nil && cb.EventID != "" {
			return "slack-" + cb.EventID
		}
	}
	return ""
}

var _ sdk.Ingress = (*Ingress)(nil)

// errUnauthenticated answers a request whose signature or token does not
// verify; it names neither.
var errUnauthenticated = sdk.Refuse(sdk.RefuseUnauthenticated, "invalid or missing signature")

// BodyLimit is the config's maxBytes (0: the integration's limit).
func (in *Ingress) BodyLimit() int64 { return in.MaxBytes }

// Admit refuses, before the body is read, a malformed Idempotency-Key
// (400) and a missing or wrong URL token (401).
func (in *Ingress) Admit(req sdk.Request) error {
	if key := req.Header.Get(HeaderIdempotencyKey); key != "" && !ValidKey(key) {
		return sdk.Refuse(sdk.RefuseMalformed, "Idempotency-Key must be 1-200 printable ASCII characters")
	}
	if in.CheckToken(req.Header, req.URL) != nil {
		return errUnauthenticated
	}
	return nil
}

// Receive verifies the signature, answers 200 {"ignored": true} for an
// event type not stored, and otherwise stores the body as one message (or,
// for Content-Type application/x-ndjson, one per non-empty line) and
// answers 202 {"id": …}. The message ID is the Idempotency-Key, else the
// sender's delivery ID, else a random one; only the first two name the
// delivery (sdk.Delivery.Key), and not with sdk.KeyMemoryWindow, which
// leaves repeats to JetStream's duplicate window of the message ID.
func (in *Ingress) Receive(ctx context.Context, req sdk.Request, sink sdk.IngressSink) (sdk.Answer, error) {
	if in.Verifier != nil {
		if err := in.Verifier.Verify(req.Header, req.Body, time.Now()); err != nil {
			return sdk.Answer{}, errUnauthenticated
		}
	}
	if event, skip := in.Skip(req.Header); skip {
		return ignoredAnswer(event), nil
	}
	key := req.Header.Get(HeaderIdempotencyKey)
	if key == "" {
		if d := in.DeliveryID(req.Header, req.Body); ValidKey(d) {
			key = d
		}
	}
	id := key
	if id == "" {
		id = newMessageID()
	}
	msg := sdk.Message{
		ID: id, ContentType: req.Header.Get("Content-Type"), Body: req.Body,
		Headers: ForwardedHeaders(req.Header), Received: req.Received,
	}
	msgs, count := []sdk.Message{msg}, 0
	if MediaType(msg.ContentType) == NDJSONType {
		if msgs = SplitRecords(msg); len(msgs) == 0 || len(msgs) > MaxBatchRecords {
			return sdk.Answer{}, sdk.Refuse(sdk.RefuseMalformed, "an NDJSON batch holds 1 to 1,000 non-empty lines")
		}
		count = len(msgs)
	}
	if _, err := sink.Publish(ctx, sdk.Delivery{Key: in.keyMemory.DeliveryKey(key), Messages: msgs}); err != nil {
		return sdk.Answer{}, err
	}
	return acceptedAnswer(id, count), nil
}
