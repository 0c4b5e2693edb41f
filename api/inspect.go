package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/nats-io/nats.go"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// Inspection bounds; variables so that tests can shorten them.
var (
	// inspectMaxDuration ends every inspection stream.
	inspectMaxDuration = 5 * time.Minute
	// inspectKeepAlive is how often a comment line keeps a quiet stream open.
	inspectKeepAlive = 15 * time.Second
	// inspectWriteTimeout drops a client that does not read for this long.
	inspectWriteTimeout = 10 * time.Second
)

const (
	// inspectBuffer is how many messages wait for a slow client; past it
	// NATS drops them for this subscription (never for the pipeline).
	inspectBuffer = 64
	// maxInspectStreams and maxInspectStreamsPerTenant bound the open
	// inspection streams; more answer 429.
	maxInspectStreams          = 64
	maxInspectStreamsPerTenant = 4
)

// InspectInput selects the stage to watch.
type InspectInput struct {
	IntegrationPath
	Stage  string `query:"stage" maxLength:"80" doc:"Required: in (messages entering the process stage) or out.<producer> (messages on their way to that producer)."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"20" doc:"The stream ends after this many messages."`
	Reveal bool   `query:"reveal" doc:"Include the bodies; needs scope dlq as well."`
}

// InspectedMessage is one message seen on a stage's subject.
type InspectedMessage struct {
	Time         time.Time         `json:"time" doc:"When the API saw it."`
	Stage        string            `json:"stage"`
	ID           string            `json:"id" doc:"The message's ID in its pipeline."`
	Headers      map[string]string `json:"headers,omitempty" doc:"The message's own headers."`
	Size         int64             `json:"size" doc:"The body's size in bytes."`
	Body         string            `json:"body,omitempty" doc:"Only with reveal=true, and never for a body kept in the blob store (claim-checked): as is when UTF-8 text, else base64 (body_encoding)."`
	BodyEncoding string            `json:"body_encoding,omitempty" enum:"utf-8,base64"`
	ClaimChecked bool              `json:"claim_checked,omitempty" doc:"The body is in the blob store and is not shown."`
}

// inspect serves inspect-integration.
type inspect struct {
	st       *store.Store
	accounts dataplane.Accounts
	log      *slog.Logger

	mu       sync.Mutex
	open     int
	byTenant map[string]int
}

// RegisterInspect adds inspect-integration: a Server-Sent Events stream of
// the messages passing one stage of one of the caller's tenant's
// integrations, read with a core NATS subscription in the tenant's account.
func RegisterInspect(api huma.API, st *store.Store, accounts dataplane.Accounts, log *slog.Logger) {
	h := &inspect{st: st, accounts: accounts, log: log, byTenant: map[string]int{}}
	op := huma.Operation{
		OperationID: "inspect-integration",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}/inspect",
		Summary:     "Watch the messages passing a stage",
		Description: "Streams, as Server-Sent Events (`text/event-stream`), the messages that pass one stage of the integration " +
			"from now on: `stage=in` shows those entering the process stage (what the consumer took in), " +
			"`stage=out.<producer>` those published for that producer. With a single producer the process stage hands " +
			"messages to it directly, so `out.<producer>` then shows only bodies large enough to take that hop. Each " +
			"message is an `event: message` whose data is the message's ID, headers and size, and, with `reveal=true` " +
			"(which needs scope dlq besides read), its body unless the body is kept in the blob store. The stream ends " +
			"after `limit` messages or 5 minutes, whichever comes first; a comment line every 15 seconds keeps a quiet " +
			"stream open. Watching never takes a message from the pipeline. A client that reads slowly misses messages " +
			"(at most 64 wait for it) and one that stops reading for 10 seconds is dropped. At most 4 streams per tenant " +
			"and 64 in all are open at once (429 beyond). Read it with fetch() and a stream reader: EventSource cannot " +
			"send the Authorization header. Another tenant's integration is a 404. Needs scope read.",
		Tags:     []string{"Integrations"},
		Security: requireScopes(store.ScopeRead),
		Errors:   withAuthErrors(http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
		Responses: map[string]*huma.Response{
			"200": {
				Description: "Server-Sent Events: `event: message` lines with an InspectedMessage as data, and comment lines.",
				Content: map[string]*huma.MediaType{"text/event-stream": {
					Schema: api.OpenAPI().Components.Schemas.Schema(reflectInspected, true, "InspectedMessage"),
				}},
			},
		},
	}
	huma.Register(api, op, h.serve)
}

