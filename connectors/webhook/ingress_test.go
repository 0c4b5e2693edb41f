package webhook_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/webhook"
)

// request is the head of a request to target with headers h.
func request(target string, h http.Header) (http.Header, *url.URL) {
	r := httptest.NewRequest(http.MethodPost, target, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	return r.Header, r.URL
}

func build(t *testing.T, cfg string) *webhook.Ingress {
	t.Helper()
	env := secrets(map[string]string{"gh": "gh-secret", "url-token": "0123456789abcdef-token", "short": "abc"})
	in, err := webhook.Build(t.Context(), env, json.RawMessage(cfg))
	require.NoError(t, err)
	return in
}

// TestIngressSkipsEventsNotStored: GitHub's ping is never stored by
// default; with events set only the listed types are; with ignore set, the
// listed types are not.
func TestIngressSkipsEventsNotStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cfg string
		headers   http.Header
		skip      bool
	}{
		{"default: ping skipped", `{}`, http.Header{"X-Github-Event": {"ping"}}, true},
		{"default: push stored", `{}`, http.Header{"X-Github-Event": {"push"}}, false},
		{"default: no event header stored", `{}`, http.Header{}, false},
		{"events: listed", `{"events":["push","pull_request"]}`, http.Header{"X-Github-Event": {"pull_request"}}, false},
		{"events: ping not listed", `{"events":["push","pull_request"]}`, http.Header{"X-Github-Event": {"ping"}}, true},
		{"events: issues not listed", `{"events":["push"]}`, http.Header{"X-Github-Event": {"issues"}}, true},
		{"events: no header", `{"events":["push"]}`, http.Header{}, true},
		{"events: ping listed", `{"events":["ping"]}`, http.Header{"X-Github-Event": {"ping"}}, false},
		{"ignore replaces the default", `{"ignore":["star"]}`, http.Header{"X-Github-Event": {"ping"}}, false},
		{"ignore", `{"ignore":["star"]}`, http.Header{"X-Github-Event": {"star"}}, true},
		{"other event header", `{"eventHeader":"X-Event-Key","events":["repo:push"]}`, http.Header{"X-Event-Key": {"repo:push"}, "X-Github-Event": {"ping"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, skip := build(t, tt.cfg).Skip(tt.headers)
			require.Equal(t, tt.skip, skip)
		})
	}
}

func TestIngressChecksTheURLToken(t *testing.T) {
	t.Parallel()
	open := build(t, `{}`)
	require.False(t, open.Authenticated())
	require.NoError(t, open.CheckToken(request("/", nil)))

	in := build(t, `{"token":{"secret":"url-token"}}`)
	require.True(t, in.Authenticated())
	require.NoError(t, in.CheckToken(request("/?token=0123456789abcdef-token", nil)))
	require.NoError(t, in.CheckToken(request("/", http.Header{"X-Webhook-Token": {"0123456789abcdef-token"}})))
	for name, target := range map[string]string{"none": "/", "wrong": "/?token=0123456789abcdef-tokeN", "empty": "/?token="} {
		err := in.CheckToken(request(target, nil))
		require.ErrorIs(t, err, webhook.ErrToken, name)
		require.NotContains(t, err.Error(), "0123456789abcdef", name)
	}
	require.True(t, build(t, `{"signature":{"scheme":"github","secret":{"secret":"gh"}}}`).Authenticated())

	_, err := webhook.Build(t.Context(), secrets(map[string]string{"short": "abc"}), json.RawMessage(`{"token":{"secret":"short"}}`))
	require.ErrorContains(t, err, "shorter than 16")
	require.NotContains(t, err.Error(), "abc")
}

func TestIngressDeliveryIDIsTheSendersOwn(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	require.Equal(t, "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		in.DeliveryID(http.Header{"X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"}}, nil))
	require.Equal(t, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", in.DeliveryID(http.Header{"Webhook-Id": {"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}}, nil))
	require.Empty(t, in.DeliveryID(http.Header{}, []byte(`{"event_id":"Ev1"}`)), "event_id is Slack's only for Slack-signed integrations")

	slack := build(t, `{"signature":{"scheme":"slack","secret":{"secret":"gh"}}}`)
	require.Equal(t, "slack-Ev08MFMKH6", slack.DeliveryID(http.Header{}, []byte(`{"type":"event_callback","event_id":"Ev08MFMKH6","event":{"type":"app_mention"}}`)))
	require.Empty(t, slack.DeliveryID(http.Header{}, []byte(`token=x&command=/weather`)), "slash commands have no delivery ID")
}
