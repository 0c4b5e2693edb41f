package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/internal/control"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/store"
)

// Bounds of a move request.
const (
	// MaxPlacementReason bounds the reason an admin gives for a move.
	MaxPlacementReason = 200
	// maxPlacementBody bounds move-tenant's request body.
	maxPlacementBody = 4 << 10
	// placementHistoryShown is how many placement events get-tenant shows.
	placementHistoryShown = 20
	// defaultPlacementReason is the reason recorded when the admin gives
	// none.
	defaultPlacementReason = "requested by the platform admin"
)

// TenantPlacement is where a tenant's NATS streams live, as the
// TenantPlacement workflow last recorded it in PostgreSQL.
type TenantPlacement struct {
	State  string    `json:"state" enum:"shared,dedicated,moving-to-dedicated,moving-to-shared" doc:"shared: the tenant's streams are on the platform's shared NATS cluster (in the tenant's own account); dedicated: on a NATS instance of its own; moving-to-dedicated and moving-to-shared while a move is under way (its messages keep flowing)."`
	Step   string    `json:"step" doc:"The step of the move under way; empty when the placement is settled."`
	Forced bool      `json:"forced" doc:"True when a platform admin asked for this placement: the automatic thresholds (integration count, message rate) then do not move the tenant until an admin asks again."`
	Since  time.Time `json:"since" doc:"When the placement (or the step of a move) last changed; the tenant's creation for a tenant that never moved."`
}

// PlacementEvent is one change in a tenant's placement history.
type PlacementEvent struct {
	At     time.Time `json:"at" doc:"When the change was recorded."`
	State  string    `json:"state" enum:"shared,dedicated,moving-to-dedicated,moving-to-shared" doc:"The placement from then on."`
	Step   string    `json:"step" doc:"The step of the move from then on; empty once settled."`
	Reason string    `json:"reason" doc:"Why: the admin's reason, the threshold crossed, or what the move did."`
}

// placementOut is p as the API shows it; a tenant that never moved has
// been shared since it was created.
func placementOut(p store.Placement, created time.Time) *TenantPlacement {
	since := p.UpdatedAt
	if since.IsZero() {
		since = created
	}
	return &TenantPlacement{State: p.Placement, Step: p.Step, Forced: p.Forced, Since: since}
}

func placementHistoryOut(events []store.PlacementEvent) []PlacementEvent {
	out := make([]PlacementEvent, 0, len(events))
	for _, e := range events {
		out = append(out, PlacementEvent{At: e.At, State: e.Placement, Step: e.Step, Reason: e.Reason})
	}
	return out
}

// MoveTenantInput names the tenant and where it should go.
type MoveTenantInput struct {
	TenantPath
	Body struct {
		Placement string `json:"placement" enum:"shared,dedicated" doc:"Where the tenant's streams should live: dedicated, a NATS instance of its own; shared, the platform's shared cluster."`
		Reason    string `json:"reason,omitempty" maxLength:"200" doc:"Why, for the tenant's placement history (at most 200 characters, no control characters); default: requested by the platform admin."`
	}
}

// MoveTenantOutput says the move was asked for, and where the tenant is
// now.
type MoveTenantOutput struct {
	Location string `header:"Location" doc:"The tenant: GET it to follow the move in placement and placement_history."`
	Body     struct {
		Requested string          `json:"requested" enum:"shared,dedicated" doc:"The placement asked for."`
		Placement TenantPlacement `json:"placement" doc:"The tenant's placement as recorded now; the move shows in it once the TenantPlacement workflow takes its first step."`
	}
}

// placementOps serves move-tenant.
type placementOps struct {
	*tenants
}

// registerPlacement adds POST /v1/tenants/{tenantId}/placement, with which
// the platform admin moves a tenant between the shared NATS cluster and a
// dedicated instance. It signals the tenant's TenantPlacement workflow
// through the control plane and never waits for the move.
func registerPlacement(api huma.API, h *tenants) {
	p := placementOps{h}
	huma.Register(api, huma.Operation{
		OperationID: "move-tenant",
		Method:      http.MethodPost,
		Path:        "/v1/tenants/{tenantId}/placement",
		Summary:     "Move a tenant to a dedicated or the shared NATS",
		Description: "Asks the tenant's TenantPlacement workflow to move its streams to a dedicated NATS instance (`dedicated`) " +
			"or back to the platform's shared cluster (`shared`), and answers 202 at once with a Location to the tenant and its " +
			"placement as recorded now. The move runs in the background without losing or duplicating messages; GET the tenant " +
			"to follow it (`placement.state` moving-to-…, `placement.step`, `placement_history`). A move asked for by an admin is " +
			"forced: the automatic thresholds do not move the tenant back until an admin asks again. 409 when the tenant is not " +
			"active (provisioning, failed, deleting or deleted); 503 when the control plane does not take the request. " +
			"Platform admin key only.",
		Tags:          []string{"Tenants"},
		Security:      requireScopes(store.ScopePlatformAdmin),
		DefaultStatus: http.StatusAccepted,
		MaxBodyBytes:  maxPlacementBody,
		Errors: withAuthErrors(http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge,
			http.StatusUnprocessableEntity, http.StatusServiceUnavailable),
	}, p.move)
}

// move asks the control plane to move the tenant and answers at once.
func (h placementOps) move(ctx context.Context, in *MoveTenantInput) (*MoveTenantOutput, error) {
	if !spec.ValidName(in.TenantID) {
		return nil, huma.Error404NotFound("not found")
	}
	reason := strings.TrimSpace(in.Body.Reason)
	if strings.ContainsFunc(reason, unicode.IsControl) {
		return nil, huma.Error422UnprocessableEntity("reason: no control characters", &huma.ErrorDetail{
			Location: "body.reason", Message: "control characters (line breaks, tabs, NUL…) are not allowed"})
	}
	if reason == "" {
		reason = defaultPlacementReason
	}
	t, err := h.st.GetTenant(ctx, in.TenantID)
	if err != nil {
		return nil, storeError(ctx, h.log, "move-tenant", in.TenantID, err)
	}
	if t.Status != store.TenantActive {
		return nil, huma.Error409Conflict("the tenant is " + t.Status + ": only an active tenant can be moved")
	}
	if h.control == nil {
		return nil, unavailable("moving a tenant needs the control plane")
	}
	req := wire.PlacementRequest{Target: in.Body.Placement, Forced: true, Reason: reason}
	switch err := h.control.RequestPlacement(ctx, t.ID, req); {
	case errors.Is(err, control.ErrInvalid):
		return nil, huma.Error422UnprocessableEntity(err.Error())
	case err != nil:
		h.log.ErrorContext(ctx, "operation failed", "operation", "move-tenant", "tenant", t.ID, "error", err)
		return nil, unavailable("the control plane did not take the move; retry later")
	}
	p, err := h.st.GetPlacement(ctx, t.ID)
	if err != nil {
		return nil, storeError(ctx, h.log, "move-tenant", t.ID, err)
	}
	h.log.InfoContext(ctx, "tenant move requested", "tenant", t.ID, "placement", req.Target)
	out := &MoveTenantOutput{Location: "/v1/tenants/" + t.ID}
	out.Body.Requested = req.Target
	out.Body.Placement = *placementOut(p, t.CreatedAt)
	return out, nil
}
