// Package apiclient is the small REST client VRSky's own commands use
// (`vrsky apply`, `vrsky demo`): bearer-key requests, RFC 9457 problems turned
// into readable errors, tenant set-up for a dev stack, and deploying an
// integration spec until the runners report it.
//
// It talks to the public API only; it never reaches into NATS, PostgreSQL or
// the dev stack's files except the admin key and key files it is pointed at.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls the REST API with a bearer key.
type Client struct {
	Base string // http://host:port
	Key  string
	HC   *http.Client
}

// New returns a client of base with key.
func New(base, key string) *Client {
	return &Client{Base: strings.TrimRight(base, "/"), Key: strings.TrimSpace(key), HC: &http.Client{Timeout: 15 * time.Second}}
}

// WithKey returns a client of the same API with another key.
func (c *Client) WithKey(key string) *Client {
	return &Client{Base: c.Base, Key: strings.TrimSpace(key), HC: c.HC}
}

// Do sends a request and decodes a 2xx answer's JSON into out (when not
// nil). It returns the status and the raw answer; a non-2xx status is not an
// error (see Problem).
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte, out any) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w (is the API running?)", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, raw, nil
}

// Problem describes an error answer (an RFC 9457 problem, with its located
// errors) in one line.
func Problem(status int, raw []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail string `json:"detail"`
		Errors []struct {
			Location string `json:"location"`
			Message  string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &p) != nil || (p.Title == "" && p.Detail == "") {
		return fmt.Sprintf("%d %s", status, strings.TrimSpace(string(raw)))
	}
	msg := fmt.Sprintf("%d %s", status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	for _, e := range p.Errors {
		msg += fmt.Sprintf("; %s: %s", e.Location, e.Message)
	}
	return msg
}
