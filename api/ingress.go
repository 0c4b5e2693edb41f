package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/gctarget"
)

// Ingress defaults.
const (
	// DefaultWebhookMaxBytes is the body limit unless the integration sets one.
	DefaultWebhookMaxBytes = 10 << 20
	publishTimeout         = 10 * time.Second
	// rebuildAfter is how long a config that failed to build is answered
	// from the cache before it is built again (a tenant secret may have
	// been added meanwhile).
	rebuildAfter       = 10 * time.Second
	configBuildTimeout = 5 * time.Second

	// DefaultWebhookTenantRate and DefaultWebhookTenantBurst bound each
	// tenant's ingress requests in the production api role until tenants
	// have quotas of their own.
	DefaultWebhookTenantRate  = 2000
	DefaultWebhookTenantBurst = 4000
	// DefaultMaxInFlightBytes bounds the body bytes all ingress requests
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
	Lookup(p dataplane.Pipeline) (dataplane.Desired, bool)
}

// Publisher stores messages in a pipeline; it returns only once they are
// durable.
type Publisher interface {
	Publish(ctx context.Context, p dataplane.Pipeline, msgs []sdk.Message) error
}

// Webhooks is the HTTP ingress: POST /v1/hooks/{tenantId}/{integrationId}
// for every integration whose consumer is an ingress connector
// (sdk.Connector.Ingress: http-webhook, cloudevents…). It keeps what is the
// platform's (routing, rates, body limits, idempotency, metrics) and hands
// each request to the integration's connector (sdk.Ingress), which decides
// what it means, what it stores and what it answers.
type Webhooks struct {
	Pipelines Pipelines
	Publisher Publisher
	// Catalog finds the integrations' consumers; nil is connectors.Catalog().
	Catalog *sdk.Catalog
	// TenantRate and TenantBurst bound each tenant's ingress requests per
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
	// Idempotency stores keyed deliveries once per key, remembering each
	// key with its body's digest beyond JetStream's 2-minute duplicate
	// window; nil leaves keys to that window alone.
	Idempotency *dataplane.Idempotency
	// Tenancy completes the connector's Env with its tenant's secrets and
	// allowed environment variables; nil resolves none.
	Tenancy sdk.Tenancy
	// Logger receives configs that fail to build; nil discards them.
	Logger *slog.Logger
	// Metrics counts each tenant's messages by outcome
	// (vrsky_webhook_messages_total); RegisterWebhooks sets it to the
	// server's when nil. Requests to unknown integrations are not counted
	// per tenant (their names are the sender's), nor ignored events.
	Metrics *HTTPMetrics

	limitsOnce sync.Once
	catalog    *sdk.Catalog
	limits     *limiters // per tenant, from TenantRate and TenantBurst
	junk       *limiters // per client address, from JunkRate and JunkBurst
	inFlight   atomic.Int64
	configs    sync.Map // pipeline key → *hookConfig
	nextForget atomic.Int64
}

// hookConfig is an integration's ingress connector, built once per
// desired-state version so its secrets are resolved once, not per request.
type hookConfig struct {
	p         dataplane.Pipeline
	version   int
	connector string
	raw       []byte
	ingress   sdk.Ingress
	err       error
	builtAt   time.Time
}

func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.limitsOnce.Do(h.init)
	now := time.Now()
	client := clientAddr(r, h.TrustedProxies)
	// An address that keeps sending junk is refused before anything else,
	// so it can neither probe names nor spend a tenant's rate.
	if empty, wait := h.junk.empty(client, now); empty {
		writeProblem(w, http.StatusTooManyRequests, "too many refused requests from this address", wait)
		return
	}
	h.forget(now)
	p := dataplane.Pipeline{Tenant: r.PathValue("tenantId"), Integration: r.PathValue("integrationId")}
	// Unknown, malformed and other tenants' names all get the same 404.
	if p.Validate() != nil {
		h.refuse(w, client, now, http.StatusNotFound, "no such integration")
		return
	}
	desired, ok := h.Pipelines.Lookup(p)
	hook := h.cached(p, desired)
	if !ok || hook == nil && !h.isIngress(desired.Spec.Consumer.Connector) {
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
	if hook == nil {
		hook = h.build(r.Context(), p, desired)
	}
	if hook.err != nil {
		refused(1)
		writeProblem(w, http.StatusInternalServerError, "the integration's webhook configuration cannot be used; nothing was stored", 0)
		return
	}
	in := hook.ingress
	req := sdk.Request{Header: r.Header, URL: r.URL}
	// refusal answers a connector's refusal; an unauthenticated request
	// gives the tenant's token back (junk does not spend it) and charges
	// the client's address.
	refusal := func(f *sdk.Refusal) {
		refused(1)
		if f.Kind != sdk.RefuseUnauthenticated {
			writeProblem(w, refusalStatus(f.Kind), f.Detail, 0)
			return
		}
		if token != nil {
			token.CancelAt(now)
		}
		h.refuse(w, client, now, http.StatusUnauthorized, f.Detail)
	}
	if err := in.Admit(req); err != nil {
		h.answerError(w, p, err, refusal, nil)
		return
	}
	limit := in.BodyLimit()
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
	req.Body, req.Received = body, time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	sink := &ingressSink{h: h, p: p, body: body}
	answer, err := in.Receive(ctx, req, sink)
	if err == nil && sink.err != nil {
		err = sink.err // never a 2xx for what was not stored
	}
	if err != nil {
		h.answerError(w, p, err, refusal, sink)
		return
	}
	if answer.Status < 200 || answer.Status > 299 {
		writeProblem(w, http.StatusInternalServerError, "the integration's consumer gave no valid answer", 0)
		return
	}
	if answer.ContentType != "" {
		w.Header().Set("Content-Type", answer.ContentType)
	}
	w.WriteHeader(answer.Status)
	_, _ = w.Write(answer.Body)
}

