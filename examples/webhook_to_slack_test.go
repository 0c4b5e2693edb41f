package examples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/examples"
	"github.com/vrsky/vrsky/internal/spec"
)

// TestWebhookToSlackTakesEveryDocumentedGitHubDelivery runs example 1's
// consumer config, transform and Slack producer on GitHub's documented
// deliveries: ping is answered and not stored; push (also a branch
// deletion, whose head_commit is null) and pull_request each post one Slack
// message, none fails (so none would be dead-lettered).
func TestWebhookToSlackTakesEveryDocumentedGitHubDelivery(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		posted = append(posted, p.Text)
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(slack.Close)

	raw, err := examples.FS.ReadFile("1-webhook-to-slack/integration.yaml")
	require.NoError(t, err)
	in, err := spec.ParseYAML(raw)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The tenant's secrets, and an egress policy opening the stand-in's
	// loopback address, as the platform gives them to the runner.
	secrets := map[string]string{"github-webhook-secret": "demo-secret", "slack-webhook-url": slack.URL + "/services/T0/B0/x"}
	env := sdk.Env{
		Tenant: "demo", Integration: in.Name,
		Secrets: func(_ context.Context, name string) (string, error) {
			v, ok := secrets[name]
			if !ok {
				return "", fmt.Errorf("no secret %s", name)
			}
			return v, nil
		},
		Egress: sdk.EgressPolicy{AllowHosts: []string{strings.TrimPrefix(slack.URL, "http://")}},
	}
	ingress, err := webhook.Build(ctx, env, in.Consumer.Config)
	require.NoError(t, err)
	catalog := connectors.Catalog()
	require.Len(t, in.Steps, 1)
	transform, ok := catalog.Lookup(in.Steps[0].Connector, sdk.KindConverter)
	require.True(t, ok)
	step, err := transform.Build(ctx, env, in.Steps[0].Config)
	require.NoError(t, err)
	slackConnector, ok := catalog.Lookup(in.Producers["slack"].Connector, sdk.KindProducer)
	require.True(t, ok)
	producer, err := slackConnector.Build(ctx, env, in.Producers["slack"].Config)
	require.NoError(t, err)

	for _, d := range []struct{ event, payload, want string }{
		{"ping", "ping", ""},
		{"push", "push", "[acme/shop] hubot pushed to refs/heads/main: Add order export https://github.com/acme/shop/compare/6113728f27ae...0d1a26e67d8f"},
		{"push", "push-branch-deleted", "[acme/shop] hubot pushed to refs/heads/feature/export: deleted refs/heads/feature/export https://github.com/acme/shop/compare/0d1a26e67d8f...000000000000"},
		{"pull_request", "pull_request", "[acme/shop] hubot opened pull request #42: Add order export https://github.com/acme/shop/pull/42"},
	} {
		body, err := os.ReadFile(filepath.Join("..", "connectors", "webhook", "testdata", "github", d.payload+".json"))
		require.NoError(t, err)
		h := http.Header{"X-Github-Event": {d.event}}
		if _, skip := ingress.Skip(h); skip {
			require.Empty(t, d.want, "%s is stored", d.payload)
			continue
		}
		require.NotEmpty(t, d.want, "%s is not stored", d.payload)
		msg := sdk.Message{ID: d.payload, Tenant: "demo", Integration: in.Name, ContentType: "application/json", Body: body}
		out, err := step.(sdk.Converter).Convert(ctx, msg)
		require.NoError(t, err, d.payload)
		require.NoError(t, producer.(sdk.Producer).Write(ctx, []sdk.Message{out}), d.payload)
		mu.Lock()
		require.Equal(t, d.want, posted[len(posted)-1], d.payload)
		mu.Unlock()
	}
	mu.Lock()
	require.Len(t, posted, 3)
	mu.Unlock()
}

// TestExamplesReadSettingsFromTenantSecrets: every example takes its
// secrets and URLs from tenant secrets, never from the operator's
// environment, which tenants cannot read.
func TestExamplesReadSettingsFromTenantSecrets(t *testing.T) {
	files, err := fs.Glob(examples.FS, "*/integration.yaml")
	require.NoError(t, err)
	require.Len(t, files, 4)
	for _, f := range files {
		raw, err := examples.FS.ReadFile(f)
		require.NoError(t, err)
		require.NotContains(t, string(raw), "env:", f)
		_, err = spec.ParseYAML(raw)
		require.NoError(t, err, f)
	}
	raw, err := examples.FS.ReadFile("4-order-routing/integration.yaml")
	require.NoError(t, err)
	require.Contains(t, string(raw), "{ secret: orders-database-url }")
	require.Contains(t, string(raw), "{ secret: slack-webhook-url }")
}
