package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// APICall is one request a target API stand-in accepted.
type APICall struct {
	Path string
	// IdempotencyKey is the request's Idempotency-Key header (the HTTP
	// producer sets it to the message ID).
	IdempotencyKey string
	// Body is the request's JSON body.
	Body map[string]any
	// Raw is the body as received.
	Raw string
	At  time.Time
}

// API is a local target REST API: it accepts POSTed JSON objects with
// 201 and records them. FailFirst makes it answer 503 to that many
// requests before it accepts any, like an API that is down for a while.
type API struct {
	*standIn[APICall]
}

// StartAPI listens on addr (host:port; port 0 picks one) and serves every
// path. Each request is written to out as a line; out may be nil.
func StartAPI(addr string, failFirst int, out io.Writer) (*API, error) {
	a := &API{standIn: &standIn[APICall]{name: "target API stand-in", out: out, failLeft: failFirst}}
	if err := a.listen(addr, a); err != nil {
		return nil, err
	}
	return a, nil
}

// ServeHTTP answers 201 with {"status":"accepted"} to a POSTed JSON
// object, 400 to anything else that is POSTed, 405 to other methods and
// 503 while failing.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var body map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &body)
	}
	if err != nil || body == nil {
		http.Error(w, "want a JSON object", http.StatusBadRequest)
		return
	}
	call := APICall{Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body, Raw: string(raw), At: time.Now()}
	if !a.admit(w, call, string(raw)) {
		return
	}
	a.printf("POST %s %s", r.URL.Path, raw)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"status":"accepted"}`)
}

// Calls returns the accepted requests in arrival order.
func (a *API) Calls() []APICall { return a.accepted() }

// Matching returns the accepted requests whose body contains sub.
func (a *API) Matching(sub string) []APICall {
	return a.matching(func(c APICall) string { return c.Raw }, sub)
}
