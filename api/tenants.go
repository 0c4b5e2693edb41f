package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// MaxJSONBody bounds the JSON request bodies of the metadata operations.
const MaxJSONBody = 64 << 10

// firstKeyScopes are the scopes of the key a new tenant receives.
var firstKeyScopes = []store.Scope{store.ScopeRead, store.ScopeWrite, store.ScopeDLQ}

// Tenant is a tenant as the API shows it.
type Tenant struct {
	ID        string     `json:"id" doc:"The tenant's ID: it names the tenant's NATS account, streams and object prefix."`
	Name      string     `json:"name" doc:"Display name."`
	Status    string     `json:"status" enum:"provisioning,active,failed,deleting,deleted" doc:"provisioning until its NATS account and streams exist (its key works from active on); failed when provisioning failed (see failure_reason; everything it created was undone and the ID can be created again); deleting until everything it owned is removed."`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty" doc:"When the tenant was deleted."`
	// FailureReason says why provisioning failed.
	FailureReason string        `json:"failure_reason,omitempty" doc:"Why provisioning failed (status failed)."`
	Limits        *TenantLimits `json:"limits,omitempty" doc:"The tenant's quotas."`
	Usage         *TenantUsage  `json:"usage,omitempty" doc:"What the tenant uses of its quotas now (get-tenant only)."`
	// Egress is the tenant's egress policy, set with PATCH.
	Egress sdk.EgressPolicy `json:"egress" doc:"Where the tenant's connectors may connect, as a platform admin set it with PATCH; {} is the default: public addresses only."`
	// Placement is where the tenant's NATS streams live.
	Placement *TenantPlacement `json:"placement,omitempty" doc:"Where the tenant's NATS streams live: the shared cluster, a dedicated instance, or moving between them (list-tenants and get-tenant; move it with POST /v1/tenants/{tenantId}/placement)."`
	// PlacementHistory is the tenant's last placement changes.
	PlacementHistory []PlacementEvent `json:"placement_history,omitempty" doc:"The tenant's last 20 placement changes, newest first (get-tenant only; absent when it never moved)."`
}

func tenantOut(t store.Tenant) Tenant {
	limits := limitsOut(t.Limits)
	return Tenant{ID: t.ID, Name: t.Name, Status: t.Status, CreatedAt: t.CreatedAt, DeletedAt: t.DeletedAt,
		FailureReason: t.FailureReason, Limits: &limits, Egress: t.Egress}
}

// CreateTenantInput is the new tenant: only its ID, name and quotas can be
// given.
type CreateTenantInput struct {
	Body struct {
		ID   string `json:"id" pattern:"^[a-z0-9][a-z0-9-]{0,62}$" example:"acme" doc:"Lowercase letters, digits and hyphens, starting with a letter or digit, at most 63. Never reused, even after deletion (except after a failed provisioning)."`
		Name string `json:"name" minLength:"1" maxLength:"200" example:"Acme Corp"`
		// Limits are the tenant's quotas.
		Limits *TenantLimits `json:"limits,omitempty" doc:"The tenant's quotas; default 1 GiB disk, no memory streams, 200 streams, 2000 consumers, a 128 MiB DLQ, 100 integrations."`
	}
}

// CreateTenantOutput is the tenant, still provisioning, and its first API
// key, whose secret is shown this once.
type CreateTenantOutput struct {
	Location     string `header:"Location" doc:"The tenant: GET it until status is active (or failed)."`
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Tenant Tenant    `json:"tenant"`
		APIKey NewAPIKey `json:"api_key" doc:"The tenant's first key (scopes read, write, dlq). Its secret is shown only in this response; the key authenticates once the tenant is active, and never if provisioning fails."`
	}
}

// ListTenantsInput selects a page.
type ListTenantsInput struct {
	Cursor string `query:"cursor" maxLength:"100" doc:"The next value of the previous page; empty for the first page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Page size."`
}

// ListTenantsOutput is one page of tenants ordered by ID.
type ListTenantsOutput struct {
	Link string `header:"Link" doc:"rel=\"next\" link to the next page, when there is one."`
	Body struct {
		Items []Tenant `json:"items"`
		Next  string   `json:"next,omitempty" doc:"Cursor of the next page; absent on the last page."`
	}
}

// TenantPath names a tenant.
type TenantPath struct {
	TenantID string `path:"tenantId" maxLength:"63"`
}

// TenantOutput is one tenant.
type TenantOutput struct {
	Body Tenant
}

// tenants serves the platform admin's tenant operations.
type tenants struct {
	st       *store.Store
	control  *control.Client // nil: create and delete answer 503
	accounts dataplane.Accounts
	quotas   *dataplane.IngressQuotas
	log      *slog.Logger
}

