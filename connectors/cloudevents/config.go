package cloudevents

import (
	"errors"
	"fmt"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Limits.
const (
	// MaxMaxBytes is the largest body limit a config may set.
	MaxMaxBytes = 64 << 20
	// MaxEvents bounds the events of one batched request.
	MaxEvents = sdk.MaxDeliveryMessages
	// MaxAttributes bounds the attributes of one event, extensions
	// included.
	MaxAttributes = 64
	// MaxAttributeName bounds an attribute's name (the specification asks
	// for at most 20 characters; longer ones are taken up to this).
	MaxAttributeName = 64
	// MaxAttributeValue bounds an attribute's value, in bytes once
	// decoded.
	MaxAttributeValue = 4096
	// minToken is the shortest URL token a config may resolve to.
	minToken = 16
)

// Config is the cloudevents consumer's configuration.
type Config struct {
	// MaxBytes is the body limit (at most 64 MiB). Zero leaves the
	// integration's limit (10 MiB unless the platform sets another).
	MaxBytes int64 `json:"maxBytes,omitempty" doc:"Body limit in bytes, at most 64 MiB; default the integration's (10 MiB)."`
	// Token, when set, makes the ingress refuse every request that does
	// not carry it (401), as Authorization: Bearer <token> or the token
	// query parameter. CloudEvents itself signs nothing.
	Token *sdk.Secret `json:"token,omitempty" doc:"A secret the request must carry as Authorization: Bearer … or ?token=…; {\"secret\": NAME} or {\"env\": NAME}."`
	// Types, when set, lists the event types stored; events of other
	// types are acknowledged and not stored.
	Types []string `json:"types,omitempty" maxItems:"100" doc:"Event types to store, e.g. [com.example.order.created]; events of other types are acknowledged and not stored. All when left out."`
	// KeyMemory is how long a repeated event (source and id) is
	// recognised: sdk.KeyMemoryRemember (the default) or
	// sdk.KeyMemoryWindow (docs/adr/0033).
	KeyMemory sdk.KeyMemory `json:"keyMemory,omitempty" enum:"remember,window" doc:"How long a repeated event (the same source and id) is recognised. remember (default): for the platform's key TTL, 24 h unless the operator set more, with the request body's digest; a repeat stores nothing, another body answers 409. window: only JetStream's 2-minute duplicate window; a repeat within it stores nothing (whatever its data) and answers 202 again, a later one is stored again. window costs one NATS operation per request instead of three."`
}

// Validate checks the config without resolving the token.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBytes < 0 || c.MaxBytes > MaxMaxBytes {
		errs = append(errs, fmt.Errorf("maxBytes: %d is out of range (0 to %d)", c.MaxBytes, MaxMaxBytes))
	}
	if c.Token != nil {
		if err := c.Token.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("token: %w", err))
		}
	}
	if len(c.Types) > 100 {
		errs = append(errs, errors.New("types: more than 100 event types"))
	}
	errs = append(errs, c.KeyMemory.Validate())
	for _, t := range c.Types {
		if t == "" || len(t) > MaxAttributeValue {
			errs = append(errs, fmt.Errorf("types: an event type is 1 to %d bytes", MaxAttributeValue))
			break
		}
	}
	return errors.Join(errs...)
}
