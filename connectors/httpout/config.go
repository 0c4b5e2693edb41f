package httpout

import (
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// Defaults and limits.
const (
	DefaultMethod         = http.MethodPost
	DefaultTimeout        = 10 * time.Second
	MaxTimeout            = 5 * time.Minute
	DefaultMaxConcurrency = 8
	MaxMaxConcurrency     = 64
	DefaultContentType    = "application/json"
)

// Methods are the HTTP methods the producer may use.
var Methods = []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// headerName is an RFC 9110 token.
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// reservedHeaders are set by the producer or by Go's HTTP client and may not
// be configured.
var reservedHeaders = map[string]string{
	"Host":              "the url sets it",
	"Content-Length":    "the body sets it",
	"Transfer-Encoding": "the client sets it",
	"Connection":        "the client sets it",
	"Content-Type":      "use contentType",
	"Idempotency-Key":   "the producer sets it to the message ID",
	"Webhook-Id":        "signature sets it",
	"Webhook-Timestamp": "signature sets it",
	"Webhook-Signature": "signature sets it",
}

// Config is the HTTP producer's configuration.
type Config struct {
	// URL is where each message goes: a Go text/template over the
	// message's JSON fields ("https://erp.example.com/orders/{{ .id }}").
	// The scheme (http or https), host and port must be literal and
	// followed by /, ? or #; inserted values are escaped (see
	// ParseURLTemplate); the rendered URL is checked against the SSRF
	// guard for every message.
	URL string `json:"url" doc:"Target URL; a Go template over the message's JSON fields and .id. Scheme http or https; scheme, host and port written out; inserted values are escaped."`
	// Method is POST (the default), PUT, PATCH or DELETE.
	Method string `json:"method,omitempty" enum:"POST,PUT,PATCH,DELETE" doc:"HTTP method; default POST."`
	// Headers are sent with every request; values are templates like URL.
	Headers map[string]string `json:"headers,omitempty" doc:"Request headers; values may be templates."`
	// SecretHeaders are headers whose values are secrets (an API key,
	// "Bearer …"), never written into the config itself.
	SecretHeaders map[string]sdk.Secret `json:"secretHeaders,omitempty" doc:"Headers whose values are secrets: {\"env\": NAME} or {\"secret\": NAME}."`
	// Body is a template for the request body; by default the message
	// body is sent as it is.
	Body string `json:"body,omitempty" doc:"Request body template; default: the message body as is."`
	// ContentType is the request's Content-Type; by default the message's,
	// or application/json.
	ContentType string `json:"contentType,omitempty" doc:"Content-Type; default the message's, or application/json."`
	// Timeout bounds each request, redirects included (a Go duration,
	// default 10s, at most 5m).
	Timeout string `json:"timeout,omitempty" doc:"Per-request timeout (Go duration); default 10s."`
	// Signature, when set, signs each request the Standard Webhooks way.
	Signature *Signature `json:"signature,omitempty" doc:"Sign requests with Standard Webhooks headers."`
	// AllowPrivate and AllowHosts are refused: which addresses a tenant
	// may reach is its egress policy, set by a platform admin
	// (sdk.Env.Egress).
	AllowPrivate ssrf.PlatformDecides `json:"allowPrivate,omitzero" hidden:"true"`
	AllowHosts   ssrf.PlatformDecides `json:"allowHosts,omitzero" hidden:"true"`
	// MaxConcurrency bounds the requests in flight for one batch (default
	// 8, at most 64).
	MaxConcurrency int `json:"maxConcurrency,omitempty" doc:"Requests in flight per batch; default 8."`
}

// Signature configures Standard Webhooks signing
// (https://www.standardwebhooks.com): each request carries webhook-id (the
// message ID), webhook-timestamp (Unix seconds) and webhook-signature
// ("v1," + base64 HMAC-SHA256 of "id.timestamp.body").
type Signature struct {
	// Secret is the signing key: base64, with an optional "whsec_" prefix.
	Secret sdk.Secret `json:"secret" doc:"Signing key, base64 after an optional whsec_ prefix."`
}

// header is one configured header.
type header struct {
	name  string
	value *Template
}

// settings is a validated Config with its defaults applied.
type settings struct {
	url            *Template
	method         string
	headers        []header
	secretHeaders  map[string]sdk.Secret
	body           *Template
	contentType    string
	timeout        time.Duration
	signature      *Signature
	guard          *ssrf.Guard
	maxConcurrency int
	// needData is whether any template reads the message.
	needData bool
}

// Validate checks the config on its own, before its tenant is known: a URL
// is checked against the widest egress policy a platform admin can grant;
// Build checks it against the tenant's own policy and resolves secrets.
func (c *Config) Validate() error {
	_, err := c.settings(ssrf.Widest())
	return err
}

// settings checks the config with the guard of the tenant's egress policy.
func (c *Config) settings(guard *ssrf.Guard) (settings, error) {
	s := settings{
		method:         strings.ToUpper(strings.TrimSpace(c.Method)),
		contentType:    c.ContentType,
		signature:      c.Signature,
		guard:          guard,
		maxConcurrency: c.MaxConcurrency,
	}
	var errs []error
	if u, err := checkURLTemplate(c.URL, s.guard); err != nil {
		errs = append(errs, err)
	} else {
		s.url = u
		s.needData = !u.Static()
	}

	if s.method == "" {
		s.method = DefaultMethod
	}
	if !slices.Contains(Methods, s.method) {
		errs = append(errs, fmt.Errorf("method %q: want one of %s", c.Method, strings.Join(Methods, ", ")))
	}

	names := make([]string, 0, len(c.Headers))
	for name := range c.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	seen := map[string]bool{}
	for _, name := range names {
		canon, err := checkHeaderName(name, seen)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if CredentialHeader(canon) {
			errs = append(errs, fmt.Errorf(`headers: %s: carries credentials, which cannot be written in the config: `+
				`use secretHeaders: {"%s": {"secret": NAME}} with a tenant secret NAME (PUT /v1/secrets/NAME)`, canon, canon))
			continue
		}
		t, err := ParseTemplate("header "+canon, c.Headers[name])
		if err != nil {
			errs = append(errs, fmt.Errorf("headers: %s: %w", canon, err))
			continue
		}
		if t.Static() && !validHeaderValue(t.output) {
			errs = append(errs, fmt.Errorf("headers: %s: value holds a line break or control character", canon))
		}
		s.needData = s.needData || !t.Static()
		s.headers = append(s.headers, header{name: canon, value: t})
	}
	if len(c.SecretHeaders) > 0 {
		s.secretHeaders = make(map[string]sdk.Secret, len(c.SecretHeaders))
	}
	names = names[:0]
	for name := range c.SecretHeaders {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		secret := c.SecretHeaders[name]
		canon, err := checkHeaderName(name, seen)
		if err != nil {
			errs = append(errs, fmt.Errorf("secretHeaders: %w", err))
			continue
		}
		if err := secret.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("secretHeaders: %s: %w", canon, err))
		}
		s.secretHeaders[canon] = secret
	}

	if c.Body != "" {
		t, err := ParseTemplate("body", c.Body)
		if err != nil {
			errs = append(errs, fmt.Errorf("body: %w", err))
		} else {
			s.body = t
			s.needData = s.needData || !t.Static()
		}
	}
	if c.ContentType != "" {
		if _, _, err := mime.ParseMediaType(c.ContentType); err != nil || !validHeaderValue(c.ContentType) {
			errs = append(errs, fmt.Errorf("contentType %q: not a media type", c.ContentType))
		}
	}
	timeout, err := ParseTimeout(c.Timeout, DefaultTimeout, MaxTimeout)
	if err != nil {
		errs = append(errs, err)
	}
	s.timeout = timeout
	if c.Signature != nil {
		if err := c.Signature.Secret.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("signature: %w", err))
		}
	}
	switch {
	case s.maxConcurrency == 0:
		s.maxConcurrency = DefaultMaxConcurrency
	case s.maxConcurrency < 0 || s.maxConcurrency > MaxMaxConcurrency:
		errs = append(errs, fmt.Errorf("maxConcurrency %d: want 1 to %d", c.MaxConcurrency, MaxMaxConcurrency))
	}
	return s, errors.Join(errs...)
}

