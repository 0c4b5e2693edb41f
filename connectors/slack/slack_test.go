package slack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/httpout"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

const (
	webhookPath = "/services/T000/B000/sekrit"
	token       = "xoxb-test-sekrit"
)

// request is what the fake Slack received.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

// fakeSlack is a loopback server standing in for Slack.
type fakeSlack struct {
	srv  *httptest.Server
	host string
	mu   sync.Mutex
	reqs []request
}

func newFakeSlack(t *testing.T, respond http.HandlerFunc) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b)})
		f.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/chat.postMessage") {
			io.WriteString(w, `{"ok":true,"channel":"C1","ts":"1.2"}`)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(f.srv.Close)
	u, err := url.Parse(f.srv.URL)
	require.NoError(t, err)
	f.host = u.Host
	return f
}

func (f *fakeSlack) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

// webhookConfig points an incoming-webhook config at f; the URL goes
// through an environment variable like a real secret.
func (f *fakeSlack) webhookConfig(t *testing.T, fields map[string]any) json.RawMessage {
	t.Helper()
	t.Setenv("VRSKY_TEST_SLACK_WEBHOOK", f.srv.URL+webhookPath)
	m := map[string]any{"webhookUrl": map[string]string{"env": "VRSKY_TEST_SLACK_WEBHOOK"}, "allowHosts": []string{f.host}}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// botConfig points a bot-token config at f.
func (f *fakeSlack) botConfig(t *testing.T, fields map[string]any) json.RawMessage {
	t.Helper()
	t.Setenv("VRSKY_TEST_SLACK_TOKEN", token)
	m := map[string]any{
		"token": map[string]string{"env": "VRSKY_TEST_SLACK_TOKEN"}, "channel": "C0123",
		"apiUrl": f.srv.URL + "/api/", "allowHosts": []string{f.host},
	}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

var fixedNow = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

func newProducer(t *testing.T, raw json.RawMessage) *Producer {
	t.Helper()
	raw, env := tenantEnv(t, raw)
	p, err := build(t.Context(), env, raw, func() time.Time { return fixedNow })
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func msg(id, body string) sdk.Message {
	return sdk.Message{ID: id, ContentType: "application/json", Body: []byte(body)}
}

// requireNoSecrets checks an error names neither the webhook URL nor the
// token.
func requireNoSecrets(t *testing.T, err error) {
	t.Helper()
	require.NotContains(t, err.Error(), "sekrit")
}

func TestConformance(t *testing.T) {
	f := newFakeSlack(t, nil)
	t.Setenv("VRSKY_TEST_SLACK_FILE_URL", "file:///etc/passwd")
	t.Setenv("VRSKY_TEST_SLACK_LOOPBACK_URL", "http://127.0.0.1:9/services/x")
	t.Setenv("VRSKY_TEST_SLACK_BAD_TOKEN", "xoxb bad\ntoken")
	bad := map[string]json.RawMessage{
		"nothing":                json.RawMessage(`{}`),
		"no destination":         json.RawMessage(`{"text":"hi"}`),
		"inline webhook":         json.RawMessage(`{"webhookUrl":"https://hooks.slack.com/services/x","text":"hi"}`),
		"inline token":           json.RawMessage(`{"token":"xoxb-1","channel":"C1","text":"hi"}`),
		"both":                   json.RawMessage(`{"webhookUrl":{"env":"A"},"token":{"env":"B"},"channel":"C1","text":"hi"}`),
		"token without channel":  json.RawMessage(`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"text":"hi"}`),
		"webhook with channel":   json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"channel":"C1","text":"hi"}`),
		"webhook with apiUrl":    json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"apiUrl":"https://slack.com/api","text":"hi"}`),
		"no text or blocks":      json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"}}`),
		"bad text template":      json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"{{ .a "}`),
		"bad blocks template":    json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"blocks":"{{ end }}"}`),
		"static blocks not json": json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"blocks":"[{"}`),
		"file webhook":           json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_FILE_URL"},"text":"hi"}`),
		"loopback webhook":       json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_LOOPBACK_URL"},"text":"hi"}`),
		"unset webhook env":      json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_UNSET"},"text":"hi"}`),
		"file apiUrl":            json.RawMessage(`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","apiUrl":"file:///x","text":"hi"}`),
		"loopback apiUrl":        json.RawMessage(`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","apiUrl":"http://127.0.0.1/api","text":"hi"}`),
		"apiUrl with query":      json.RawMessage(`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","apiUrl":"https://slack.com/api?x=1","text":"hi"}`),
		"bad token value":        json.RawMessage(`{"token":{"env":"VRSKY_TEST_SLACK_BAD_TOKEN"},"channel":"C1","text":"hi"}`),
		"bad timeout":            json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"hi","timeout":"1y"}`),
		"allowHosts":             json.RawMessage(`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"hi","allowHosts":["hooks.slack.com"]}`),
	}
	t.Run("webhook", func(t *testing.T) {
		good, env := tenantEnv(t, f.webhookConfig(t, map[string]any{"text": "hi {{ .id }}"}))
		sdktest.Conformance(t, Connector, env, good, bad)
	})
	t.Run("bot", func(t *testing.T) {
		good, env := tenantEnv(t, f.botConfig(t, map[string]any{"text": "hi {{ .id }}"}))
		sdktest.Conformance(t, Connector, env, good, bad)
	})
}

func TestBadConfigErrorsSayWhatIsWrong(t *testing.T) {
	t.Setenv("VRSKY_TEST_SLACK_WEBHOOK", "ftp://hooks.example.com/services/sekrit")
	t.Setenv("VRSKY_TEST_SLACK_TOKEN", token)
	tests := []struct {
		raw  string
		want string
	}{
		{`{"text":"hi"}`, "set webhookUrl or token"},
		{`{"webhookUrl":"https://hooks.slack.com/services/x","text":"hi"}`, "cannot be inline"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"text":"hi"}`, "channel is required with token"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C\n1","text":"hi"}`, "want a channel ID or name"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1"}`, "set text, blocks or both"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","text":"{{ .a "}`, "text: parse template"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","blocks":"{\"text\":1}"}`, `"blocks" array`},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","blocks":"[{\"text\":1}]"}`, "block 0: has no type"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","blocks":"[1]"}`, "block 0: want an object"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","blocks":"{\"blocks\":[}"}`, "not valid JSON"},
		{`{"webhookUrl":{"env":"VRSKY_TEST_SLACK_WEBHOOK"},"text":"hi"}`, `webhookUrl env:VRSKY_TEST_SLACK_WEBHOOK: ssrf: url scheme "ftp"`},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","text":"hi","timeout":"0s"}`, "timeout"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","text":"hi","timeout":"x"}`, "timeout"},
		{`{"token":{"env":"VRSKY_TEST_SLACK_TOKEN"},"channel":"C1","text":"hi","colour":"red"}`, `unknown field "colour"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv}, json.RawMessage(tt.raw))
			require.ErrorContains(t, err, tt.want)
			require.True(t, strings.HasPrefix(err.Error(), "slack: "), err.Error())
			requireNoSecrets(t, err)
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Token: sdk.Secret{Env: "X"}, Channel: "C1", Text: "hi"}
	require.NoError(t, c.Validate())
	s, err := c.settings(ssrf.New(sdk.EgressPolicy{}))
	require.NoError(t, err)
	require.Equal(t, DefaultAPIURL, s.apiURL)
	require.Equal(t, DefaultTimeout, s.timeout)
	require.False(t, s.needData)
}

func TestPosts(t *testing.T) {
	tests := []struct {
		name   string
		bot    bool
		fields map[string]any
		msg    sdk.Message
		path   string
		body   string
	}{
		{
			name:   "webhook text",
			fields: map[string]any{"text": "Big order {{ .id }}: {{ .total }} {{ .currency }}"},
			msg:    msg("m-1", `{"id":"o-9","total":1200}`),
			path:   webhookPath,
			body:   `{"text":"Big order o-9: 1200 "}`,
		},
		{
			name:   "webhook text with markup characters",
			fields: map[string]any{"text": "{{ .name }}"},
			msg:    msg("m-1", `{"name":"A & B <x> \"q\""}`),
			path:   webhookPath,
			body:   `{"text":"A & B <x> \"q\""}`,
		},
		{
			name:   "webhook blocks array",
			fields: map[string]any{"blocks": `[{"type":"section","text":{"type":"mrkdwn","text":{{ json .note }}}}]`},
			msg:    msg("m-2", `{"note":"say \"hi\"\nnow"}`),
			path:   webhookPath,
			body:   `{"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"say \"hi\"\nnow"}}]}`,
		},
		{
			name:   "bot text",
			bot:    true,
			fields: map[string]any{"text": "Order {{ .id }}"},
			msg:    msg("m-3", `{}`),
			path:   "/api/chat.postMessage",
			body:   `{"channel":"C0123","text":"Order m-3"}`,
		},
		{
			name: "bot blocks object with text fallback",
			bot:  true,
			fields: map[string]any{
				"text":   "Order {{ .id }}",
				"blocks": `{"blocks":[{"type":"header","text":{"type":"plain_text","text":"Order {{ .id }}"}}]}`,
			},
			msg:  msg("m-4", `{"id":"o-4"}`),
			path: "/api/chat.postMessage",
			body: `{"channel":"C0123","text":"Order o-4","blocks":[{"type":"header","text":{"type":"plain_text","text":"Order o-4"}}]}`,
		},
		{
			name:   "static text with any body",
			fields: map[string]any{"text": "A file arrived"},
			msg:    sdk.Message{ID: "m-5", ContentType: "text/csv", Body: []byte("a,b")},
			path:   webhookPath,
			body:   `{"text":"A file arrived"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t, nil)
			raw := f.webhookConfig(t, tt.fields)
			if tt.bot {
				raw = f.botConfig(t, tt.fields)
			}
			p := newProducer(t, raw)
			require.NoError(t, p.Write(t.Context(), []sdk.Message{tt.msg}))
			reqs := f.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			require.Equal(t, "POST", r.Method)
			require.Equal(t, tt.path, r.Path)
			require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
			require.JSONEq(t, tt.body, r.Body)
			if tt.bot {
				require.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
			} else {
				require.Empty(t, r.Header.Get("Authorization"))
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name      string
		bot       bool
		respond   http.HandlerFunc
		permanent bool
		after     time.Duration
		contains  string
	}{
		{
			name:     "500 is retryable",
			respond:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "rollup_error", 500) },
			contains: "status 500 Internal Server Error: rollup_error",
		},
		{
			name: "429 honours Retry-After",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
			},
			after:    7 * time.Second,
			contains: "status 429",
		},
		{
			name:      "404 is permanent",
			respond:   func(w http.ResponseWriter, r *http.Request) { http.Error(w, "channel_not_found", 404) },
			permanent: true,
			contains:  "status 404 Not Found: channel_not_found",
		},
		{
			name:      "400 invalid payload is permanent",
			respond:   func(w http.ResponseWriter, r *http.Request) { http.Error(w, "invalid_payload", 400) },
			permanent: true,
			contains:  "invalid_payload",
		},
		{
			name: "bot ok:false is permanent",
			bot:  true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
			},
			permanent: true,
			contains:  "message m-1: chat.postMessage: slack error: channel_not_found",
		},
		{
			name: "bot ratelimited is retryable",
			bot:  true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			},
			after:    3 * time.Second,
			contains: "ratelimited",
		},
		{
			name: "bot internal_error is retryable",
			bot:  true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"ok":false,"error":"internal_error"}`)
			},
			contains: "internal_error",
		},
		{
			name:      "bot ok:false without error",
			bot:       true,
			respond:   func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":false}`) },
			permanent: true,
			contains:  "without an error",
		},
		{
			name:      "bot answer not JSON",
			bot:       true,
			respond:   func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>proxy</html>`) },
			permanent: true,
			contains:  "not Slack API JSON",
		},
		{
			name: "bot 429",
			bot:  true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
			},
			after:    7 * time.Second,
			contains: "status 429",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t, tt.respond)
			fields := map[string]any{"text": "hi"}
			raw := f.webhookConfig(t, fields)
			if tt.bot {
				raw = f.botConfig(t, fields)
			}
			p := newProducer(t, raw)
			err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
			var be *sdk.BatchError
			require.ErrorAs(t, err, &be)
			require.Len(t, be.Failed, 1)
			got := be.Failed[0]
			require.Equal(t, tt.permanent, sdk.IsPermanent(got), "%v", got)
			require.Equal(t, tt.after, sdk.RetryAfterOf(got))
			require.ErrorContains(t, got, tt.contains)
			requireNoSecrets(t, got)
		})
	}
}

func TestRateLimitStopsTheBatch(t *testing.T) {
	f := newFakeSlack(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(429)
	})
	p := newProducer(t, f.webhookConfig(t, map[string]any{"text": "{{ .id }}"}))
	err := p.Write(t.Context(), []sdk.Message{msg("a", `{}`), msg("b", `{}`), msg("c", `{}`)})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 3)
	for i := range 3 {
		require.False(t, sdk.IsPermanent(be.Failed[i]))
		require.Equal(t, 7*time.Second, sdk.RetryAfterOf(be.Failed[i]), "message %d", i)
	}
	require.ErrorContains(t, be.Failed[2], "not sent after a rate limit")
	require.Len(t, f.requests(), 1, "no more requests once rate limited")
}

func TestBatchWithOneFailure(t *testing.T) {
	f := newFakeSlack(t, nil)
	p := newProducer(t, f.webhookConfig(t, map[string]any{"text": "{{ .id }} in {{ .address.city }}"}))
	err := p.Write(t.Context(), []sdk.Message{
		msg("a", `{"address":{"city":"Oslo"}}`),
		msg("b", `{"note":"no address"}`),
		msg("c", `{"address":{}}`),
	})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.True(t, sdk.IsPermanent(be.Failed[1]))
	require.ErrorContains(t, be.Failed[1], "message b: post to incoming webhook: text: render template")
	reqs := f.requests()
	require.Len(t, reqs, 2)
	require.JSONEq(t, `{"text":"a in Oslo"}`, reqs[0].Body)
	require.JSONEq(t, `{"text":"c in "}`, reqs[1].Body, "a missing field renders empty")
}

func TestRenderedContentErrorsArePermanent(t *testing.T) {
	f := newFakeSlack(t, nil)
	tests := []struct {
		name   string
		fields map[string]any
		want   string
	}{
		{"empty text", map[string]any{"text": "{{ .missing }}"}, "text rendered empty"},
		{"blocks not JSON", map[string]any{"blocks": `[{"type":"section","text":{{ .note }}}]`}, "blocks: rendered want a JSON array"},
		{"blocks template error", map[string]any{"blocks": `{{ .a.b }}`}, "blocks: render template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProducer(t, f.webhookConfig(t, tt.fields))
			err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{"note":"plain words"}`)})
			var be *sdk.BatchError
			require.ErrorAs(t, err, &be)
			require.True(t, sdk.IsPermanent(be.Failed[0]))
			require.ErrorContains(t, be.Failed[0], tt.want)
		})
	}
	require.Empty(t, f.requests())
}

