package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// changeAcceptTimeout bounds how long a lifecycle change may take to be
// accepted (or refused) by the integration's workflow: the request waits for
// that, never for the change to be carried out.
const changeAcceptTimeout = 15 * time.Second

// IntegrationSpec is an integration's spec: its name, the consumer that
// takes data in, the ordered converters and filters, and the named
// producers, each with its connector's config.
type IntegrationSpec spec.Integration

// Integration is an integration with its latest spec.
type Integration struct {
	ID              string          `json:"id" doc:"The integration's ID: its spec's name."`
	Name            string          `json:"name"`
	Version         int             `json:"version" doc:"The latest spec version; the ETag is \"v<version>\"."`
	DeployedVersion int             `json:"deployed_version" doc:"The version the lifecycle last rolled out; 0 before the first deploy."`
	DesiredStatus   string          `json:"desired_status" doc:"What was last asked for: running or stopped."`
	Status          string          `json:"status" doc:"What the runners last reported: running, stopped, degraded, or pending while they have not confirmed."`
	LastError       string          `json:"last_error,omitempty"`
	Spec            IntegrationSpec `json:"spec" doc:"The latest version's spec."`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

func integrationOut(in store.Integration) Integration {
	return Integration{
		ID: in.ID, Name: in.Name, Version: in.Version, DeployedVersion: in.DeployedVersion,
		DesiredStatus: in.DesiredStatus, Status: in.Status, LastError: in.LastError,
		Spec: IntegrationSpec(in.Spec), CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}
}

func etag(version int) string { return `"v` + strconv.Itoa(version) + `"` }

// IntegrationPath names one of the caller's tenant's integrations.
type IntegrationPath struct {
	IntegrationID string `path:"integrationId" maxLength:"63"`
}

// SpecBody is a spec document: JSON, or YAML with Content-Type
// application/yaml.
type SpecBody struct {
	ContentType string `header:"Content-Type"`
	RawBody     []byte
}

// CreateIntegrationInput is the spec of the new integration.
type CreateIntegrationInput struct {
	SpecBody
}

// IntegrationOutput is one integration and its version as an ETag.
type IntegrationOutput struct {
	ETag string `header:"ETag" doc:"\"v<version>\" of the latest spec version; send it back in If-Match when updating."`
	Body Integration
}

// CreateIntegrationOutput is the new integration and where it lives.
type CreateIntegrationOutput struct {
	Location string `header:"Location"`
	ETag     string `header:"ETag"`
	Body     Integration
}

// ListIntegrationsInput selects a page, optionally by status.
type ListIntegrationsInput struct {
	Cursor string `query:"cursor" maxLength:"100" doc:"The next value of the previous page; empty for the first page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Page size."`
	Status string `query:"status" enum:"running,stopped,degraded,pending" doc:"Only integrations in this status."`
}

// ListIntegrationsOutput is one page of integrations ordered by ID.
type ListIntegrationsOutput struct {
	Link string `header:"Link" doc:"rel=\"next\" link to the next page, when there is one."`
	Body struct {
		Items []Integration `json:"items"`
		Next  string        `json:"next,omitempty" doc:"Cursor of the next page; absent on the last page."`
	}
}

// UpdateIntegrationInput is a new spec version for an integration.
type UpdateIntegrationInput struct {
	IntegrationPath
	IfMatch string `header:"If-Match" doc:"\"v<version>\": store the new version only if that is still the latest (else 412)."`
	SpecBody
}

// ChangeInput asks for a lifecycle change, optionally idempotently.
type ChangeInput struct {
	IntegrationPath
	IdempotencyKey string `header:"Idempotency-Key" maxLength:"200" doc:"Repeating a request with the same key asks for the same change once."`
}

// ChangeReason says why a change is asked for; it goes into the execution
// log.
type ChangeReason struct {
	Reason string `json:"reason,omitempty" maxLength:"500" doc:"Why; recorded in the execution log."`
}

// DeployInput asks to deploy a version (default the latest) and run it.
type DeployInput struct {
	ChangeInput
	Body *struct {
		Version int    `json:"version,omitempty" minimum:"1" doc:"The spec version to deploy; default the latest."`
		Reason  string `json:"reason,omitempty" maxLength:"500" doc:"Why; recorded in the execution log."`
	}
}

// StartStopInput asks to start or stop the deployed version.
type StartStopInput struct {
	ChangeInput
	Body *ChangeReason
}

// DeleteInput asks to delete an integration.
type DeleteInput struct {
	ChangeInput
}

// ChangeAccepted says that the integration's lifecycle accepted a change; it
// is carried out in the background (follow it with get-integration-status
// and list-integration-logs).
type ChangeAccepted struct {
	WorkflowID string `json:"workflow_id" doc:"The integration's lifecycle workflow."`
	UpdateID   string `json:"update_id" doc:"The change's ID within the workflow."`
	Action     string `json:"action" enum:"deploy,start,stop,delete"`
	Version    int    `json:"version" doc:"The spec version the change is about."`
}

// ChangeOutput is an accepted change.
type ChangeOutput struct {
	Body ChangeAccepted
}

// RunnerStatus is what the runners last reported about an integration.
type RunnerStatus struct {
	Runner    string    `json:"runner" doc:"The runner that reported."`
	Version   int       `json:"version"`
	Status    string    `json:"status" enum:"running,stopped,degraded"`
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// IntegrationStatus is an integration's recorded state and, when the hot
// path is reachable, what its runners report right now.
type IntegrationStatus struct {
	ID            string        `json:"id"`
	Status        string        `json:"status" doc:"Recorded by the lifecycle: running, stopped, degraded or pending."`
	DesiredStatus string        `json:"desired_status"`
	Version       int           `json:"version" doc:"The deployed version; 0 before the first deploy."`
	LatestVersion int           `json:"latest_version"`
	LastError     string        `json:"last_error,omitempty"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Runner        *RunnerStatus `json:"runner,omitempty" doc:"The runners' live report; absent when none reported or the hot path is not configured."`
	// Stages are the live counters of each stage (from JetStream).
	Stages []dataplane.StageCount `json:"stages,omitempty" doc:"Per-stage counters: finished, waiting, in flight, redelivered."`
	// DeadLetters counts the integration's messages in the tenant's DLQ.
	DeadLetters uint64 `json:"dead_letters" doc:"The integration's messages in the dead-letter queue."`
}

// IntegrationStatusOutput is an integration's status.
type IntegrationStatusOutput struct {
	Body IntegrationStatus
}

// IntegrationEvent is one entry of the execution log.
type IntegrationEvent struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Actor      string    `json:"actor" doc:"Who asked: an API key ID."`
	Action     string    `json:"action"`
	FromStatus string    `json:"from_status,omitempty"`
	ToStatus   string    `json:"to_status,omitempty"`
	Reason     string    `json:"reason,omitempty"`
}

// ListLogsInput selects a page of the execution log.
type ListLogsInput struct {
	IntegrationPath
	Cursor string `query:"cursor" maxLength:"20" doc:"The next value of the previous page; empty for the newest entries."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Page size."`
}

// ListLogsOutput is one page of the execution log, newest first.
type ListLogsOutput struct {
	Link string `header:"Link" doc:"rel=\"next\" link to the next (older) page, when there is one."`
	Body struct {
		Items []IntegrationEvent `json:"items"`
		Next  string             `json:"next,omitempty" doc:"Cursor of the next page; absent on the last page."`
	}
}

// IntegrationVersion is one version of a spec.
type IntegrationVersion struct {
	Version   int             `json:"version"`
	Spec      IntegrationSpec `json:"spec"`
	CreatedAt time.Time       `json:"created_at"`
	CreatedBy string          `json:"created_by,omitempty" doc:"The API key that wrote it."`
}

// ListVersionsOutput is every version of a spec, newest first.
type ListVersionsOutput struct {
	Body struct {
		Items []IntegrationVersion `json:"items"`
	}
}

// integrations serves the integration operations.
type integrations struct {
	st         *store.Store
	control    *control.Client // nil: lifecycle changes answer 503
	state      *dataplane.State
	accounts   dataplane.Accounts
	log        *slog.Logger
	envAllowed func(name string) bool
	steps      stepBuilder
}

// RegisterIntegrations adds the operations on the caller's tenant's
// integrations: CRUD and versions (PostgreSQL), deploy, start, stop and
// delete (the integration's lifecycle workflow, through ctl), status (with the runners' live report from state and the
// stages' counters from the tenant's account, when set) and
// the execution log. A nil ctl leaves the lifecycle operations answering 503.
// envAllowed is the operator's allow-list of environment variables tenants
// may read: a spec with any other {"env": NAME} is refused; nil allows none.
func RegisterIntegrations(api huma.API, st *store.Store, ctl *control.Client, state *dataplane.State, accounts dataplane.Accounts, log *slog.Logger,
	envAllowed func(name string) bool, tenancy sdk.Tenancy) {
	h := &integrations{st: st, control: ctl, state: state, accounts: accounts, log: log, envAllowed: envAllowed,
		steps: stepBuilder{catalog: connectors.Catalog(), tenancy: tenancy, log: log}}
	read := requireScopes(store.ScopeRead)
	write := requireScopes(store.ScopeWrite)
	tags := []string{"Integrations"}
	const bodies = "The body is the spec as JSON (`Content-Type: application/json`, the default) " +
		"or as YAML (`Content-Type: application/yaml`), at most 1 MiB. Every problem found in it, " +
		"including each connector's config checked against its schema, is listed in the 422 " +
		"problem's `errors`, each with its location (`body.steps[1].config`). A config may read an environment " +
		"variable with `{\"env\": NAME}` only if the operator allow-lists NAME (VRSKY_TENANT_ENV_ALLOW); any other is refused, " +
		"and secrets go in tenant secrets (`PUT /v1/secrets/{name}`, then `{\"secret\": NAME}`). Each converter and filter is also " +
		"built as the runners build it: one whose expression or template does not compile is refused with 422 at its " +
		"`body.steps[i].config`."

	huma.Register(api, huma.Operation{
		OperationID: "create-integration",
		Method:      http.MethodPost,
		Path:        "/v1/integrations",
		Summary:     "Create an integration",
		Description: "Creates an integration from its spec, as version 1; its ID is the spec's name. It is not deployed: " +
			"deploy it with deploy-integration. " + bodies + " 409 when the name is taken. Needs scope write.",
		Tags:          tags,
		Security:      write,
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  spec.MaxSpecBytes,
		Errors:        withAuthErrors(http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity),
	}, h.create)
	documentSpecBody(api, "/v1/integrations", http.MethodPost)

	huma.Register(api, huma.Operation{
		OperationID: "list-integrations",
		Method:      http.MethodGet,
		Path:        "/v1/integrations",
		Summary:     "List integrations",
		Description: "Lists the caller's tenant's integrations ordered by ID, with their latest spec, one page at a time: " +
			"follow `next` (or the Link header) until it is absent. `status` keeps only integrations in that status. Needs scope read.",
		Tags:     tags,
		Security: read,
		Errors:   withAuthErrors(http.StatusUnprocessableEntity),
	}, h.list)

	huma.Register(api, huma.Operation{
		OperationID: "get-integration",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}",
		Summary:     "Get an integration",
		Description: "Returns the integration with its latest spec; the ETag names that version. Needs scope read.",
		Tags:        tags,
		Security:    read,
		Errors:      withAuthErrors(http.StatusNotFound),
	}, h.getOne)

	huma.Register(api, huma.Operation{
		OperationID: "update-integration",
		Method:      http.MethodPut,
		Path:        "/v1/integrations/{integrationId}",
		Summary:     "Update an integration's spec",
		Description: "Stores the spec as the integration's next version; the spec's name must be the integration's ID. " +
			"With `If-Match: \"v<N>\"` it does so only if N is still the latest version (412 otherwise). " +
			"It does not roll the version out: deploy it with deploy-integration. " + bodies + " Needs scope write.",
		Tags:         tags,
		Security:     write,
		MaxBodyBytes: spec.MaxSpecBytes,
		Errors: withAuthErrors(http.StatusNotFound, http.StatusPreconditionFailed, http.StatusRequestEntityTooLarge,
			http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity),
	}, h.update)
	documentSpecBody(api, "/v1/integrations/{integrationId}", http.MethodPut)

	changeErrors := withAuthErrors(http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity, http.StatusServiceUnavailable)
	const changeDoc = " It returns 202 as soon as the integration's lifecycle workflow accepted the change, which it then carries out: " +
		"follow it with get-integration-status and list-integration-logs. 409 when the integration's state does not allow it; " +
		"503 when the control plane is unavailable (retry with the same `Idempotency-Key`). Needs scope write."

	huma.Register(api, huma.Operation{
		OperationID:   "delete-integration",
		Method:        http.MethodDelete,
		Path:          "/v1/integrations/{integrationId}",
		Summary:       "Delete an integration",
		Description:   "Stops the integration, removes it from the runners and deletes it with its versions; its execution log stays." + changeDoc,
		Tags:          tags,
		Security:      write,
		DefaultStatus: http.StatusAccepted,
		Errors:        changeErrors,
	}, h.delete)

	huma.Register(api, huma.Operation{
		OperationID:   "deploy-integration",
		Method:        http.MethodPost,
		Path:          "/v1/integrations/{integrationId}/deploy",
		Summary:       "Deploy an integration",
		Description:   "Rolls a spec version out to the runners and runs it: `version` (default the latest) must not be older than the deployed one." + changeDoc,
		Tags:          tags,
		Security:      write,
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  MaxJSONBody,
		Errors:        changeErrors,
	}, h.deploy)

	for _, op := range []struct {
		id, action, summary, doc string
		handler                  func(context.Context, *StartStopInput) (*ChangeOutput, error)
	}{
		{"start-integration", wire.IntegrationStart, "Start an integration", "Runs the deployed version again after a stop.", h.start},
		{"stop-integration", wire.IntegrationStop, "Stop an integration", "Stops the deployed version; messages already taken in stay in its stream until it starts again.", h.stop},
	} {
		huma.Register(api, huma.Operation{
			OperationID:   op.id,
			Method:        http.MethodPost,
			Path:          "/v1/integrations/{integrationId}/" + op.action,
			Summary:       op.summary,
			Description:   op.doc + " 409 before the first deploy." + changeDoc,
			Tags:          tags,
			Security:      write,
			DefaultStatus: http.StatusAccepted,
			MaxBodyBytes:  MaxJSONBody,
			Errors:        changeErrors,
		}, op.handler)
	}

	huma.Register(api, huma.Operation{
		OperationID: "get-integration-status",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}/status",
		Summary:     "Get an integration's status",
		Description: "Returns what the lifecycle recorded (status, deployed version, last error) and, when the runners reported, " +
			"their live status under `runner`, with each stage's counters and the number of dead letters. Needs scope read.",
		Tags:     tags,
		Security: read,
		Errors:   withAuthErrors(http.StatusNotFound),
	}, h.status)

	huma.Register(api, huma.Operation{
		OperationID: "list-integration-logs",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}/logs",
		Summary:     "List an integration's execution log",
		Description: "Lists the integration's lifecycle changes, newest first, with who asked and why, one page at a time: " +
			"follow `next` (or the Link header) until it is absent. The log outlives a deleted integration. Needs scope read.",
		Tags:     tags,
		Security: read,
		Errors:   withAuthErrors(http.StatusNotFound, http.StatusUnprocessableEntity),
	}, h.logs)

	huma.Register(api, huma.Operation{
		OperationID: "list-integration-versions",
		Method:      http.MethodGet,
		Path:        "/v1/integrations/{integrationId}/versions",
		Summary:     "List an integration's spec versions",
		Description: "Lists every version of the integration's spec, newest first, with who wrote it. Needs scope read.",
		Tags:        tags,
		Security:    read,
		Errors:      withAuthErrors(http.StatusNotFound),
	}, h.versions)
}

