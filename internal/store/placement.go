package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Placements of a tenant's NATS streams. They are the values of
// wire.Placement*, repeated here because the store imports neither the
// control plane nor the data plane; the database holds them to the same
// list (migration 0007).
const (
	PlacementShared            = "shared"
	PlacementDedicated         = "dedicated"
	PlacementMovingToDedicated = "moving-to-dedicated"
	PlacementMovingToShared    = "moving-to-shared"
)

// Bounds of a tenant's placement history.
const (
	// MaxPlacementEvents is how many placement events are kept per tenant:
	// SetPlacement removes older ones.
	MaxPlacementEvents = 100
	// MaxPlacementReasonLen bounds an event's reason; a longer one is cut
	// (on a character boundary).
	MaxPlacementReasonLen = 1000
)

// Placement is where a tenant's NATS streams live, as the TenantPlacement
// workflow last wrote it.
type Placement struct {
	Tenant    string
	Placement string // wire.Placement* value: shared | dedicated | moving-to-dedicated | moving-to-shared
	Step      string // the move's current step, "" when settled
	Forced    bool
	Instance  []byte // sealed dedicated instance, nil when none; the store never opens it
	// UpdatedAt is when the placement was last written; zero for a tenant
	// that never moved.
	UpdatedAt time.Time
}

// PlacementEvent is one change in a tenant's placement history.
type PlacementEvent struct {
	At        time.Time
	Placement string
	Step      string
	Reason    string
}

func validPlacement(p string) bool {
	switch p {
	case PlacementShared, PlacementDedicated, PlacementMovingToDedicated, PlacementMovingToShared:
		return true
	}
	return false
}

// GetPlacement returns the tenant's placement; a tenant that never moved
// is {Tenant, Placement: "shared"} (zero UpdatedAt) with no error. A
// deleted tenant keeps its last placement. ErrNotFound when the tenant
// does not exist.
func (s *Store) GetPlacement(ctx context.Context, tenant string) (Placement, error) {
	var (
		p       = Placement{Tenant: tenant}
		state   *string
		step    *string
		forced  *bool
		updated *time.Time
	)
	err := s.pool.QueryRow(ctx, `
		SELECT p.placement, p.step, p.forced, p.instance, p.updated_at
		FROM tenants t LEFT JOIN tenant_placements p ON p.tenant_id = t.id
		WHERE t.id = $1`, tenant).Scan(&state, &step, &forced, &p.Instance, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return Placement{}, fmt.Errorf("tenant %s: %w", tenant, ErrNotFound)
	}
	if err != nil {
		return Placement{}, fmt.Errorf("get placement of tenant %s: %w", tenant, err)
	}
	if state == nil { // never moved
		p.Placement = PlacementShared
		return p, nil
	}
	p.Placement, p.Step, p.Forced, p.UpdatedAt = *state, *step, *forced, *updated
	return p, nil
}

