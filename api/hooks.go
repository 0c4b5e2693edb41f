package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/hotpath"
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
)

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
	// second; zero means unlimited.
	TenantRate  float64
	TenantBurst int
	// Tenancy completes the webhook connector's Env with its tenant's
	// secrets and allowed environment variables; nil resolves none.
	Tenancy sdk.Tenancy
	// Logger receives configs that fail to build; nil discards them.
	Logger *slog.Logger

	limitsOnce sync.Once
	limits     *limiters // per tenant, from TenantRate and TenantBurst
	configs    sync.Map  // pipeline key → *hookConfig
}

// hookConfig is an integration's http-webhook config, built once per
// desired-state version so its secret is resolved once, not per request.
type hookConfig struct {
	version  int
	raw      json.RawMessage
	verifier webhook.Verifier // nil: requests are not signed
	maxBytes int64            // 0: the integration's limit applies
	err      error
	builtAt  time.Time
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
	s.mux.Handle("POST /v1/hooks/{tenantId}/{integrationId}", h)
	registry := s.api.OpenAPI().Components.Schemas
	s.api.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "post-webhook",
		Method:      http.MethodPost,
		Path:        "/v1/hooks/{tenantId}/{integrationId}",
		Summary:     "Send a message to an integration",
		Description: "Stores the body as one message of the integration and answers 202 with its ID once it is durable. " +
			"An Idempotency-Key header becomes the message ID: sending the same key twice stores one message. " +
			"With Content-Type application/x-ndjson each non-empty line is one message (at most 1,000), all stored before the 202; " +
			"record i gets the ID <id>-<i>, so a repeated batch with the same key stores nothing twice. " +
			"401 when the integration requires a signature (GitHub, Slack, Standard Webhooks or HMAC) and it does not verify, " +
			"413 over the integration's body limit, 429 when the tenant is over its rate, 503 when the message store is unavailable (retry).",
		Tags: []string{"Webhooks"},
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
			"400": {Description: "Bad Idempotency-Key, or an NDJSON batch with no record or over 1,000."},
			"401": {Description: "The integration requires a signature and the request's is missing or invalid; nothing was stored."},
			"404": {Description: "No such integration, or it does not take webhooks."},
			"413": {Description: "Body over the integration's limit."},
			"429": {Description: "Tenant over its rate; see Retry-After."},
			"500": {Description: "The integration's webhook configuration cannot be used; nothing was stored."},
			"503": {Description: "Message store unavailable; nothing was stored. See Retry-After."},
		},
	})
}

func ptr[T any](v T) *T { return &v }

func (h *Webhooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := hotpath.Pipeline{Tenant: r.PathValue("tenantId"), Integration: r.PathValue("integrationId")}
	// Unknown, malformed and other tenants' names all get the same 404.
	if p.Validate() != nil {
		writeProblem(w, http.StatusNotFound, "no such integration", 0)
		return
	}
	desired, ok := h.Pipelines.Lookup(p)
	if !ok || desired.Spec.Consumer.Connector != hotpath.WebhookConnector {
		writeProblem(w, http.StatusNotFound, "no such integration", 0)
		return
	}
	h.limitsOnce.Do(func() { h.limits = newLimiters(h.TenantRate, h.TenantBurst) })
	if ok, wait := h.limits.allow(p.Tenant); !ok {
		writeProblem(w, http.StatusTooManyRequests, "tenant is over its webhook rate", wait)
		return
	}
	id := r.Header.Get("Idempotency-Key")
	if id != "" && !validIdempotencyKey(id) {
		writeProblem(w, http.StatusBadRequest, "Idempotency-Key must be 1-200 printable ASCII characters", 0)
		return
	}
	hook := h.config(r.Context(), p, desired)
	if hook.err != nil {
		writeProblem(w, http.StatusInternalServerError, "the integration's webhook configuration cannot be used; nothing was stored", 0)
		return
	}
	limit := hook.maxBytes
	if limit <= 0 {
		limit = desired.WebhookMaxBytes
	}
	if limit <= 0 {
		limit = DefaultWebhookMaxBytes
	}
	if r.ContentLength > limit {
		writeProblem(w, http.StatusRequestEntityTooLarge, "body is over the integration's limit", 0)
		return
	}
	body, err := readBody(w, r, limit)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, http.StatusRequestEntityTooLarge, "body is over the integration's limit", 0)
			return
		}
		writeProblem(w, http.StatusBadRequest, "could not read the body", 0)
		return
	}
	if hook.verifier != nil {
		if err := hook.verifier.Verify(r.Header, body, time.Now()); err != nil {
			writeProblem(w, http.StatusUnauthorized, "invalid or missing signature", 0)
			return
		}
	}
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
			writeProblem(w, http.StatusBadRequest, "an NDJSON batch holds 1 to 1,000 non-empty lines", 0)
			return
		}
		answer.Count = len(msgs)
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	if err := h.Publisher.Publish(ctx, p, msgs); err != nil {
		writeProblem(w, http.StatusServiceUnavailable, "the message could not be stored; nothing was accepted, retry later", 2*time.Second)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(answer.appendJSON(make([]byte, 0, 32+len(answer.ID))))
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

// readBody reads the request's whole body, at most limit bytes. A declared
// length (net/http holds the body to it) sizes the buffer once.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	if n := r.ContentLength; n > 0 && n <= limit {
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(body)
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
	c := &hookConfig{version: d.Version, raw: d.Spec.Consumer.Config, builtAt: time.Now()}
	if h.Tenancy != nil {
		c.err = h.Tenancy.Complete(ctx, &env)
	}
	if c.err == nil {
		c.verifier, c.maxBytes, c.err = webhook.NewVerifier(ctx, env, d.Spec.Consumer.Config)
	}
	if c.err != nil && h.Logger != nil {
		// The error names the secret's reference, never its value.
		h.Logger.Error("webhook config cannot be built", "pipeline", p.String(), "version", d.Version, "error", c.err)
	}
	h.configs.Store(key, c)
	return c
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
// and size. Credentials (Authorization, Cookie) are never kept.
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
// User-Agent, in any case. net/http admits only ASCII header names.
func forwarded(k string) bool {
	return len(k) >= 2 && (k[0] == 'x' || k[0] == 'X') && k[1] == '-' || strings.EqualFold(k, "User-Agent")
}

func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
