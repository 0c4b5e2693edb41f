package httpout

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
	"github.com/vrsky/vrsky/connectors/ssrf"
)

// request is what a test server received.
type request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   string
}

// target is a loopback test server that records requests and answers with
// respond.
type target struct {
	srv  *httptest.Server
	host string
	mu   sync.Mutex
	reqs []request
}

func newTarget(t *testing.T, respond http.HandlerFunc) *target {
	t.Helper()
	tg := &target{}
	tg.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.reqs = append(tg.reqs, request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)})
		tg.mu.Unlock()
		if respond != nil {
			respond(w, r)
		}
	}))
	t.Cleanup(tg.srv.Close)
	u, err := url.Parse(tg.srv.URL)
	require.NoError(t, err)
	tg.host = u.Host
	return tg
}

func (tg *target) requests() []request {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]request(nil), tg.reqs...)
}

// cfg builds a config JSON for tg from fields, allowing tg's host.
func (tg *target) cfg(fields map[string]any) json.RawMessage {
	m := map[string]any{"url": tg.srv.URL + "/hook", "allowHosts": []string{tg.host}}
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

func TestConformance(t *testing.T) {
	tg := newTarget(t, nil)
	t.Setenv("VRSKY_TEST_HTTP_UNSET", "")
	good, env := tenantEnv(t, tg.cfg(nil))
	sdktest.Conformance(t, Connector, env, good, map[string]json.RawMessage{
		"missing url":         json.RawMessage(`{}`),
		"file scheme":         json.RawMessage(`{"url":"file:///etc/passwd"}`),
		"templated scheme":    json.RawMessage(`{"url":"{{ .scheme }}://example.com/"}`),
		"bad template":        json.RawMessage(`{"url":"https://example.com/{{ .id "}`),
		"loopback":            json.RawMessage(`{"url":"http://127.0.0.1:8080/"}`),
		"metadata":            json.RawMessage(`{"url":"http://169.254.169.254/latest/meta-data/"}`),
		"templated loopback":  json.RawMessage(`{"url":"http://127.0.0.1/{{ .id }}"}`),
		"userinfo":            json.RawMessage(`{"url":"https://u:p@example.com/"}`),
		"bad method":          json.RawMessage(`{"url":"https://example.com/","method":"GET"}`),
		"bad timeout":         json.RawMessage(`{"url":"https://example.com/","timeout":"soon"}`),
		"zero timeout":        json.RawMessage(`{"url":"https://example.com/","timeout":"0s"}`),
		"huge timeout":        json.RawMessage(`{"url":"https://example.com/","timeout":"1h"}`),
		"negative conc":       json.RawMessage(`{"url":"https://example.com/","maxConcurrency":-1}`),
		"huge conc":           json.RawMessage(`{"url":"https://example.com/","maxConcurrency":1000}`),
		"bad header name":     json.RawMessage(`{"url":"https://example.com/","headers":{"X Bad":"v"}}`),
		"header line break":   json.RawMessage(`{"url":"https://example.com/","headers":{"X-A":"a\r\nX-B: b"}}`),
		"reserved header":     json.RawMessage(`{"url":"https://example.com/","headers":{"host":"evil"}}`),
		"bad header template": json.RawMessage(`{"url":"https://example.com/","headers":{"X-A":"{{ .a"}}`),
		"bad body template":   json.RawMessage(`{"url":"https://example.com/","body":"{{ end }}"}`),
		"bad content type":    json.RawMessage(`{"url":"https://example.com/","contentType":"not a type"}`),
		"inline secret":       json.RawMessage(`{"url":"https://example.com/","signature":{"secret":"whsec_abc"}}`),
		"empty signature":     json.RawMessage(`{"url":"https://example.com/","signature":{}}`),
		"unset secret env":    json.RawMessage(`{"url":"https://example.com/","signature":{"secret":{"env":"VRSKY_TEST_HTTP_UNSET"}}}`),
		"inline header":       json.RawMessage(`{"url":"https://example.com/","secretHeaders":{"Authorization":"Bearer x"}}`),
		"allowHosts":          json.RawMessage(`{"url":"https://example.com/","allowHosts":["example.com"]}`),
		"url not a string":    json.RawMessage(`{"url":42}`),
	})
}

func TestBadConfigErrorsSayWhatIsWrong(t *testing.T) {
	t.Setenv("VRSKY_TEST_HTTP_KEY", "not base64!")
	tests := []struct {
		raw  string
		want string
	}{
		{`{}`, "url is required"},
		{`{"url":"file:///etc/passwd"}`, `scheme "file"`},
		{`{"url":"{{ .u }}"}`, "literal http:// or https://"},
		{`{"url":"https://example.com/{{ .id "}`, "url: parse template"},
		{`{"url":"http://localhost/x"}`, "local host name"},
		{`{"url":"https://example.com/","signature":{"secret":"whsec_abc"}}`, "cannot be inline"},
		{`{"url":"https://example.com/","signature":{"secret":{"env":"VRSKY_TEST_HTTP_KEY"}}}`, "want base64"},
		{`{"url":"https://example.com/","nope":1}`, `unknown field "nope"`},
		{`{"url":"https://example.com/","method":"get"}`, `method "get"`},
		{`{"url":"https://example.com/","headers":{"Idempotency-Key":"x"}}`, "sets it to the message ID"},
		{`{"url":"https://example.com/","headers":{"X-A":"1","x-a":"2"}}`, "configured twice"},
		{`{"url":"https://example.com/","headers":{"X-A":"1"},"secretHeaders":{"x-a":{"env":"A"}}}`, "configured twice"},
		{`{"url":"https://example.com/","secretHeaders":{"X-Key":{"env":"VRSKY_TEST_HTTP_MISSING"}}}`, "X-Key: secret env:VRSKY_TEST_HTTP_MISSING: environment variable is not set"},
		{`{"url":"https://example.com/","secretHeaders":{"Content-Type":{"env":"A"}}}`, "use contentType"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Connector.Build(t.Context(), sdk.Env{LookupEnv: os.LookupEnv}, json.RawMessage(tt.raw))
			require.ErrorContains(t, err, tt.want)
			require.True(t, strings.HasPrefix(err.Error(), "http: "), err.Error())
			require.NotContains(t, err.Error(), "not base64!", "secret values never appear in errors")
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{URL: "https://example.com/hook"}
	require.NoError(t, c.Validate())
	s, err := c.settings(ssrf.New(sdk.EgressPolicy{}))
	require.NoError(t, err)
	require.Equal(t, "POST", s.method)
	require.Equal(t, 10*time.Second, s.timeout)
	require.Equal(t, 8, s.maxConcurrency)
	require.False(t, s.needData)
}

// webhookSecret is a Standard Webhooks test key.
const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func verifySignature(t *testing.T, r request) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(webhookSecret, "whsec_"))
	require.NoError(t, err)
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + r.Body))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), r.Header.Get("webhook-signature"))
}

