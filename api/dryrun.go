package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/webhook"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// Dry-run bounds.
const (
	// MaxDryRunMessages is how many messages one dry run takes.
	MaxDryRunMessages = 100
	// MaxDryRunMessageBytes bounds each message's body.
	MaxDryRunMessageBytes = 1 << 20
	// MaxDryRunBytes bounds the whole request (the spec and every message).
	MaxDryRunBytes = 16 << 20
	// MaxDryRunOutputBytes bounds the bodies a dry run returns; results
	// past it carry an error instead of their outputs.
	MaxDryRunOutputBytes = 16 << 20
	// DryRunTimeout bounds a dry run; messages it did not reach carry an
	// error.
	DryRunTimeout = 10 * time.Second
	// dryRunSlots is how many dry runs the API runs at once; more answer
	// 503, so that dry runs cannot take every core of a shared API.
	dryRunSlots       = 4
	maxDryRunHeaders  = 32
	maxDryRunHeaderSz = 1024
)

// DryRunMessage is a message to push through the pipeline: for an
// http-webhook consumer, a request's body and headers.
type DryRunMessage struct {
	Body    string            `json:"body" maxLength:"1048576" doc:"The raw body, as text."`
	Headers map[string]string `json:"headers,omitempty" doc:"Request headers (for http-webhook: content-type selects NDJSON batches, X-… headers travel with the message); at most 32, each value at most 1 KiB."`
}

// DryRunRequest is what test-integration takes; it is documented with this
// type and decoded by hand, so that the spec is checked exactly as
// create-integration checks it.
type DryRunRequest struct {
	Spec     IntegrationSpec `json:"spec" doc:"The integration spec, as create-integration takes it."`
	Messages []DryRunMessage `json:"messages" minItems:"1" maxItems:"100"`
}

// DryRunOutput is what a producer would receive.
type DryRunOutput struct {
	Body    string            `json:"body" doc:"The body as text (bytes that are not UTF-8 are replaced)."`
	Headers map[string]string `json:"headers,omitempty"`
}

// DryRunResult is what became of one input message.
type DryRunResult struct {
	Index     int                       `json:"index" doc:"The message's index in the request, from 0."`
	Filtered  bool                      `json:"filtered" doc:"No producer would receive it: a filter dropped it, a router routed it nowhere, or the webhook consumer would not store it (an event type it ignores)."`
	Error     string                    `json:"error,omitempty" doc:"Why it failed; the hot path would dead-letter it."`
	Producers map[string][]DryRunOutput `json:"producers" doc:"Per producer name, the messages it would receive (an NDJSON batch gives one per record)."`
}

// DryRunInput is a raw dry-run request.
type DryRunInput struct {
	RawBody []byte
}

// DryRunResponse is the dry run's results, one per input message, in order.
type DryRunResponse struct {
	Body struct {
		Results []DryRunResult `json:"results"`
	}
}

// dryRun serves test-integration.
type dryRun struct {
	tenancy    sdk.Tenancy
	envAllowed func(name string) bool
	catalog    *sdk.Catalog
	slots      chan struct{}
	log        *slog.Logger
}

