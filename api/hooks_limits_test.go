package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// sendSlowly opens a connection to the env's server, sends the request line
// and headers declaring contentLength, then sent bytes of the body, and
// keeps the connection open without sending more. It returns the
// connection; the caller reads the answer.
func (e *hookEnv) sendSlowly(t *testing.T, path string, contentLength, sent int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, contentLength)
	require.NoError(t, err)
	chunk := make([]byte, 64<<10)
	for sent > 0 {
		n := min(sent, len(chunk))
		if _, err := conn.Write(chunk[:n]); err != nil {
			break // the server may answer and close before all was sent
		}
		sent -= n
	}
	return conn
}

func readAnswer(conn net.Conn, within time.Duration) (*http.Response, error) {
	_ = conn.SetReadDeadline(time.Now().Add(within))
	return http.ReadResponse(bufio.NewReader(conn), nil)
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestWebhookCutsOffABodyDeclaredHugeAndSentSlowly: a body declared at
// 60 MiB of which 10 bytes arrive is answered 408 once the body timeout
// passed; the ingress never allocated what was declared, and stored
// nothing.
func TestWebhookCutsOffABodyDeclaredHugeAndSentSlowly(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.hooks.BodyTimeout = 500 * time.Millisecond
	p := e.deployConfig(t, "acme", "big", dataplane.WebhookConnector, `{"maxBytes":67108864}`, 1, 0)

	runtime.GC()
	before := heapInUse()
	start := time.Now()
	conns := make([]net.Conn, 8)
	for i := range conns {
		conns[i] = e.sendSlowly(t, "/v1/hooks/acme/big", 60<<20, 10)
	}
	grown := heapInUse() - min(before, heapInUse())
	for _, conn := range conns {
		resp, err := readAnswer(conn, 5*time.Second)
		require.NoError(t, err, "the server answers instead of waiting for the rest")
		require.Equal(t, http.StatusRequestTimeout, resp.StatusCode)
		resp.Body.Close()
	}
	require.Less(t, time.Since(start), 4*time.Second)
	t.Logf("heap in use grew by %d KiB under 8 bodies declared at 60 MiB", grown>>10)
	require.Less(t, grown, uint64(32<<20), "8 × 60 MiB declared: nothing near it allocated")
	require.Zero(t, e.streamMsgs(t, p))
	require.Zero(t, e.hooks.inFlight.Load(), "every byte held was given back")
}

// TestWebhookBoundsTheBodyBytesHeldAtOnce: 24 requests declaring 48 MiB
// each (1.1 GiB in all) against an 8 MiB budget: those past it answer 503
// with Retry-After while the others wait for their bodies, and the heap
// grows by about the budget, not by what was declared.
func TestWebhookBoundsTheBodyBytesHeldAtOnce(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.hooks.MaxInFlightBytes = 8 << 20
	e.hooks.BodyTimeout = 3 * time.Second
	p := e.deployConfig(t, "acme", "big", dataplane.WebhookConnector, `{"maxBytes":67108864}`, 1, 0)

	runtime.GC()
	before := heapInUse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if h := heapInUse(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	codes := make([]int, 24)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			conn := e.sendSlowly(t, "/v1/hooks/acme/big", 48<<20, 1<<20)
			resp, err := readAnswer(conn, 10*time.Second)
			if err != nil {
				codes[i] = -1
				return
			}
			codes[i] = resp.StatusCode
			if resp.StatusCode == http.StatusServiceUnavailable {
				secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				if err != nil || secs < 1 {
					codes[i] = -2
				}
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()

	busy, late := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusServiceUnavailable:
			busy++
		case http.StatusRequestTimeout:
			late++
		default:
			t.Fatalf("unexpected answer %d in %v", c, codes)
		}
	}
	require.Positive(t, busy, "requests past the budget get 503 with Retry-After: %v", codes)
	require.Positive(t, late, "the others were reading, within the budget: %v", codes)
	grown := peak.Load() - min(before, peak.Load())
	t.Logf("heap in use grew by %d MiB at most (budget 8 MiB, declared %d MiB)", grown>>20, 24*48)
	require.Less(t, grown, uint64(64<<20))
	require.Zero(t, e.streamMsgs(t, p))
	require.Zero(t, e.hooks.inFlight.Load(), "every byte held was given back")

	resp, _ := e.post(t, "/v1/hooks/acme/big", strings.NewReader(strings.Repeat("x", 1<<20)))
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "once the attack is over, bodies are taken again")
}

