package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

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

// Ingress is an http-webhook config built for the ingress, its secrets
// resolved once. It is safe for concurrent use and does no I/O.
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
	in := &Ingress{Verifier: v, MaxBytes: cfg.MaxBytes, events: cfg.Events, ignore: cfg.Ignore, eventHeader: cfg.EventHeader}
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

// CheckToken returns nil when no token is configured or r carries it (in
// the query or the header), and an error wrapping ErrToken otherwise. It
// compares in constant time.
func (in *Ingress) CheckToken(r *http.Request) error {
	if in.token == nil {
		return nil
	}
	got := r.URL.Query().Get(TokenQuery)
	if got == "" {
		got = r.Header.Get(TokenHeader)
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
