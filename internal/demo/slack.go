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

// SlackMessage is one message a Slack stand-in accepted.
type SlackMessage struct {
	Text string
	At   time.Time
}

// Slack is a local receiver that speaks Slack's incoming-webhook API: it
// accepts POSTed JSON with a text (and optional blocks), answers "ok" and
// prints every message it accepts. FailFirst makes it answer 503 to that
// many requests before it accepts any, like a Slack outage.
type Slack struct {
	srv       *http.Server
	ln        net.Listener
	out       io.Writer
	mu        sync.Mutex
	failLeft  int
	failed    int
	messages  []SlackMessage
	arrived   chan struct{}
	closeOnce sync.Once
}

// StartSlack listens on addr (host:port; port 0 picks one) and serves the
// incoming-webhook API on every path. Each accepted message is written to
// out as a line; out may be nil.
func StartSlack(addr string, failFirst int, out io.Writer) (*Slack, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start the Slack stand-in on %s: %w", addr, err)
	}
	s := &Slack{ln: ln, out: out, failLeft: failFirst, arrived: make(chan struct{}, 1)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the host:port the stand-in listens on.
func (s *Slack) Addr() string { return s.ln.Addr().String() }

// URL is an incoming-webhook URL served by the stand-in.
func (s *Slack) URL() string { return "http://" + s.Addr() + "/services/T0DEMO/B0DEMO/demo" }

// ServeHTTP answers like hooks.slack.com: 200 "ok", 400 for a body without
// text or blocks, 503 while failing.
func (s *Slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "invalid_method", http.StatusMethodNotAllowed)
		return
	}
	var body struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	if body.Text == "" && len(body.Blocks) == 0 {
		http.Error(w, "no_text", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	if s.failLeft > 0 {
		s.failLeft--
		s.failed++
		s.mu.Unlock()
		if s.out != nil {
			fmt.Fprintf(s.out, "  slack stand-in: answered 503 (simulated outage) to %q\n", body.Text)
		}
		w.Header().Set("Retry-After", "1")
		http.Error(w, "service_unavailable", http.StatusServiceUnavailable)
		return
	}
	s.messages = append(s.messages, SlackMessage{Text: body.Text, At: time.Now()})
	s.mu.Unlock()
	if s.out != nil {
		fmt.Fprintf(s.out, "  slack stand-in: received %q\n", body.Text)
	}
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	_, _ = io.WriteString(w, "ok")
}

// Messages returns the accepted messages in arrival order.
func (s *Slack) Messages() []SlackMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackMessage(nil), s.messages...)
}

// Failed is how many requests were refused with 503.
func (s *Slack) Failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Matching returns the accepted messages whose text contains sub.
func (s *Slack) Matching(sub string) []SlackMessage {
	var got []SlackMessage
	for _, m := range s.Messages() {
		if strings.Contains(m.Text, sub) {
			got = append(got, m)
		}
	}
	return got
}

// Close stops the stand-in.
func (s *Slack) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	})
	return err
}