func (h *inspect) serve(ctx context.Context, in *InspectInput) (*huma.StreamResponse, error) {
	p, _ := PrincipalFrom(ctx)
	if in.Reveal && !p.Allows(store.ScopeDLQ) {
		return nil, huma.Error403Forbidden("reveal=true needs scope dlq: bodies are shown only to keys that may read dead letters")
	}
	if !spec.ValidName(in.IntegrationID) {
		return nil, huma.Error404NotFound("not found")
	}
	it, err := h.st.GetIntegration(ctx, p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, storeError(ctx, h.log, "inspect-integration", p.TenantID, err)
	}
	pl := dataplane.Pipeline{Tenant: p.TenantID, Integration: it.ID}
	subject, err := stageSubject(pl, it, in.Stage)
	if err != nil {
		return nil, err
	}
	if !h.acquire(p.TenantID) {
		return nil, huma.ErrorWithHeaders(huma.Error429TooManyRequests("too many inspection streams are open; close one or retry later"),
			http.Header{"Retry-After": {"5"}})
	}
	js, err := h.accounts.JetStream(ctx, p.TenantID)
	if err != nil {
		h.release(p.TenantID)
		h.log.Error("operation failed", "operation", "inspect-integration", "tenant", p.TenantID, "error", err)
		return nil, unavailable("the tenant's messages cannot be reached; retry later")
	}
	msgs := make(chan *nats.Msg, inspectBuffer)
	sub, err := js.Conn().ChanSubscribe(subject, msgs)
	if err == nil {
		// The server knows of the subscription before the client hears of it.
		err = js.Conn().Flush()
	}
	if err != nil {
		if sub != nil {
			_ = sub.Unsubscribe()
		}
		h.release(p.TenantID)
		h.log.Error("operation failed", "operation", "inspect-integration", "tenant", p.TenantID, "error", err)
		return nil, unavailable("the stage cannot be watched; retry later")
	}
	h.log.Info("integration inspection started", "tenant", p.TenantID, "integration", it.ID, "stage", in.Stage,
		"reveal", in.Reveal, "by_key_id", p.KeyID)
	return &huma.StreamResponse{Body: func(hctx huma.Context) {
		defer h.release(p.TenantID)
		defer func() { _ = sub.Unsubscribe() }()
		h.stream(hctx, pl, in, msgs)
	}}, nil
}

// stream writes the events until the limit, the time limit, the client's
// leaving or a write that does not go through.
func (h *inspect) stream(hctx huma.Context, pl dataplane.Pipeline, in *InspectInput, msgs <-chan *nats.Msg) {
	_, w := humago.Unwrap(hctx)
	rc := http.NewResponseController(w)
	hctx.SetHeader("Content-Type", "text/event-stream")
	hctx.SetHeader("Cache-Control", "no-store")
	hctx.SetHeader("X-Accel-Buffering", "no")
	hctx.SetStatus(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(inspectWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(": watching " + in.Stage + "\n\n")) {
		return
	}
	ctx := hctx.Context()
	deadline := time.NewTimer(inspectMaxDuration)
	defer deadline.Stop()
	keepAlive := time.NewTicker(inspectKeepAlive)
	defer keepAlive.Stop()
	for sent := 0; sent < in.Limit; {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			_ = write([]byte(": time limit reached\n\n"))
			return
		case <-keepAlive.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case m := <-msgs:
			data, err := json.Marshal(inspected(pl, in, m))
			if err != nil {
				continue
			}
			if !write([]byte("event: message\ndata: " + string(data) + "\n\n")) {
				return
			}
			sent++
		}
	}
}

// inspected describes m, with its body only when asked to reveal it.
func inspected(pl dataplane.Pipeline, in *InspectInput, m *nats.Msg) InspectedMessage {
	msg, ref, size, err := dataplane.Decode(pl, m.Header, m.Data)
	out := InspectedMessage{Time: time.Now().UTC(), Stage: in.Stage, ID: msg.ID, Headers: msg.Headers, Size: size, ClaimChecked: ref != ""}
	if err != nil && out.ID == "" {
		out.ID = m.Header.Get(nats.MsgIdHdr)
	}
	if in.Reveal && ref == "" {
		if utf8.Valid(msg.Body) {
			out.Body, out.BodyEncoding = string(msg.Body), "utf-8"
		} else {
			out.Body, out.BodyEncoding = base64.StdEncoding.EncodeToString(msg.Body), "base64"
		}
	}
	return out
}

// stageSubject is the subject of stage of the integration, or a located 422.
func stageSubject(pl dataplane.Pipeline, it store.Integration, stage string) (string, error) {
	if stage == "in" {
		return pl.InSubject(), nil
	}
	if producer, ok := strings.CutPrefix(stage, "out."); ok && spec.ValidName(producer) {
		if _, known := it.Spec.Producers[producer]; known {
			return pl.OutSubject(producer), nil
		}
		return "", huma.Error422UnprocessableEntity("unknown producer",
			&huma.ErrorDetail{Location: "query.stage", Message: fmt.Sprintf("the integration has no producer %q", producer), Value: stage})
	}
	return "", huma.Error422UnprocessableEntity("unknown stage",
		&huma.ErrorDetail{Location: "query.stage", Message: "in, or out.<producer>", Value: stage})
}

func (h *inspect) acquire(tenant string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open >= maxInspectStreams || h.byTenant[tenant] >= maxInspectStreamsPerTenant {
		return false
	}
	h.open++
	h.byTenant[tenant]++
	return true
}

func (h *inspect) release(tenant string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.open--
	if h.byTenant[tenant]--; h.byTenant[tenant] <= 0 {
		delete(h.byTenant, tenant)
	}
}

var reflectInspected = reflect.TypeFor[InspectedMessage]()
