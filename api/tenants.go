package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

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
	Status    string     `json:"status" enum:"active,deleted"`
	CreatedAt time.Time  `json:"created_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty" doc:"When the tenant was deleted."`
}

func tenantOut(t store.Tenant) Tenant {
	return Tenant{ID: t.ID, Name: t.Name, Status: t.Status, CreatedAt: t.CreatedAt, DeletedAt: t.DeletedAt}
}

// CreateTenantInput is the new tenant: only its ID and name can be given.
type CreateTenantInput struct {
	Body struct {
		ID   string `json:"id" pattern:"^[a-z0-9][a-z0-9-]{0,62}$" example:"acme" doc:"Lowercase letters, digits and hyphens, starting with a letter or digit, at most 63. Never reused, even after deletion."`
		Name string `json:"name" minLength:"1" maxLength:"200" example:"Acme Corp"`
	}
}

// CreateTenantOutput is the tenant and its first API key, whose secret is
// shown this once.
type CreateTenantOutput struct {
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

// RegisterTenants adds the platform admin's tenant operations:
// POST/GET /v1/tenants and GET/DELETE /v1/tenants/{tenantId}.
func RegisterTenants(api huma.API, st *store.Store, log *slog.Logger) {
	admin := requireScopes(store.ScopePlatformAdmin)
	tags := []string{"Tenants"}

	huma.Register(api, huma.Operation{
		OperationID:   "create-tenant",
		Method:        http.MethodPost,
		Path:          "/v1/tenants",
		Summary:       "Create a tenant",
		Description:   "Creates the tenant and its first API key (scopes read, write, dlq) and returns both; the key's secret is shown only in this response. Platform admin key only. 409 when the ID exists or existed.",
		Tags:          tags,
		Security:      admin,
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  MaxJSONBody,
		Errors:        withAuthErrors(http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity),
	}, func(ctx context.Context, in *CreateTenantInput) (*CreateTenantOutput, error) {
		// The tenant's rows only: its NATS account, streams, KV buckets and
		// blob prefix are provisioned by the TenantProvision workflow.
		t, key, secret, err := st.CreateTenantWithKey(ctx, in.Body.ID, in.Body.Name, firstKeyScopes)
		if err != nil {
			return nil, storeError(log, "create-tenant", in.Body.ID, err)
		}
		log.Info("tenant created", "tenant", t.ID, "key_id", key.ID)
		out := &CreateTenantOutput{Location: "/v1/tenants/" + t.ID, CacheControl: noStore}
		out.Body.Tenant = tenantOut(t)
		out.Body.APIKey = NewAPIKey{APIKey: apiKeyOut(key), Secret: secret}
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
		OperationID:   "delete-tenant",
		Method:        http.MethodDelete,
		Path:          "/v1/tenants/{tenantId}",
		Summary:       "Delete a tenant",
		Description:   "Marks the tenant deleted and revokes all its API keys at once. Its ID is never reused. Deleting a deleted tenant succeeds. Platform admin key only.",
		Tags:          tags,
		Security:      admin,
		DefaultStatus: http.StatusNoContent,
		Errors:        withAuthErrors(http.StatusNotFound),
	}, func(ctx context.Context, in *TenantPath) (*struct{}, error) {
		if !spec.ValidName(in.TenantID) {
			return nil, huma.Error404NotFound("not found")
		}
		// The tenant's NATS account, streams and objects are removed by the
		// TenantDecommission workflow.
		if err := st.DeleteTenant(ctx, in.TenantID); err != nil {
			return nil, storeError(log, "delete-tenant", in.TenantID, err)
		}
		log.Info("tenant deleted", "tenant", in.TenantID)
		return nil, nil
	})
}