func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	f := newFakeSlack(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := newProducer(t, f.botConfig(t, map[string]any{"text": "hi", "timeout": "100ms"}))
	err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.False(t, sdk.IsPermanent(be.Failed[0]))
	require.ErrorContains(t, be.Failed[0], "timed out")
	requireNoSecrets(t, be.Failed[0])
}

func TestNetworkErrorIsRetryableAndKeepsTheURLSecret(t *testing.T) {
	f := newFakeSlack(t, nil)
	p := newProducer(t, f.webhookConfig(t, map[string]any{"text": "hi"}))
	f.srv.Close()
	err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.False(t, sdk.IsPermanent(be.Failed[0]))
	requireNoSecrets(t, be.Failed[0])
}

func TestRedirectToBlockedAddressIsRefused(t *testing.T) {
	internal := newFakeSlack(t, nil)
	f := newFakeSlack(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.srv.URL+"/admin", http.StatusTemporaryRedirect)
	})
	for _, bot := range []bool{false, true} {
		raw := f.webhookConfig(t, map[string]any{"text": "hi"})
		if bot {
			raw = f.botConfig(t, map[string]any{"text": "hi"})
		}
		p := newProducer(t, raw)
		err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
		var be *sdk.BatchError
		require.ErrorAs(t, err, &be)
		require.True(t, sdk.IsPermanent(be.Failed[0]), "%v", be.Failed[0])
		require.True(t, ssrf.IsRefused(be.Failed[0]))
		requireNoSecrets(t, be.Failed[0])
	}
	require.Empty(t, internal.requests())
}

