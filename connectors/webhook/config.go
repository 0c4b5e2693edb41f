package webhook

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// Signature schemes.
const (
	// SchemeGitHub is GitHub's X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>.
	SchemeGitHub = "github"
	// SchemeSlack is Slack's X-Slack-Signature over
	// "v0:" + X-Slack-Request-Timestamp + ":" + body.
	SchemeSlack = "slack"
	// SchemeStandard is Standard Webhooks (webhook-id, webhook-timestamp,
	// webhook-signature), as sent by Svix and others.
	SchemeStandard = "standard"
	// SchemeHMAC is a configurable HMAC of the body in one header.
	SchemeHMAC = "hmac"
)

// HMAC algorithms and signature encodings of the hmac scheme.
const (
	AlgorithmSHA256 = "sha256"
	AlgorithmSHA1   = "sha1"
	AlgorithmSHA512 = "sha512"
	EncodingHex     = "hex"
	EncodingBase64  = "base64"
)

// Defaults and limits.
const (
	// DefaultMaxBytes is the ingress body limit when neither the config nor
	// the integration sets one.
	DefaultMaxBytes = 10 << 20
	// MaxMaxBytes is the largest body limit a config may set.
	MaxMaxBytes = 64 << 20
	// DefaultHeader is the hmac scheme's signature header.
	DefaultHeader = "X-Signature"
	// DefaultTolerance is how far a signed timestamp may be from now.
	DefaultTolerance = 5 * time.Minute
	// MaxTolerance bounds the timestamp window.
	MaxTolerance = time.Hour
)