// RegisterDryRun adds test-integration: a spec run on sample messages
// without side effects. tenancy completes the steps' Env with the caller's
// tenant's secrets (nil resolves none); envAllowed is the operator's
// allow-list, as for create-integration.
func RegisterDryRun(api huma.API, tenancy sdk.Tenancy, envAllowed func(name string) bool, log *slog.Logger) {
	h := &dryRun{tenancy: tenancy, envAllowed: envAllowed, catalog: connectors.Catalog(), slots: make(chan struct{}, dryRunSlots), log: log}
	huma.Register(api, huma.Operation{
		OperationID: "test-integration",
		Method:      http.MethodPost,
		Path:        "/v1/integrations/test",
		Summary:     "Dry-run an integration spec",
		Description: "Runs a spec on 1 to 100 sample messages and returns, for each, what every producer would receive, " +
			"without any side effect: nothing is stored or published, no producer or consumer is built (nothing connects " +
			"anywhere), and no secret value is returned. The spec is checked exactly as create-integration checks it " +
			"(422 with each problem located under `body.spec`, including `{\"env\": NAME}` the operator does not allow); " +
			"then the steps are built with the tenant's secrets, a step that does not build (an expression that does not " +
			"compile) being a 422 located at its config. Each message then goes through what the hot path does: for an " +
			"http-webhook consumer, the ingress's decoding (an `application/x-ndjson` content-type splits the body into " +
			"one message per line; only X-… and User-Agent headers, never credentials, travel with it; event types the " +
			"consumer ignores are filtered; signatures and URL tokens are not checked), for other consumers the body and " +
			"headers as one record; then the converters and filters, with the expression and template budgets of the " +
			"hot path, and the routing. A message that fails carries `error` (the hot path would dead-letter it). " +
			"Bounds: each body at most 1 MiB, the request at most 16 MiB, the returned bodies at most 16 MiB, " +
			"10 seconds per dry run (messages not reached carry an error); 503 when too many dry runs are running. " +
			"Needs scope write.",
		Tags:         []string{"Integrations"},
		Security:     requireScopes(store.ScopeWrite),
		MaxBodyBytes: MaxDryRunBytes,
		Errors:       withAuthErrors(http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, h.run)
	documentBody(api, "/v1/integrations/test", http.MethodPost, reflect.TypeFor[DryRunRequest](), "DryRunRequest",
		"The spec and the sample messages.")
}

func (h *dryRun) run(ctx context.Context, in *DryRunInput) (*DryRunResponse, error) {
	p, _ := PrincipalFrom(ctx)
	req, err := decodeDryRun(in.RawBody)
	if err != nil {
		return nil, err
	}
	in.RawBody = nil
	s, err := parseSpec(SpecBody{ContentType: "application/json", RawBody: req.Spec}, h.envAllowed)
	if err != nil {
		return nil, underSpec(err)
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		return nil, unavailable("too many dry runs are running; retry shortly")
	}
	ctx, cancel := context.WithTimeout(ctx, DryRunTimeout)
	defer cancel()

	env := sdk.Env{Tenant: p.TenantID, Integration: s.Name, Logger: slog.New(slog.DiscardHandler)}
	if h.tenancy != nil {
		if err := h.tenancy.Complete(ctx, &env); err != nil {
			h.log.Error("operation failed", "operation", "test-integration", "tenant", p.TenantID, "error", err)
			return nil, unavailable("the tenant's secrets cannot be read; retry later")
		}
	}
	chain, err := dataplane.BuildChain(ctx, h.catalog, s.Steps, func(name string) sdk.Env {
		e := env
		e.Name = name
		return e
	})
	if err != nil {
		loc := "body.spec.steps"
		if name, _, ok := strings.Cut(err.Error(), " "); ok && strings.HasPrefix(name, "steps[") {
			loc = "body.spec." + strings.TrimSuffix(name, ":") + ".config"
		}
		return nil, huma.Error422UnprocessableEntity("a step of the spec does not build",
			&huma.ErrorDetail{Location: loc, Message: err.Error()})
	}
	ingress, err := dryRunIngress(ctx, s)
	if err != nil {
		return nil, huma.Error422UnprocessableEntity("the consumer's config does not build",
			&huma.ErrorDetail{Location: "body.spec.consumer.config", Message: err.Error()})
	}

	producers := s.ProducerNames()
	out := &DryRunResponse{}
	out.Body.Results = make([]DryRunResult, len(req.Messages))
	var outBytes int
	for i, m := range req.Messages {
		r := &out.Body.Results[i]
		r.Index, r.Producers = i, map[string][]DryRunOutput{}
		if ctx.Err() != nil {
			r.Error = "not run: the dry run's time limit was reached"
			continue
		}
		msgs, skipped := consumerMessages(s, ingress, p.TenantID, i, m)
		if skipped {
			r.Filtered = true
			continue
		}
		kept := 0
		for _, msg := range msgs {
			outs, err := runOne(ctx, chain, producers, msg)
			if err != nil {
				r.Error = err.Error()
				break
			}
			for name, o := range outs {
				outBytes += len(o.Body)
				r.Producers[name] = append(r.Producers[name], o)
				kept++
			}
		}
		if outBytes > MaxDryRunOutputBytes {
			r.Producers = map[string][]DryRunOutput{}
			r.Error = fmt.Sprintf("outputs left out: the dry run's results are over %d bytes", MaxDryRunOutputBytes)
			continue
		}
		r.Filtered = r.Error == "" && kept == 0
	}
	h.log.Info("integration dry run", "tenant", p.TenantID, "integration", s.Name, "messages", len(req.Messages), "by_key_id", p.KeyID)
	return out, nil
}

// dryRunRequest is the decoded request; the spec stays raw for parseSpec.
type dryRunRequest struct {
	Spec     json.RawMessage `json:"spec"`
	Messages []DryRunMessage `json:"messages"`
}

// decodeDryRun decodes and bounds a request, locating every problem.
func decodeDryRun(raw []byte) (dryRunRequest, error) {
	var req dryRunRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, huma.Error422UnprocessableEntity("the request does not decode",
			&huma.ErrorDetail{Location: "body", Message: err.Error()})
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, huma.Error422UnprocessableEntity("the request does not decode",
			&huma.ErrorDetail{Location: "body", Message: "unexpected data after the request object"})
	}
	var details []error
	if t := bytes.TrimSpace(req.Spec); len(t) == 0 || t[0] != '{' {
		details = append(details, &huma.ErrorDetail{Location: "body.spec", Message: "the spec must be an object"})
	}
	if n := len(req.Messages); n < 1 || n > MaxDryRunMessages {
		details = append(details, &huma.ErrorDetail{Location: "body.messages",
			Message: fmt.Sprintf("give 1 to %d messages, not %d", MaxDryRunMessages, n)})
	}
	for i, m := range req.Messages {
		loc := "body.messages[" + strconv.Itoa(i) + "]"
		if len(m.Body) > MaxDryRunMessageBytes {
			details = append(details, &huma.ErrorDetail{Location: loc + ".body",
				Message: fmt.Sprintf("the body is %d bytes, over the limit of %d", len(m.Body), MaxDryRunMessageBytes)})
		}
		if len(m.Headers) > maxDryRunHeaders {
			details = append(details, &huma.ErrorDetail{Location: loc + ".headers",
				Message: fmt.Sprintf("at most %d headers", maxDryRunHeaders)})
		}
		for k, v := range m.Headers {
			if len(k) > maxDryRunHeaderSz || len(v) > maxDryRunHeaderSz {
				details = append(details, &huma.ErrorDetail{Location: loc + ".headers",
					Message: fmt.Sprintf("a header's name and value are at most %d bytes each", maxDryRunHeaderSz)})
				break
			}
		}
	}
	if len(details) > 0 {
		return req, huma.Error422UnprocessableEntity(
			fmt.Sprintf("the request has %d problem(s); each is listed with its location", len(details)), details...)
	}
	return req, nil
}

// underSpec moves the locations of parseSpec's problems, which are the
// spec's own ("body.steps[0].config"), under the request's spec field.
func underSpec(err error) error {
	var details []*huma.ErrorDetail
	var ours *ErrorModel
	var model *huma.ErrorModel
	switch {
	case errors.As(err, &ours):
		details = ours.Errors
	case errors.As(err, &model):
		details = model.Errors
	default:
		return err
	}
	for _, d := range details {
		if d == nil {
			continue
		}
		if rest, ok := strings.CutPrefix(d.Location, "body"); ok {
			d.Location = "body.spec" + rest
		}
	}
	return err
}

// dryRunIngress builds an http-webhook consumer's config without its
// signature and URL token (a dry run verifies neither, and so resolves no
// secret for them); nil for other consumers.
func dryRunIngress(ctx context.Context, s spec.Integration) (*webhook.Ingress, error) {
	if s.Consumer.Connector != dataplane.WebhookConnector {
		return nil, nil
	}
	cfg, err := webhook.Decode(s.Consumer.Config)
	if err != nil {
		return nil, err
	}
	cfg.Signature, cfg.Token = nil, nil
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return webhook.Build(ctx, sdk.Env{}, raw)
}

// consumerMessages is what the consumer would hand the pipeline for sample
// message i: for the webhook ingress, what it stores for such a request
// (skipped: what it answers without storing); for other consumers, the
// sample as one record.
func consumerMessages(s spec.Integration, ingress *webhook.Ingress, tenant string, i int, m DryRunMessage) (msgs []sdk.Message, skipped bool) {
	header := http.Header{}
	for k, v := range m.Headers {
		header.Set(k, v)
	}
	msg := sdk.Message{
		ID: "dry-run-" + strconv.Itoa(i), Tenant: tenant, Integration: s.Name,
		ContentType: header.Get("Content-Type"), Body: []byte(m.Body), Received: time.Now(),
	}
	if ingress == nil {
		if len(m.Headers) > 0 {
			msg.Headers = make(map[string]string, len(m.Headers))
			for k, v := range m.Headers {
				msg.Headers[strings.ToLower(k)] = v
			}
		}
		return []sdk.Message{msg}, false
	}
	if _, skip := ingress.Skip(header); skip {
		return nil, true
	}
	msg.Headers = forwardedHeaders(header)
	if mediaType(msg.ContentType) == ndjsonType {
		return splitRecords(msg), false
	}
	return []sdk.Message{msg}, false
}

// runOne runs the chain on one message as the process stage does and
// returns what each selected producer would receive.
func runOne(ctx context.Context, chain dataplane.Chain, producers []string, msg sdk.Message) (map[string]DryRunOutput, error) {
	if reason := msg.Header(sdk.HeaderRecordError); reason != "" {
		return nil, fmt.Errorf("unreadable record: %s", reason)
	}
	out, routes, drop, err := chain.Run(ctx, msg)
	if err != nil {
		return nil, err
	}
	if drop {
		return nil, nil
	}
	if routes == nil {
		routes = producers
	}
	known := make(map[string]bool, len(producers))
	for _, n := range producers {
		known[n] = true
	}
	outs := make(map[string]DryRunOutput, len(routes))
	for _, name := range routes {
		if !known[name] {
			return nil, fmt.Errorf("route to unknown producer %q", name)
		}
		outs[name] = DryRunOutput{Body: string(out.Body), Headers: out.Headers}
	}
	return outs, nil
}

// documentBody documents an operation's raw JSON body with the schema of t.
func documentBody(api huma.API, path, method string, t reflect.Type, name, description string) {
	oapi := api.OpenAPI()
	op := operationAt(oapi, path, method)
	if op == nil {
		return
	}
	if op.RequestBody == nil {
		op.RequestBody = &huma.RequestBody{}
	}
	op.RequestBody.Required = true
	op.RequestBody.Description = description
	op.RequestBody.Content = map[string]*huma.MediaType{
		"application/json": {Schema: oapi.Components.Schemas.Schema(t, true, name)},
	}
}
