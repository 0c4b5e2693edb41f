// Package webhook is the http-webhook consumer, an ingress connector
// (sdk.Ingress): the platform's HTTP ingress (POST
// /v1/hooks/{tenant}/{integration}) reads each request within the
// platform's limits and hands it here. This package owns what the request
// means: the URL token and the signature (GitHub, Slack, Standard Webhooks
// or a configurable HMAC), the event types stored, the message IDs, NDJSON
// batches (one message per line), the headers kept and the answers
// (202 {"id": …}, 200 {"ignored": true}).
//
// No runner runs it. Verification must never echo the secret or the
// expected signature in an error, and compares signatures in constant
// time. It checks the
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
	Ingress:   true,
	Summary:   "Receive messages on the API's webhook ingress, optionally verifying GitHub, Slack, Standard Webhooks or HMAC signatures or a secret URL token, and storing only the event types listed.",
	Example:   json.RawMessage(`{"signature": {"scheme": "github", "secret": {"secret": "orders-hook-secret"}}, "events": ["push"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		in, err := Build(ctx, env, raw)
		if err != nil {
			return nil, err
		}
		return in, nil
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
