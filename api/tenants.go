package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/workflows"
)

// MaxJSONBody bounds the JSON request bodies of the metadata operations.
const MaxJSONBody = 64 << 10

// firstKeyScopes are the scopes of the key a new tenant receives.
var firstKeyScopes = []store.Scope{store.ScopeRead, store.ScopeWrite, store.ScopeDLQ}

// Tenant is a tenant as the API shows it.
type Tenant struct {
	ID        string     `json:"id" doc:"The tenant's ID: it names the tenant's NATS account, streams and object prefix."`
	Name      string     `json:"name" doc:"Display name."`
	Status    string     `json:"status" enum:"provisioning,active,deleting,deleted" doc:"provisioning until its NATS account and streams exist (its key works from active on); deleting until everything it owned is removed."`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty" doc:"When the tenant was deleted."`
	// Egress is the tenant's egress policy, set with PATCH.
	Egress sdk.EgressPolicy `json:"egress" doc:"Where the tenant's connectors may connect, as a platform admin set it with PATCH; {} is the default: public addresses only."`
}

func tenantOut(t store.Tenant) Tenant {
	return Tenant{ID: t.ID, Name: t.Name, Status: t.Status, CreatedAt: t.CreatedAt, DeletedAt: t.DeletedAt, Egress: t.Egress}
}

// CreateTenantInput is the new tenant: only its ID and name can be given.
type CreateTenantInput struct {
	Body struct {
		ID   string `json:"id" pattern:"^[a-z0-9][a-z0-9-]{0,62}$" example:"acme" doc:"Lowercase letters, digits and hyphens, starting with a letter or digit, at most 63. Never reused, even after deletion."`
		Name string `json:"name" minLength:"1" maxLength:"200" example:"Acme Corp"`
		// Limits are the JetStream limits of the tenant's NATS account.
		Limits *TenantLimits `json:"limits,omitempty" doc:"JetStream limits of the tenant's NATS account; default 10 GiB disk, 256 MiB memory, 1000 streams, 10000 consumers."`
	}
}

// TenantLimits cap what the tenant's NATS account may hold.
type TenantLimits struct {
	DiskBytes   int64 `json:"disk_bytes" minimum:"1048576" doc:"Bytes of stream storage on disk."`
	MemoryBytes int64 `json:"memory_bytes" minimum:"0" doc:"Bytes of stream storage in memory."`
	Streams     int64 `json:"streams" minimum:"1" maximum:"100000"`
	Consumers   int64 `json:"consumers" minimum:"1" maximum:"1000000"`
}