// SetPlacement upserts p (as a whole: Instance nil clears the stored
// instance; UpdatedAt is ignored, the row gets the time of the write) and
// appends one event (At = now, p's Placement and Step, reason) in one
// transaction, then removes the tenant's events beyond the newest
// MaxPlacementEvents. Reason and Step are made valid UTF-8 without NUL
// bytes, and reason is cut to MaxPlacementReasonLen. Concurrent calls for
// one tenant are applied one after the other. ErrInvalid for a placement outside the four states,
// ErrNotFound when the tenant does not exist.
func (s *Store) SetPlacement(ctx context.Context, p Placement, reason string) error {
	if !validPlacement(p.Placement) {
		return fmt.Errorf("%w: placement %q (shared, dedicated, moving-to-dedicated or moving-to-shared)", ErrInvalid, p.Placement)
	}
	reason = cutUTF8(cleanText(reason), MaxPlacementReasonLen)
	p.Step = cleanText(p.Step)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("set placement of tenant %s: %w", p.Tenant, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The upsert locks the tenant's placement row until commit, so that
	// concurrent moves append and prune their events one after the other.
	_, err = tx.Exec(ctx, `
		INSERT INTO tenant_placements (tenant_id, placement, step, forced, instance, updated_at)
		VALUES ($1, $2, $3, $4, $5, clock_timestamp())
		ON CONFLICT (tenant_id) DO UPDATE
		SET placement = EXCLUDED.placement, step = EXCLUDED.step, forced = EXCLUDED.forced,
		    instance = EXCLUDED.instance, updated_at = EXCLUDED.updated_at`,
		p.Tenant, p.Placement, p.Step, p.Forced, p.Instance)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" { // foreign_key_violation
		return fmt.Errorf("set placement: tenant %s: %w", p.Tenant, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set placement of tenant %s: %w", p.Tenant, err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO tenant_placement_events (tenant_id, at, placement, step, reason)
		VALUES ($1, clock_timestamp(), $2, $3, $4)`, p.Tenant, p.Placement, p.Step, reason); err != nil {
		return fmt.Errorf("set placement of tenant %s: event: %w", p.Tenant, err)
	}
	if _, err := tx.Exec(ctx, `
		DELETE FROM tenant_placement_events
		WHERE tenant_id = $1 AND id < (
			SELECT min(id) FROM (
				SELECT id FROM tenant_placement_events WHERE tenant_id = $1
				ORDER BY id DESC LIMIT $2) AS kept)`, p.Tenant, MaxPlacementEvents); err != nil {
		return fmt.Errorf("set placement of tenant %s: prune events: %w", p.Tenant, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("set placement of tenant %s: %w", p.Tenant, err)
	}
	return nil
}

// PlacementHistory returns the tenant's newest events first, at most limit
// (limit ≤ 0 or above MaxPlacementEvents means MaxPlacementEvents). A
// tenant that never moved has none. ErrNotFound when the tenant does not
// exist.
func (s *Store) PlacementHistory(ctx context.Context, tenant string, limit int) ([]PlacementEvent, error) {
	if limit <= 0 || limit > MaxPlacementEvents {
		limit = MaxPlacementEvents
	}
	rows, err := s.pool.Query(ctx, `
		SELECT e.at, e.placement, e.step, e.reason
		FROM tenant_placement_events e
		WHERE e.tenant_id = $1
		ORDER BY e.at DESC, e.id DESC LIMIT $2`, tenant, limit)
	if err != nil {
		return nil, fmt.Errorf("placement history of tenant %s: %w", tenant, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PlacementEvent, error) {
		var e PlacementEvent
		err := row.Scan(&e.At, &e.Placement, &e.Step, &e.Reason)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("placement history of tenant %s: %w", tenant, err)
	}
	if len(events) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)`, tenant).Scan(&exists); err != nil {
			return nil, fmt.Errorf("placement history of tenant %s: %w", tenant, err)
		}
		if !exists {
			return nil, fmt.Errorf("tenant %s: %w", tenant, ErrNotFound)
		}
	}
	return events, nil
}

// PlacementsOf returns the placements of the given tenants (for lists),
// shared (with zero UpdatedAt) for those without a row, including IDs
// that name no tenant. Instances are left out: a list never needs them.
func (s *Store) PlacementsOf(ctx context.Context, tenants []string) (map[string]Placement, error) {
	out := make(map[string]Placement, len(tenants))
	if len(tenants) == 0 {
		return out, nil
	}
	for _, t := range tenants {
		out[t] = Placement{Tenant: t, Placement: PlacementShared}
	}
	rows, err := s.pool.Query(ctx, `
		SELECT tenant_id, placement, step, forced, updated_at
		FROM tenant_placements WHERE tenant_id = ANY($1::text[])`, tenants)
	if err != nil {
		return nil, fmt.Errorf("placements of %d tenants: %w", len(tenants), err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Placement, error) {
		var p Placement
		err := row.Scan(&p.Tenant, &p.Placement, &p.Step, &p.Forced, &p.UpdatedAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("placements of %d tenants: %w", len(tenants), err)
	}
	for _, p := range found {
		out[p.Tenant] = p
	}
	return out, nil
}

// cleanText makes s storable as PostgreSQL text: invalid UTF-8 becomes
// U+FFFD and NUL bytes are dropped.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

// cutUTF8 returns s cut to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
