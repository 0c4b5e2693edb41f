package slack

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/httpout"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// Defaults and limits.
const (
	DefaultAPIURL  = "https://slack.com/api"
	DefaultTimeout = 10 * time.Second
	MaxTimeout     = 2 * time.Minute
)

// Config is the Slack producer's configuration. Set webhookUrl, or token
// and channel; and text, blocks or both (text is then the notification
// fallback).
type Config struct {
	// WebhookURL is an incoming webhook's URL. It grants posting to its
	// channel, so it is a secret: {"env": NAME} or {"secret": NAME}.
	WebhookURL sdk.Secret `json:"webhookUrl,omitzero" doc:"Incoming webhook URL, as a secret reference."`
	// Token is a bot token (xoxb-…) used with chat.postMessage.
	Token sdk.Secret `json:"token,omitzero" doc:"Bot token for chat.postMessage, as a secret reference."`
	// Channel is the channel ID or name the bot posts to; with token only.
	Channel string `json:"channel,omitempty" doc:"Channel ID or name; required with token."`
	// Text is a Go text/template over the message's JSON fields, e.g.
	// "Big order {{ .id }}: {{ .total }}". Missing fields render empty.
	Text string `json:"text,omitempty" doc:"Message text; a Go template over the message's JSON fields."`
	// Blocks is a Go text/template that renders Block Kit JSON: an array
	// of blocks, or an object with a "blocks" array. Use {{ json .field }}
	// to insert a value as a JSON string.
	Blocks string `json:"blocks,omitempty" doc:"Block Kit JSON template (array, or object with blocks)."`
	// APIURL is the Web API's base URL (default https://slack.com/api).
	APIURL string `json:"apiUrl,omitempty" doc:"Slack Web API base URL; default https://slack.com/api."`
	// Timeout bounds each request (a Go duration, default 10s, at most
	// 2m).
	Timeout string `json:"timeout,omitempty" doc:"Per-request timeout (Go duration); default 10s."`
	// AllowPrivate and AllowHosts are refused: which addresses a tenant
	// may reach is its egress policy, set by a platform admin
	// (sdk.Env.Egress).
	AllowPrivate ssrf.PlatformDecides `json:"allowPrivate,omitzero" hidden:"true"`
	AllowHosts   ssrf.PlatformDecides `json:"allowHosts,omitzero" hidden:"true"`
}

// settings is a validated Config with its defaults applied.
type settings struct {
	webhook  bool
	secret   sdk.Secret
	channel  string
	text     *httpout.Template
	blocks   *httpout.Template
	apiURL   string
	timeout  time.Duration
	guard    *ssrf.Guard
	needData bool
}

// Validate checks the config on its own, before its tenant is known: the
// API URL is checked against the widest egress policy a platform admin can
// grant. Build checks it against the tenant's own policy, resolves the
// secrets and checks the webhook URL.
func (c *Config) Validate() error {
	_, err := c.settings(ssrf.Widest())
	return err
}

// settings checks the config with the guard of the tenant's egress policy.
func (c *Config) settings(guard *ssrf.Guard) (settings, error) {
	s := settings{
		channel: strings.TrimSpace(c.Channel),
		apiURL:  strings.TrimRight(strings.TrimSpace(c.APIURL), "/"),
		guard:   guard,
	}
	var errs []error
	switch {
	case !c.WebhookURL.IsZero() && !c.Token.IsZero():
		errs = append(errs, errors.New("set webhookUrl or token, not both"))
	case !c.WebhookURL.IsZero():
		s.webhook, s.secret = true, c.WebhookURL
		if s.channel != "" {
			errs = append(errs, errors.New("channel: an incoming webhook posts to the channel it was made for; channel needs token"))
		}
		if c.APIURL != "" {
			errs = append(errs, errors.New("apiUrl: used with token only"))
		}
	case !c.Token.IsZero():
		s.secret = c.Token
		switch {
		case s.channel == "":
			errs = append(errs, errors.New("channel is required with token"))
		case len(s.channel) > 200 || strings.ContainsFunc(s.channel, func(r rune) bool { return r < ' ' || r == 0x7f }):
			errs = append(errs, fmt.Errorf("channel %q: want a channel ID or name", s.channel))
		}
		if s.apiURL == "" {
			s.apiURL = DefaultAPIURL
		}
		if strings.ContainsAny(s.apiURL, "?#") {
			errs = append(errs, errors.New("apiUrl: want a base URL without query or fragment"))
		} else if err := s.guard.CheckURL(s.apiURL + "/chat.postMessage"); err != nil {
			errs = append(errs, fmt.Errorf("apiUrl: %w", err))
		}
	default:
		errs = append(errs, errors.New(`set webhookUrl or token (as {"env": NAME} or {"secret": NAME})`))
	}

	if strings.TrimSpace(c.Text) == "" && strings.TrimSpace(c.Blocks) == "" {
		errs = append(errs, errors.New("set text, blocks or both"))
	}
	if c.Text != "" {
		t, err := httpout.ParseTemplate("text", c.Text)
		if err != nil {
			errs = append(errs, fmt.Errorf("text: %w", err))
		} else {
			s.text = t
			s.needData = !t.Static()
		}
	}
	if c.Blocks != "" {
		t, err := httpout.ParseTemplate("blocks", c.Blocks)
		if err != nil {
			errs = append(errs, fmt.Errorf("blocks: %w", err))
		} else {
			s.blocks = t
			s.needData = s.needData || !t.Static()
			if t.Static() {
				if out, err := t.Render(nil); err == nil {
					if _, err := parseBlocks(out); err != nil {
						errs = append(errs, fmt.Errorf("blocks: %w", err))
					}
				}
			}
		}
	}
	timeout, err := httpout.ParseTimeout(c.Timeout, DefaultTimeout, MaxTimeout)
	if err != nil {
		errs = append(errs, err)
	}
	s.timeout = timeout
	return s, errors.Join(errs...)
}

// parseBlocks checks rendered Block Kit JSON and returns the blocks array.
func parseBlocks(rendered string) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(rendered)
	if strings.HasPrefix(trimmed, "{") {
		var obj struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal([]byte(trimmed), &obj); err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		if obj.Blocks == nil {
			return nil, errors.New(`an object must have a "blocks" array`)
		}
		trimmed = string(obj.Blocks)
	}
	var blocks []json.RawMessage
	if err := json.Unmarshal([]byte(trimmed), &blocks); err != nil {
		return nil, fmt.Errorf("want a JSON array of blocks: %w", err)
	}
	for i, b := range blocks {
		var block map[string]any
		if err := json.Unmarshal(b, &block); err != nil {
			return nil, fmt.Errorf("block %d: want an object: %w", i, err)
		}
		if _, ok := block["type"].(string); !ok {
			return nil, fmt.Errorf("block %d: has no type", i)
		}
	}
	return json.RawMessage(trimmed), nil
}