// checkURLTemplate parses the url template (see ParseURLTemplate) and
// checks what can be checked before a message arrives: a literal URL
// entirely, a templated one's literal scheme and host.
func checkURLTemplate(raw string, guard *ssrf.Guard) (*Template, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("url is required")
	}
	t, err := ParseURLTemplate(raw)
	if err != nil {
		return nil, err
	}
	target := t.output
	if !t.Static() {
		target = t.url.scheme + "://" + t.url.host + "/"
	}
	if err := guard.CheckURL(target); err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	return t, nil
}

// credentialWords mark header names that carry credentials ("Authorization",
// "X-Api-Key", "X-Auth-Token", "Cookie"…), compared lowercased.
var credentialWords = []string{"auth", "token", "secret", "password", "passwd", "api-key", "apikey", "api_key",
	"cookie", "session", "credential", "signature"}

// CredentialHeader reports whether a header named name carries
// credentials, so that its value belongs in a secret, never inline in a
// config. The name is compared case-insensitively.
func CredentialHeader(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range credentialWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// checkHeaderName returns the canonical form of a configurable header name.
func checkHeaderName(name string, seen map[string]bool) (string, error) {
	if !headerName.MatchString(name) {
		return "", fmt.Errorf("header name %q: not a valid HTTP header name", name)
	}
	canon := http.CanonicalHeaderKey(name)
	if why, ok := reservedHeaders[canon]; ok {
		return "", fmt.Errorf("header %s: cannot be configured: %s", canon, why)
	}
	if seen[canon] {
		return "", fmt.Errorf("header %s: configured twice", canon)
	}
	seen[canon] = true
	return canon, nil
}

// validHeaderValue reports whether v can be sent as a header value: no line
// breaks or other control characters but tab.
func validHeaderValue(v string) bool {
	for _, r := range v {
		if (r < ' ' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

// signingKey decodes a Standard Webhooks secret.
func signingKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(secret), "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New("signature secret: want base64 after an optional whsec_ prefix")
	}
	return key, nil
}

// ParseTimeout parses a timeout option: a Go duration of more than 0 and at
// most maxTimeout, or empty for def. Its errors name the option.
func ParseTimeout(raw string, def, maxTimeout time.Duration) (time.Duration, error) {
	if raw == "" {
		return def, nil
	}
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		return def, fmt.Errorf("timeout: %w", err)
	case d <= 0 || d > maxTimeout:
		return def, fmt.Errorf("timeout %q: want more than 0 and at most %s", raw, maxTimeout)
	}
	return d, nil
}