func TestSendsTheRequest(t *testing.T) {
	t.Setenv("VRSKY_TEST_WEBHOOK_SECRET", webhookSecret)
	t.Setenv("VRSKY_TEST_API_KEY", "key-123")
	tests := []struct {
		name   string
		fields map[string]any
		msg    sdk.Message
		check  func(t *testing.T, r request)
	}{
		{
			name: "defaults post the body as is",
			msg:  msg("m-1", `{"id":"o-1","total":12.5}`),
			check: func(t *testing.T, r request) {
				require.Equal(t, "POST", r.Method)
				require.Equal(t, "/hook", r.Path)
				require.Equal(t, `{"id":"o-1","total":12.5}`, r.Body)
				require.Equal(t, "m-1", r.Header.Get("Idempotency-Key"))
				require.Equal(t, "application/json", r.Header.Get("Content-Type"))
				require.Equal(t, UserAgent, r.Header.Get("User-Agent"))
				require.Empty(t, r.Header.Get("webhook-signature"))
			},
		},
		{
			name: "message content type",
			msg:  sdk.Message{ID: "m-2", ContentType: "text/csv", Body: []byte("a,b\n1,2\n")},
			check: func(t *testing.T, r request) {
				require.Equal(t, "text/csv", r.Header.Get("Content-Type"))
				require.Equal(t, "a,b\n1,2\n", r.Body)
			},
		},
		{
			name: "no content type falls back to json",
			msg:  sdk.Message{ID: "m-2b", Body: []byte(`{}`)},
			check: func(t *testing.T, r request) {
				require.Equal(t, "application/json", r.Header.Get("Content-Type"))
			},
		},
		{
			name: "templated url, headers and body",
			fields: map[string]any{
				"method":        "put",
				"headers":       map[string]string{"X-Order": "{{ .id }}", "x-static": "yes", "X-Customer": "{{ .customer.name }}"},
				"secretHeaders": map[string]any{"Authorization": map[string]string{"env": "VRSKY_TEST_API_KEY"}},
				"body":          `{"order":{{ json .id }},"name":{{ json .customer.name }},"items":{{ .items }}}`,
				"contentType":   "application/vnd.erp+json",
			},
			msg: msg("m-3", `{"id":"o-\"7","customer":{"name":"Ann <A&B>"},"items":[1,2]}`),
			check: func(t *testing.T, r request) {
				require.Equal(t, "PUT", r.Method)
				require.Equal(t, `o-"7`, r.Header.Get("X-Order"))
				require.Equal(t, "yes", r.Header.Get("X-Static"))
				require.Equal(t, "Ann <A&B>", r.Header.Get("X-Customer"))
				require.Equal(t, "key-123", r.Header.Get("Authorization"))
				require.Equal(t, "application/vnd.erp+json", r.Header.Get("Content-Type"))
				require.JSONEq(t, `{"order":"o-\"7","name":"Ann <A&B>","items":[1,2]}`, r.Body)
				require.Equal(t, "m-3", r.Header.Get("Idempotency-Key"))
			},
		},
		{
			name:   "url template with message id and missing fields",
			fields: map[string]any{"method": "DELETE", "urlSuffix": "/orders/{{ .id }}?region={{ .region }}&n={{ .n }}"},
			msg:    msg("m-4", `{"n":null}`),
			check: func(t *testing.T, r request) {
				require.Equal(t, "DELETE", r.Method)
				require.Equal(t, "/orders/m-4", r.Path, ".id is the message ID when the body has none")
				require.Equal(t, "region=&n=", r.Query, "missing and null fields render empty")
			},
		},
		{
			name:   "non-JSON body gives only id",
			fields: map[string]any{"urlSuffix": "/items/{{ .id }}/{{ .x }}"},
			msg:    sdk.Message{ID: "m-5", ContentType: "application/xml", Body: []byte("<a/>")},
			check: func(t *testing.T, r request) {
				require.Equal(t, "/items/m-5/", r.Path)
				require.Equal(t, "<a/>", r.Body)
			},
		},
		{
			name:   "signature",
			fields: map[string]any{"signature": map[string]any{"secret": map[string]string{"env": "VRSKY_TEST_WEBHOOK_SECRET"}}},
			msg:    msg("m-6", `{"a":1}`),
			check: func(t *testing.T, r request) {
				require.Equal(t, "m-6", r.Header.Get("webhook-id"))
				require.Equal(t, fmt.Sprint(fixedNow.Unix()), r.Header.Get("webhook-timestamp"))
				require.True(t, strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,"))
				verifySignature(t, r)
			},
		},
		{
			name: "signature covers the rendered body",
			fields: map[string]any{
				"signature": map[string]any{"secret": map[string]string{"env": "VRSKY_TEST_WEBHOOK_SECRET"}},
				"body":      `{"event":"order.paid","data":{{ json . }}}`,
			},
			msg: msg("m-7", `{"total":3}`),
			check: func(t *testing.T, r request) {
				require.JSONEq(t, `{"event":"order.paid","data":{"id":"m-7","total":3}}`, r.Body)
				verifySignature(t, r)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, nil)
			fields := map[string]any{}
			for k, v := range tt.fields {
				fields[k] = v
			}
			if suffix, ok := fields["urlSuffix"]; ok {
				delete(fields, "urlSuffix")
				fields["url"] = tg.srv.URL + suffix.(string)
			}
			p := newProducer(t, tg.cfg(fields))
			require.NoError(t, p.Write(t.Context(), []sdk.Message{tt.msg}))
			reqs := tg.requests()
			require.Len(t, reqs, 1)
			tt.check(t, reqs[0])
		})
	}
}

