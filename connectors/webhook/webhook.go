// Package webhook is the http-webhook consumer: the configuration of
// integrations that take data in through the API's webhook ingress
// (POST /v1/hooks/{tenant}/{integration}) and the signature verification the
// ingress applies to each request (GitHub, Slack, Standard Webhooks or a
// configurable HMAC).
//
// The ingress, not a runner, serves webhooks: the runner skips this
// connector, and the Consumer that Build returns only waits for its context
// to end. Verification must never echo the secret or the expected signature
// in an error, and compares signatures in constant time. It checks the
// signed timestamp against a window; a replay inside that window is made one
// message by its ID: the sender's delivery ID (X-GitHub-Delivery, webhook-id,
// Slack's event_id) or the Idempotency-Key. The config also says which event
// types are stored (events, ignore: GitHub's ping is not by default) and may
// require a secret URL token instead of a signature.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Name is the connector's name; specs name it as their consumer.
const Name = "http-webhook"

// Connector registers the http-webhook consumer.
var Connector = sdk.Connector{
	Name:      Name,
	Kind:      sdk.KindConsumer,
	Summary:   "Receive messages on the API's webhook ingress, optionally verifying GitHub, Slack, Standard Webhooks or HMAC signatures or a secret URL token, and storing only the event types listed.",
	Example:   json.RawMessage(`{"signature": {"scheme": "github", "secret": {"secret": "orders-hook-secret"}}, "events": ["push"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		if _, err := Decode(raw); err != nil {
			return nil, err
		}
		return Consumer{}, nil
	},
}

// Decode decodes and validates raw config strictly. It does not resolve the
// secret.
func Decode(raw json.RawMessage) (Config, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return Config{}, fmt.Errorf("%s: %w", Name, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", Name, err)
	}
	return cfg, nil
}

// Consumer is what Build returns. Webhooks arrive through the API's
// ingress, which publishes each request itself once its signature verified;
// the runner never runs this consumer. Run only blocks until ctx ends and
// then returns nil, so a runner that did start it would hold no resources.
type Consumer struct{}

var _ sdk.Consumer = Consumer{}

// Run blocks until ctx ends and returns nil; it never calls sink.
func (Consumer) Run(ctx context.Context, _ sdk.Sink) error {
	<-ctx.Done()
	return nil
}