// refusalStatus is the HTTP status of a connector's refusal.
func refusalStatus(k sdk.RefusalKind) int {
	switch k {
	case sdk.RefuseUnauthenticated:
		return http.StatusUnauthorized
	case sdk.RefuseUnsupported:
		return http.StatusUnsupportedMediaType
	case sdk.RefuseTooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusBadRequest
	}
}

// Errors of the sink.
var (
	errOverRate        = errors.New("tenant over its rate")
	errInvalidDelivery = errors.New("invalid delivery")
)

// answerError answers an error of Admit or Receive: a connector's refusal,
// or what the sink failed with. Anything else is the store's failure as
// far as the sender can tell.
func (h *Webhooks) answerError(w http.ResponseWriter, p dataplane.Pipeline, err error, refusal func(*sdk.Refusal), sink *ingressSink) {
	var f *sdk.Refusal
	switch {
	case errors.As(err, &f):
		refusal(f)
	case errors.Is(err, errOverRate):
		writeProblem(w, http.StatusTooManyRequests, "tenant is over its webhook rate (each record of a batch counts); nothing was stored", sink.wait)
	case errors.Is(err, errInvalidDelivery):
		h.Metrics.webhook(p.Tenant, OutcomeRefused, 1)
		writeProblem(w, http.StatusInternalServerError, "the integration's consumer produced an invalid message; nothing was stored", 0)
	case errors.Is(err, dataplane.ErrKeyReused):
		h.Metrics.webhook(p.Tenant, OutcomeRefused, 1)
		writeProblem(w, http.StatusConflict, "this Idempotency-Key or delivery ID was already used with a different body; nothing was stored", 0)
	case errors.Is(err, dataplane.ErrQuotaFull):
		h.Metrics.webhook(p.Tenant, OutcomeQuotaFull, 1)
		writeProblem(w, http.StatusInsufficientStorage, "the tenant's storage quota is full: its integrations hold as many bytes as its limits allow; nothing was accepted, retry once they have caught up", 30*time.Second)
	default:
		h.Metrics.webhook(p.Tenant, OutcomeUnavailable, 1)
		writeProblem(w, http.StatusServiceUnavailable, "the message could not be stored; nothing was accepted, retry later", 2*time.Second)
	}
}

// ingressSink stores one request's delivery: it is the platform's side of
// sdk.IngressSink, made per request.
type ingressSink struct {
	h    *Webhooks
	p    dataplane.Pipeline
	body []byte // the request's body, whose digest the delivery key keeps
	// err is what Publish failed with; wait is the Retry-After of errOverRate.
	err       error
	wait      time.Duration
	published bool
}

// Publish charges the tenant's rate for every message past the first (the
// request paid for one) and stores the messages: a keyed delivery through
// the ID memory, which stores it once per key.
func (s *ingressSink) Publish(ctx context.Context, d sdk.Delivery) (sdk.PubAck, error) {
	ack, err := s.publish(ctx, d)
	if err != nil {
		s.err = err
	}
	return ack, err
}

func (s *ingressSink) publish(ctx context.Context, d sdk.Delivery) (sdk.PubAck, error) {
	h, p := s.h, s.p
	if s.published {
		return sdk.PubAck{}, errInvalidDelivery
	}
	s.published = true
	if err := s.check(d); err != nil {
		return sdk.PubAck{}, err
	}
	if n := len(d.Messages) - 1; n > 0 {
		if s.wait = h.limits.takeN(p.Tenant, time.Now(), n); s.wait > 0 {
			return sdk.PubAck{}, errOverRate
		}
	}
	if d.Key != "" && h.Idempotency != nil {
		digest := dataplane.Digest(sha256.Sum256(s.body))
		var seen bool
		err := storeRetrying(ctx, func(ctx context.Context) (err error) {
			seen, err = h.Idempotency.Store(ctx, p, d.Key, digest, d.Messages)
			return err
		})
		if errors.Is(err, dataplane.ErrKeyNotRecorded) {
			if h.Logger != nil {
				h.Logger.WarnContext(ctx, "webhook idempotency key not recorded; a repeat is stored again, which JetStream's duplicate window drops",
					"pipeline", p.String(), "msg_id", d.Key, "error", err)
			}
			err = nil
		}
		if err != nil {
			return sdk.PubAck{}, err
		}
		if seen {
			h.Metrics.webhook(p.Tenant, OutcomeDuplicate, len(d.Messages))
			return sdk.PubAck{Duplicate: true}, nil
		}
	} else if err := storeRetrying(ctx, func(ctx context.Context) error { return h.Publisher.Publish(ctx, p, d.Messages) }); err != nil {
		return sdk.PubAck{}, err
	}
	h.Metrics.webhook(p.Tenant, OutcomeAccepted, len(d.Messages))
	gctarget.Moved(len(d.Messages))
	return sdk.PubAck{}, nil
}

