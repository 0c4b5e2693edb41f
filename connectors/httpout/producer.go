// Package httpout is the HTTP producer (connector "http"): it sends each
// message to a URL, optionally templated per message, signed the Standard
// Webhooks way when configured, with the message ID as Idempotency-Key so a
// redelivered message can be recognised by the target.
//
// It also holds what other HTTP-based producers share: per-message
// templates (Template, MessageData) and the classification of responses and
// request errors into retryable and permanent (ResponseError, RequestError,
// RetryAfter).
//
// Every request goes through an ssrf.Guard built from the tenant's egress
// policy (sdk.Env.Egress): the producer must never reach a private or
// loopback address that policy does not allow, nor any link-local or
// metadata address, and never follow a redirect to one. The config has no
// say in it. It never retries in a loop
// (the hot path owns retries), never logs or echoes secrets, and never puts
// a URL's query string in an error.
package httpout

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// Connector registers the HTTP producer.
var Connector = sdk.Connector{
	Name:      "http",
	Kind:      sdk.KindProducer,
	Summary:   "Send each message to an HTTP endpoint (templated URL, headers and body; Standard Webhooks signing), guarded against SSRF.",
	Example:   json.RawMessage(`{"url": "https://api.example.com/orders/{{ .id }}", "method": "PUT", "secretHeaders": {"Authorization": {"secret": "orders-api-token"}}}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		return build(ctx, env, raw, time.Now)
	},
}

// UserAgent identifies the producer's requests.
const UserAgent = "VRSky-HTTP-Connector"

// Producer sends messages to the configured endpoint. Write must be
// called by one goroutine at a time; Close may be called at any time, more
// than once.
type Producer struct {
	cfg           settings
	client        *http.Client
	key           []byte
	secretHeaders map[string]string
	now           func() time.Time
	closed        atomic.Bool
}

var _ sdk.Producer = (*Producer)(nil)

func build(ctx context.Context, env sdk.Env, raw json.RawMessage, now func() time.Time) (*Producer, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	s, err := cfg.settings(ssrf.New(env.Egress))
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	p := &Producer{cfg: s, now: now}
	if s.signature != nil {
		secret, err := s.signature.Secret.Resolve(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("http: signature: %w", err)
		}
		if p.key, err = signingKey(secret); err != nil {
			return nil, fmt.Errorf("http: %w", err)
		}
	}
	if len(s.secretHeaders) > 0 {
		p.secretHeaders = make(map[string]string, len(s.secretHeaders))
	}
	for name, ref := range s.secretHeaders {
		v, err := ref.Resolve(ctx, env)
		if err != nil {
			return nil, fmt.Errorf("http: secretHeaders: %s: %w", name, err)
		}
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("http: secretHeaders: %s: the secret's value holds a line break or control character", name)
		}
		p.secretHeaders[name] = v
	}
	p.client = s.guard.Client(s.timeout)
	return p, nil
}

// Write sends every message of the batch, up to maxConcurrency at a time,
// and returns once each has an answer. It returns nil when every message
// got a 2xx, and otherwise a *sdk.BatchError with the failed messages:
// retryable for 408, 429, 5xx, network errors and timeouts (honouring
// Retry-After), permanent for other statuses, SSRF refusals and templates
// that cannot render.
func (p *Producer) Write(ctx context.Context, batch []sdk.Message) error {
	if err := ctx.Err(); err != nil {
		return sdk.RetryableError(fmt.Errorf("http: %w", err), 0)
	}
	if p.closed.Load() {
		return errors.New("http: write after close")
	}
	errs := make([]error, len(batch))
	if len(batch) == 1 {
		errs[0] = p.send(ctx, batch[0])
	} else {
		sem := make(chan struct{}, p.cfg.maxConcurrency)
		var wg sync.WaitGroup
	loop:
		for i := range batch {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for j := i; j < len(batch); j++ {
					errs[j] = sdk.RetryableError(fmt.Errorf("http: message %s: not sent: %w", batch[j].ID, ctx.Err()), 0)
				}
				break loop
			}
			wg.Go(func() {
				defer func() { <-sem }()
				errs[i] = p.send(ctx, batch[i])
			})
		}
		wg.Wait()
	}
	var failed map[int]error
	for i, err := range errs {
		if err != nil {
			if failed == nil {
				failed = make(map[int]error)
			}
			failed[i] = err
		}
	}
	if failed != nil {
		return &sdk.BatchError{Failed: failed}
	}
	return nil
}

// send makes one message's request.
func (p *Producer) send(ctx context.Context, msg sdk.Message) error {
	var data map[string]any
	if p.cfg.needData {
		data = MessageData(msg)
	}
	body := msg.Body
	if p.cfg.body != nil {
		b, err := p.cfg.body.Render(data)
		if err != nil {
			return fmt.Errorf("http: message %s: body: %w", msg.ID, err)
		}
		body = []byte(b)
	}
	return p.do(ctx, msg, data, bytes.NewReader(body), int64(len(body)), body)
}

// CanStream reports whether msg's body can be sent as it is read: not when
// a template reads the message or the request is signed (both need the
// whole body first).
func (p *Producer) CanStream(sdk.Message) bool {
	return p.cfg.body == nil && !p.cfg.needData && p.key == nil
}

// WriteStream sends one message whose body is read from body as it goes
// out, so a large claim-checked body is never held in memory whole. Only
// for messages CanStream accepts.
func (p *Producer) WriteStream(ctx context.Context, msg sdk.Message, body io.Reader, size int64) error {
	if !p.CanStream(msg) {
		return sdk.Permanentf("http: message %s: this producer's config needs the whole body", msg.ID)
	}
	if p.closed.Load() {
		return errors.New("http: write after close")
	}
	return p.do(ctx, msg, nil, body, size, nil)
}

// do makes one message's request with body (size bytes); data feeds the
// templates and signBody is what the signature covers (nil: unsigned).
func (p *Producer) do(ctx context.Context, msg sdk.Message, data map[string]any, body io.Reader, size int64, signBody []byte) error {
	fail := func(doing string, err error) error {
		return fmt.Errorf("http: message %s: %s: %w", msg.ID, doing, err)
	}
	target, err := p.cfg.url.Render(data)
	if err != nil {
		return fail("url", err)
	}
	if !p.cfg.url.Static() {
		if err := p.cfg.guard.CheckURL(target); err != nil {
			return fail("url", err)
		}
	}
	// A *bytes.Reader body can be sent again on a 307/308 redirect; a
	// streamed one cannot, and such a redirect then fails the message.
	req, err := http.NewRequestWithContext(ctx, p.cfg.method, target, body)
	if err != nil {
		return fail("build request", sdk.PermanentError(err))
	}
	if _, rewindable := body.(*bytes.Reader); !rewindable {
		req.ContentLength = size
	}
	for _, h := range p.cfg.headers {
		v, err := h.value.Render(data)
		if err != nil {
			return fail("header "+h.name, err)
		}
		if !validHeaderValue(v) {
			return fail("header "+h.name, sdk.Permanentf("rendered value holds a line break or control character"))
		}
		req.Header.Set(h.name, v)
	}
	for name, v := range p.secretHeaders {
		req.Header.Set(name, v)
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Content-Type", p.contentType(msg))
	if msg.ID != "" {
		if !validHeaderValue(msg.ID) {
			return fail("Idempotency-Key", sdk.Permanentf("message ID holds a line break or control character"))
		}
		req.Header.Set("Idempotency-Key", msg.ID)
	}
	if p.key != nil {
		p.sign(req.Header, msg.ID, signBody)
	}

	doing := p.cfg.method + " " + redact(target)
	resp, err := p.client.Do(req)
	if err != nil {
		return fail(doing, RequestError(ctx, err))
	}
	defer drain(resp)
	if err := ResponseError(resp, p.now()); err != nil {
		return fail(doing, err)
	}
	return nil
}

func (p *Producer) contentType(msg sdk.Message) string {
	switch {
	case p.cfg.contentType != "":
		return p.cfg.contentType
	case msg.ContentType != "" && validHeaderValue(msg.ContentType):
		return msg.ContentType
	}
	return DefaultContentType
}

// sign sets the Standard Webhooks headers for body.
func (p *Producer) sign(h http.Header, id string, body []byte) {
	ts := strconv.FormatInt(p.now().Unix(), 10)
	mac := hmac.New(sha256.New, p.key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", ts)
	h.Set("Webhook-Signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// Close releases idle connections; requests in flight finish. It is safe
// to call concurrently and more than once.
func (p *Producer) Close(context.Context) error {
	if !p.closed.Swap(true) {
		p.client.CloseIdleConnections()
	}
	return nil
}

// redact shortens a URL for errors: scheme, host and path, without user
// info, query or fragment, which may hold secrets.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
