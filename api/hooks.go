package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/hotpath"
	"github.com/vrsky/vrsky/internal/logging"
)

// Webhook ingress defaults.
const (
	// DefaultWebhookMaxBytes is the body limit unless the integration sets one.
	DefaultWebhookMaxBytes = 10 << 20
	// MaxIdempotencyKey bounds the Idempotency-Key header.
	MaxIdempotencyKey = 200
	// MaxBatchRecords bounds the records of one NDJSON request.
	MaxBatchRecords     = 1000
	maxForwardedHeaders = 32
	maxHeaderValue      = 1024
	publishTimeout      = 10 * time.Second
	// rebuildAfter is how long a config that failed to build is answered
	// from the cache before it is built again (a tenant secret may have
	// been added meanwhile).
	rebuildAfter       = 10 * time.Second
	configBuildTimeout = 5 * time.Second

	// DefaultWebhookTenantRate and DefaultWebhookTenantBurst bound each
	// tenant's webhook requests in the production api role until tenants
	// have quotas of their own.
	DefaultWebhookTenantRate  = 2000
	DefaultWebhookTenantBurst = 4000
	// DefaultMaxInFlightBytes bounds the body bytes all webhook requests
	// together hold in memory at once; past it requests answer 503.
	DefaultMaxInFlightBytes = 256 << 20
	// DefaultBodyTimeout is how long a request may take to send its body.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultJunkRate and DefaultJunkBurst bound, per client address, the
	// requests refused as unknown (404) or unauthenticated (401).
	DefaultJunkRate  = 5
	DefaultJunkBurst = 20
	// firstBodyChunk is the first buffer of a body of unknown or large
	// declared length; it doubles as bytes arrive.
	firstBodyChunk = 32 << 10
	// busyRetryAfter is the Retry-After of a 503 over the byte budget.
	busyRetryAfter = time.Second
)

// TenantRates gives a tenant's own ingress rate, when it has one.
type TenantRates interface {
	Rate(tenant string) (perSecond float64, ok bool)
}

// Pipelines finds the desired state of a pipeline.
type Pipelines interface {
	Lookup(p hotpath.Pipeline) (hotpath.Desired, bool)
}

// Publisher stores messages in a pipeline; it returns only once they are
// durable.
type Publisher interface {
	Publish(ctx context.Context, p hotpath.Pipeline, msgs []sdk.Message) error
}

// Webhooks is the webhook ingress: POST /v1/hooks/{tenantId}/{integrationId}.
type Webhooks struct {
	Pipelines Pipelines
	Publisher Publisher
	// TenantRate and TenantBurst bound each tenant's webhook requests per
	// second; zero means unlimited. Requests refused as unauthenticated
	// give their token back.
	TenantRate  float64
	TenantBurst int
	// Rates gives the tenants whose quota sets a rate of their own
	// (messages per second, bursts of twice that); the others get
	// TenantRate. nil: every tenant gets TenantRate.
	Rates TenantRates
	// JunkRate and JunkBurst bound, per client address, the requests
	// refused as unknown (404) or unauthenticated (401); an address past
	// them gets 429 for everything until its bucket refills, before any
	// tenant's rate is touched. Zero means DefaultJunkRate and
	// DefaultJunkBurst; a negative rate means unlimited.
	JunkRate  float64
	JunkBurst int
	// TrustedProxies are the addresses of the proxies in front of the
	// ingress (a gateway, a load balancer). A request from one of them is
	// taken to come from the nearest address in its X-Forwarded-For that
	// is not a trusted proxy, so that the junk limit applies to senders,
	// not to the gateway. From any other address X-Forwarded-For is
	// ignored: it is the sender's to forge.
	TrustedProxies []netip.Prefix
	// MaxInFlightBytes bounds the body bytes held by all requests at once
	// (0: DefaultMaxInFlightBytes); a request that would pass it answers
	// 503 with Retry-After.
	MaxInFlightBytes int64
	// BodyTimeout is how long a request may take to send its body (0:
	// DefaultBodyTimeout); a slower one answers 408.
	BodyTimeout time.Duration
	// Idempotency remembers each stored message ID with its body's digest
	// beyond JetStream's 2-minute duplicate window; nil remembers nothing
	// more than that window.
	Idempotency *hotpath.Idempotency
	// Tenancy completes the webhook connector's Env with its tenant's
	// secrets and allowed environment variables; nil resolves none.
	Tenancy sdk.Tenancy
	// Logger receives configs that fail to build; nil discards them.
	Logger *slog.Logger
	// Metrics counts each tenant's messages by outcome
	// (vrsky_webhook_messages_total); RegisterWebhooks sets it to the
	// server's when nil. Requests to unknown integrations are not counted
	// per tenant (their names are the sender's), nor ignored events.
	Metrics *HTTPMetrics

	limitsOnce sync.Once
	limits     *limiters // per tenant, from TenantRate and TenantBurst
	junk       *limiters // per client address, from JunkRate and JunkBurst
	inFlight   atomic.Int64
	configs    sync.Map // pipeline key → *hookConfig
	nextForget atomic.Int64
}

