package connectors

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

func TestSecretRefsFindsEveryReference(t *testing.T) {
	t.Parallel()
	in := spec.Integration{
		Name: "refs",
		Consumer: spec.Step{Connector: "http-webhook", Config: json.RawMessage(
			`{"signature":{"scheme":"github","secret":{"env":"VRSKY_DATABASE_URL"}}}`)},
		Steps: []spec.Step{{Connector: "json-transform", Config: json.RawMessage(`{"remove":["x"]}`)}},
		Producers: map[string]spec.Step{
			"db": {Connector: "postgres", Config: json.RawMessage(`{"url":{"secret":"db-url"},"table":"t"}`)},
			"api": {Connector: "http", Config: json.RawMessage(
				`{"url":"https://example.com/","secretHeaders":{"X-Key":{"env":"HOME"},"Authorization":{"secret":"token"}},"signature":{"secret":{"secret":"sign"}}}`)},
			"broken":  {Connector: "postgres", Config: json.RawMessage(`{"url":"inline"}`)},
			"unknown": {Connector: "nope"},
		},
	}
	require.Equal(t, []SecretRef{
		{"consumer.config.signature.secret", sdk.Secret{Env: "VRSKY_DATABASE_URL"}},
		{"producers.api.config.secretHeaders.Authorization", sdk.Secret{Secret: "token"}},
		{"producers.api.config.secretHeaders.X-Key", sdk.Secret{Env: "HOME"}},
		{"producers.api.config.signature.secret", sdk.Secret{Secret: "sign"}},
		{"producers.db.config.url", sdk.Secret{Secret: "db-url"}},
	}, SecretRefs(in))
}