// TestReadBodyGrowsAsBytesArrive: the buffer follows the bytes, not the
// declared length, and bodies of every size come through whole.
func TestReadBodyGrowsAsBytesArrive(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, firstBodyChunk - 1, firstBodyChunk, firstBodyChunk + 1, 3*firstBodyChunk + 7, 1 << 20} {
		for _, declared := range []bool{true, false} {
			h := &Webhooks{}
			body := strings.Repeat("b", size)
			r, _ := http.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(body)))
			r.ContentLength = -1
			if declared {
				r.ContentLength = int64(size)
			}
			got, held, err := h.readBody(r, 1<<20)
			require.NoError(t, err, size)
			require.Equal(t, body, string(got), size)
			require.LessOrEqual(t, held, int64(2*size+firstBodyChunk), "held about what arrived")
			require.Equal(t, held, h.inFlight.Load())
		}
	}
	h := &Webhooks{}
	r, _ := http.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader("0123456789a")))
	r.ContentLength = -1
	_, _, err := h.readBody(r, 10)
	require.ErrorIs(t, err, errBodyTooLarge)
}

// dialFrom is a client whose requests come from the loopback address ip.
func dialFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestWebhookJunkFromOneAddressDoesNotSpendTheTenantsRate: bad signatures
// and unknown names from one address get 401 / 404 until its junk bucket
// is empty, then 429 for everything; the signed sender on another address
// still has the tenant's whole rate.
func TestWebhookJunkFromOneAddressDoesNotSpendTheTenantsRate(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.hooks.Tenancy = &tenantSecrets{values: map[string]string{"acme/gh": "gh-secret"}}
	e.hooks.TenantRate, e.hooks.TenantBurst = 0.001, 2
	e.hooks.JunkRate, e.hooks.JunkBurst = 0.001, 3
	p := e.deployConfig(t, "acme", "gh", dataplane.WebhookConnector, `{"signature":{"scheme":"github","secret":{"secret":"gh"}}}`, 1, 0)
	body := `{"zen":"Keep it logically awesome."}`

	send := func(c *http.Client, path, sig string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-Hub-Signature-256", sig)
		req.Header.Set("X-GitHub-Event", "issues")
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	attacker, sender := dialFrom("127.0.0.1"), dialFrom("127.0.0.2")
	var codes []int
	for _, path := range []string{"/v1/hooks/acme/gh", "/v1/hooks/acme/gh", "/v1/hooks/acme/nope", "/v1/hooks/acme/gh", "/v1/hooks/other/x"} {
		resp := send(attacker, path, "sha256="+hmacHex("guess", body))
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
		}
	}
	require.Equal(t, []int{401, 401, 404, 429, 429}, codes)
	resp := send(attacker, "/v1/hooks/acme/gh", "sha256="+hmacHex("gh-secret", body))
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the junk address is refused even when signing")

	for range 2 {
		resp := send(sender, "/v1/hooks/acme/gh", "sha256="+hmacHex("gh-secret", body))
		require.Equal(t, http.StatusAccepted, resp.StatusCode, "the tenant's rate is whole")
	}
	resp = send(sender, "/v1/hooks/acme/gh", "sha256="+hmacHex("gh-secret", body))
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "and then spent by its own requests")
	require.EqualValues(t, 2, e.streamMsgs(t, p))
}

// shortenDuplicateWindow makes JetStream forget message IDs after d, as it
// does after 2 minutes in production.
func shortenDuplicateWindow(t *testing.T, js jetstream.JetStream, p dataplane.Pipeline, d time.Duration) {
	t.Helper()
	s, err := js.Stream(context.Background(), p.Stream())
	require.NoError(t, err)
	cfg := s.CachedInfo().Config
	cfg.Duplicates = d
	_, err = js.UpdateStream(context.Background(), cfg)
	require.NoError(t, err)
}