func TestCancelledContextReturnsPromptly(t *testing.T) {
	release := make(chan struct{})
	f := newFakeSlack(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := newProducer(t, f.webhookConfig(t, map[string]any{"text": "hi", "timeout": "1m"}))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := p.Write(ctx, []sdk.Message{msg("a", `{}`), msg("b", `{}`)})
	require.Less(t, time.Since(start), sdktest.Prompt)
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	for _, e := range be.Failed {
		require.False(t, sdk.IsPermanent(e), "%v", e)
		require.ErrorIs(t, e, context.Canceled)
	}
	require.Len(t, f.requests(), 1)
}

func TestWriteAfterClose(t *testing.T) {
	f := newFakeSlack(t, nil)
	p := newProducer(t, f.webhookConfig(t, map[string]any{"text": "hi"}))
	require.NoError(t, p.Close(t.Context()))
	require.NoError(t, p.Close(t.Context()))
	require.ErrorContains(t, p.Write(t.Context(), []sdk.Message{msg("a", `{}`)}), "write after close")
	require.Empty(t, f.requests())
}

func TestTenantSecrets(t *testing.T) {
	f := newFakeSlack(t, nil)
	raw := json.RawMessage(`{"webhookUrl":{"secret":"slack-orders"},"text":"hi"}`)
	env := sdk.Env{LookupEnv: os.LookupEnv, Egress: sdk.EgressPolicy{AllowHosts: []string{f.host}}, Secrets: func(_ context.Context, name string) (string, error) {
		require.Equal(t, "slack-orders", name)
		return f.srv.URL + webhookPath, nil
	}}
	inst, err := Connector.Build(t.Context(), env, raw)
	require.NoError(t, err)
	p := inst.(sdk.Producer)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	require.NoError(t, p.Write(t.Context(), []sdk.Message{msg("a", `{}`)}))
	require.Len(t, f.requests(), 1)
}

// TestHostileTemplateFailsOnlyItsMessage: a text template that would
// render a terabyte for a message with a large array fails that message
// permanently, with the limit as the reason, and the next message of the
// batch is posted.
func TestHostileTemplateFailsOnlyItsMessage(t *testing.T) {
	f := newFakeSlack(t, nil)
	p := newProducer(t, f.webhookConfig(t, map[string]any{
		"text": "{{ .id }}{{ range .a }}{{ range $.a }}{{ range $.a }}{{ $.s }}{{ end }}{{ end }}{{ end }}",
	}))
	a := strings.TrimSuffix(strings.Repeat("0,", 1000), ",")
	err := p.Write(t.Context(), []sdk.Message{
		msg("bomb", `{"a":[`+a+`],"s":"`+strings.Repeat("x", 1000)+`"}`),
		msg("fine", `{"a":[]}`),
	})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.True(t, sdk.IsPermanent(be.Failed[0]))
	require.ErrorContains(t, be.Failed[0], "output longer than")
	require.ErrorIs(t, be.Failed[0], httpout.ErrRenderLimit)
	reqs := f.requests()
	require.Len(t, reqs, 1)
	require.JSONEq(t, `{"text":"fine"}`, reqs[0].Body)

	raw, env := tenantEnv(t, f.webhookConfig(t, map[string]any{
		"text": "{{ range .a }}{{ range $.a }}{{ range $.a }}{{ range $.a }}x{{ end }}{{ end }}{{ end }}{{ end }}",
	}))
	_, err = build(t.Context(), env, raw, nil)
	require.ErrorContains(t, err, "ranges nested 4 deep")
}
