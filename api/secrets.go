package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/secretbox"
	"github.com/vrsky/vrsky/internal/store"
	"github.com/vrsky/vrsky/internal/tenancy"
)

// MaxSecretBytes bounds a tenant secret's value.
const MaxSecretBytes = 64 << 10

// TenantSecret is a tenant secret as listings show it: never its value.
type TenantSecret struct {
	Name      string    `json:"name" example:"slack-token"`
	Version   int       `json:"version" doc:"How many times the name was written, from 1."`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func secretOut(s store.TenantSecret) TenantSecret {
	return TenantSecret{Name: s.Name, Version: s.Version, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt}
}

// SecretPath names a secret of the caller's tenant.
type SecretPath struct {
	Name string `path:"name" maxLength:"128" doc:"A letter or _ first, then letters, digits, _, - or single dots."`
}

// PutSecretInput is a secret's new value: write-only.
type PutSecretInput struct {
	SecretPath
	Body struct {
		Value string `json:"value" minLength:"1" maxLength:"65536" doc:"The secret's value. It is stored encrypted and never shown again."`
	}
}

// PutSecretOutput is the secret as stored, without its value.
type PutSecretOutput struct {
	Status int
	Body   TenantSecret
}

// ListSecretsOutput is the caller's tenant's secrets, by name.
type ListSecretsOutput struct {
	Body struct {
		Items []TenantSecret `json:"items"`
	}
}

// secrets serves the tenant secret operations.
type secrets struct {
	st     *store.Store
	keys   *secretbox.KeyRing // nil: put-secret answers 503
	mirror *tenancy.SecretsKV // nil: put-secret answers 503
	log    *slog.Logger
}

// RegisterSecrets adds the operations on the caller's tenant's secrets:
// PUT /v1/secrets/{name}, GET /v1/secrets and DELETE /v1/secrets/{name}.
// Values are sealed with keys (internal/secretbox), stored in PostgreSQL,
// then mirrored for the runners; they are never returned. Without keys or
// mirror, put-secret answers 503.
func RegisterSecrets(api huma.API, st *store.Store, keys *secretbox.KeyRing, mirror *tenancy.SecretsKV, log *slog.Logger) {
	h := &secrets{st: st, keys: keys, mirror: mirror, log: log}
	write := requireScopes(store.ScopeWrite, store.ScopeAdmin)
	tags := []string{"Secrets"}

	huma.Register(api, huma.Operation{
		OperationID: "put-secret",
		Method:      http.MethodPut,
		Path:        "/v1/secrets/{name}",
		Summary:     "Create or replace a secret",
		Description: "Stores a secret of the caller's tenant, encrypted: connector configs refer to it as `{\"secret\": NAME}`, " +
			"and the runners resolve it for this tenant only. The value is write-only: no response ever shows it. " +
			"201 for a new name, 200 for a new version of a known one. Running integrations read it when they start: " +
			"redeploy them to use a new value. 503 when tenant secrets are not configured on the platform. Needs scope write or admin.",
		Tags:         tags,
		Security:     write,
		MaxBodyBytes: MaxSecretBytes + 1024,
		Errors:       withAuthErrors(http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, h.put)

	huma.Register(api, huma.Operation{
		OperationID: "list-secrets",
		Method:      http.MethodGet,
		Path:        "/v1/secrets",
		Summary:     "List secrets",
		Description: "Lists the caller's tenant's secrets by name, with their version and dates; never their values. Needs scope read.",
		Tags:        tags,
		Security:    requireScopes(store.ScopeRead),
		Errors:      withAuthErrors(),
	}, h.list)

	huma.Register(api, huma.Operation{
		OperationID: "delete-secret",
		Method:      http.MethodDelete,
		Path:        "/v1/secrets/{name}",
		Summary:     "Delete a secret",
		Description: "Deletes one of the caller's tenant's secrets; integrations that refer to it fail to start until it is " +
			"set again (running ones keep the value they started with until they restart). Needs scope write or admin.",
		Tags:          tags,
		Security:      write,
		DefaultStatus: http.StatusNoContent,
		Errors:        withAuthErrors(http.StatusNotFound, http.StatusServiceUnavailable),
	}, h.delete)
}

// list answers the names of the tenant's secrets.
func (h *secrets) list(ctx context.Context, _ *struct{}) (*ListSecretsOutput, error) {
	p, _ := PrincipalFrom(ctx)
	list, err := h.st.ListSecrets(ctx, p.TenantID)
	if err != nil {
		return nil, storeError(ctx, h.log, "list-secrets", p.TenantID, err)
	}
	out := &ListSecretsOutput{}
	out.Body.Items = make([]TenantSecret, 0, len(list))
	for _, s := range list {
		out.Body.Items = append(out.Body.Items, secretOut(s))
	}
	return out, nil
}

func (h *secrets) put(ctx context.Context, in *PutSecretInput) (*PutSecretOutput, error) {
	p, _ := PrincipalFrom(ctx)
	if _, err := dataplane.SecretKey(p.TenantID, in.Name); err != nil {
		return nil, huma.Error422UnprocessableEntity("invalid secret name",
			&huma.ErrorDetail{Location: "path.name", Message: "want a letter or _ first, then letters, digits, _, - or single dots, at most 128 characters", Value: in.Name})
	}
	if h.keys == nil || h.mirror == nil {
		return nil, unavailable("tenant secrets are not configured on this platform: the operator sets VRSKY_SECRETS_KEY")
	}
	sealed, err := h.keys.Seal(p.TenantID, in.Name, []byte(in.Body.Value))
	if err != nil {
		h.log.ErrorContext(ctx, "seal secret", "tenant", p.TenantID, "error", err)
		return nil, huma.Error500InternalServerError("internal error")
	}
	stored, err := h.st.PutSecret(ctx, p.TenantID, in.Name, h.keys.CurrentID(), sealed)
	if err != nil {
		return nil, storeError(ctx, h.log, "put-secret", p.TenantID, err)
	}
	// PostgreSQL first, the runners' mirror second: repeating the request
	// repairs a mirror write that failed.
	if err := h.mirror.Put(ctx, p.TenantID, in.Name, sealed); err != nil {
		h.log.ErrorContext(ctx, "operation failed", "operation", "put-secret", "tenant", p.TenantID, "secret", in.Name, "error", err)
		return nil, unavailable("the secret is stored but not yet available to the runners; repeat the request")
	}
	h.log.InfoContext(ctx, "secret written", "tenant", p.TenantID, "secret", in.Name, "version", stored.Version, "by_key_id", p.KeyID)
	status := http.StatusOK
	if stored.Version == 1 {
		status = http.StatusCreated
	}
	return &PutSecretOutput{Status: status, Body: secretOut(stored)}, nil
}

func (h *secrets) delete(ctx context.Context, in *SecretPath) (*struct{}, error) {
	p, _ := PrincipalFrom(ctx)
	if _, err := dataplane.SecretKey(p.TenantID, in.Name); err != nil {
		return nil, huma.Error404NotFound("not found")
	}
	err := h.st.DeleteSecret(ctx, p.TenantID, in.Name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError(ctx, h.log, "delete-secret", p.TenantID, err)
	}
	// Also when PostgreSQL had none: a delete whose mirror step failed
	// before is finished by repeating it.
	if h.mirror != nil {
		if merr := h.mirror.Delete(ctx, p.TenantID, in.Name); merr != nil {
			h.log.ErrorContext(ctx, "operation failed", "operation", "delete-secret", "tenant", p.TenantID, "secret", in.Name, "error", merr)
			return nil, unavailable("the secret is deleted but the runners may still see it; repeat the request")
		}
	}
	if err != nil {
		return nil, storeError(ctx, h.log, "delete-secret", p.TenantID, err)
	}
	h.log.InfoContext(ctx, "secret deleted", "tenant", p.TenantID, "secret", in.Name, "by_key_id", p.KeyID)
	return nil, nil
}