// hookConfig is an integration's http-webhook config, built once per
// desired-state version so its secret is resolved once, not per request.
type hookConfig struct {
	p       hotpath.Pipeline
	version int
	raw     json.RawMessage
	ingress *webhook.Ingress
	err     error
	builtAt time.Time
}

// HookAccepted is the 202 answer.
type HookAccepted struct {
	ID string `json:"id" doc:"The message ID: the Idempotency-Key when given. For an NDJSON batch, record i (from 0) has the ID <id>-<i>."`
	// Count is the number of messages stored from an NDJSON batch.
	Count int `json:"count,omitempty" doc:"For an NDJSON batch (Content-Type application/x-ndjson): how many records were stored, one message each."`
}

// ndjsonType is the content type of a batch: one message per line.
const ndjsonType = "application/x-ndjson"

// RegisterWebhooks adds the webhook ingress. It is a plain net/http handler
// (bodies are streamed against a per-integration limit) documented in the
// OpenAPI document like every other operation.
func (s *Server) RegisterWebhooks(h *Webhooks) {
	if h.Metrics == nil {
		h.Metrics = s.metrics
	}
	if h.Logger != nil {
		h.Logger = logging.WithContextAttrs(h.Logger)
	}
	s.mux.Handle("POST /v1/hooks/{tenantId}/{integrationId}", h)
	registry := s.api.OpenAPI().Components.Schemas
	s.api.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "post-webhook",
		Method:      http.MethodPost,
		Path:        "/v1/hooks/{tenantId}/{integrationId}",
		Summary:     "Send a message to an integration",
		Description: "Stores the body as one message of the integration and answers 202 with its ID once it is durable. " +
			"The message ID is the Idempotency-Key header, else the sender's delivery ID (X-GitHub-Delivery, Standard Webhooks' webhook-id, " +
			"a Slack event's event_id), else a random one: a retried or replayed delivery stores one message. " +
			"IDs are remembered with their body's digest for 24 hours: the same ID with another body answers 409 and stores nothing. " +
			"With Content-Type application/x-ndjson each non-empty line is one message (at most 1,000), all stored before the 202; " +
			"record i gets the ID <id>-<i>, so a repeated batch with the same key stores nothing twice. " +
			"Events the integration does not store (GitHub's ping by default; see the http-webhook config's events and ignore) answer 200 {\"ignored\": true}. " +
			"401 when the integration requires a signature (GitHub, Slack, Standard Webhooks or HMAC) or a URL token (?token=… or X-Webhook-Token) and it does not verify, " +
			"408 when the body is not sent within 30 s, 413 over the integration's body limit, " +
			"429 when the tenant is over its rate or the client's address sent too many refused requests, " +
			"503 when the message store is unavailable or the ingress holds too many bodies at once (retry).",
		Tags:     []string{"Webhooks"},
		Security: []map[string][]string{}, // no API key: a signature or URL token, per integration
		Parameters: []*huma.Param{
			{Name: "tenantId", In: "path", Required: true, Schema: &huma.Schema{Type: "string"}},
			{Name: "integrationId", In: "path", Required: true, Schema: &huma.Schema{Type: "string"}},
			{Name: "Idempotency-Key", In: "header", Schema: &huma.Schema{Type: "string", MaxLength: ptr(MaxIdempotencyKey)}},
		},
		RequestBody: &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"*/*": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
		}},
		Responses: map[string]*huma.Response{
			"202": {Description: "Stored.", Content: map[string]*huma.MediaType{
				"application/json": {Schema: registry.Schema(reflect.TypeOf(HookAccepted{}), true, "HookAccepted")},
			}},
			"200": {Description: "An event type the integration does not store; nothing was stored.", Content: map[string]*huma.MediaType{
				"application/json": {Schema: registry.Schema(reflect.TypeOf(HookIgnored{}), true, "HookIgnored")},
			}},
			"400": {Description: "Bad Idempotency-Key, or an NDJSON batch with no record or over 1,000."},
			"401": {Description: "The integration requires a signature or a URL token and the request's is missing or invalid; nothing was stored."},
			"404": {Description: "No such integration, or it does not take webhooks."},
			"408": {Description: "The body did not arrive in time; nothing was stored."},
			"409": {Description: "The ID (Idempotency-Key or delivery ID) was already used with a different body; nothing was stored."},
			"413": {Description: "Body over the integration's limit."},
			"429": {Description: "Tenant over its rate, or too many refused requests from the client's address; see Retry-After."},
			"500": {Description: "The integration's webhook configuration cannot be used; nothing was stored."},
			"503": {Description: "Message store unavailable, or the ingress is holding too many bodies; nothing was stored. See Retry-After."},
		},
	})
}

