package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
)

// recordSink keeps what it was handed, or fails with err.
type recordSink struct {
	got   []sdk.Delivery
	err   error
	calls int
}

func (s *recordSink) Publish(_ context.Context, d sdk.Delivery) (sdk.PubAck, error) {
	s.calls++
	if s.err != nil {
		return sdk.PubAck{}, s.err
	}
	s.got = append(s.got, d)
	return sdk.PubAck{}, nil
}

func ingressRequest(body string, h ...string) sdk.Request {
	header := http.Header{}
	for i := 0; i+1 < len(h); i += 2 {
		header.Set(h[i], h[i+1])
	}
	return sdk.Request{Header: header, URL: &url.URL{Path: "/"}, Body: []byte(body), Received: time.Now()}
}

func refusal(t *testing.T, err error) *sdk.Refusal {
	t.Helper()
	var r *sdk.Refusal
	require.ErrorAs(t, err, &r)
	return r
}

// TestReceiveStoresOneMessageNamedByTheSender: the Idempotency-Key, else
// the delivery ID, names the message and the delivery; without either the
// ID is random and the delivery unnamed; credentials are never kept.
func TestReceiveStoresOneMessageNamedByTheSender(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	tests := []struct {
		name    string
		headers []string
		key     string
	}{
		{"idempotency key", []string{"Idempotency-Key", "order-1", "X-GitHub-Delivery", "d-1"}, "order-1"},
		{"delivery id", []string{"X-GitHub-Delivery", "d-1"}, "d-1"},
		{"standard webhooks id", []string{"Webhook-Id", "msg_1"}, "msg_1"},
		{"delivery id with a space is not a key", []string{"X-GitHub-Delivery", "d 1"}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &recordSink{}
			h := append([]string{"Content-Type", "application/json", "X-GitHub-Event", "push", "Authorization", "Bearer s"}, tt.headers...)
			answer, err := in.Receive(t.Context(), ingressRequest(`{"a":1}`, h...), sink)
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, answer.Status)
			require.Equal(t, "application/json", answer.ContentType)
			var out webhook.Accepted
			require.NoError(t, json.Unmarshal(answer.Body, &out))
			require.Len(t, sink.got, 1)
			d := sink.got[0]
			require.Equal(t, tt.key, d.Key)
			require.Len(t, d.Messages, 1)
			m := d.Messages[0]
			require.Equal(t, out.ID, m.ID)
			if tt.key != "" {
				require.Equal(t, tt.key, m.ID)
			} else {
				require.Len(t, m.ID, 32, "a random ID")
			}
			require.Equal(t, `{"a":1}`, string(m.Body))
			require.Equal(t, "application/json", m.ContentType)
			require.Equal(t, "push", m.Headers["x-github-event"])
			require.NotContains(t, m.Headers, "authorization", "credentials are never kept")
		})
	}
}

// TestReceiveWithKeyMemoryWindowNamesOnlyTheMessages: with keyMemory
// window the key still names the messages (JetStream's duplicate window
// drops a repeat) but no longer the delivery, so the platform keeps no ID
// memory for it.
func TestReceiveWithKeyMemoryWindowNamesOnlyTheMessages(t *testing.T) {
	t.Parallel()
	for cfg, key := range map[string]string{`{}`: "order-1", `{"keyMemory":"remember"}`: "order-1", `{"keyMemory":"window"}`: ""} {
		sink := &recordSink{}
		_, err := build(t, cfg).Receive(t.Context(), ingressRequest(`{"a":1}`, "Idempotency-Key", "order-1"), sink)
		require.NoError(t, err)
		require.Equal(t, key, sink.got[0].Key, cfg)
		require.Equal(t, "order-1", sink.got[0].Messages[0].ID, cfg)
	}
	sink := &recordSink{}
	_, err := build(t, `{"keyMemory":"window"}`).Receive(t.Context(), ingressRequest("{}\n{}\n", "Content-Type", "application/x-ndjson", "X-GitHub-Delivery", "d-1"), sink)
	require.NoError(t, err)
	require.Empty(t, sink.got[0].Key)
	require.Equal(t, "d-1-1", sink.got[0].Messages[1].ID, "each record keeps its deterministic ID")
}

