package demo

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	*standIn[SlackMessage]
	arrived chan struct{}
}

// StartSlack listens on addr (host:port; port 0 picks one) and serves the
// incoming-webhook API on every path. Each accepted message is written to
// out as a line; out may be nil.
func StartSlack(addr string, failFirst int, out io.Writer) (*Slack, error) {
	s := &Slack{
		standIn: &standIn[SlackMessage]{name: "slack stand-in", out: out, failLeft: failFirst},
		arrived: make(chan struct{}, 1),
	}
	if err := s.listen(addr, s); err != nil {
		return nil, err
	}
	return s, nil
}

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
	if !s.admit(w, SlackMessage{Text: body.Text, At: time.Now()}, fmt.Sprintf("%q", body.Text)) {
		return
	}
	s.printf("received %q", body.Text)
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	_, _ = io.WriteString(w, "ok")
}

// Messages returns the accepted messages in arrival order.
func (s *Slack) Messages() []SlackMessage { return s.accepted() }

// Matching returns the accepted messages whose text contains sub.
func (s *Slack) Matching(sub string) []SlackMessage {
	return s.matching(func(m SlackMessage) string { return m.Text }, sub)
}