func ptr[T any](v T) *T { return &v }

func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.limitsOnce.Do(h.initLimits)
	now := time.Now()
	client := clientAddr(r, h.TrustedProxies)
	// An address that keeps sending junk is refused before anything else,
	// so it can neither probe names nor spend a tenant's rate.
	if empty, wait := h.junk.empty(client, now); empty {
		writeProblem(w, http.StatusTooManyRequests, "too many refused requests from this address", wait)
		return
	}
	h.forget(now)
	p := hotpath.Pipeline{Tenant: r.PathValue("tenantId"), Integration: r.PathValue("integrationId")}
	// Unknown, malformed and other tenants' names all get the same 404.
	if p.Validate() != nil {
		h.refuse(w, client, now, http.StatusNotFound, "no such integration")
		return
	}
	desired, ok := h.Pipelines.Lookup(p)
	if !ok || desired.Spec.Consumer.Connector != hotpath.WebhookConnector {
		h.configs.Delete(p.Key())
		h.refuse(w, client, now, http.StatusNotFound, "no such integration")
		return
	}
	// From here the tenant exists: its outcomes are counted.
	refused := func(n int) { h.Metrics.webhook(p.Tenant, OutcomeRefused, n) }
	token, wait := h.limits.reserve(p.Tenant, now)
	if wait > 0 {
		refused(1)
		writeProblem(w, http.StatusTooManyRequests, "tenant is over its webhook rate", wait)
		return
	}
	// unauthenticated gives the tenant's token back: junk does not spend it.
	unauthenticated := func() {
		if token != nil {
			token.CancelAt(now)
		}
		refused(1)
		h.refuse(w, client, now, http.StatusUnauthorized, "invalid or missing signature")
	}
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !validIdempotencyKey(key) {
		refused(1)
		writeProblem(w, http.StatusBadRequest, "Idempotency-Key must be 1-200 printable ASCII characters", 0)
		return
	}
	hook := h.config(r.Context(), p, desired)
	if hook.err != nil {
		refused(1)
		writeProblem(w, http.StatusInternalServerError, "the integration's webhook configuration cannot be used; nothing was stored", 0)
		return
	}
	in := hook.ingress
	if in.CheckToken(r) != nil {
		unauthenticated()
		return
	}
	limit := in.MaxBytes
	if limit <= 0 {
		limit = desired.WebhookMaxBytes
	}
	if limit <= 0 {
		limit = DefaultWebhookMaxBytes
	}
	if r.ContentLength > limit {
		refused(1)
		writeProblem(w, http.StatusRequestEntityTooLarge, "body is over the integration's limit", 0)
		return
	}
	// The body must arrive within BodyTimeout, whatever its declared length.
	_ = http.NewResponseController(w).SetReadDeadline(now.Add(h.bodyTimeout()))
	body, held, err := h.readBody(r, limit)
	defer h.inFlight.Add(-held)
	switch {
	case errors.Is(err, errBodyTooLarge):
		refused(1)
		writeProblem(w, http.StatusRequestEntityTooLarge, "body is over the integration's limit", 0)
		return
	case errors.Is(err, errBusy):
		h.Metrics.webhook(p.Tenant, OutcomeUnavailable, 1)
		writeProblem(w, http.StatusServiceUnavailable, "the ingress is holding too many bodies; nothing was stored, retry later", busyRetryAfter)
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		refused(1)
		writeProblem(w, http.StatusRequestTimeout, "the body did not arrive in time; nothing was stored", 0)
		return
	case err != nil:
		refused(1)
		writeProblem(w, http.StatusBadRequest, "could not read the body", 0)
		return
	}
	if in.Verifier != nil {
		if err := in.Verifier.Verify(r.Header, body, time.Now()); err != nil {
			unauthenticated()
			return
		}
	}
	if event, skip := in.Skip(r.Header); skip {
		writeIgnored(w, event)
		return
	}
	id := key
	if id == "" {
		if d := in.DeliveryID(r.Header, body); validIdempotencyKey(d) {
			id = d
		}
	}
	remember := id != "" && h.Idempotency != nil
	if id == "" {
		id = newMessageID()
	}
	msg := sdk.Message{
		ID: id, Tenant: p.Tenant, Integration: p.Integration,
		ContentType: r.Header.Get("Content-Type"), Body: body,
		Headers: forwardedHeaders(r.Header), Received: time.Now(),
	}
	msgs := []sdk.Message{msg}
	answer := HookAccepted{ID: id}
	if mediaType(msg.ContentType) == ndjsonType {
		if msgs = splitRecords(msg); len(msgs) == 0 || len(msgs) > MaxBatchRecords {
			refused(1)
			writeProblem(w, http.StatusBadRequest, "an NDJSON batch holds 1 to 1,000 non-empty lines", 0)
			return
		}
		answer.Count = len(msgs)
		// Each record is a message of the tenant's rate: the request paid
		// for the first.
		if wait := h.limits.takeN(p.Tenant, time.Now(), len(msgs)-1); wait > 0 {
			writeProblem(w, http.StatusTooManyRequests, "tenant is over its webhook rate (each record of a batch counts); nothing was stored", wait)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	var digest hotpath.Digest
	if remember {
		digest = sha256.Sum256(body)
		seen, err := h.Idempotency.Claim(ctx, p, id, digest)
		if errors.Is(err, hotpath.ErrKeyReused) {
			refused(1)
			writeProblem(w, http.StatusConflict, "this Idempotency-Key or delivery ID was already used with a different body; nothing was stored", 0)
			return
		}
		if err != nil {
			h.Metrics.webhook(p.Tenant, OutcomeUnavailable, 1)
			writeProblem(w, http.StatusServiceUnavailable, "the message could not be stored; nothing was accepted, retry later", 2*time.Second)
			return
		}
		if seen {
			h.Metrics.webhook(p.Tenant, OutcomeDuplicate, len(msgs))
			writeAccepted(w, answer)
			return
		}
	}
	if err := h.Publisher.Publish(ctx, p, msgs); err != nil {
		if errors.Is(err, hotpath.ErrQuotaFull) {
			h.Metrics.webhook(p.Tenant, OutcomeQuotaFull, 1)
			writeProblem(w, http.StatusInsufficientStorage, "the tenant's storage quota is full: its integrations hold as many bytes as its limits allow; nothing was accepted, retry once they have caught up", 30*time.Second)
			return
		}
		h.Metrics.webhook(p.Tenant, OutcomeUnavailable, 1)
		writeProblem(w, http.StatusServiceUnavailable, "the message could not be stored; nothing was accepted, retry later", 2*time.Second)
		return
	}
	h.Metrics.webhook(p.Tenant, OutcomeAccepted, len(msgs))
	if remember {
		if err := h.Idempotency.Confirm(ctx, p, id, digest); err != nil && h.Logger != nil {
			h.Logger.WarnContext(ctx, "webhook idempotency key not confirmed; a repeat is stored again, which JetStream's duplicate window drops",
				"pipeline", p.String(), "msg_id", id, "error", err)
		}
	}
	writeAccepted(w, answer)
}

func (h *Webhooks) initLimits() {
	h.limits = newLimiters(h.TenantRate, h.TenantBurst)
	if h.Rates != nil {
		h.limits.own = func(tenant string) (float64, int, bool) {
			r, ok := h.Rates.Rate(tenant)
			return r, int(2 * r), ok
		}
	}
	junkRate, junkBurst := h.JunkRate, h.JunkBurst
	if junkRate == 0 {
		junkRate = DefaultJunkRate
		if junkBurst == 0 {
			junkBurst = DefaultJunkBurst
		}
	}
	h.junk = newLimiters(junkRate, junkBurst)
}

// refuse answers a request that came from no legitimate sender (an
// unknown name, a bad signature or token) and charges its address.
func (h *Webhooks) refuse(w http.ResponseWriter, client string, now time.Time, status int, detail string) {
	h.junk.take(client, now)
	writeProblem(w, status, detail, 0)
}

// clientAddr is the request's peer address without its port. Proxies'
// forwarding headers are not trusted: behind a proxy, all clients share its
// address.
// clientAddr is the address a request comes from: its peer's, or, when the
// peer is a trusted proxy, the nearest address its X-Forwarded-For names
// that is not a trusted proxy.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return host // a malformed hop: trust nothing beyond it
		}
		if !isTrusted(hop.Unmap(), trusted) {
			return hop.Unmap().String()
		}
	}
	return host
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR
// prefixes (VRSKY_TRUSTED_PROXIES).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func writeAccepted(w http.ResponseWriter, answer HookAccepted) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(answer.appendJSON(make([]byte, 0, 32+len(answer.ID))))
}