// TestWebhookIdempotencyKeyOutlivesJetStreamsWindow: once JetStream forgot
// the ID, the same key and body is still one message, and the same key with
// another body is a 409 that stores nothing.
func TestWebhookIdempotencyKeyOutlivesJetStreamsWindow(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 0)
	shortenDuplicateWindow(t, js, p, 200*time.Millisecond)

	resp, out := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"order":1}`), "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "order-1", out["id"])
	time.Sleep(400 * time.Millisecond)

	resp, out = e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"order":1}`), "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, "order-1", out["id"])
	require.EqualValues(t, 1, e.streamMsgs(t, p), "the same key and body after the window: still one message")

	resp, out = e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"order":2}`), "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
	require.Contains(t, out["detail"], "different body")
	require.EqualValues(t, 1, e.streamMsgs(t, p))

	s, _ := js.Stream(context.Background(), p.Stream())
	raw, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, `{"order":1}`, string(raw.Data))
}

// TestWebhookKeyMemoryWindowLeavesRepeatsToJetStream: with keyMemory
// window the ingress keeps no ID memory: a repeat within JetStream's
// duplicate window stores nothing whatever its body and answers as the
// first time, and once the window has passed the same key is stored again.
func TestWebhookKeyMemoryWindowLeavesRepeatsToJetStream(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deployConfig(t, "acme", "orders", dataplane.WebhookConnector, `{"keyMemory":"window"}`, 1, 0)

	for _, body := range []string{`{"order":1}`, `{"order":1}`, `{"order":2}`} {
		resp, out := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(body), "Idempotency-Key", "order-1")
		require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
		require.Equal(t, "order-1", out["id"])
	}
	require.EqualValues(t, 1, e.streamMsgs(t, p), "repeats within the window: one message")
	s, _ := js.Stream(context.Background(), p.Stream())
	raw, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	require.Equal(t, `{"order":1}`, string(raw.Data), "the first body is the stored one")
	_, err = s.GetLastMsgForSubject(context.Background(), p.KeySubject("order-1"))
	require.ErrorIs(t, err, jetstream.ErrMsgNotFound, "nothing records the key")

	shortenDuplicateWindow(t, js, p, 200*time.Millisecond)
	time.Sleep(400 * time.Millisecond)
	resp, _ := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{"order":1}`), "Idempotency-Key", "order-1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 2, e.streamMsgs(t, p), "after the window the same key is stored again")
}

// TestWebhookRepeatedKeyNeverReplacesAStoredLargeBody: a claim-checked body
// keeps its object when the same key comes with another body, whether the
// ingress refuses it (409) or only JetStream's duplicate check sees it.
func TestWebhookRepeatedKeyNeverReplacesAStoredLargeBody(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	e.claims.Threshold = 16
	p := e.deploy(t, "acme", "files", dataplane.WebhookConnector, 0)
	first := strings.Repeat("A", 1000)

	resp, _ := e.post(t, "/v1/hooks/acme/files", strings.NewReader(first), "Idempotency-Key", "upload-1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	resp, _ = e.post(t, "/v1/hooks/acme/files", strings.NewReader(strings.Repeat("B", 1000)), "Idempotency-Key", "upload-1")
	require.Equal(t, http.StatusConflict, resp.StatusCode)
	e.hooks.Idempotency = nil // JetStream's duplicate window alone
	resp, _ = e.post(t, "/v1/hooks/acme/files", strings.NewReader(strings.Repeat("C", 1000)), "Idempotency-Key", "upload-1")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	require.EqualValues(t, 1, e.streamMsgs(t, p))
	s, _ := js.Stream(context.Background(), p.Stream())
	raw, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	ref := raw.Header.Get("Vrsky-Body-Ref")
	require.NotEmpty(t, ref)
	r, err := e.claims.Store.Get(context.Background(), ref)
	require.NoError(t, err)
	defer r.Close()
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, first, string(got), "the stored message's body is the first one")
}

// TestWebhookForgetsDeletedIntegrationsConfigs: a deleted integration's
// built config (with its resolved secret) is dropped.
func TestWebhookForgetsDeletedIntegrationsConfigs(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "gone", dataplane.WebhookConnector, 0)
	kept := e.deploy(t, "acme", "kept", dataplane.WebhookConnector, 0)
	for _, q := range []dataplane.Pipeline{p, kept} {
		resp, _ := e.post(t, "/v1/hooks/"+q.Tenant+"/"+q.Integration, strings.NewReader("x"))
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	require.NoError(t, e.state.DeleteDesired(context.Background(), p))
	require.Eventually(t, func() bool { _, ok := e.hooks.Pipelines.Lookup(p); return !ok }, 5*time.Second, 10*time.Millisecond)

	e.hooks.forget(time.Now().Add(2 * sweepEvery))
	_, ok := e.hooks.configs.Load(p.Key())
	require.False(t, ok, "the deleted integration's config is forgotten")
	_, ok = e.hooks.configs.Load(kept.Key())
	require.True(t, ok)
}