// RegisterTenants adds the platform admin's tenant operations:
// POST/GET /v1/tenants, GET/DELETE /v1/tenants/{tenantId} and POST
// /v1/tenants/{tenantId}/placement (placement.go). Creating and
// deleting start the TenantProvision and TenantDecommission workflows
// through ctl and never wait for them; a nil ctl makes them answer 503.
// accounts, when set, gives the bytes each tenant's streams hold to
// get-tenant.
func RegisterTenants(api huma.API, st *store.Store, ctl *control.Client, accounts dataplane.Accounts, quotas *dataplane.IngressQuotas, log *slog.Logger) {
	h := &tenants{st: st, control: ctl, accounts: accounts, quotas: quotas, log: log}
	admin := requireScopes(store.ScopePlatformAdmin)
	tags := []string{"Tenants"}

	huma.Register(api, huma.Operation{
		OperationID: "create-tenant",
		Method:      http.MethodPost,
		Path:        "/v1/tenants",
		Summary:     "Create a tenant",
		Description: "Starts provisioning the tenant — its rows, its own NATS account with its quotas, its DLQ stream — and " +
			"answers 202 at once with the tenant (status provisioning), a Location to GET, and its first API key (scopes read, " +
			"write, dlq), whose secret is shown only in this response. The key authenticates once GET shows the tenant active; " +
			"if provisioning fails, GET shows status failed with failure_reason, everything created is undone, the key never " +
			"works and the ID can be created again. Platform admin key only. 409 when the ID exists or existed.",
		Tags:          tags,
		Security:      admin,
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  MaxJSONBody,
		Errors:        withAuthErrors(http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, h.create)

	huma.Register(api, huma.Operation{
		OperationID: "list-tenants",
		Method:      http.MethodGet,
		Path:        "/v1/tenants",
		Summary:     "List tenants",
		Description: "Lists tenants ordered by ID, deleted ones included, each with its placement, one page at a time: follow `next` (or the Link header) until it is absent. Platform admin key only.",
		Tags:        tags,
		Security:    admin,
		Errors:      withAuthErrors(http.StatusUnprocessableEntity),
	}, h.list)

	huma.Register(api, huma.Operation{
		OperationID: "get-tenant",
		Method:      http.MethodGet,
		Path:        "/v1/tenants/{tenantId}",
		Summary:     "Get a tenant",
		Description: "Returns the tenant, also once deleted (with status deleted) or failed (with failure_reason), its quotas, " +
			"what it uses of them now (its integrations and the bytes its streams hold), where its streams live (placement) and its " +
			"last placement changes (placement_history). Platform admin key only.",
		Tags:     tags,
		Security: admin,
		Errors:   withAuthErrors(http.StatusNotFound),
	}, h.get)

	huma.Register(api, huma.Operation{
		OperationID: "delete-tenant",
		Method:      http.MethodDelete,
		Path:        "/v1/tenants/{tenantId}",
		Summary:     "Delete a tenant",
		Description: "Revokes all the tenant's API keys at once and starts removing everything it owns — integrations, " +
			"streams, NATS account, objects; GET shows it deleting, then deleted. Its ID is never reused. Deleting a deleted " +
			"tenant succeeds (and runs the clean-up again). Platform admin key only.",
		Tags:          tags,
		Security:      admin,
		DefaultStatus: http.StatusAccepted,
		Errors:        withAuthErrors(http.StatusNotFound, http.StatusServiceUnavailable),
	}, h.delete)

	registerPlacement(api, h)
}

// create starts the tenant's provisioning and answers at once.
func (h *tenants) create(ctx context.Context, in *CreateTenantInput) (*CreateTenantOutput, error) {
	if h.control == nil {
		return nil, unavailable("tenant provisioning needs the control plane")
	}
	limits := store.DefaultTenantLimits
	if in.Body.Limits != nil {
		limits = limitsIn(*in.Body.Limits)
	}
	if err := limits.Validate(); err != nil {
		return nil, huma.Error422UnprocessableEntity(err.Error())
	}
	again := false // creating a tenant whose provisioning failed
	switch t, err := h.st.GetTenant(ctx, in.Body.ID); {
	case err == nil && t.Status != store.TenantFailed:
		return nil, huma.Error409Conflict("already exists")
	case err == nil:
		again = true
	case !errors.Is(err, store.ErrNotFound):
		return nil, storeError(ctx, h.log, "create-tenant", in.Body.ID, err)
	}
	if h.quotas != nil { // also clears quotas left by an earlier tenant of that ID
		if err := h.quotas.Put(ctx, in.Body.ID, ingressQuota(limits)); err != nil {
			h.log.ErrorContext(ctx, "operation failed", "operation", "create-tenant", "tenant", in.Body.ID, "error", err)
			return nil, unavailable("the ingress's copy of the tenant's quotas could not be written; retry later")
		}
	}
	keyID, prefix, hash, secret := store.NewKey()
	wireLimits := limitsWire(limits)
	newTenant := wire.NewTenant{ID: in.Body.ID, Name: in.Body.Name, KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Limits: &wireLimits}
	for _, s := range firstKeyScopes {
		newTenant.Scopes = append(newTenant.Scopes, string(s))
	}
	err := h.control.ProvisionTenant(ctx, wire.TenantProvisionInput{Tenant: newTenant, Limits: wireLimits.Limits}, again)
	if errors.Is(err, control.ErrExists) {
		return nil, huma.Error409Conflict("already exists")
	}
	if err != nil {
		h.log.ErrorContext(ctx, "operation failed", "operation", "create-tenant", "tenant", in.Body.ID, "error", err)
		return nil, unavailable("the control plane did not start provisioning; retry later")
	}
	// The request never waits for the run: GET tells how it ends.
	out := &CreateTenantOutput{Location: "/v1/tenants/" + in.Body.ID, CacheControl: noStore}
	created := time.Now().UTC()
	out.Body.Tenant = Tenant{ID: in.Body.ID, Name: in.Body.Name, Status: store.TenantProvisioning, CreatedAt: created}
	shown := limitsOut(limits)
	out.Body.Tenant.Limits = &shown
	out.Body.APIKey = NewAPIKey{APIKey: APIKey{ID: keyID, TenantID: in.Body.ID, Prefix: prefix, Scopes: firstKeyScopes,
		CreatedAt: created}, Secret: secret}
	h.log.InfoContext(ctx, "tenant provisioning", "tenant", in.Body.ID, "key_id", keyID)
	return out, nil
}

// list answers one page of tenants.
func (h *tenants) list(ctx context.Context, in *ListTenantsInput) (*ListTenantsOutput, error) {
	tenants, next, err := h.st.ListTenants(ctx, store.Page{Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, storeError(ctx, h.log, "list-tenants", "", err)
	}
	ids := make([]string, len(tenants))
	for i, t := range tenants {
		ids[i] = t.ID
	}
	placements, err := h.st.PlacementsOf(ctx, ids)
	if err != nil {
		return nil, storeError(ctx, h.log, "list-tenants", "", err)
	}
	out := &ListTenantsOutput{}
	out.Body.Items = make([]Tenant, 0, len(tenants))
	for _, t := range tenants {
		shown := tenantOut(t)
		shown.Placement = placementOut(placements[t.ID], t.CreatedAt)
		out.Body.Items = append(out.Body.Items, shown)
	}
	if next != "" {
		out.Body.Next = next
		q := url.Values{"cursor": {next}, "limit": {strconv.Itoa(in.Limit)}}
		out.Link = `</v1/tenants?` + q.Encode() + `>; rel="next"`
	}
	return out, nil
}

// get answers one tenant with its usage.
func (h *tenants) get(ctx context.Context, in *TenantPath) (*TenantOutput, error) {
	if !spec.ValidName(in.TenantID) {
		return nil, huma.Error404NotFound("not found")
	}
	t, err := h.st.GetTenant(ctx, in.TenantID)
	if err != nil {
		return nil, storeError(ctx, h.log, "get-tenant", in.TenantID, err)
	}
	out := &TenantOutput{Body: tenantOut(t)}
	out.Body.Usage = tenantUsage(ctx, h.st, h.accounts, t, h.log)
	// Placement comes from PostgreSQL only, where the TenantPlacement
	// workflow records every step: reading it never asks Temporal.
	p, err := h.st.GetPlacement(ctx, t.ID)
	if err != nil {
		return nil, storeError(ctx, h.log, "get-tenant", t.ID, err)
	}
	out.Body.Placement = placementOut(p, t.CreatedAt)
	events, err := h.st.PlacementHistory(ctx, t.ID, placementHistoryShown)
	if err != nil {
		return nil, storeError(ctx, h.log, "get-tenant", t.ID, err)
	}
	if len(events) > 0 {
		out.Body.PlacementHistory = placementHistoryOut(events)
	}
	return out, nil
}

// delete revokes the tenant's keys and starts its decommissioning.
func (h *tenants) delete(ctx context.Context, in *TenantPath) (*struct{}, error) {
	if !spec.ValidName(in.TenantID) {
		return nil, huma.Error404NotFound("not found")
	}
	if h.control == nil {
		return nil, unavailable("tenant decommissioning needs the control plane")
	}
	if err := h.st.DeleteTenant(ctx, in.TenantID); err != nil {
		return nil, storeError(ctx, h.log, "delete-tenant", in.TenantID, err)
	}
	if err := h.control.DecommissionTenant(ctx, in.TenantID); err != nil {
		h.log.ErrorContext(ctx, "operation failed", "operation", "delete-tenant", "tenant", in.TenantID, "error", err)
		return nil, unavailable("the tenant's keys are revoked but the control plane did not start removing it; retry the delete")
	}
	h.log.InfoContext(ctx, "tenant deleted", "tenant", in.TenantID)
	return nil, nil
}
