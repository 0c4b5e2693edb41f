package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

func githubPayload(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "connectors", "webhook", "testdata", "github", name+".json"))
	require.NoError(t, err)
	return string(b)
}

// githubHeaders are the headers GitHub sends with a delivery.
func githubHeaders(event, delivery, secret, body string) []string {
	return []string{
		"Content-Type", "application/json", "User-Agent", "GitHub-Hookshot/8b2c3d1",
		"X-GitHub-Event", event, "X-GitHub-Delivery", delivery, "X-GitHub-Hook-ID", "479120418",
		"X-GitHub-Hook-Installation-Target-Type", "repository", "X-GitHub-Hook-Installation-Target-ID", "701234567",
		"X-Hub-Signature", "sha1=ignored", "X-Hub-Signature-256", "sha256=" + hmacHex(secret, body),
	}
}

// TestWebhookTakesGitHubsDocumentedDeliveries: the ping GitHub sends when a
// webhook is added is answered 200 and not stored; push (also a branch
// deletion, whose head_commit is null) and pull_request are stored under
// their delivery ID; a redelivered push, after JetStream's duplicate window,
// is stored once.
func TestWebhookTakesGitHubsDocumentedDeliveries(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.hooks.Tenancy = &tenantSecrets{values: map[string]string{"acme/gh": "gh-secret"}}
	p := e.deployConfig(t, "acme", "gh", dataplane.WebhookConnector,
		`{"signature":{"scheme":"github","secret":{"secret":"gh"}},"events":["push","pull_request"]}`, 1, 0)
	open := e.deployConfig(t, "acme", "open", dataplane.WebhookConnector, `{}`, 1, 0)
	shortenDuplicateWindow(t, js, p, 200*time.Millisecond)

	tests := []struct {
		event, payload, delivery string
		want                     int
		stored                   uint64
	}{
		{"ping", "ping", "5c1d3a60-cf00-11f0-8a3e-0c1a2b3c4d5e", http.StatusOK, 0},
		{"push", "push", "6a2e4b70-cf00-11f0-9b4f-0c1a2b3c4d5e", http.StatusAccepted, 1},
		{"push", "push-branch-deleted", "7b3f5c80-cf00-11f0-8c50-0c1a2b3c4d5e", http.StatusAccepted, 2},
		{"pull_request", "pull_request", "8c406d90-cf00-11f0-9d61-0c1a2b3c4d5e", http.StatusAccepted, 3},
		{"issues", "ping", "9d517ea0-cf00-11f0-8e72-0c1a2b3c4d5e", http.StatusOK, 3},
	}
	for _, tt := range tests {
		body := githubPayload(t, tt.payload)
		resp, out := e.post(t, "/v1/hooks/acme/gh", strings.NewReader(body), githubHeaders(tt.event, tt.delivery, "gh-secret", body)...)
		require.Equal(t, tt.want, resp.StatusCode, tt.payload)
		if tt.want == http.StatusOK {
			require.Equal(t, true, out["ignored"], tt.payload)
			require.Equal(t, tt.event, out["event"])
		} else {
			require.Equal(t, tt.delivery, out["id"], "the delivery ID is the message ID")
		}
		require.Equal(t, tt.stored, e.streamMsgs(t, p), tt.payload)
	}

	// GitHub's "Redeliver": the same delivery ID, body and signature.
	time.Sleep(400 * time.Millisecond)
	body := githubPayload(t, "push")
	resp, out := e.post(t, "/v1/hooks/acme/gh", strings.NewReader(body), githubHeaders("push", tests[1].delivery, "gh-secret", body)...)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, tests[1].delivery, out["id"])
	require.EqualValues(t, 3, e.streamMsgs(t, p), "a replayed signed delivery is stored once")

	// Without events, ping is still not stored; other events are.
	ping := githubPayload(t, "ping")
	resp, _ = e.post(t, "/v1/hooks/acme/open", strings.NewReader(ping), githubHeaders("ping", "ae628fb0-cf00-11f0-8f83-0c1a2b3c4d5e", "x", ping)...)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, _ = e.post(t, "/v1/hooks/acme/open", strings.NewReader(ping), githubHeaders("issues", "bf73a0c0-cf00-11f0-8094-0c1a2b3c4d5e", "x", ping)...)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 1, e.streamMsgs(t, open))
}

// TestWebhookRequiresTheURLToken: an integration with a token refuses
// requests without it (401, nothing stored, the tenant's rate untouched).
func TestWebhookRequiresTheURLToken(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.hooks.Tenancy = &tenantSecrets{values: map[string]string{"acme/url": "6f1c0e7d9b2a4c58a3e1"}}
	e.hooks.TenantRate, e.hooks.TenantBurst = 0.001, 1
	p := e.deployConfig(t, "acme", "tok", dataplane.WebhookConnector, `{"token":{"secret":"url"}}`, 1, 0)

	for _, path := range []string{"/v1/hooks/acme/tok", "/v1/hooks/acme/tok?token=wrong", "/v1/hooks/acme/tok?token="} {
		resp, out := e.post(t, path, strings.NewReader("{}"))
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		require.Equal(t, "invalid or missing signature", out["detail"])
	}
	resp, _ := e.post(t, "/v1/hooks/acme/tok?token=6f1c0e7d9b2a4c58a3e1", strings.NewReader("{}"))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "refused requests did not spend the tenant's one token")
	require.EqualValues(t, 1, e.streamMsgs(t, p))
}
