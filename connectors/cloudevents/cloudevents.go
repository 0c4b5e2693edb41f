// Package cloudevents is the cloudevents consumer, an ingress connector
// (sdk.Connector.Ingress): it receives CloudEvents 1.0 over HTTP on the
// platform's ingress (POST /v1/hooks/{tenant}/{integration}) in the three
// content modes of the HTTP protocol binding: binary (attributes in ce-
// headers, the data as the body), structured (one event in the JSON event
// format, Content-Type application/cloudevents+json) and batched (a JSON
// array of events, Content-Type application/cloudevents-batch+json).
//
// Each event is one message. Its body is the event's data and its content
// type the event's datacontenttype; every other attribute travels as a
// header ce-<name> with its canonical string value. The message ID is
// derived from the event's source and id, which the specification makes
// an event's identity, so an event sent twice is stored once.
//
// It refuses (400) an event without specversion 1.0, id, source or type,
// attributes that are malformed, too many or too large, and content modes it
// does not take (415). It never keeps the Authorization header or the URL
// token with a message.
package cloudevents

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Name is the connector's name; specs name it as their consumer.
const Name = "cloudevents"

// TokenQuery is the query parameter that may carry the token.
const TokenQuery = "token"

// Connector registers the cloudevents consumer.
var Connector = sdk.Connector{
	Name:      Name,
	Kind:      sdk.KindConsumer,
	Ingress:   true,
	Summary:   "Receive CloudEvents 1.0 on the API's ingress in binary, structured or batched content mode, one message per event, an event sent twice stored once.",
	Example:   json.RawMessage(`{"token": {"secret": "events-token"}, "types": ["com.example.order.created"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		in, err := Build(ctx, env, raw)
		if err != nil {
			return nil, err
		}
		return in, nil
	},
}

// Ingress is a cloudevents config built for the platform's ingress, its
// token resolved once. It is safe for concurrent use.
type Ingress struct {
	maxBytes  int64
	token     *[sha256.Size]byte
	types     []string
	keyMemory sdk.KeyMemory
}

var _ sdk.Ingress = (*Ingress)(nil)

// Build decodes raw strictly and resolves the token.
func Build(ctx context.Context, env sdk.Env, raw json.RawMessage) (*Ingress, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	in := &Ingress{maxBytes: cfg.MaxBytes, types: cfg.Types, keyMemory: cfg.KeyMemory}
	if cfg.Token != nil {
		token, err := cfg.Token.Resolve(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("%s: resolve token: %w", Name, err)
		}
		if len(token) < minToken {
			return nil, fmt.Errorf("%s: token %s is shorter than %d characters", Name, *cfg.Token, minToken)
		}
		sum := sha256.Sum256([]byte(token))
		in.token = &sum
	}
	return in, nil
}

// errUnauthenticated names neither the token nor what was sent.
var errUnauthenticated = sdk.Refuse(sdk.RefuseUnauthenticated, "invalid or missing token")

// BodyLimit is the config's maxBytes (0: the integration's limit).
func (in *Ingress) BodyLimit() int64 { return in.maxBytes }

// Admit checks the token, when one is configured, in constant time.
func (in *Ingress) Admit(req sdk.Request) error {
	if in.token == nil {
		return nil
	}
	var got string
	if req.URL != nil {
		got = req.URL.Query().Get(TokenQuery)
	}
	if got == "" {
		if auth := req.Header.Get("Authorization"); len(auth) > len("Bearer ") && equalFold(auth[:len("Bearer ")], "Bearer ") {
			got = auth[len("Bearer "):]
		}
	}
	sum := sha256.Sum256([]byte(got))
	if got == "" || subtle.ConstantTimeCompare(sum[:], in.token[:]) != 1 {
		return errUnauthenticated
	}
	return nil
}

// Accepted is the 202 answer.
type Accepted struct {
	// ID is the message ID of a single event, or the batch's key.
	ID string `json:"id"`
	// Count is how many events of a batch were stored.
	Count int `json:"count,omitempty"`
}

// Receive decodes the request in its content mode, stores one message per
// event (those of the listed types) in one delivery and answers 202
// {"id": …} (with "count" for a batch), or 204 when nothing was to be
// stored (an empty batch, or only types not listed).
func (in *Ingress) Receive(ctx context.Context, req sdk.Request, sink sdk.IngressSink) (sdk.Answer, error) {
	events, batch, err := decode(req.Header, req.Body)
	if err != nil {
		return sdk.Answer{}, err
	}
	msgs := make([]sdk.Message, 0, len(events))
	for _, e := range events {
		if in.types != nil && !slices.Contains(in.types, e.attrs["type"]) {
			continue
		}
		msgs = append(msgs, e.message(req))
	}
	if len(msgs) == 0 {
		return sdk.Answer{Status: http.StatusNoContent}, nil
	}
	key := msgs[0].ID
	if batch {
		key = batchKey(msgs)
	}
	if _, err := sink.Publish(ctx, sdk.Delivery{Key: in.keyMemory.DeliveryKey(key), Messages: msgs}); err != nil {
		return sdk.Answer{}, err
	}
	a := Accepted{ID: key}
	if batch {
		a.Count = len(msgs)
	}
	body, err := json.Marshal(a)
	if err != nil {
		return sdk.Answer{}, err
	}
	return sdk.Answer{Status: http.StatusAccepted, ContentType: "application/json", Body: append(body, '\n')}, nil
}

// equalFold compares ASCII strings without regard to case.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