// check refuses a delivery the platform cannot store as it is: no message
// or too many, an ID or key that is not a valid message ID, a content type
// with control characters (all travel in NATS headers). It sets every
// message's tenant and integration: a connector never chooses them.
func (s *ingressSink) check(d sdk.Delivery) error {
	if len(d.Messages) == 0 || len(d.Messages) > sdk.MaxDeliveryMessages {
		return errInvalidDelivery
	}
	if d.Key != "" && !sdk.ValidMessageID(d.Key) {
		return errInvalidDelivery
	}
	for i := range d.Messages {
		m := &d.Messages[i]
		if !sdk.ValidMessageID(m.ID) || !headerSafe(m.ContentType) {
			return errInvalidDelivery
		}
		m.Tenant, m.Integration = s.p.Tenant, s.p.Integration
	}
	return nil
}

// headerSafe reports whether v can travel as a header value: no control
// characters (tab aside), so no line break.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func (h *Webhooks) init() {
	h.catalog = h.Catalog
	if h.catalog == nil {
		h.catalog = connectors.Catalog()
	}
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

// isIngress reports whether consumer names an ingress connector.
func (h *Webhooks) isIngress(consumer string) bool {
	conn, ok := h.catalog.Lookup(consumer, sdk.KindConsumer)
	return ok && conn.Ingress
}

// refuse answers a request that came from no legitimate sender (an
// unknown name, a bad signature or token) and charges its address.
func (h *Webhooks) refuse(w http.ResponseWriter, client string, now time.Time, status int, detail string) {
	h.junk.take(client, now)
	writeProblem(w, status, detail, 0)
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

// cached returns the integration's built connector when it was built for
// desired's version, connector and config (and, after a failed build, not
// longer ago than rebuildAfter); nil otherwise.
func (h *Webhooks) cached(p dataplane.Pipeline, d dataplane.Desired) *hookConfig {
	v, ok := h.configs.Load(p.Key())
	if !ok {
		return nil
	}
	c := v.(*hookConfig)
	if c.version == d.Version && c.connector == d.Spec.Consumer.Connector && bytes.Equal(c.raw, d.Spec.Consumer.Config) &&
		(c.err == nil || time.Since(c.builtAt) < rebuildAfter) {
		return c
	}
	return nil
}

// build builds the integration's ingress connector for desired's version
// and caches it. Two requests racing on a new version may both build it;
// either result is the same. The build is not tied to the request, so a
// client hanging up cannot leave a failure in the cache.
func (h *Webhooks) build(ctx context.Context, p dataplane.Pipeline, d dataplane.Desired) *hookConfig {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), configBuildTimeout)
	defer cancel()
	name := d.Spec.Consumer.Connector
	env := sdk.Env{Tenant: p.Tenant, Integration: p.Integration, Name: "consumer"}
	c := &hookConfig{p: p, version: d.Version, connector: name, raw: d.Spec.Consumer.Config, builtAt: time.Now()}
	if h.Tenancy != nil {
		c.err = h.Tenancy.Complete(ctx, &env)
	}
	if c.err == nil {
		conn, _ := h.catalog.Lookup(name, sdk.KindConsumer)
		var built any
		built, c.err = conn.Build(ctx, env, d.Spec.Consumer.Config)
		if c.err == nil {
			var ok bool
			if c.ingress, ok = built.(sdk.Ingress); !ok {
				c.err = errors.New("consumer " + name + " is not an ingress connector")
			}
		}
	}
	if c.err != nil && h.Logger != nil {
		// The error names the secret's reference, never its value.
		h.Logger.ErrorContext(ctx, "webhook config cannot be built", "pipeline", p.String(), "connector", name, "version", d.Version, "error", c.err)
	}
	h.configs.Store(p.Key(), c)
	return c
}

// forget drops, at most once per sweepEvery, the built connectors of
// integrations that were deleted or changed their consumer, so their
// resolved secrets do not stay in memory.
func (h *Webhooks) forget(now time.Time) {
	next := h.nextForget.Load()
	if now.UnixNano() < next || !h.nextForget.CompareAndSwap(next, now.Add(sweepEvery).UnixNano()) {
		return
	}
	h.configs.Range(func(k, v any) bool {
		c := v.(*hookConfig)
		if d, ok := h.Pipelines.Lookup(c.p); !ok || d.Spec.Consumer.Connector != c.connector {
			h.configs.CompareAndDelete(k, v)
		}
		return true
	})
}