var headerName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,100}$`)

// Config is the http-webhook consumer's configuration. The API's webhook
// ingress reads it: it verifies signatures and limits the body size.
type Config struct {
	// Signature, when set, makes the ingress refuse every request whose
	// signature does not verify (401) before anything is stored.
	Signature *Signature `json:"signature,omitempty" doc:"Signature the ingress verifies before storing a request; none when left out."`
	// MaxBytes is the body limit (default 10 MiB, at most 64 MiB). Zero
	// leaves the integration's limit in force.
	MaxBytes int64 `json:"maxBytes,omitempty" doc:"Body limit in bytes; default 10 MiB, at most 64 MiB."`
	// Token, when set, makes the ingress refuse every request that does
	// not carry it (401), as the URL's token query parameter or the
	// X-Webhook-Token header: a secret URL for senders that cannot sign.
	Token *sdk.Secret `json:"token,omitempty" doc:"A secret the request must carry as ?token=… or in X-Webhook-Token; for senders that cannot sign. {\"secret\": NAME} or {\"env\": NAME}."`
	// Events, when set, lists the event types stored (matched against
	// EventHeader); requests of other types are answered 200 and not
	// stored, so a sender never retries them and nothing is dead-lettered.
	Events []string `json:"events,omitempty" maxItems:"100" doc:"Event types to store, matched against the event header (X-GitHub-Event by default), e.g. [push, pull_request]; other events are answered 200 and not stored."`
	// Ignore lists event types answered 200 and not stored. Default
	// [ping]: GitHub's ping, sent when a webhook is added, only tests the
	// URL. With Events set, Ignore is not consulted.
	Ignore []string `json:"ignore,omitempty" maxItems:"100" doc:"Event types answered 200 and not stored; default [ping] (GitHub's test delivery). Not used when events is set."`
	// EventHeader names the header holding the event type (default
	// X-GitHub-Event).
	EventHeader string `json:"eventHeader,omitempty" doc:"The header holding the event type; default X-GitHub-Event."`
	// KeyMemory is how long a repeated Idempotency-Key or delivery ID is
	// recognised: sdk.KeyMemoryRemember (the default) or
	// sdk.KeyMemoryWindow (docs/adr/0033).
	KeyMemory sdk.KeyMemory `json:"keyMemory,omitempty" enum:"remember,window" doc:"How long a repeated Idempotency-Key or delivery ID is recognised. remember (default): for the platform's key TTL, 24 h unless the operator set more, with its body's digest; a repeat stores nothing, another body under the same key answers 409. window: only JetStream's 2-minute duplicate window; a repeat within it stores nothing (whatever its body) and answers 202 again, a later one is stored again. window costs one NATS operation per request instead of three."`
}

// DefaultEventHeader is where GitHub names a delivery's event type.
const DefaultEventHeader = "X-GitHub-Event"

// DefaultIgnore is the event types ignored when neither Events nor Ignore
// is set: GitHub's ping, which tests the URL when a webhook is added.
var DefaultIgnore = []string{"ping"}

// maxEventName bounds an event type in Events and Ignore.
const maxEventName = 100

// Signature says how requests are signed.
type Signature struct {
	// Scheme is github, slack, standard (Standard Webhooks) or hmac.
	Scheme string `json:"scheme" enum:"github,slack,standard,hmac" doc:"github, slack, standard (Standard Webhooks) or hmac."`
	// Secret is the shared signing secret. For standard it is the base64
	// secret, optionally prefixed whsec_; for the others the raw string.
	Secret sdk.Secret `json:"secret" doc:"The signing secret: {\"env\": NAME} or {\"secret\": NAME}."`
	// Header is the hmac scheme's signature header (default X-Signature).
	Header string `json:"header,omitempty" doc:"hmac only: the signature header; default X-Signature."`
	// Algorithm is the hmac scheme's hash: sha256 (default), sha1 or sha512.
	Algorithm string `json:"algorithm,omitempty" enum:"sha256,sha1,sha512" doc:"hmac only: sha256 (default), sha1 or sha512."`
	// Encoding is how the hmac scheme's signature is written: hex (default)
	// or base64 (standard alphabet, padded).
	Encoding string `json:"encoding,omitempty" enum:"hex,base64" doc:"hmac only: hex (default) or base64."`
	// Prefix is text the hmac scheme's header value starts with before the
	// signature, such as "sha256=".
	Prefix string `json:"prefix,omitempty" doc:"hmac only: text before the signature in the header, such as sha256=."`
	// Tolerance is how far the signed timestamp of slack and standard may
	// be from the ingress's clock (a Go duration, default 5m, at most 1h).
	Tolerance string `json:"tolerance,omitempty" doc:"slack and standard only: accepted timestamp skew (Go duration); default 5m."`
}

// Validate checks the config without resolving the secret.
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
	for _, f := range [...]struct {
		field string
		list  []string
	}{{"events", c.Events}, {"ignore", c.Ignore}} {
		field, list := f.field, f.list
		if len(list) > 100 {
			errs = append(errs, fmt.Errorf("%s: more than 100 event types", field))
		}
		for _, e := range list {
			if e == "" || len(e) > maxEventName {
				errs = append(errs, fmt.Errorf("%s: an event type is 1 to %d characters", field, maxEventName))
				break
			}
		}
	}
	errs = append(errs, c.KeyMemory.Validate())
	if c.EventHeader != "" && !headerName.MatchString(c.EventHeader) {
		errs = append(errs, fmt.Errorf("eventHeader: %q is not a valid header name", c.EventHeader))
	}
	if c.Signature != nil {
		if _, err := c.Signature.tolerance(); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, c.Signature.validate())
	}
	return errors.Join(errs...)
}

func (s *Signature) validate() error {
	var errs []error
	switch s.Scheme {
	case SchemeGitHub, SchemeSlack, SchemeStandard, SchemeHMAC:
	case "":
		errs = append(errs, errors.New("signature.scheme: required (github, slack, standard or hmac)"))
	default:
		errs = append(errs, fmt.Errorf("signature.scheme: unknown scheme %q, want github, slack, standard or hmac", s.Scheme))
	}
	if err := s.Secret.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("signature.secret: %w", err))
	}
	if s.Scheme != SchemeHMAC {
		for _, opt := range [...]struct{ name, value string }{
			{"header", s.Header}, {"algorithm", s.Algorithm}, {"encoding", s.Encoding}, {"prefix", s.Prefix},
		} {
			if opt.value != "" {
				errs = append(errs, fmt.Errorf("signature.%s: only the hmac scheme takes it", opt.name))
			}
		}
	} else {
		if s.Header != "" && !headerName.MatchString(s.Header) {
			errs = append(errs, fmt.Errorf("signature.header: %q is not a valid header name", s.Header))
		}
		switch s.Algorithm {
		case "", AlgorithmSHA256, AlgorithmSHA1, AlgorithmSHA512:
		default:
			errs = append(errs, fmt.Errorf("signature.algorithm: unknown algorithm %q, want sha256, sha1 or sha512", s.Algorithm))
		}
		switch s.Encoding {
		case "", EncodingHex, EncodingBase64:
		default:
			errs = append(errs, fmt.Errorf("signature.encoding: unknown encoding %q, want hex or base64", s.Encoding))
		}
		if len(s.Prefix) > 100 {
			errs = append(errs, errors.New("signature.prefix: longer than 100 characters"))
		}
	}
	if s.Tolerance != "" && s.Scheme != SchemeSlack && s.Scheme != SchemeStandard {
		errs = append(errs, errors.New("signature.tolerance: only the slack and standard schemes sign a timestamp"))
	}
	return errors.Join(errs...)
}

func (s *Signature) tolerance() (time.Duration, error) {
	if s.Tolerance == "" {
		return DefaultTolerance, nil
	}
	d, err := time.ParseDuration(s.Tolerance)
	if err != nil {
		return 0, fmt.Errorf("signature.tolerance: %w", err)
	}
	if d < time.Second || d > MaxTolerance {
		return 0, fmt.Errorf("signature.tolerance: %s is out of range (1s to %s)", d, MaxTolerance)
	}
	return d, nil
}
