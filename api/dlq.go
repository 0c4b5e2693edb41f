package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/store"
)

// MaxDeadLetterBody is the largest body get-dead-letter returns; larger
// bodies are left out (body_omitted).
const MaxDeadLetterBody = 1 << 20

// DeadLetter is a message a stage gave up on, as the DLQ keeps it.
type DeadLetter struct {
	ID          string            `json:"id" doc:"The dead letter's ID: its sequence number in the tenant's DLQ, as a string."`
	MessageID   string            `json:"message_id" doc:"The message's own ID in its pipeline."`
	Integration string            `json:"integration"`
	Stage       string            `json:"stage" doc:"Where it failed: process (converters and filters) or deliver-<producer>."`
	Producer    string            `json:"producer,omitempty" doc:"The producer it could not be delivered to, for deliver stages."`
	Error       string            `json:"error" doc:"Why it failed the last time."`
	Attempts    int               `json:"attempts"`
	Subject     string            `json:"subject" doc:"The pipeline subject it failed on; a replay publishes it there again."`
	At          time.Time         `json:"at" doc:"When it was dead-lettered."`
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty" doc:"The message's own headers."`
	BodySize    int64             `json:"body_size"`
	ClaimCheck  bool              `json:"claim_checked" doc:"Whether the body is kept in the blob store rather than in the DLQ."`
}

func deadLetterOut(d dataplane.DeadLetter) DeadLetter {
	out := DeadLetter{
		ID: strconv.FormatUint(d.Seq, 10), MessageID: d.MessageID, Integration: d.Integration, Stage: d.Stage,
		Error: d.Reason, Attempts: d.Attempts, Subject: d.Subject, At: d.At, ContentType: d.ContentType,
		Headers: d.Headers, BodySize: d.BodySize, ClaimCheck: d.BodyRef != "",
	}
	if p, ok := strings.CutPrefix(d.Stage, dataplane.DeliverStage("")); ok {
		out.Producer = p
	}
	return out
}

// DLQFilterQuery selects dead letters in the query string.
type DLQFilterQuery struct {
	Integration string    `query:"integration" maxLength:"63" doc:"Only this integration's dead letters."`
	Producer    string    `query:"producer" maxLength:"63" doc:"Only those that failed delivering to this producer."`
	Since       time.Time `query:"since" doc:"Only those dead-lettered at or after this time (RFC 3339)."`
	Until       time.Time `query:"until" doc:"Only those dead-lettered before this time (RFC 3339)."`
	Error       string    `query:"error" maxLength:"200" doc:"Only those whose error contains this text, ignoring case."`
}

// ListDLQInput selects a page of dead letters.
type ListDLQInput struct {
	DLQFilterQuery
	Cursor string `query:"cursor" maxLength:"20" doc:"The next value of the previous page; empty for the oldest dead letters."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Page size."`
}

// ListDLQOutput is one page of dead letters, oldest first.
type ListDLQOutput struct {
	Link string `header:"Link" doc:"rel=\"next\" link to the next page, when there is one."`
	Body struct {
		Items []DeadLetter `json:"items"`
		Next  string       `json:"next,omitempty" doc:"Cursor of the next page; absent on the last page. A page may be short and still have a next one."`
	}
}

// DeadLetterPath names one of the caller's tenant's dead letters.
type DeadLetterPath struct {
	MessageID string `path:"messageId" maxLength:"20" doc:"The dead letter's ID: its DLQ sequence number (the id of list-dead-letters), not the message's own ID."`
}

// DeadLetterWithBody is a dead letter with its body.
type DeadLetterWithBody struct {
	DeadLetter
	Body         string `json:"body,omitempty" doc:"The body: as is when it is UTF-8 text, else base64 (see body_encoding)."`
	BodyEncoding string `json:"body_encoding,omitempty" enum:"utf-8,base64"`
	BodyOmitted  bool   `json:"body_omitted,omitempty" doc:"The body is over 1 MiB and not returned."`
}

// DeadLetterOutput is one dead letter.
type DeadLetterOutput struct {
	Body DeadLetterWithBody
}