// create stores a new integration as version 1.
func (h *integrations) create(ctx context.Context, in *CreateIntegrationInput) (*CreateIntegrationOutput, error) {
	p, _ := PrincipalFrom(ctx)
	s, err := parseSpec(in.SpecBody, h.envAllowed)
	if err != nil {
		return nil, err
	}
	if err := h.steps.check(ctx, "body", p.TenantID, s); err != nil {
		return nil, err
	}
	created, err := h.st.CreateIntegration(ctx, p.TenantID, s, p.KeyID)
	if err != nil {
		return nil, storeError(ctx, h.log, "create-integration", p.TenantID, err)
	}
	h.log.InfoContext(ctx, "integration created", "tenant", p.TenantID, "integration", created.ID, "by_key_id", p.KeyID)
	return &CreateIntegrationOutput{
		Location: "/v1/integrations/" + created.ID, ETag: etag(created.Version), Body: integrationOut(created),
	}, nil
}

// list answers one page of the tenant's integrations.
func (h *integrations) list(ctx context.Context, in *ListIntegrationsInput) (*ListIntegrationsOutput, error) {
	p, _ := PrincipalFrom(ctx)
	list, next, err := h.st.ListIntegrations(ctx, p.TenantID, store.Page{Cursor: in.Cursor, Limit: in.Limit}, in.Status)
	if err != nil {
		return nil, storeError(ctx, h.log, "list-integrations", p.TenantID, err)
	}
	out := &ListIntegrationsOutput{}
	out.Body.Items = make([]Integration, 0, len(list))
	for _, it := range list {
		out.Body.Items = append(out.Body.Items, integrationOut(it))
	}
	if next != "" {
		out.Body.Next = next
		q := url.Values{"cursor": {next}, "limit": {strconv.Itoa(in.Limit)}}
		if in.Status != "" {
			q.Set("status", in.Status)
		}
		out.Link = `</v1/integrations?` + q.Encode() + `>; rel="next"`
	}
	return out, nil
}