// TestWebhookStripsCredentialHeaders: what a sender proves itself with is
// never stored with the message (the DLQ API shows stored headers).
func TestWebhookStripsCredentialHeaders(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deploy(t, "acme", "orders", dataplane.WebhookConnector, 0)
	resp, _ := e.post(t, "/v1/hooks/acme/orders", strings.NewReader(`{}`), "X-GitHub-Event", "push",
		"Authorization", "Bearer s1", "Cookie", "sid=s2", "X-Api-Key", "s3", "X-Hub-Signature-256", "sha256=s4",
		"X-Slack-Signature", "v0=s5", "X-Auth-Token", "s6", "X-Webhook-Token", "s7")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	s, _ := js.Stream(context.Background(), p.Stream())
	raw, err := s.GetMsg(context.Background(), 1)
	require.NoError(t, err)
	var stored map[string]string
	require.NoError(t, json.Unmarshal([]byte(raw.Header.Get("Vrsky-Headers")), &stored))
	require.Equal(t, "push", stored["x-github-event"])
	for _, v := range stored {
		require.NotRegexp(t, `s[1-7]$`, v, "no credential is stored: %v", stored)
	}
}

// A tenant whose quota gives it a rate of its own is held to it, record by
// record, while another tenant keeps the platform's rate.
func TestWebhookHoldsATenantToItsOwnRate(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rates := &dataplane.IngressQuotas{JS: js}
	require.NoError(t, rates.Put(ctx, "flood", dataplane.IngressQuota{MessagesPerSecond: 2}))
	require.NoError(t, rates.Follow(ctx))
	e.hooks.TenantRate, e.hooks.TenantBurst, e.hooks.Rates = 1000, 2000, rates
	flood := e.deploy(t, "flood", "in", dataplane.WebhookConnector, 0)
	quiet := e.deploy(t, "quiet", "in", dataplane.WebhookConnector, 0)

	post := func(path, contentType, body string) *http.Response {
		resp, err := http.Post(e.srv.URL+path, contentType, strings.NewReader(body))
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	// A batch of 5 records is 5 messages: over a burst of 4, refused whole.
	resp := post("/v1/hooks/flood/in", "application/x-ndjson", "{}\n{}\n{}\n{}\n{}\n")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Zero(t, e.streamMsgs(t, flood), "nothing of a refused batch is stored")
	var codes []int
	for range 5 {
		codes = append(codes, post("/v1/hooks/flood/in", "application/json", `{}`).StatusCode)
	}
	require.Equal(t, []int{202, 202, 202, 429, 429}, codes, "its burst (4, one spent by the refused batch) and no more")
	for range 50 {
		require.Equal(t, http.StatusAccepted, post("/v1/hooks/quiet/in", "application/json", `{}`).StatusCode)
	}
	require.EqualValues(t, 50, e.streamMsgs(t, quiet))
}

// Behind a gateway every sender has the gateway's address: with the gateway
// trusted, the junk limit applies to the sender X-Forwarded-For names; from
// anyone else, X-Forwarded-For is a forgery and is ignored.
func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	trusted, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,")
	require.NoError(t, err)
	req := func(peer string, xff ...string) *http.Request {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.RemoteAddr = peer
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		return r
	}
	for _, tt := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"no proxy", req("203.0.113.5:4000"), "203.0.113.5"},
		{"forged by a sender", req("203.0.113.5:4000", "198.51.100.1"), "203.0.113.5"},
		{"through the gateway", req("10.1.2.3:4000", "198.51.100.1"), "198.51.100.1"},
		{"a sender's forgery before the gateway's hop", req("10.1.2.3:4000", "1.1.1.1, 198.51.100.1"), "198.51.100.1"},
		{"two trusted hops", req("192.0.2.7:4000", "198.51.100.1, 10.9.9.9"), "198.51.100.1"},
		{"several headers", req("10.1.2.3:4000", "1.1.1.1", "198.51.100.1"), "198.51.100.1"},
		{"garbage hop", req("10.1.2.3:4000", "198.51.100.1, not-an-ip"), "10.1.2.3"},
		{"only trusted hops", req("10.1.2.3:4000", "10.0.0.1"), "10.1.2.3"},
		{"mapped IPv4", req("[::ffff:10.1.2.3]:4000", "::ffff:198.51.100.1"), "198.51.100.1"},
		{"no port", req("10.1.2.3", "198.51.100.1"), "198.51.100.1"},
	} {
		t.Run(tt.name, func(t *testing.T) { require.Equal(t, tt.want, clientAddr(tt.r, trusted)) })
	}
	require.Equal(t, "10.1.2.3", clientAddr(req("10.1.2.3:1", "198.51.100.1"), nil), "nothing trusted: the peer")
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/8/1"} {
		_, err := ParseTrustedProxies(bad)
		require.ErrorContains(t, err, "not an address or a CIDR prefix", bad)
	}
}
