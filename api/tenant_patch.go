package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"go.temporal.io/sdk/client"

	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// PatchTenantInput changes parts of a tenant; what is absent is kept.
type PatchTenantInput struct {
	TenantPath
	Body struct {
		Limits *TenantLimits `json:"limits,omitempty" doc:"The tenant's new quotas, all of them."`
	}
}

// RegisterTenantPatch adds PATCH /v1/tenants/{tenantId} (platform admin):
// today it changes the tenant's quotas.
func RegisterTenantPatch(api huma.API, st *store.Store, control client.Client, log *slog.Logger) {
	huma.Register(api, huma.Operation{
		OperationID: "patch-tenant",
		Method:      http.MethodPatch,
		Path:        "/v1/tenants/{tenantId}",
		Summary:     "Change a tenant",
		Description: "Changes the tenant's quotas (limits, given whole) and answers the tenant. The integrations quota holds at " +
			"once; the JetStream limits and the DLQ's size reach NATS within seconds. Lowering a quota below what is used " +
			"removes nothing: new writes are refused until usage falls. Platform admin key only.",
		Tags:         []string{"Tenants"},
		Security:     requireScopes(store.ScopePlatformAdmin),
		MaxBodyBytes: MaxJSONBody,
		Errors:       withAuthErrors(http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, func(ctx context.Context, in *PatchTenantInput) (*TenantOutput, error) {
		if !spec.ValidName(in.TenantID) {
			return nil, huma.Error404NotFound("not found")
		}
		if control == nil {
			return nil, unavailable("changing a tenant needs the control plane")
		}
		t, err := st.GetTenant(ctx, in.TenantID)
		if err != nil {
			return nil, storeError(log, "patch-tenant", in.TenantID, err)
		}
		if in.Body.Limits != nil {
			t, err = changeTenantLimits(ctx, st, control, in.TenantID, *in.Body.Limits)
			var cp errControlPlane
			if errors.As(err, &cp) {
				log.Error("operation failed", "operation", "patch-tenant", "tenant", in.TenantID, "error", err)
				return nil, unavailable("the new limits are stored but the control plane did not start applying them; retry")
			}
			if err != nil {
				return nil, storeError(log, "patch-tenant", in.TenantID, err)
			}
			log.Info("tenant limits changed", "tenant", in.TenantID)
		}
		return &TenantOutput{Body: tenantOut(t)}, nil
	})
}