// getOne answers one integration with its latest spec.
func (h *integrations) getOne(ctx context.Context, in *IntegrationPath) (*IntegrationOutput, error) {
	p, _ := PrincipalFrom(ctx)
	it, err := h.get(ctx, "get-integration", p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	return &IntegrationOutput{ETag: etag(it.Version), Body: integrationOut(it)}, nil
}

// update stores a new version of the spec.
func (h *integrations) update(ctx context.Context, in *UpdateIntegrationInput) (*IntegrationOutput, error) {
	p, _ := PrincipalFrom(ctx)
	if _, err := h.get(ctx, "update-integration", p.TenantID, in.IntegrationID); err != nil {
		return nil, err
	}
	s, err := parseSpec(in.SpecBody, h.envAllowed)
	if err != nil {
		return nil, err
	}
	if err := h.steps.check(ctx, "body", p.TenantID, s); err != nil {
		return nil, err
	}
	if s.Name != in.IntegrationID {
		return nil, huma.Error422UnprocessableEntity("the spec's name must be the integration's ID",
			&huma.ErrorDetail{Location: "body.name", Message: "must be " + in.IntegrationID, Value: s.Name})
	}
	ifVersion, err := parseIfMatch(in.IfMatch)
	if err != nil {
		return nil, err
	}
	updated, err := h.st.PutIntegrationVersion(ctx, p.TenantID, in.IntegrationID, s, p.KeyID, ifVersion)
	if errors.Is(err, store.ErrPrecondition) {
		return nil, huma.Error412PreconditionFailed(fmt.Sprintf("If-Match %s is not the latest version", in.IfMatch))
	}
	if err != nil {
		return nil, storeError(ctx, h.log, "update-integration", p.TenantID, err)
	}
	h.log.InfoContext(ctx, "integration updated", "tenant", p.TenantID, "integration", updated.ID, "version", updated.Version, "by_key_id", p.KeyID)
	return &IntegrationOutput{ETag: etag(updated.Version), Body: integrationOut(updated)}, nil
}

// delete asks the lifecycle to remove the integration.
func (h *integrations) delete(ctx context.Context, in *DeleteInput) (*ChangeOutput, error) {
	return h.change(ctx, "delete-integration", wire.IntegrationDelete, in.ChangeInput, 0, "")
}

// deploy asks the lifecycle to roll a version out and run it.
func (h *integrations) deploy(ctx context.Context, in *DeployInput) (*ChangeOutput, error) {
	var version int
	var reason string
	if in.Body != nil {
		version, reason = in.Body.Version, in.Body.Reason
	}
	return h.change(ctx, "deploy-integration", wire.IntegrationDeploy, in.ChangeInput, version, reason)
}

// status answers the recorded state and the runners' live report.
func (h *integrations) status(ctx context.Context, in *IntegrationPath) (*IntegrationStatusOutput, error) {
	p, _ := PrincipalFrom(ctx)
	it, err := h.get(ctx, "get-integration-status", p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	out := &IntegrationStatusOutput{Body: IntegrationStatus{
		ID: it.ID, Status: it.Status, DesiredStatus: it.DesiredStatus, Version: it.DeployedVersion,
		LatestVersion: it.Version, LastError: it.LastError, UpdatedAt: it.UpdatedAt,
	}}
	out.Body.Runner = h.runnerStatus(ctx, p.TenantID, it.ID)
	out.Body.Stages, out.Body.DeadLetters = h.counters(ctx, p.TenantID, it.ID)
	return out, nil
}

// logs answers one page of the execution log.
func (h *integrations) logs(ctx context.Context, in *ListLogsInput) (*ListLogsOutput, error) {
	p, _ := PrincipalFrom(ctx)
	if !spec.ValidName(in.IntegrationID) {
		return nil, huma.Error404NotFound("not found")
	}
	events, next, err := h.st.ListEvents(ctx, p.TenantID, in.IntegrationID, store.Page{Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, storeError(ctx, h.log, "list-integration-logs", p.TenantID, err)
	}
	out := &ListLogsOutput{}
	out.Body.Items = make([]IntegrationEvent, 0, len(events))
	for _, e := range events {
		out.Body.Items = append(out.Body.Items, IntegrationEvent{
			ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, FromStatus: e.FromStatus, ToStatus: e.ToStatus, Reason: e.Reason,
		})
	}
	if next != "" {
		out.Body.Next = next
		q := url.Values{"cursor": {next}, "limit": {strconv.Itoa(in.Limit)}}
		out.Link = `</v1/integrations/` + in.IntegrationID + `/logs?` + q.Encode() + `>; rel="next"`
	}
	return out, nil
}

// versions answers every version of the spec.
func (h *integrations) versions(ctx context.Context, in *IntegrationPath) (*ListVersionsOutput, error) {
	p, _ := PrincipalFrom(ctx)
	if !spec.ValidName(in.IntegrationID) {
		return nil, huma.Error404NotFound("not found")
	}
	versions, err := h.st.ListVersions(ctx, p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, storeError(ctx, h.log, "list-integration-versions", p.TenantID, err)
	}
	out := &ListVersionsOutput{}
	out.Body.Items = make([]IntegrationVersion, 0, len(versions))
	for _, v := range versions {
		out.Body.Items = append(out.Body.Items, IntegrationVersion{
			Version: v.Version, Spec: IntegrationSpec(v.Spec), CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy,
		})
	}
	return out, nil
}

// get returns one of the tenant's integrations, or the operation's 404.
func (h *integrations) get(ctx context.Context, op, tenant, id string) (store.Integration, error) {
	if !spec.ValidName(id) {
		return store.Integration{}, huma.Error404NotFound("not found")
	}
	it, err := h.st.GetIntegration(ctx, tenant, id)
	if err != nil {
		return store.Integration{}, storeError(ctx, h.log, op, tenant, err)
	}
	return it, nil
}

// change asks the integration's lifecycle for a change and answers as soon
// as the workflow accepted or refused it. version 0 means the latest spec
// version for a deploy and the deployed version otherwise.
func (h *integrations) change(ctx context.Context, op, action string, in ChangeInput, version int, reason string) (*ChangeOutput, error) {
	p, _ := PrincipalFrom(ctx)
	it, err := h.get(ctx, op, p.TenantID, in.IntegrationID)
	if err != nil {
		return nil, err
	}
	switch {
	case action != wire.IntegrationDeploy:
		version = it.DeployedVersion
	case version == 0:
		version = it.Version
	case version > it.Version:
		return nil, huma.Error422UnprocessableEntity(fmt.Sprintf("the integration has no version %d", version),
			&huma.ErrorDetail{Location: "body.version", Message: fmt.Sprintf("at most %d", it.Version), Value: version})
	}
	if h.control == nil {
		return nil, unavailable("lifecycle changes are unavailable: the control plane is not configured")
	}
	updateID := ""
	if in.IdempotencyKey != "" {
		// Keys are the client's: scoping them by action keeps a reused key
		// from turning a stop into an earlier start.
		updateID = action + "/" + in.IdempotencyKey
	}
	acceptCtx, cancel := context.WithTimeout(ctx, changeAcceptTimeout)
	defer cancel()
	req := wire.ChangeRequest{Version: version, Actor: p.KeyID, Reason: reason}
	change, err := h.control.ChangeIntegration(acceptCtx, p.TenantID, it.ID, action, updateID, req)
	var refused *control.RefusedError
	if errors.As(err, &refused) {
		return nil, huma.Error409Conflict(refused.Reason)
	}
	if err != nil {
		h.log.ErrorContext(ctx, "operation failed", "operation", op, "tenant", p.TenantID, "integration", it.ID, "error", err)
		return nil, unavailable("the control plane did not accept the change; retry later with the same Idempotency-Key")
	}
	h.log.InfoContext(ctx, "integration change accepted", "tenant", p.TenantID, "integration", it.ID, "action", action,
		"version", version, "by_key_id", p.KeyID)
	return &ChangeOutput{Body: ChangeAccepted{
		WorkflowID: change.WorkflowID, UpdateID: change.UpdateID, Action: action, Version: version,
	}}, nil
}

// start asks the lifecycle to run the deployed version again.
func (h *integrations) start(ctx context.Context, in *StartStopInput) (*ChangeOutput, error) {
	return h.change(ctx, "start-integration", wire.IntegrationStart, in.ChangeInput, 0, in.Body.reason())
}

// stop asks the lifecycle to stop the deployed version.
func (h *integrations) stop(ctx context.Context, in *StartStopInput) (*ChangeOutput, error) {
	return h.change(ctx, "stop-integration", wire.IntegrationStop, in.ChangeInput, 0, in.Body.reason())
}

// reason is the reason given, if a body was.
func (r *ChangeReason) reason() string {
	if r == nil {
		return ""
	}
	return r.Reason
}

func unavailable(msg string) error {
	return huma.ErrorWithHeaders(huma.NewError(http.StatusServiceUnavailable, msg), http.Header{"Retry-After": {"5"}})
}

// counters returns the stages' counters and the dead-letter count, or none
// when they cannot be read.
func (h *integrations) counters(ctx context.Context, tenant, id string) ([]dataplane.StageCount, uint64) {
	if h.accounts == nil {
		return nil, 0
	}
	js, err := h.accounts.JetStream(ctx, tenant)
	if err == nil {
		var (
			stages []dataplane.StageCount
			dead   uint64
			counts jetstream.KeyValue
		)
		if h.state != nil {
			counts = h.state.Counts
		}
		if stages, dead, err = dataplane.Counters(ctx, js, counts, dataplane.Pipeline{Tenant: tenant, Integration: id}); err == nil {
			return stages, dead
		}
	}
	h.log.WarnContext(ctx, "read stage counters", "tenant", tenant, "integration", id, "error", err)
	return nil, 0
}

// runnerStatus is the runners' live report, or nil when there is none or
// it cannot be read (the recorded state is still answered).
func (h *integrations) runnerStatus(ctx context.Context, tenant, id string) *RunnerStatus {
	if h.state == nil {
		return nil
	}
	st, ok, err := h.state.GetStatus(ctx, dataplane.Pipeline{Tenant: tenant, Integration: id})
	if err != nil {
		h.log.WarnContext(ctx, "read runner status", "tenant", tenant, "integration", id, "error", err)
		return nil
	}
	if !ok {
		return nil
	}
	return &RunnerStatus{Runner: st.Runner, Version: st.Version, Status: st.Status, LastError: st.LastError, UpdatedAt: st.UpdatedAt}
}

// parseIfMatch reads `"v<N>"` (0 for none or `*`); any other tag can never
// match, which is 412.
func parseIfMatch(h string) (int, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	tag := strings.TrimPrefix(h, "W/")
	if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(tag, `"v`), `"`)); err == nil && n > 0 && tag == etag(n) {
		return n, nil
	}
	return 0, huma.Error412PreconditionFailed(fmt.Sprintf("If-Match %s names no version: send the ETag, \"v<version>\"", h))
}

// parseSpec reads a spec document by its content type and checks it,
// connectors' configs included, and refuses every {"env": NAME} that
// envAllowed (the operator's allow-list; nil allows none) does not allow.
// Every problem is a located detail of one 422.
func parseSpec(body SpecBody, envAllowed func(name string) bool) (spec.Integration, error) {
	parse := spec.ParseJSON
	if ct := strings.TrimSpace(body.ContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return spec.Integration{}, huma.Error415UnsupportedMediaType("malformed Content-Type " + ct)
		case mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml":
			parse = spec.ParseYAML
		case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		default:
			return spec.Integration{}, huma.Error415UnsupportedMediaType("send the spec as application/json or application/yaml, not " + mt)
		}
	}
	in, err := parse(body.RawBody)
	// A spec that decoded has its shape checked again, with its connectors,
	// by ValidateSpec; one that did not decode has a single error.
	if _, checked := err.(interface{ Unwrap() []error }); err != nil && !checked {
		return spec.Integration{}, huma.Error422UnprocessableEntity("the spec does not decode",
			&huma.ErrorDetail{Location: "body", Message: err.Error()})
	}
	var details []error
	if err := connectors.ValidateSpec(in); err != nil {
		for _, e := range flattenErrors(err) {
			details = append(details, specDetail(e))
		}
	}
	details = append(details, refusedEnvRefs(in, envAllowed)...)
	if len(details) > 0 {
		return spec.Integration{}, huma.Error422UnprocessableEntity(
			fmt.Sprintf("the spec has %d problem(s); each is listed with its location", len(details)), details...)
	}
	return in, nil
}

