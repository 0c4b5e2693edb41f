package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/internal/store"
)

// APIKey is a key as listings show it: never its secret or hash.
type APIKey struct {
	ID         string        `json:"id" example:"key-3f2a9c0e4b7d1a6e5c8f0b2d"`
	TenantID   string        `json:"tenant_id"`
	Prefix     string        `json:"prefix" example:"vrsky_3fa1c2" doc:"The secret's first 12 characters, to recognise the key."`
	Scopes     []store.Scope `json:"scopes" enum:"read,write,dlq,admin"`
	CreatedAt  time.Time     `json:"created_at"`
	LastUsedAt *time.Time    `json:"last_used_at,omitempty" doc:"Last authenticated use, to the minute."`
	RevokedAt  *time.Time    `json:"revoked_at,omitempty"`
}

// NewAPIKey is a key just created, with its secret: shown once, never
// again.
type NewAPIKey struct {
	APIKey
	Secret string `json:"secret" doc:"The key itself, for Authorization: Bearer. Shown only now; VRSky keeps only its hash."`
}

// noStore keeps responses that carry a secret out of every cache.
const noStore = "no-store"

func apiKeyOut(k store.APIKey) APIKey {
	return APIKey{
		ID: k.ID, TenantID: k.TenantID, Prefix: k.Prefix, Scopes: k.Scopes,
		CreatedAt: k.CreatedAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt,
	}
}

// CreateAPIKeyInput holds only the scopes: the tenant is always the
// caller's, and unknown fields are rejected.
type CreateAPIKeyInput struct {
	Body struct {
		Scopes []store.Scope `json:"scopes" nullable:"false" minItems:"1" maxItems:"4" enum:"read,write,dlq,admin" doc:"What the key may do; admin holds every scope of the tenant. A key can grant only scopes it holds."`
	}
}

// CreateAPIKeyOutput is the new key with its secret.
type CreateAPIKeyOutput struct {
	CacheControl string `header:"Cache-Control"`
	Body         NewAPIKey
}

// ListAPIKeysOutput is the caller's tenant's keys, revoked ones included.
type ListAPIKeysOutput struct {
	Body struct {
		Items []APIKey `json:"items"`
	}
}

// APIKeyPath names a key of the caller's tenant.
type APIKeyPath struct {
	KeyID string `path:"keyId" maxLength:"100"`
}

// apiKeys serves the operations on a tenant's keys.
type apiKeys struct {
	st  *store.Store
	log *slog.Logger
}

// RegisterAPIKeys adds the operations on the caller's tenant's keys:
// POST/GET /v1/api-keys and DELETE /v1/api-keys/{keyId}.
func RegisterAPIKeys(api huma.API, st *store.Store, log *slog.Logger) {
	h := &apiKeys{st: st, log: log}
	security := requireScopes(store.ScopeWrite, store.ScopeAdmin)
	tags := []string{"API keys"}

	huma.Register(api, huma.Operation{
		OperationID: "create-api-key",
		Method:      http.MethodPost,
		Path:        "/v1/api-keys",
		Summary:     "Create an API key",
		Description: "Creates a key for the caller's tenant and returns it with its secret, shown only in this response. " +
			"A key can grant only scopes it holds (a key with admin grants any). Needs scope write or admin.",
		Tags:          tags,
		Security:      security,
		DefaultStatus: http.StatusCreated,
		MaxBodyBytes:  MaxJSONBody,
		Errors:        withAuthErrors(http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity),
	}, h.create)

	huma.Register(api, huma.Operation{
		OperationID: "list-api-keys",
		Method:      http.MethodGet,
		Path:        "/v1/api-keys",
		Summary:     "List API keys",
		Description: "Lists the caller's tenant's keys, oldest first, revoked ones included. Secrets are never shown. Needs scope write or admin.",
		Tags:        tags,
		Security:    security,
		Errors:      withAuthErrors(),
	}, h.list)

	huma.Register(api, huma.Operation{
		OperationID: "delete-api-key",
		Method:      http.MethodDelete,
		Path:        "/v1/api-keys/{keyId}",
		Summary:     "Revoke an API key",
		Description: "Revokes one of the caller's tenant's keys; its next request gets 401. A key revokes only keys whose every scope it holds " +
			"(403 otherwise: a write key cannot revoke an admin key). Revoking a revoked key succeeds. Needs scope write or admin.",
		Tags:          tags,
		Security:      security,
		DefaultStatus: http.StatusNoContent,
		Errors:        withAuthErrors(http.StatusNotFound),
	}, h.revoke)
}

// create makes a key for the caller's tenant.
func (h *apiKeys) create(ctx context.Context, in *CreateAPIKeyInput) (*CreateAPIKeyOutput, error) {
	p, _ := PrincipalFrom(ctx)
	for _, s := range in.Body.Scopes {
		if !p.Allows(s) {
			return nil, huma.Error403Forbidden("a key cannot grant the scope " + string(s) + ", which it does not hold")
		}
	}
	key, secret, err := h.st.CreateAPIKey(ctx, p.TenantID, in.Body.Scopes)
	if err != nil {
		return nil, storeError(ctx, h.log, "create-api-key", p.TenantID, err)
	}
	h.log.InfoContext(ctx, "API key created", "tenant", p.TenantID, "key_id", key.ID, "by_key_id", p.KeyID)
	return &CreateAPIKeyOutput{CacheControl: noStore, Body: NewAPIKey{APIKey: apiKeyOut(key), Secret: secret}}, nil
}

// list answers the tenant's keys.
func (h *apiKeys) list(ctx context.Context, _ *struct{}) (*ListAPIKeysOutput, error) {
	p, _ := PrincipalFrom(ctx)
	keys, err := h.st.ListAPIKeys(ctx, p.TenantID)
	if err != nil {
		return nil, storeError(ctx, h.log, "list-api-keys", p.TenantID, err)
	}
	out := &ListAPIKeysOutput{}
	out.Body.Items = make([]APIKey, 0, len(keys))
	for _, k := range keys {
		out.Body.Items = append(out.Body.Items, apiKeyOut(k))
	}
	return out, nil
}

// revoke revokes one of the tenant's keys.
func (h *apiKeys) revoke(ctx context.Context, in *APIKeyPath) (*struct{}, error) {
	p, _ := PrincipalFrom(ctx)
	if err := h.st.RevokeAPIKey(ctx, p.TenantID, in.KeyID, p); err != nil {
		return nil, storeError(ctx, h.log, "delete-api-key", p.TenantID, err)
	}
	h.log.InfoContext(ctx, "API key revoked", "tenant", p.TenantID, "key_id", in.KeyID, "by_key_id", p.KeyID)
	return nil, nil
}