func TestResponses(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name      string
		respond   http.HandlerFunc
		permanent bool
		after     time.Duration
		contains  []string
	}{
		{
			name:     "500 is retryable",
			respond:  func(w http.ResponseWriter, r *http.Request) { http.Error(w, "db down", 500) },
			contains: []string{"status 500 Internal Server Error: db down", "POST http://127.0.0.1"},
		},
		{
			name: "429 honours Retry-After seconds",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(429)
			},
			after:    7 * time.Second,
			contains: []string{"status 429"},
		},
		{
			name: "503 honours Retry-After date",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", fixedNow.Add(90*time.Second).Format(http.TimeFormat))
				w.WriteHeader(503)
			},
			after: 90 * time.Second,
		},
		{
			name:     "408 is retryable",
			respond:  func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(408) },
			contains: []string{"status 408"},
		},
		{
			name:      "404 is permanent with the status",
			respond:   func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no such order", 404) },
			permanent: true,
			contains:  []string{"message m-1", "status 404 Not Found: no such order"},
		},
		{
			name:      "400 quotes at most 512 bytes",
			respond:   func(w http.ResponseWriter, r *http.Request) { http.Error(w, long, 400) },
			permanent: true,
			contains:  []string{"status 400 Bad Request: " + strings.Repeat("x", 512)},
		},
		{
			name: "unfollowed redirect is permanent",
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNotModified)
			},
			permanent: true,
			contains:  []string{"status 304"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, tt.respond)
			p := newProducer(t, tg.cfg(map[string]any{"url": tg.srv.URL + "/hook?token=sekrit"}))
			err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
			var be *sdk.BatchError
			require.ErrorAs(t, err, &be)
			require.Len(t, be.Failed, 1)
			got := be.Failed[0]
			require.Equal(t, tt.permanent, sdk.IsPermanent(got), "%v", got)
			require.Equal(t, tt.after, sdk.RetryAfterOf(got))
			for _, c := range tt.contains {
				require.Contains(t, got.Error(), c)
			}
			require.NotContains(t, got.Error(), strings.Repeat("x", 513))
			require.NotContains(t, got.Error(), "sekrit", "query strings stay out of errors")
		})
	}
}

func TestTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := newProducer(t, tg.cfg(map[string]any{"timeout": "100ms"}))
	start := time.Now()
	err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
	require.Less(t, time.Since(start), 5*time.Second)
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.False(t, sdk.IsPermanent(be.Failed[0]))
	require.ErrorContains(t, be.Failed[0], "timed out")
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	tg := newTarget(t, nil)
	p := newProducer(t, tg.cfg(nil))
	tg.srv.Close()
	err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{}`)})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.False(t, sdk.IsPermanent(be.Failed[0]), "%v", be.Failed[0])
	require.ErrorContains(t, be.Failed[0], "connection refused")
}

func TestRedirects(t *testing.T) {
	blocked := newTarget(t, nil)
	final := newTarget(t, nil)
	tests := []struct {
		name      string
		location  string
		allow     []string
		permanent bool
	}{
		{"to a blocked address", blocked.srv.URL + "/internal", nil, true},
		{"to the metadata endpoint", "http://169.254.169.254/latest/meta-data/", nil, true},
		{"to an allowed host", final.srv.URL + "/final", []string{final.host}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, tt.location, http.StatusTemporaryRedirect)
			})
			p := newProducer(t, tg.cfg(map[string]any{"allowHosts": append([]string{tg.host}, tt.allow...)}))
			err := p.Write(t.Context(), []sdk.Message{msg("m-1", `{"a":1}`)})
			if !tt.permanent {
				require.NoError(t, err)
				reqs := final.requests()
				require.Len(t, reqs, 1)
				require.Equal(t, `{"a":1}`, reqs[0].Body, "a 307 resends the body")
				return
			}
			var be *sdk.BatchError
			require.ErrorAs(t, err, &be)
			require.True(t, sdk.IsPermanent(be.Failed[0]), "%v", be.Failed[0])
			require.True(t, ssrf.IsRefused(be.Failed[0]))
			require.Empty(t, blocked.requests())
		})
	}
}

// TestTemplatedURLIsGuardedPerMessage: a message cannot choose the host
// (the template must write it out), and the host written out is checked
// at config time and on every connection.
func TestTemplatedURLIsGuardedPerMessage(t *testing.T) {
	tg := newTarget(t, nil)
	raw, env := tenantEnv(t, tg.cfg(map[string]any{"url": "http://{{ .host }}/hook"}))
	_, err := build(t.Context(), env, raw, nil)
	require.ErrorContains(t, err, "the host must be followed by")

	p := newProducer(t, tg.cfg(map[string]any{"url": tg.srv.URL + "/hook/{{ .kind }}"}))
	require.NoError(t, p.Write(t.Context(), []sdk.Message{msg("ok", `{"kind":"a"}`)}))
	require.Len(t, tg.requests(), 1)
	require.Equal(t, "/hook/a", tg.requests()[0].Path)

	_, err = build(t.Context(), sdk.Env{}, json.RawMessage(`{"url":"http://169.254.169.254/{{ .kind }}"}`), nil)
	require.ErrorContains(t, err, "cloud metadata")
}

func TestBatchWithOneFailure(t *testing.T) {
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "bad") {
			http.Error(w, "rejected", http.StatusUnprocessableEntity)
		}
	})
	p := newProducer(t, tg.cfg(map[string]any{"url": tg.srv.URL + "/{{ .kind }}", "maxConcurrency": 2}))
	batch := []sdk.Message{
		msg("a", `{"kind":"good"}`), msg("b", `{"kind":"good"}`), msg("c", `{"kind":"bad"}`),
		msg("d", `{"kind":"good"}`), msg("e", `{"kind":"good"}`),
	}
	err := p.Write(t.Context(), batch)
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.Contains(t, be.Failed, 2)
	require.True(t, sdk.IsPermanent(be.Failed[2]))
	require.ErrorContains(t, be.Failed[2], "message c")
	require.ErrorContains(t, be.Failed[2], "422")
	require.Len(t, tg.requests(), 5)
}

func TestTemplateErrorFailsOnlyThatMessage(t *testing.T) {
	tg := newTarget(t, nil)
	p := newProducer(t, tg.cfg(map[string]any{"headers": map[string]string{"X-City": "{{ .address.city }}"}}))
	err := p.Write(t.Context(), []sdk.Message{
		msg("a", `{"address":{"city":"Oslo"}}`),
		msg("b", `{}`),
		msg("c", `{"address":{"city":"a\r\nX-Evil: 1"}}`),
	})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 2)
	require.True(t, sdk.IsPermanent(be.Failed[1]))
	require.ErrorContains(t, be.Failed[1], "message b: header X-City: render template")
	require.True(t, sdk.IsPermanent(be.Failed[2]))
	require.ErrorContains(t, be.Failed[2], "line break")
	reqs := tg.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "Oslo", reqs[0].Header.Get("X-City"))
}

func TestMaxConcurrency(t *testing.T) {
	var inFlight, peak atomic.Int32
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	})
	p := newProducer(t, tg.cfg(map[string]any{"maxConcurrency": 2}))
	var batch []sdk.Message
	for i := range 8 {
		batch = append(batch, msg(fmt.Sprint("m", i), `{}`))
	}
	require.NoError(t, p.Write(t.Context(), batch))
	require.Len(t, tg.requests(), 8)
	require.LessOrEqual(t, peak.Load(), int32(2))
}

func TestCancelledContextReturnsPromptly(t *testing.T) {
	release := make(chan struct{})
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	p := newProducer(t, tg.cfg(map[string]any{"maxConcurrency": 1, "timeout": "1m"}))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := p.Write(ctx, []sdk.Message{msg("a", `{}`), msg("b", `{}`), msg("c", `{}`)})
	require.Less(t, time.Since(start), sdktest.Prompt)
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 3)
	for _, e := range be.Failed {
		require.False(t, sdk.IsPermanent(e), "%v", e)
		require.ErrorIs(t, e, context.Canceled)
	}
}

func TestWriteAfterClose(t *testing.T) {
	tg := newTarget(t, nil)
	p := newProducer(t, tg.cfg(nil))
	require.NoError(t, p.Close(t.Context()))
	require.NoError(t, p.Close(t.Context()))
	require.ErrorContains(t, p.Write(t.Context(), []sdk.Message{msg("a", `{}`)}), "write after close")
	require.Empty(t, tg.requests())
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{" 0 ", 0},
		{"-3", 0},
		{"soon", 0},
		{"99999999999999", MaxRetryAfter},
		{fixedNow.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{fixedNow.Add(-time.Minute).Format(http.TimeFormat), 0},
		{fixedNow.Add(48 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, RetryAfter(tt.in, fixedNow), tt.in)
	}
}

func TestRequestErrorKeepsURLOut(t *testing.T) {
	inner := fmt.Errorf("dial tcp: connection refused")
	err := RequestError(context.Background(), &url.Error{Op: "Post", URL: "https://hooks.example.com/T/B/sekrit", Err: inner})
	require.NotContains(t, err.Error(), "sekrit")
	require.False(t, sdk.IsPermanent(err))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = RequestError(ctx, &url.Error{Op: "Post", URL: "x", Err: context.Canceled})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, sdk.IsPermanent(err))
}

func TestResponseErrorWithoutStatusText(t *testing.T) {
	err := ResponseError(&http.Response{StatusCode: 418, Body: io.NopCloser(strings.NewReader(""))}, fixedNow)
	require.EqualError(t, err, "status 418")
	require.True(t, sdk.IsPermanent(err))
	require.NoError(t, ResponseError(&http.Response{StatusCode: 204}, fixedNow))
}

func TestRedact(t *testing.T) {
	require.Equal(t, "https://example.com/a/b", redact("https://u:p@example.com/a/b?token=x#f"))
	require.Equal(t, "(unparsable url)", redact("http://exa mple.com"))
}

// TestWriteStreamSendsTheBodyAsItIsRead: a producer without body template,
// message templates or signing takes bodies as streams, with their length.
func TestWriteStreamSendsTheBodyAsItIsRead(t *testing.T) {
	tg := newTarget(t, nil)
	p := newProducer(t, tg.cfg(map[string]any{"headers": map[string]string{"X-Source": "vrsky"}}))
	m := sdk.Message{ID: "big-1", ContentType: "application/json"}
	require.True(t, p.CanStream(m))
	body := strings.Repeat("x", 300<<10)
	require.NoError(t, p.WriteStream(context.Background(), m, strings.NewReader(body), int64(len(body))))
	reqs := tg.requests()
	require.Len(t, reqs, 1)
	require.Equal(t, body, reqs[0].Body)
	require.Equal(t, "big-1", reqs[0].Header.Get("Idempotency-Key"))
	require.Equal(t, "vrsky", reqs[0].Header.Get("X-Source"))

	// A body that cannot be read fails the write, retryably.
	err := p.WriteStream(context.Background(), m, io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(errors.New("gone"))), 10)
	require.Error(t, err)
	require.False(t, sdk.IsPermanent(err))

	require.NoError(t, p.Close(context.Background()))
	require.Error(t, p.WriteStream(context.Background(), m, strings.NewReader(""), 0), "after close")
}

func TestWriteStreamIsRefusedWhenTheBodyIsNeededWhole(t *testing.T) {
	tg := newTarget(t, nil)
	t.Setenv("VRSKY_TEST_WEBHOOK_SECRET", webhookSecret)
	for name, fields := range map[string]map[string]any{
		"body template":   {"body": `{"id":"{{ .id }}"}`},
		"templated url":   {"url": tg.srv.URL + "/{{ .kind }}"},
		"signed requests": {"signature": map[string]any{"secret": map[string]string{"env": "VRSKY_TEST_WEBHOOK_SECRET"}}},
	} {
		p := newProducer(t, tg.cfg(fields))
		m := sdk.Message{ID: "m"}
		require.False(t, p.CanStream(m), name)
		err := p.WriteStream(context.Background(), m, strings.NewReader("{}"), 2)
		require.True(t, sdk.IsPermanent(err), name)
	}
	require.Empty(t, tg.requests())
}