// CreateTenantOutput is the tenant and its first API key, whose secret is
// shown this once.
type CreateTenantOutput struct {
	Status       int
	Location     string `header:"Location"`
	CacheControl string `header:"Cache-Control"`
	Body         struct {
		Tenant Tenant    `json:"tenant"`
		APIKey NewAPIKey `json:"api_key" doc:"The tenant's first key (scopes read, write, dlq). Its secret is shown only in this response."`
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

// provisionWait is how long create-tenant waits for provisioning before it
// answers 202 with a tenant still provisioning (a variable for tests).
var provisionWait = 20 * time.Second

// stillRunning reports whether run has not finished (a wait for its result
// ended first).
func stillRunning(ctx context.Context, control client.Client, run client.WorkflowRun) bool {
	d, err := control.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	return err == nil && d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// RegisterTenants adds the platform admin's tenant operations:
// POST/GET /v1/tenants and GET/DELETE /v1/tenants/{tenantId}. Creating and
// deleting run the TenantProvision and TenantDecommission workflows through
// control; a nil control makes them answer 503.
func RegisterTenants(api huma.API, st *store.Store, control client.Client, log *slog.Logger) {
	admin := requireScopes(store.ScopePlatformAdmin)
	tags := []string{"Tenants"}

	huma.Register(api, huma.Operation{
		OperationID: "create-tenant",
		Method:      http.MethodPost,
		Path:        "/v1/tenants",
		Summary:     "Create a tenant",
		Description: "Provisions the tenant — its rows, its own NATS account with JetStream limits, its DLQ stream — and its " +
			"first API key (scopes read, write, dlq), and returns both; the key's secret is shown only in this response. " +
			"201 when the tenant is active; 202 when provisioning takes longer (the key works once GET shows it active). " +
			"A provisioning that fails is undone and answers 503. Platform admin key only. 409 when the ID exists or existed.",
		Tags:          tags,
		Security:      admin,
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  MaxJSONBody,
		Errors:        withAuthErrors(http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, func(ctx context.Context, in *CreateTenantInput) (*CreateTenantOutput, error) {
		if control == nil {
			return nil, unavailable("tenant provisioning needs the control plane")
		}
		keyID, prefix, hash, secret := store.NewKey()
		limits := natsauth.DefaultLimits
		if l := in.Body.Limits; l != nil {
			limits = natsauth.Limits{DiskBytes: l.DiskBytes, MemoryBytes: l.MemoryBytes, Streams: l.Streams, Consumers: l.Consumers}
		}
		wf := workflows.TenantProvisionInput{
			Tenant: store.NewTenant{ID: in.Body.ID, Name: in.Body.Name, KeyID: keyID, KeyPrefix: prefix, KeyHash: hash, Scopes: firstKeyScopes},
			Limits: limits,
		}
		run, err := control.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                    workflows.TenantProvisionWorkflowID(in.Body.ID),
			TaskQueue:             workflows.ControlTaskQueue,
			WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
			// A run in progress or done means the ID is taken: never join it.
			WorkflowExecutionErrorWhenAlreadyStarted: true,
		}, workflows.TenantProvision, wf)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return nil, huma.Error409Conflict("already exists")
		}
		if err != nil {
			log.Error("operation failed", "operation", "create-tenant", "tenant", in.Body.ID, "error", err)
			return nil, unavailable("the control plane did not start provisioning; retry later")
		}
		status := http.StatusCreated
		wait, cancel := context.WithTimeout(ctx, provisionWait)
		defer cancel()
		if err := run.Get(wait, nil); err != nil {
			var appErr *temporal.ApplicationError
			switch {
			case errors.As(err, &appErr) && appErr.Type() == activities.ErrTenantExists:
				return nil, huma.Error409Conflict("already exists")
			case stillRunning(ctx, control, run):
				status = http.StatusAccepted
			default:
				log.Error("tenant provisioning failed", "tenant", in.Body.ID, "error", err)
				return nil, unavailable("provisioning the tenant failed and was undone; retry later")
			}
		}
		out := &CreateTenantOutput{Status: status, Location: "/v1/tenants/" + in.Body.ID, CacheControl: noStore}
		if status == http.StatusAccepted {
			// Still provisioning: its rows may not even be written yet.
			out.Body.Tenant = Tenant{ID: in.Body.ID, Name: in.Body.Name, Status: store.TenantProvisioning, CreatedAt: time.Now().UTC()}
			out.Body.APIKey = NewAPIKey{APIKey: APIKey{ID: keyID, TenantID: in.Body.ID, Prefix: prefix, Scopes: firstKeyScopes,
				CreatedAt: out.Body.Tenant.CreatedAt}, Secret: secret}
			log.Info("tenant still provisioning", "tenant", in.Body.ID, "key_id", keyID)
			return out, nil
		}
		t, err := st.GetTenant(ctx, in.Body.ID)
		if err != nil {
			return nil, storeError(log, "create-tenant", in.Body.ID, err)
		}
		keys, err := st.ListAPIKeys(ctx, t.ID)
		if err != nil {
			return nil, storeError(log, "create-tenant", in.Body.ID, err)
		}
		i := slices.IndexFunc(keys, func(k store.APIKey) bool { return k.ID == keyID })
		if i < 0 {
			return nil, storeError(log, "create-tenant", in.Body.ID, fmt.Errorf("first key %s missing", keyID))
		}
		log.Info("tenant created", "tenant", t.ID, "key_id", keyID)
		out.Body.Tenant = tenantOut(t)
		out.Body.APIKey = NewAPIKey{APIKey: apiKeyOut(keys[i]), Secret: secret}
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "list-tenants",
		Method:      http.MethodGet,
		Path:        "/v1/tenants",
		Summary:     "List tenants",
		Description: "Lists tenants ordered by ID, deleted ones included, one page at a time: follow `next` (or the Link header) until it is absent. Platform admin key only.",
		Tags:        tags,
		Security:    admin,
		Errors:      withAuthErrors(http.StatusUnprocessableEntity),
	}, func(ctx context.Context, in *ListTenantsInput) (*ListTenantsOutput, error) {
		tenants, next, err := st.ListTenants(ctx, store.Page{Cursor: in.Cursor, Limit: in.Limit})
		if err != nil {
			return nil, storeError(log, "list-tenants", "", err)
		}
		out := &ListTenantsOutput{}
		out.Body.Items = make([]Tenant, 0, len(tenants))
		for _, t := range tenants {
			out.Body.Items = append(out.Body.Items, tenantOut(t))
		}
		if next != "" {
			out.Body.Next = next
			q := url.Values{"cursor": {next}, "limit": {strconv.Itoa(in.Limit)}}
			out.Link = `</v1/tenants?` + q.Encode() + `>; rel="next"`
		}
		return out, nil
	})

	huma.Register(api, huma.Operation{
		OperationID: "get-tenant",
		Method:      http.MethodGet,
		Path:        "/v1/tenants/{tenantId}",
		Summary:     "Get a tenant",
		Description: "Returns the tenant, also once deleted (with status deleted). Platform admin key only.",
		Tags:        tags,
		Security:    admin,
		Errors:      withAuthErrors(http.StatusNotFound),
	}, func(ctx context.Context, in *TenantPath) (*TenantOutput, error) {
		if !spec.ValidName(in.TenantID) {
			return nil, huma.Error404NotFound("not found")
		}
		t, err := st.GetTenant(ctx, in.TenantID)
		if err != nil {
			return nil, storeError(log, "get-tenant", in.TenantID, err)
		}
		return &TenantOutput{Body: tenantOut(t)}, nil
	})

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
	}, func(ctx context.Context, in *TenantPath) (*struct{}, error) {
		if !spec.ValidName(in.TenantID) {
			return nil, huma.Error404NotFound("not found")
		}
		if control == nil {
			return nil, unavailable("tenant decommissioning needs the control plane")
		}
		if err := st.DeleteTenant(ctx, in.TenantID); err != nil {
			return nil, storeError(log, "delete-tenant", in.TenantID, err)
		}
		_, err := control.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       workflows.TenantDecommissionWorkflowID(in.TenantID),
			TaskQueue:                workflows.ControlTaskQueue,
			WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		}, workflows.TenantDecommission, workflows.TenantDecommissionInput{Tenant: in.TenantID})
		if err != nil {
			log.Error("operation failed", "operation", "delete-tenant", "tenant", in.TenantID, "error", err)
			return nil, unavailable("the tenant's keys are revoked but the control plane did not start removing it; retry the delete")
		}
		log.Info("tenant deleted", "tenant", in.TenantID)
		return nil, nil
	})
}
