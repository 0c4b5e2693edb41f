package api

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/internal/logging"
)

// Limits of the http-webhook connector, named here for the API's users.
const (
	// MaxIdempotencyKey bounds the Idempotency-Key header.
	MaxIdempotencyKey = webhook.MaxIdempotencyKey
	// MaxBatchRecords bounds the records of one NDJSON request.
	MaxBatchRecords = webhook.MaxBatchRecords
)

// HookAccepted is the http-webhook's 202 answer.
type HookAccepted = webhook.Accepted

// HookIgnored is the 200 answer to an event the integration does not store.
type HookIgnored = webhook.Ignored

// RegisterWebhooks adds the HTTP ingress, which serves every ingress
// connector of the catalog on one route. It is a plain net/http handler
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
		Description: "Hands the request to the integration's consumer, an ingress connector (GET /v1/connectors lists each with its config), " +
			"which stores what the request carries and answers once it is durable. For http-webhook: " +
			"stores the body as one message of the integration and answers 202 with its ID. " +
			"The message ID is the Idempotency-Key header, else the sender's delivery ID (X-GitHub-Delivery, Standard Webhooks' webhook-id, " +
			"a Slack event's event_id), else a random one: a retried or replayed delivery stores one message. " +
			"IDs are remembered with their body's digest for 24 hours: the same ID with another body answers 409 and stores nothing. " +
			"With Content-Type application/x-ndjson each non-empty line is one message (at most 1,000), all stored before the 202; " +
			"record i gets the ID <id>-<i>, so a repeated batch with the same key stores nothing twice. " +
			"Events the integration does not store (GitHub's ping by default; see the http-webhook config's events and ignore) answer 200 {\"ignored\": true}. " +
			"401 when the integration requires a signature (GitHub, Slack, Standard Webhooks or HMAC) or a URL token (?token=… or X-Webhook-Token) and it does not verify, " +
			"408 when the body is not sent within 30 s, 413 over the integration's body limit, " +
			"429 when the tenant is over its rate or the client's address sent too many refused requests, " +
			"503 when the message store is unavailable or the ingress holds too many bodies at once (retry). " +
			"Other ingress connectors answer in their own format and refuse what they cannot read with 400, 413 or 415.",
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
			"400": {Description: "Bad Idempotency-Key, an NDJSON batch with no record or over 1,000, or a request the consumer cannot read."},
			"401": {Description: "The integration requires a signature or a URL token and the request's is missing or invalid; nothing was stored."},
			"404": {Description: "No such integration, or its consumer is not an ingress connector."},
			"408": {Description: "The body did not arrive in time; nothing was stored."},
			"409": {Description: "The ID (Idempotency-Key or delivery ID) was already used with a different body; nothing was stored."},
			"413": {Description: "Body over the integration's limit, or over one of the consumer's own bounds (too many events in a batch)."},
			"415": {Description: "A content type the integration's consumer does not take."},
			"429": {Description: "Tenant over its rate, or too many refused requests from the client's address; see Retry-After."},
			"500": {Description: "The integration's webhook configuration cannot be used; nothing was stored."},
			"503": {Description: "Message store unavailable, or the ingress is holding too many bodies; nothing was stored. See Retry-After."},
		},
	})
}

func ptr[T any](v T) *T { return &v }

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

// What the dry run (dryrun.go) shows an http-webhook integration storing is
// what the connector stores: these name the connector's own rules.
const ndjsonType = webhook.NDJSONType

func forwardedHeaders(h http.Header) map[string]string { return webhook.ForwardedHeaders(h) }

func mediaType(contentType string) string { return webhook.MediaType(contentType) }

func splitRecords(batch sdk.Message) []sdk.Message { return webhook.SplitRecords(batch) }
