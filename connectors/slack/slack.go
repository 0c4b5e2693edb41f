// Package slack is the Slack producer (connector "slack"): it posts one
// Slack message per VRSky message, through an incoming webhook or as a bot
// with chat.postMessage, with text and Block Kit blocks rendered from the
// message's JSON fields.
//
// Webhook URLs and tokens are secrets: the producer must never log them,
// put them in errors, or send them anywhere but the configured endpoint.
// Every request goes through an ssrf.Guard built from the tenant's egress
// policy (sdk.Env.Egress), so it never reaches a private address that
// policy does not allow, nor any link-local or metadata address, and never
// follows a redirect to one. It never retries in a loop: rate limits and outages are
// retryable errors carrying Slack's Retry-After for the hot path to honour.
// Slack has no idempotency keys, so a redelivered message may post twice.
package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/httpout"
	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// Connector registers the Slack producer.
var Connector = sdk.Connector{
	Name:      "slack",
	Kind:      sdk.KindProducer,
	Summary:   "Post messages to Slack through an incoming webhook or a bot token, with templated text or Block Kit blocks.",
	Example:   json.RawMessage(`{"webhookUrl": {"secret": "sales-slack-url"}, "text": "Big order {{ .id }}: {{ .total }}"}`),
	NewConfig: func() any { return new(Config) },
	Build: func(ctx context.Context, env sdk.Env, raw json.RawMessage) (any, error) {
		return build(ctx, env, raw, time.Now)
	},
}

// maxAPIResponse bounds how much of a Web API answer is read.
const maxAPIResponse = 1 << 20

// transientAPIErrors are chat.postMessage errors that may go away on their
// own; every other error is permanent.
var transientAPIErrors = map[string]bool{
	"ratelimited":         true,
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
}

// Producer posts messages to Slack. Write must be called by one
// goroutine at a time; Close may be called at any time, more than once.
type Producer struct {
	cfg      settings
	client   *http.Client
	endpoint string // the webhook URL or apiUrl/chat.postMessage
	token    string // "" for webhooks
	now      func() time.Time
	closed   atomic.Bool
}

var _ sdk.Producer = (*Producer)(nil)

