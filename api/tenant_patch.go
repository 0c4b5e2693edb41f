package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/ssrf"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// errMirror marks a failure to write the runners' copy of a tenant's
// settings.
var errMirror = errors.New("mirror for the runners")

// MaxAllowHosts bounds the entries of an egress policy's allowHosts.
const MaxAllowHosts = 256

// TenantPatch is what a platform admin changes on a tenant. Every section
// is optional: a section given replaces that part of the tenant as a whole,
// a section left out leaves it as it is.
type TenantPatch struct {
	// Egress is where the tenant's connectors may connect.
	Egress *sdk.EgressPolicy `json:"egress,omitempty" doc:"Where the tenant's connectors may connect (HTTP, Slack, PostgreSQL…), replacing the current policy. {} is the default: public addresses only. Link-local and cloud metadata addresses are refused whatever it says."`
	// Limits are the tenant's quotas, given whole.
	Limits *TenantLimits `json:"limits,omitempty" doc:"The tenant's new quotas, all of them. The integrations quota holds at once; the JetStream limits and the DLQ's size reach NATS within seconds. Lowering a quota below what is used removes nothing: new writes are refused until usage falls."`
}

// PatchTenantInput names the tenant and the sections to change.
type PatchTenantInput struct {
	TenantPath
	Body TenantPatch
}

// tenantPatch serves update-tenant.
type tenantPatch struct {
	st      *store.Store
	control *control.Client // nil: a patch with limits answers 503
	egress  *dataplane.EgressPolicies
	quotas  *dataplane.IngressQuotas
	log     *slog.Logger
}

// RegisterTenantPatch adds PATCH /v1/tenants/{tenantId}, with which a
// platform admin changes what the platform decides for a tenant. An egress
// policy is stored in PostgreSQL and mirrored to the runners through
// egress (nil makes a patch with an egress section answer 503); running
// pipelines use the new policy from their next build (a deploy or an
// update). New limits are stored and applied to the tenant's NATS account
// by a TenantLimits run started through ctl.
func RegisterTenantPatch(api huma.API, st *store.Store, ctl *control.Client, egress *dataplane.EgressPolicies, quotas *dataplane.IngressQuotas, log *slog.Logger) {
	h := &tenantPatch{st: st, control: ctl, egress: egress, quotas: quotas, log: log}
	huma.Register(api, huma.Operation{
		OperationID: "update-tenant",
		Method:      http.MethodPatch,
		Path:        "/v1/tenants/{tenantId}",
		Summary:     "Change a tenant's platform settings",
		Description: "Changes what the platform decides for a tenant; only the sections given change. " +
			"`egress` is where the tenant's connectors may connect: `allowPrivate` opens loopback and private addresses, " +
			"`allowHosts` opens the hosts or host:port pairs it lists. Link-local addresses and cloud metadata endpoints " +
			"(169.254.169.254, fd00:ec2::254, metadata.google.internal…) are refused whatever the policy says, and listing one " +
			"answers 422. Tenants cannot widen their egress in their own configs. Pipelines already running use the new policy " +
			"from their next deploy or update. `limits` replaces the tenant's quotas (given whole); the integrations quota holds at " +
			"once, the JetStream limits and the DLQ's size reach NATS within seconds, the webhook rate holds at once. Platform admin key only.",
		Tags:         []string{"Tenants"},
		Security:     requireScopes(store.ScopePlatformAdmin),
		MaxBodyBytes: MaxJSONBody,
		Errors:       withAuthErrors(http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, h.patch)
}

// patch changes the sections of the tenant the body gives.
func (h *tenantPatch) patch(ctx context.Context, in *PatchTenantInput) (*TenantOutput, error) {
	if !spec.ValidName(in.TenantID) {
		return nil, huma.Error404NotFound("not found")
	}
	patch := store.TenantPatch{Egress: in.Body.Egress}
	var mirror func(context.Context, store.Tenant) error
	if p := in.Body.Egress; p != nil {
		if details := egressProblems(*p); len(details) > 0 {
			return nil, huma.Error422UnprocessableEntity("egress: link-local and cloud metadata addresses are never allowed; allowHosts lists hosts or host:port pairs", details...)
		}
		if h.egress == nil {
			return nil, unavailable("the runners' copy of egress policies needs NATS")
		}
		mirror = func(ctx context.Context, t store.Tenant) error {
			if err := h.egress.Put(ctx, t.ID, t.Egress); err != nil {
				return fmt.Errorf("%w: %w", errMirror, err)
			}
			return nil
		}
	}
	if in.Body.Limits != nil && h.control == nil {
		return nil, unavailable("changing a tenant's limits needs the control plane")
	}
	t, err := h.st.PatchTenant(ctx, in.TenantID, patch, mirror)
	switch {
	case errors.Is(err, errMirror):
		h.log.ErrorContext(ctx, "operation failed", "operation", "update-tenant", "tenant", in.TenantID, "error", err)
		return nil, unavailable("the egress policy could not be stored for the runners; nothing changed, retry the request")
	case err != nil:
		return nil, storeError(ctx, h.log, "update-tenant", in.TenantID, err)
	}
	if in.Body.Egress != nil {
		h.log.InfoContext(ctx, "tenant egress policy changed", "tenant", t.ID, "allow_private", t.Egress.AllowPrivate, "allow_hosts", len(t.Egress.AllowHosts))
	}
	if in.Body.Limits != nil {
		t, err = changeTenantLimits(ctx, h.st, h.control, in.TenantID, *in.Body.Limits)
		var cp errControlPlane
		if errors.As(err, &cp) {
			h.log.ErrorContext(ctx, "operation failed", "operation", "update-tenant", "tenant", in.TenantID, "error", err)
			return nil, unavailable("the new limits are stored but the control plane did not start applying them; retry")
		}
		if err != nil {
			return nil, storeError(ctx, h.log, "update-tenant", in.TenantID, err)
		}
		if h.quotas != nil {
			if err := h.quotas.Put(ctx, in.TenantID, ingressQuota(limitsIn(*in.Body.Limits))); err != nil {
				h.log.ErrorContext(ctx, "operation failed", "operation", "update-tenant", "tenant", in.TenantID, "error", err)
				return nil, unavailable("the new limits are stored but the ingress's copy of the tenant's quotas could not be written; retry")
			}
		}
		h.log.InfoContext(ctx, "tenant limits changed", "tenant", in.TenantID)
	}
	return &TenantOutput{Body: tenantOut(t)}, nil
}

// egressProblems checks an egress policy entry by entry.
func egressProblems(p sdk.EgressPolicy) []error {
	var details []error
	if len(p.AllowHosts) > MaxAllowHosts {
		details = append(details, &huma.ErrorDetail{Location: "body.egress.allowHosts", Message: fmt.Sprintf("at most %d entries", MaxAllowHosts)})
		return details
	}
	for i, h := range p.AllowHosts {
		if err := ssrf.ValidatePolicy(sdk.EgressPolicy{AllowHosts: []string{h}}); err != nil {
			details = append(details, &huma.ErrorDetail{Location: fmt.Sprintf("body.egress.allowHosts[%d]", i), Message: err.Error(), Value: h})
		}
	}
	return details
}