// DLQActionBody selects the dead letters to replay or discard.
type DLQActionBody struct {
	Integration string    `json:"integration,omitempty" maxLength:"63" doc:"Only this integration's dead letters."`
	Producer    string    `json:"producer,omitempty" maxLength:"63" doc:"Only those that failed delivering to this producer."`
	Since       time.Time `json:"since,omitzero" doc:"Only those dead-lettered at or after this time."`
	Until       time.Time `json:"until,omitzero" doc:"Only those dead-lettered before this time."`
	Error       string    `json:"error,omitempty" maxLength:"200" doc:"Only those whose error contains this text, ignoring case."`
	IDs         []string  `json:"ids,omitempty" maxItems:"1000" doc:"Only these dead letters (IDs from list-dead-letters); the filters still apply."`
	MaxMessages int       `json:"max_messages,omitempty" minimum:"0" doc:"At most this many; 0 means all that match."`
}

// DLQActionInput asks for a replay or a discard.
type DLQActionInput struct {
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"200" doc:"Repeating a request with the same key starts it once."`
	Body           *DLQActionBody
}

// DLQActionAccepted says the replay or discard was started.
type DLQActionAccepted struct {
	WorkflowID string `json:"workflow_id" doc:"The DLQReplay workflow carrying it out."`
	ReplayID   string `json:"replay_id" doc:"Follow its progress with GET /v1/dlq/replays/{replay_id}."`
}

// DLQActionOutput is a started replay or discard.
type DLQActionOutput struct {
	Body DLQActionAccepted
}

// dlq serves the DLQ operations.
type dlq struct {
	accounts dataplane.Accounts
	claims   *dataplane.ClaimCheck
	control  *control.Client // nil: replay and discard answer 503
	log      *slog.Logger
}

// RegisterDLQ adds the operations on the caller's tenant's dead letters:
// list and inspect (read from the tenant's DLQ stream in its account, bodies
// from the blob store through claims) and replay and discard (a DLQReplay
// workflow started through ctl; nil makes them answer 503).
func RegisterDLQ(api huma.API, accounts dataplane.Accounts, claims *dataplane.ClaimCheck, ctl *control.Client, log *slog.Logger) {
	h := &dlq{accounts: accounts, claims: claims, control: ctl, log: log}
	scope := requireScopes(store.ScopeDLQ)
	tags := []string{"DLQ"}

	huma.Register(api, huma.Operation{
		OperationID: "list-dead-letters",
		Method:      http.MethodGet,
		Path:        "/v1/dlq",
		Summary:     "List dead letters",
		Description: "Lists the caller's tenant's dead-lettered messages, oldest first, without their bodies, one page at a time: " +
			"follow `next` (or the Link header) until it is absent. Filters: integration, producer, time range (since, until) " +
			"and text in the error. Needs scope dlq.",
		Tags:     tags,
		Security: scope,
		Errors:   withAuthErrors(http.StatusUnprocessableEntity),
	}, h.list)

	huma.Register(api, huma.Operation{
		OperationID: "get-dead-letter",
		Method:      http.MethodGet,
		Path:        "/v1/dlq/{messageId}",
		Summary:     "Get a dead letter",
		Description: "Returns one dead letter with its headers and body. `messageId` is the dead letter's `id` from " +
			"list-dead-letters (its sequence number in the tenant's DLQ), not the message's own ID. The body is returned as is " +
			"when it is UTF-8 text and in base64 otherwise (`body_encoding`); bodies over 1 MiB are left out. Needs scope dlq.",
		Tags:     tags,
		Security: scope,
		Errors:   withAuthErrors(http.StatusNotFound),
	}, h.get)

	for _, op := range []struct {
		id, path, summary, doc string
		handler                func(context.Context, *DLQActionInput) (*DLQActionOutput, error)
	}{
		{"replay-dead-letters", "/v1/dlq/replay", "Replay dead letters",
			"Publishes the selected dead letters to the pipeline stage they failed at, each once, and removes them from the DLQ. " +
				"Only dead letters already in the DLQ when the replay starts are replayed; one that fails again returns to the DLQ. " +
				"Replaying into a deleted integration fails and keeps the dead letters.", h.replay},
		{"discard-dead-letters", "/v1/dlq/discard", "Discard dead letters",
			"Removes the selected dead letters from the DLQ for good.", h.discard},
	} {
		huma.Register(api, huma.Operation{
			OperationID: op.id,
			Method:      http.MethodPost,
			Path:        op.path,
			Summary:     op.summary,
			Description: op.doc + " The body selects them with the filters of list-dead-letters and, optionally, a list of `ids`; " +
				"an empty body selects every dead letter. It returns 202 at once with `replay_id` (follow the progress with " +
				"get-dlq-replay) and the DLQReplay workflow's ID; " +
				"503 when the control plane is unavailable (retry with the same `Idempotency-Key`). Needs scope dlq.",
			Tags:          tags,
			Security:      scope,
			DefaultStatus: http.StatusAccepted,
			MaxBodyBytes:  MaxJSONBody,
			Errors:        withAuthErrors(http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
		}, op.handler)
	}

	huma.Register(api, huma.Operation{
		OperationID: "get-dlq-replay",
		Method:      http.MethodGet,
		Path:        "/v1/dlq/replays/{replayId}",
		Summary:     "Get a replay's or discard's progress",
		Description: "Returns the progress of a replay or discard started by replay-dead-letters or discard-dead-letters, " +
			"named by the `replay_id` they returned: `state` (running, completed or failed), `total` (the dead letters " +
			"selected when it started), `done` (replayed or discarded so far) and `failed` (those a failed run left " +
			"untouched). `total` is counted when it starts: exactly when the selection is all dead letters or one " +
			"integration's, else by scanning at most 1,000 dead letters, above which it is a lower bound and never less " +
			"than `done`. Dead letters removed meanwhile by someone else are neither done nor failed. Another tenant's " +
			"replay is a 404, like an unknown one; 503 when the control plane is unavailable. Needs scope dlq.",
		Tags:     tags,
		Security: scope,
		Errors:   withAuthErrors(http.StatusNotFound, http.StatusServiceUnavailable),
	}, h.progress)
}

// list answers one page of the tenant's dead letters.
func (h *dlq) list(ctx context.Context, in *ListDLQInput) (*ListDLQOutput, error) {
	p, _ := PrincipalFrom(ctx)
	var after uint64
	if in.Cursor != "" {
		var err error
		if after, err = strconv.ParseUint(in.Cursor, 10, 64); err != nil {
			return nil, huma.Error422UnprocessableEntity("invalid cursor",
				&huma.ErrorDetail{Location: "query.cursor", Message: "not a cursor of list-dead-letters", Value: in.Cursor})
		}
	}
	f := in.filter()
	if err := f.Validate(); err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	js, err := h.accounts.JetStream(ctx, p.TenantID)
	if err != nil {
		return nil, h.fail(ctx, "list-dead-letters", p.TenantID, err)
	}
	letters, next, err := dataplane.ListDLQ(ctx, js, p.TenantID, f, after, in.Limit)
	if err != nil {
		return nil, h.fail(ctx, "list-dead-letters", p.TenantID, err)
	}
	out := &ListDLQOutput{}
	out.Body.Items = make([]DeadLetter, 0, len(letters))
	for _, d := range letters {
		out.Body.Items = append(out.Body.Items, deadLetterOut(d))
	}
	if next != 0 {
		out.Body.Next = strconv.FormatUint(next, 10)
		out.Link = `</v1/dlq?` + in.nextQuery(out.Body.Next).Encode() + `>; rel="next"`
	}
	return out, nil
}

// get answers one dead letter with its body.
func (h *dlq) get(ctx context.Context, in *DeadLetterPath) (*DeadLetterOutput, error) {
	p, _ := PrincipalFrom(ctx)
	seq, err := strconv.ParseUint(in.MessageID, 10, 64)
	if err != nil {
		return nil, huma.Error404NotFound("not found")
	}
	js, err := h.accounts.JetStream(ctx, p.TenantID)
	if err != nil {
		return nil, h.fail(ctx, "get-dead-letter", p.TenantID, err)
	}
	d, body, err := dataplane.GetDeadLetter(ctx, js, h.claims, p.TenantID, seq, MaxDeadLetterBody)
	if err != nil {
		return nil, h.fail(ctx, "get-dead-letter", p.TenantID, err)
	}
	out := &DeadLetterOutput{Body: DeadLetterWithBody{DeadLetter: deadLetterOut(d)}}
	switch {
	case body == nil && d.BodySize > 0:
		out.Body.BodyOmitted = true
	case utf8.Valid(body):
		out.Body.Body, out.Body.BodyEncoding = string(body), "utf-8"
	default:
		out.Body.Body, out.Body.BodyEncoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	return out, nil
}

func (in *DLQFilterQuery) filter() dataplane.DLQFilter {
	return dataplane.DLQFilter{Integration: in.Integration, Producer: in.Producer, Since: in.Since, Until: in.Until, ErrorContains: in.Error}
}

func (in *ListDLQInput) nextQuery(cursor string) url.Values {
	q := url.Values{"cursor": {cursor}, "limit": {strconv.Itoa(in.Limit)}}
	for k, v := range map[string]string{"integration": in.Integration, "producer": in.Producer, "error": in.Error} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !in.Since.IsZero() {
		q.Set("since", in.Since.Format(time.RFC3339Nano))
	}
	if !in.Until.IsZero() {
		q.Set("until", in.Until.Format(time.RFC3339Nano))
	}
	return q
}

// replay starts replaying the selected dead letters.
func (h *dlq) replay(ctx context.Context, in *DLQActionInput) (*DLQActionOutput, error) {
	return h.start(ctx, "replay-dead-letters", in, false)
}

// discard starts discarding the selected dead letters.
func (h *dlq) discard(ctx context.Context, in *DLQActionInput) (*DLQActionOutput, error) {
	return h.start(ctx, "discard-dead-letters", in, true)
}

// start starts a DLQReplay workflow for the caller's tenant.
func (h *dlq) start(ctx context.Context, op string, in *DLQActionInput, discard bool) (*DLQActionOutput, error) {
	p, _ := PrincipalFrom(ctx)
	body := DLQActionBody{}
	if in.Body != nil {
		body = *in.Body
	}
	wf := wire.DLQReplayInput{
		Tenant: p.TenantID, Discard: discard, MaxMessages: body.MaxMessages,
		Filter: wire.DLQFilter{Integration: body.Integration, Producer: body.Producer, Since: body.Since, Until: body.Until, ErrorContains: body.Error},
	}
	if err := dataplane.DLQFilter(wf.Filter).Validate(); err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	for i, id := range body.IDs {
		seq, err := strconv.ParseUint(id, 10, 64)
		if err != nil || seq == 0 {
			return nil, huma.Error422UnprocessableEntity("invalid dead letter ID",
				&huma.ErrorDetail{Location: "body.ids[" + strconv.Itoa(i) + "]", Message: "not an ID of list-dead-letters", Value: id})
		}
		wf.Seqs = append(wf.Seqs, seq)
	}
	if h.control == nil {
		return nil, unavailable("replay and discard are unavailable: the control plane is not configured")
	}
	requestID := in.IdempotencyKey
	if requestID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		requestID = hex.EncodeToString(b[:])
	}
	action := "replay"
	if discard {
		action = "discard"
	}
	// Keys are the client's: scoping them by action keeps a reused key from
	// turning a discard into an earlier replay.
	total, exact := h.countSelected(ctx, p.TenantID, wf)
	id, err := h.control.StartReplay(ctx, control.Replay{Input: wf, RequestID: action + "-" + requestID, Total: total, Exact: exact})
	if err != nil {
		h.log.ErrorContext(ctx, "operation failed", "operation", op, "tenant", p.TenantID, "error", err)
		return nil, unavailable("the control plane did not start the " + action + "; retry later with the same Idempotency-Key")
	}
	filter, _ := json.Marshal(wf.Filter)
	h.log.InfoContext(ctx, "dead letters "+action+" started", "tenant", p.TenantID, "workflow_id", id, "filter", string(filter),
		"ids", len(wf.Seqs), "by_key_id", p.KeyID)
	return &DLQActionOutput{Body: DLQActionAccepted{WorkflowID: id, ReplayID: action + "-" + requestID}}, nil
}

// fail turns a hot-path error into the operation's problem response.
func (h *dlq) fail(ctx context.Context, op, tenant string, err error) error {
	if errors.Is(err, dataplane.ErrDeadLetterNotFound) {
		return huma.Error404NotFound("not found")
	}
	h.log.ErrorContext(ctx, "operation failed", "operation", op, "tenant", tenant, "error", err)
	return huma.Error500InternalServerError("internal error")
}

// Bounds of counting what a replay selects.
const (
	// maxCountScan bounds the dead letters read to count a selection that
	// the stream's subject counts cannot answer.
	maxCountScan    = 1000
	countScanBudget = 2 * time.Second
)

// countSelected counts the dead letters a replay or discard selects: from
// the DLQ stream's subject counts when the selection is every dead letter
// or one integration's, else by scanning at most maxCountScan of them
// (then exact is false). A count that cannot be read is 0, not exact.
func (h *dlq) countSelected(ctx context.Context, tenant string, wf wire.DLQReplayInput) (total int, exact bool) {
	ctx, cancel := context.WithTimeout(ctx, countScanBudget)
	defer cancel()
	js, err := h.accounts.JetStream(ctx, tenant)
	if err != nil {
		return 0, false
	}
	limit := func(n int) int {
		if wf.MaxMessages > 0 {
			return min(n, wf.MaxMessages)
		}
		return n
	}
	f := wf.Filter
	if len(wf.Seqs) == 0 && f.Producer == "" && f.Since.IsZero() && f.Until.IsZero() && f.ErrorContains == "" {
		stream, err := js.Stream(ctx, dataplane.DLQStream(tenant))
		if err != nil {
			return 0, errors.Is(err, jetstream.ErrStreamNotFound)
		}
		subject := dataplane.DLQSubjects(tenant)
		if f.Integration != "" {
			subject = dataplane.Pipeline{Tenant: tenant, Integration: f.Integration}.DLQSubject()
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
		if err != nil {
			return 0, false
		}
		var n uint64
		for _, c := range info.State.Subjects {
			n += c
		}
		return limit(int(n)), true
	}
	wanted := make(map[uint64]bool, len(wf.Seqs))
	for _, s := range wf.Seqs {
		wanted[s] = true
	}
	var after uint64
	for scanned := 0; scanned < maxCountScan; {
		letters, next, err := dataplane.ListDLQ(ctx, js, tenant, dataplane.DLQFilter(f), after, dataplane.MaxDLQPage)
		if err != nil {
			return limit(total), false
		}
		for _, d := range letters {
			if len(wanted) == 0 || wanted[d.Seq] {
				total++
			}
		}
		scanned += len(letters)
		if next == 0 {
			return limit(total), true
		}
		after = next
	}
	return limit(total), wf.MaxMessages > 0 && total >= wf.MaxMessages
}

// ReplayPath names one of the caller's tenant's replays or discards.
type ReplayPath struct {
	ReplayID string `path:"replayId" maxLength:"210" doc:"The replay_id that replay-dead-letters or discard-dead-letters returned."`
}

// ReplayProgress is how far a replay or discard got.
type ReplayProgress struct {
	ReplayID string `json:"replay_id"`
	State    string `json:"state" enum:"running,completed,failed"`
	Total    int    `json:"total" doc:"The dead letters selected when it started (see the description for when it is a lower bound)."`
	Done     int    `json:"done" doc:"Dead letters replayed or discarded so far."`
	Failed   int    `json:"failed" doc:"Dead letters a failed run left untouched; 0 unless state is failed."`
}

// ReplayProgressOutput is a replay's progress.
type ReplayProgressOutput struct {
	Body ReplayProgress
}

// progress reads a DLQReplay run's progress from the control plane.
func (h *dlq) progress(ctx context.Context, in *ReplayPath) (*ReplayProgressOutput, error) {
	p, _ := PrincipalFrom(ctx)
	action, request, ok := strings.Cut(in.ReplayID, "-")
	if !ok || (action != "replay" && action != "discard") || request == "" {
		return nil, huma.Error404NotFound("not found")
	}
	if h.control == nil {
		return nil, unavailable("replay progress is unavailable: the control plane is not configured")
	}
	pr, err := h.control.ReplayProgress(ctx, p.TenantID, in.ReplayID)
	if errors.Is(err, control.ErrNotFound) {
		return nil, huma.Error404NotFound("not found")
	}
	if err != nil {
		h.log.ErrorContext(ctx, "operation failed", "operation", "get-dlq-replay", "tenant", p.TenantID, "error", err)
		return nil, unavailable("the control plane cannot be read; retry later")
	}
	out := ReplayProgress{ReplayID: in.ReplayID, State: pr.State, Total: pr.Total, Done: pr.Done}
	if out.Done > out.Total || !pr.Exact && out.State == control.ReplayCompleted {
		out.Total = max(out.Total, out.Done)
	}
	if out.State == control.ReplayFailed {
		out.Failed = max(out.Total-out.Done, 0)
	}
	return &ReplayProgressOutput{Body: out}, nil
}