func TestReceiveSplitsAnNDJSONBatch(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	sink := &recordSink{}
	answer, err := in.Receive(t.Context(), ingressRequest("{\"n\":0}\n\n {\"n\":1} \r\n", "Content-Type", "application/x-ndjson; charset=utf-8", "Idempotency-Key", "b"), sink)
	require.NoError(t, err)
	require.Equal(t, "{\"id\":\"b\",\"count\":2}\n", string(answer.Body))
	require.Equal(t, "b", sink.got[0].Key)
	require.Equal(t, "b-0", sink.got[0].Messages[0].ID)
	require.Equal(t, `{"n":1}`, string(sink.got[0].Messages[1].Body))

	for name, body := range map[string]string{"empty": "", "blank lines": "\n \n", "too many": strings.Repeat("{}\n", webhook.MaxBatchRecords+1)} {
		sink := &recordSink{}
		_, err := in.Receive(t.Context(), ingressRequest(body, "Content-Type", "application/x-ndjson"), sink)
		require.Equal(t, sdk.RefuseMalformed, refusal(t, err).Kind, name)
		require.Zero(t, sink.calls, "a refused batch stores nothing")
	}
}

func TestReceiveNeverAnswersAFailedPublish(t *testing.T) {
	t.Parallel()
	down := errors.New("store down")
	_, err := build(t, `{}`).Receive(t.Context(), ingressRequest(`{}`), &recordSink{err: down})
	require.ErrorIs(t, err, down)
}

func TestReceiveIgnoresEventsNotStored(t *testing.T) {
	t.Parallel()
	sink := &recordSink{}
	answer, err := build(t, `{"events":["push"]}`).Receive(t.Context(), ingressRequest(`{}`, "X-GitHub-Event", "issues"), sink)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, answer.Status)
	require.Equal(t, "{\"ignored\":true,\"event\":\"issues\"}\n", string(answer.Body))
	require.Zero(t, sink.calls)
}

// TestReceiveRefusesWhatDoesNotVerify: a bad signature, a missing token and
// a malformed Idempotency-Key are refused and store nothing; the refusal
// never names the secret.
func TestReceiveRefusesWhatDoesNotVerify(t *testing.T) {
	t.Parallel()
	gh := build(t, `{"signature":{"scheme":"github","secret":{"secret":"gh"}}}`)
	sink := &recordSink{}
	_, err := gh.Receive(t.Context(), ingressRequest(`{}`, "X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64)), sink)
	r := refusal(t, err)
	require.Equal(t, sdk.RefuseUnauthenticated, r.Kind)
	require.Equal(t, "invalid or missing signature", r.Detail)
	require.NotContains(t, r.Detail, "gh-secret")
	require.Zero(t, sink.calls)

	tok := build(t, `{"token":{"secret":"url-token"}}`)
	head := ingressRequest("")
	require.Equal(t, sdk.RefuseUnauthenticated, refusal(t, tok.Admit(head)).Kind)
	head.URL = &url.URL{Path: "/", RawQuery: "token=0123456789abcdef-token"}
	require.NoError(t, tok.Admit(head))

	for _, key := range []string{strings.Repeat("k", webhook.MaxIdempotencyKey+1), "a b", "é"} {
		require.Equal(t, sdk.RefuseMalformed, refusal(t, tok.Admit(ingressRequest("", "Idempotency-Key", key))).Kind, key)
	}
	require.Equal(t, int64(0), build(t, `{}`).BodyLimit())
	require.Equal(t, int64(100), build(t, `{"maxBytes":100}`).BodyLimit())
}

func TestForwardedHeadersKeepXAndUserAgentOnly(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"X-Github-Event": {"push"}, "User-Agent": {"curl"}, "x-lower": {"kept"},
		"Authorization": {"Bearer secret"}, "Content-Type": {"application/json"}, "X-Empty": {},
		"Cookie": {"session=1"}, "X-Api-Key": {"k"}, "X-API-KEY2": {"k"}, "X-Hub-Signature": {"sha1=00"}, "X-Hub-Signature-256": {"sha256=00"},
		"X-Slack-Signature": {"v0=00"}, "X-Auth-Token": {"t"}, "X-Webhook-Token": {"t"}, "X-Amz-Security-Token": {"t"},
		"X-Csrf-Token": {"t"}, "X-Session-Id": {"s"}, "X-" + strings.Repeat("a", 200): {"long name"},
		"X-Long": {strings.Repeat("v", webhook.MaxHeaderValue+10)}, "X": {"too short to be X-"},
	}
	got := webhook.ForwardedHeaders(h)
	require.Equal(t, map[string]string{
		"x-github-event": "push", "user-agent": "curl", "x-lower": "kept",
		"x-long": strings.Repeat("v", webhook.MaxHeaderValue),
	}, got)
	require.Nil(t, webhook.ForwardedHeaders(http.Header{"Content-Type": {"text/plain"}}), "none kept: no map")

	many := http.Header{}
	for i := range webhook.MaxForwardedHeaders + 5 {
		many.Set("X-H"+strings.Repeat("i", i+1), "v")
	}
	require.Len(t, webhook.ForwardedHeaders(many), webhook.MaxForwardedHeaders)
}