// HookIgnored is the 200 answer to an event the integration does not store.
type HookIgnored struct {
	Ignored bool   `json:"ignored" doc:"Always true: the request was authenticated and answered, and nothing was stored."`
	Event   string `json:"event" doc:"The request's event type (X-GitHub-Event by default); empty when it had none."`
}

func writeIgnored(w http.ResponseWriter, event string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(HookIgnored{Ignored: true, Event: event})
}

// appendJSON appends what json.NewEncoder(w).Encode(a) writes, without
// reflection: IDs are printable ASCII (validIdempotencyKey, newMessageID).
func (a HookAccepted) appendJSON(b []byte) []byte {
	b = append(b, `{"id":"`...)
	for i := 0; i < len(a.ID); i++ {
		switch c := a.ID[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '<', '>', '&':
			b = append(b, `\u00`...)
			b = append(b, hex.EncodeToString([]byte{c})...)
		default:
			b = append(b, c)
		}
	}
	b = append(b, '"')
	if a.Count != 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(a.Count), 10)
	}
	return append(b, "}\n"...)
}

// Errors of readBody.
var (
	errBodyTooLarge = errors.New("body over the limit")
	errBusy         = errors.New("in-flight body budget spent")
)

func (h *Webhooks) bodyTimeout() time.Duration {
	if h.BodyTimeout > 0 {
		return h.BodyTimeout
	}
	return DefaultBodyTimeout
}