// refusedEnvRefs locates each {"env": NAME} of the spec that tenants may
// not read: the environment of the platform's processes holds its own
// credentials (VRSKY_DATABASE_URL…), so only names the operator allow-lists
// resolve, and the rest are refused here, when the spec is applied.
func refusedEnvRefs(in spec.Integration, envAllowed func(name string) bool) []error {
	var details []error
	for _, ref := range connectors.SecretRefs(in) {
		if ref.Secret.Env == "" || (envAllowed != nil && envAllowed(ref.Secret.Env)) {
			continue
		}
		details = append(details, &huma.ErrorDetail{
			Location: "body." + ref.Location,
			Message: fmt.Sprintf(`{"env": %q} is refused: tenants may read only the environment variables the operator allows `+
				`(VRSKY_TENANT_ENV_ALLOW), and %s is not one of them; store the value as a tenant secret `+
				`(PUT /v1/secrets/{name}) and write {"secret": "<name>"}`, ref.Secret.Env, ref.Secret.Env),
			Value: ref.Secret.String(),
		})
	}
	return details
}

// specDetail locates one problem of a spec in the request body.
func specDetail(err error) *huma.ErrorDetail {
	var fe *connectors.FieldError
	if errors.As(err, &fe) {
		return &huma.ErrorDetail{Location: "body." + fe.Location, Message: fe.Err.Error()}
	}
	// spec.Validate writes "location: message".
	if loc, msg, ok := strings.Cut(err.Error(), ": "); ok && !strings.ContainsAny(loc, " \"") {
		return &huma.ErrorDetail{Location: "body." + loc, Message: msg}
	}
	return &huma.ErrorDetail{Location: "body", Message: err.Error()}
}

// flattenErrors lists the errors err joins, recursively.
func flattenErrors(err error) []error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, flattenErrors(e)...)
	}
	return out
}

// operationAt is the POST or PUT operation registered at path, or nil.
func operationAt(oapi *huma.OpenAPI, path, method string) *huma.Operation {
	item := oapi.Paths[path]
	if item == nil {
		return nil
	}
	switch method {
	case http.MethodPost:
		return item.Post
	case http.MethodPut:
		return item.Put
	}
	return nil
}

// documentSpecBody documents an operation's raw body as the spec, in JSON
// and in YAML.
func documentSpecBody(api huma.API, path, method string) {
	oapi := api.OpenAPI()
	op := operationAt(oapi, path, method)
	if op == nil || op.RequestBody == nil {
		return
	}
	schema := oapi.Components.Schemas.Schema(reflect.TypeFor[IntegrationSpec](), true, "IntegrationSpec")
	op.RequestBody.Description = "The integration spec, as JSON or as YAML (the same fields)."
	op.RequestBody.Content = map[string]*huma.MediaType{
		"application/json": {Schema: schema},
		"application/yaml": {Schema: schema},
	}
}
