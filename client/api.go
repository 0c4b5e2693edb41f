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
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
)

// DefaultTimeout bounds each request of a client made by New without
// WithHTTPClient.
const DefaultTimeout = 30 * time.Second

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
	all := append(opts[:len(opts):len(opts)], WithRequestEditorFn(bearer(strings.TrimSpace(key))))
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

// Response is what every generated answer type is.
type Response interface{ StatusCode() int }

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
	return fmt.Errorf("%s: %w", what, ErrorOf(st, bodyOf(resp)))
}

// bodyOf returns the answer's body, which every generated answer type
// keeps in its Body field.
func bodyOf(resp Response) []byte {
	v := reflect.ValueOf(resp)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	if f := v.FieldByName("Body"); f.IsValid() && f.Type() == reflect.TypeFor[[]byte]() {
		return f.Bytes()
	}
	return nil
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
