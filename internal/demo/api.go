package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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
	srv       *http.Server
	ln        net.Listener
	out       io.Writer
	mu        sync.Mutex
	failLeft  int
	failed    int
	calls     []APICall
	closeOnce sync.Once
}

// StartAPI listens on addr (host:port; port 0 picks one) and serves every
// path. Each request is written to out as a line; out may be nil.
func StartAPI(addr string, failFirst int, out io.Writer) (*API, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start the target API stand-in on %s: %w", addr, err)
	}
	a := &API{ln: ln, out: out, failLeft: failFirst}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = a.srv.Serve(ln) }()
	return a, nil
}

// Addr is the host:port the stand-in listens on.
func (a *API) Addr() string { return a.ln.Addr().String() }

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
	a.mu.Lock()
	if a.failLeft > 0 {
		a.failLeft--
		a.failed++
		a.mu.Unlock()
		if a.out != nil {
			fmt.Fprintf(a.out, "  target API stand-in: answered 503 (simulated outage) to %s\n", raw)
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	a.calls = append(a.calls, APICall{Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key"), Body: body, Raw: string(raw), At: time.Now()})
	a.mu.Unlock()
	if a.out != nil {
		fmt.Fprintf(a.out, "  target API stand-in: POST %s %s\n", r.URL.Path, raw)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, `{"status":"accepted"}`)
}

// Calls returns the accepted requests in arrival order.
func (a *API) Calls() []APICall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]APICall(nil), a.calls...)
}

// Failed is how many requests were refused with 503.
func (a *API) Failed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed
}

// Matching returns the accepted requests whose body contains sub.
func (a *API) Matching(sub string) []APICall {
	var got []APICall
	for _, c := range a.Calls() {
		if strings.Contains(c.Raw, sub) {
			got = append(got, c)
		}
	}
	return got
}

// Close stops the stand-in.
func (a *API) Close() error {
	var err error
	a.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = a.srv.Shutdown(ctx)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	})
	return err
}
