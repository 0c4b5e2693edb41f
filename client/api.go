// Package client is the Go client of VRSky's REST API.
//
// Its operations (client.gen.go: ClientWithResponses and the types of every
// request and answer) are generated from the OpenAPI document the API
// serves, so they cannot drift from it; generate.go says how to regenerate
// them. This file and wait.go add what the document cannot say: the bearer
// key, errors that read as one line, and waiting for the work an answer 202
// only promises (tenant provisioning, deploys and other lifecycle changes).
//
// It talks HTTP to the public API only; it never reaches into NATS,
// PostgreSQL or a dev stack's files.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultTimeout bounds each request of a client made by New without
// WithHTTPClient.
const DefaultTimeout = 30 * time.Second

// MaxAnswerBytes bounds the body of an answer the client reads: a larger
// one fails with ErrAnswerTooLarge instead of filling the caller's memory.
const MaxAnswerBytes = 32 << 20

// ErrAnswerTooLarge is the error of reading an answer over MaxAnswerBytes.
var ErrAnswerTooLarge = fmt.Errorf("client: answer over %d bytes", MaxAnswerBytes)

// API is a client of one VRSky API holding one API key: the generated
// operations, each named after its operationId (GetIntegrationWithResponse
// for get-integration…), plus the waits of wait.go.
type API struct {
	*ClientWithResponses
	server string
	opts   []ClientOption
}

// New returns a client of the API at server (http://host:port) that sends
// key as its bearer token; an empty key sends none (the public operations:
// health, webhooks). opts come after New's own, so WithHTTPClient replaces
// the default HTTP client.
func New(server, key string, opts ...ClientOption) (*API, error) {
	server = strings.TrimRight(strings.TrimSpace(server), "/")
	if server == "" {
		return nil, errors.New("client: no API address given")
	}
	opts = append([]ClientOption{WithHTTPClient(&http.Client{Timeout: DefaultTimeout})}, opts...)
	all := append(opts[:len(opts):len(opts)], WithRequestEditorFn(bearer(strings.TrimSpace(key))), boundAnswers)
	c, err := NewClientWithResponses(server, all...)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return &API{ClientWithResponses: c, server: server, opts: opts}, nil
}

// Server is the API's address as given to New, without a trailing slash.
func (a *API) Server() string { return a.server }

// WithKey returns a client of the same API, with the same options, that
// sends key instead.
func (a *API) WithKey(key string) *API {
	c, err := New(a.server, key, a.opts[1:]...)
	if err != nil { // New accepted the same server and options before
		panic(err)
	}
	return c
}

// boundAnswers makes the client's HTTP client cut answers at
// MaxAnswerBytes and send a request again after 429 (ratelimit.go); it
// comes last, after any WithHTTPClient.
func boundAnswers(c *Client) error {
	c.Client = boundedDoer{rateLimitedDoer{c.Client}}
	return nil
}

// boundedDoer is an HttpRequestDoer whose answers' bodies end in
// ErrAnswerTooLarge past MaxAnswerBytes.
type boundedDoer struct{ next HttpRequestDoer }

func (d boundedDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := d.next.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: MaxAnswerBytes}
	return resp, nil
}

type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, ErrAnswerTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// bearer sets the Authorization header of every request to key.
func bearer(key string) RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		return nil
	}
}

// Error is an answer of the API other than the one the caller wanted: its
// HTTP status and its body, an RFC 9457 problem when the API sent one. Its
// message is one line: status, title, detail and each located error.
type Error struct {
	Status int
	Body   []byte
	// Problem is the body decoded; zero when the body is not a problem.
	Problem ErrorModel
}

// ErrorOf returns the *Error of an answer with status and body.
func ErrorOf(status int, body []byte) *Error {
	e := &Error{Status: status, Body: body}
	_ = json.Unmarshal(body, &e.Problem) // not a problem: Error prints the body
	return e
}

func (e *Error) Error() string {
	title, detail := deref(e.Problem.Title), deref(e.Problem.Detail)
	if title == "" && detail == "" {
		if body := strings.TrimSpace(string(e.Body)); body != "" {
			return fmt.Sprintf("%d %s", e.Status, body)
		}
		return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	}
	msg := fmt.Sprintf("%d %s", e.Status, title)
	if detail != "" {
		msg += ": " + detail
	}
	if e.Problem.Errors != nil {
		for _, d := range *e.Problem.Errors {
			msg += fmt.Sprintf("; %s: %s", deref(d.Location), deref(d.Message))
		}
	}
	return msg
}

// StatusOf returns the HTTP status of err's *Error, or 0 when err is not
// an answer of the API (a network error, say).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is the API answering 404: no such object
// for this key's tenant.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// Response is what every generated answer type is: its status and its
// body as read.
type Response interface {
	StatusCode() int
	GetBody() []byte
}

// Check turns the outcome of a generated call into an error: err itself
// (a request that got no answer), nil when the answer's status is one of
// want, otherwise an *Error. what says what was being done; it starts the
// message.
//
//	r, err := api.GetIntegrationWithResponse(ctx, "orders")
//	if err := client.Check("get integration orders", r, err, http.StatusOK); err != nil { … }
func Check(what string, resp Response, err error, want ...int) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	st := resp.StatusCode()
	if slices.Contains(want, st) {
		return nil
	}
	return fmt.Errorf("%s: %w", what, ErrorOf(st, resp.GetBody()))
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Ptr returns a pointer to v, for the generated types' optional fields.
func Ptr[T any](v T) *T { return &v }