func (h *Webhooks) maxInFlight() int64 {
	if h.MaxInFlightBytes > 0 {
		return h.MaxInFlightBytes
	}
	return DefaultMaxInFlightBytes
}

// readBody reads the request's whole body, at most limit bytes, into a
// buffer that grows as bytes arrive: a declared length is a hint for small
// bodies only, never an allocation. Every byte of buffer is charged to the
// in-flight budget before it is allocated; held is what was charged, to be
// given back (h.inFlight.Add(-held)) once the body is no longer needed, also
// on error.
func (h *Webhooks) readBody(r *http.Request, limit int64) (body []byte, held int64, err error) {
	budget := h.maxInFlight()
	grow := func(buf []byte, size int64) ([]byte, error) {
		extra := size - int64(cap(buf))
		if h.inFlight.Add(extra) > budget {
			h.inFlight.Add(-extra)
			return buf, errBusy
		}
		held += extra
		next := make([]byte, len(buf), size)
		copy(next, buf)
		return next, nil
	}
	declared := r.ContentLength
	first := int64(firstBodyChunk)
	if declared >= 0 && declared < first {
		first = declared // net/http never gives more than the declared length
	}
	buf, err := grow(nil, min(first, limit+1))
	if err != nil {
		return nil, held, err
	}
	for {
		if len(buf) == cap(buf) {
			if declared >= 0 && int64(len(buf)) == declared {
				return buf, held, nil
			}
			if int64(len(buf)) > limit {
				return nil, held, errBodyTooLarge
			}
			size := min(2*int64(cap(buf)), limit+1)
			if declared >= 0 {
				size = min(size, declared) // net/http holds the body to it
			}
			if buf, err = grow(buf, size); err != nil {
				return nil, held, err
			}
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, held, errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			return buf, held, nil
		}
		if err != nil {
			return nil, held, err
		}
	}
}

// mediaType is a Content-Type without its parameters, in lower case.
func mediaType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// splitRecords makes one message per non-empty line of batch's body: record
// i gets the ID <batch ID>-<i> and the content type application/json, and
// shares the batch's headers and arrival time. There may be more than
// MaxBatchRecords: the caller checks.
func splitRecords(batch sdk.Message) []sdk.Message {
	var msgs []sdk.Message
	for rest := batch.Body; len(rest) > 0 && len(msgs) <= MaxBatchRecords; {
		line, after, _ := bytes.Cut(rest, []byte("\n"))
		rest = after
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		m := batch
		m.ID = batch.ID + "-" + strconv.Itoa(len(msgs))
		m.ContentType = "application/json"
		m.Body = line
		msgs = append(msgs, m)
	}
	return msgs
}