func build(ctx context.Context, env sdk.Env, raw json.RawMessage, now func() time.Time) (*Producer, error) {
	var cfg Config
	if err := config.Decode(raw, &cfg); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	s, err := cfg.settings(ssrf.New(env.Egress))
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	secret, err := s.secret.Resolve(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	p := &Producer{cfg: s, now: now}
	if s.webhook {
		if err := s.guard.CheckURL(secret); err != nil {
			return nil, fmt.Errorf("slack: webhookUrl %s: %w", s.secret, err)
		}
		p.endpoint = secret
	} else {
		if strings.ContainsFunc(secret, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return nil, fmt.Errorf("slack: token %s: holds spaces or control characters", s.secret)
		}
		p.endpoint, p.token = s.apiURL+"/chat.postMessage", secret
	}
	p.client = s.guard.Client(s.timeout)
	return p, nil
}

// Write posts the batch's messages one after the other, in order. It
// returns nil when all were posted, and otherwise a *sdk.BatchError: Slack
// rate limits, 5xx, network errors and timeouts are retryable (with Slack's
// Retry-After); a rejected request or a message whose template cannot
// render is permanent. After a rate limit the rest of the batch is not
// sent and fails retryably with the same delay.
func (p *Producer) Write(ctx context.Context, batch []sdk.Message) error {
	if err := ctx.Err(); err != nil {
		return sdk.RetryableError(fmt.Errorf("slack: %w", err), 0)
	}
	if p.closed.Load() {
		return errors.New("slack: write after close")
	}
	var failed map[int]error
	fail := func(i int, err error) {
		if failed == nil {
			failed = make(map[int]error)
		}
		failed[i] = err
	}
	var limited error
	for i, msg := range batch {
		switch {
		case ctx.Err() != nil:
			fail(i, sdk.RetryableError(fmt.Errorf("slack: message %s: not sent: %w", msg.ID, ctx.Err()), 0))
		case limited != nil:
			fail(i, sdk.RetryableError(fmt.Errorf("slack: message %s: not sent after a rate limit: %w", msg.ID, limited), sdk.RetryAfterOf(limited)))
		default:
			if err := p.post(ctx, msg); err != nil {
				fail(i, err)
				if isRateLimit(err) {
					limited = err
				}
			}
		}
	}
	if failed != nil {
		return &sdk.BatchError{Failed: failed}
	}
	return nil
}

// rateLimited marks a rate-limit failure.
type rateLimited struct{ err error }

func (r *rateLimited) Error() string { return r.err.Error() }
func (r *rateLimited) Unwrap() error { return r.err }

func isRateLimit(err error) bool {
	var r *rateLimited
	return errors.As(err, &r)
}

// payload is the JSON Slack receives.
type payload struct {
	Channel string          `json:"channel,omitempty"`
	Text    string          `json:"text,omitempty"`
	Blocks  json.RawMessage `json:"blocks,omitempty"`
}

// render builds the Slack payload for msg.
func (p *Producer) render(msg sdk.Message) ([]byte, error) {
	var data map[string]any
	if p.cfg.needData {
		data = httpout.MessageData(msg)
	}
	pl := payload{Channel: p.cfg.channel}
	if p.cfg.text != nil {
		text, err := p.cfg.text.Render(data)
		if err != nil {
			return nil, fmt.Errorf("text: %w", err)
		}
		pl.Text = text
	}
	if p.cfg.blocks != nil {
		out, err := p.cfg.blocks.Render(data)
		if err != nil {
			return nil, fmt.Errorf("blocks: %w", err)
		}
		blocks, err := parseBlocks(out)
		if err != nil {
			return nil, sdk.PermanentError(fmt.Errorf("blocks: rendered %w", err))
		}
		pl.Blocks = blocks
	}
	if strings.TrimSpace(pl.Text) == "" && len(pl.Blocks) == 0 {
		return nil, sdk.Permanentf("text rendered empty and there are no blocks")
	}
	body, err := jsonbody.Encode(pl)
	if err != nil {
		return nil, sdk.PermanentError(fmt.Errorf("encode payload: %w", err))
	}
	return body, nil
}

// post sends one message.
func (p *Producer) post(ctx context.Context, msg sdk.Message) error {
	doing := "post to incoming webhook"
	if !p.cfg.webhook {
		doing = "chat.postMessage"
	}
	fail := func(err error) error {
		return fmt.Errorf("slack: message %s: %s: %w", msg.ID, doing, err)
	}
	body, err := p.render(msg)
	if err != nil {
		return fail(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, bytes.NewReader(body))
	if err != nil {
		// The error would quote the URL, a secret for webhooks.
		return fail(sdk.Permanentf("build request failed"))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "VRSky-Slack-Connector")
	if p.token != "" {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fail(httpout.RequestError(ctx, err))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if err := httpout.ResponseError(resp, p.now()); err != nil {
		if resp.StatusCode == http.StatusTooManyRequests {
			err = &rateLimited{err}
		}
		return fail(err)
	}
	if p.cfg.webhook {
		return nil
	}
	if err := p.apiResult(resp); err != nil {
		return fail(err)
	}
	return nil
}

// apiResult reads a Web API answer: {"ok": true} or {"ok": false, "error":
// "..."}. It returns nil for ok.
func (p *Producer) apiResult(resp *http.Response) error {
	var res struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIResponse))
	if err != nil {
		return sdk.RetryableError(fmt.Errorf("read response: %w", err), 0)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		return sdk.PermanentError(fmt.Errorf("response is not Slack API JSON: %w", err))
	}
	switch {
	case res.OK:
		return nil
	case res.Error == "":
		return sdk.Permanentf("slack answered ok=false without an error")
	case res.Error == "ratelimited":
		return &rateLimited{sdk.RetryableError(errors.New("slack error: ratelimited"), httpout.RetryAfter(resp.Header.Get("Retry-After"), p.now()))}
	case transientAPIErrors[res.Error]:
		return sdk.RetryableError(fmt.Errorf("slack error: %s", res.Error), httpout.RetryAfter(resp.Header.Get("Retry-After"), p.now()))
	}
	return sdk.Permanentf("slack error: %s", res.Error)
}

// Close releases idle connections. It is safe to call concurrently and
// more than once.
func (p *Producer) Close(context.Context) error {
	if !p.closed.Swap(true) {
		p.client.CloseIdleConnections()
	}
	return nil
}