// config returns the integration's built http-webhook config, building it
// when the desired-state version (or, should a version number be reused,
// the config itself) changed. Two requests racing on a new version may both
// build it; either result is the same. The build is not tied to the
// request, so a client hanging up cannot leave a failure in the cache.
func (h *Webhooks) config(ctx context.Context, p hotpath.Pipeline, d hotpath.Desired) *hookConfig {
	key := p.Key()
	if c, ok := h.configs.Load(key); ok {
		c := c.(*hookConfig)
		if c.version == d.Version && bytes.Equal(c.raw, d.Spec.Consumer.Config) &&
			(c.err == nil || time.Since(c.builtAt) < rebuildAfter) {
			return c
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), configBuildTimeout)
	defer cancel()
	env := sdk.Env{Tenant: p.Tenant, Integration: p.Integration, Name: "consumer"}
	c := &hookConfig{p: p, version: d.Version, raw: d.Spec.Consumer.Config, builtAt: time.Now()}
	if h.Tenancy != nil {
		c.err = h.Tenancy.Complete(ctx, &env)
	}
	if c.err == nil {
		c.ingress, c.err = webhook.Build(ctx, env, d.Spec.Consumer.Config)
	}
	if c.err != nil && h.Logger != nil {
		// The error names the secret's reference, never its value.
		h.Logger.ErrorContext(ctx, "webhook config cannot be built", "pipeline", p.String(), "version", d.Version, "error", c.err)
	}
	h.configs.Store(key, c)
	return c
}

// forget drops, at most once per sweepEvery, the built configs of
// integrations that were deleted or no longer take webhooks, so their
// resolved secrets do not stay in memory.
func (h *Webhooks) forget(now time.Time) {
	next := h.nextForget.Load()
	if now.UnixNano() < next || !h.nextForget.CompareAndSwap(next, now.Add(sweepEvery).UnixNano()) {
		return
	}
	h.configs.Range(func(k, v any) bool {
		c := v.(*hookConfig)
		if d, ok := h.Pipelines.Lookup(c.p); !ok || d.Spec.Consumer.Connector != hotpath.WebhookConnector {
			h.configs.CompareAndDelete(k, v)
		}
		return true
	})
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// forwardedHeaders keeps the request headers a pipeline may route on
// (X-… headers such as X-GitHub-Event, and User-Agent), bounded in number
// and size. Credentials (Authorization, Cookie, X-Api-Key, signature and
// token headers…) are never kept: a stored message is shown by the DLQ
// API.
func forwardedHeaders(h http.Header) map[string]string {
	var out map[string]string
	for k, v := range h {
		if len(out) >= maxForwardedHeaders || len(v) == 0 || !forwarded(k) {
			continue
		}
		val := v[0]
		if len(val) > maxHeaderValue {
			val = val[:maxHeaderValue]
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[strings.ToLower(k)] = val
	}
	return out
}

// forwarded reports whether header k is kept with the message: X-… and
// User-Agent, in any case, except credentials. net/http admits only ASCII
// header names.
func forwarded(k string) bool {
	if strings.EqualFold(k, "User-Agent") {
		return true
	}
	return len(k) >= 2 && (k[0] == 'x' || k[0] == 'X') && k[1] == '-' && !credential(k)
}

// credentialWords mark a header that carries a credential or a proof of
// one: API keys and tokens, signatures (which verify only with the
// secret, and let whoever reads the dead letter replay the request),
// session and auth headers. Matched in lower case anywhere in the name.
var credentialWords = [...]string{"auth", "token", "secret", "signature", "password", "passwd", "cookie", "session", "api-key", "apikey", "credential", "csrf", "xsrf"}

// credential reports whether header k is one never stored: any name
// holding a credential word (X-Api-Key, X-Hub-Signature-256,
// X-Slack-Signature, X-Auth-Token, X-Webhook-Token, X-Amz-Security-Token…).
func credential(k string) bool {
	var lower [128]byte
	if len(k) > len(lower) {
		return true // no legitimate routing header is that long
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	name := string(lower[:len(k)])
	for _, w := range credentialWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
