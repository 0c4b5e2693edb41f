package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestPlacementOfATenantThatNeverMovedIsShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)

	p, err := s.GetPlacement(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, Placement{Tenant: "acme", Placement: PlacementShared}, p)
	events, err := s.PlacementHistory(ctx, "acme", 20)
	require.NoError(t, err)
	require.Empty(t, events)

	_, err = s.GetPlacement(ctx, "nobody")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.PlacementHistory(ctx, "nobody", 20)
	require.ErrorIs(t, err, ErrNotFound)
	err = s.SetPlacement(ctx, Placement{Tenant: "nobody", Placement: PlacementDedicated}, "x")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestSetPlacementRecordsEveryStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)
	_, err = createTenant(ctx, s, "globex", "Globex")
	require.NoError(t, err)

	sealed := []byte{0x00, 0xff, 0x10, 'k'}
	steps := []struct {
		p      Placement
		reason string
	}{
		{Placement{Tenant: "acme", Placement: PlacementMovingToDedicated, Step: "provision", Forced: true}, "an admin asked"},
		{Placement{Tenant: "acme", Placement: PlacementMovingToDedicated, Step: "copy-streams", Forced: true, Instance: sealed}, "instance ready"},
		{Placement{Tenant: "acme", Placement: PlacementDedicated, Forced: true, Instance: sealed}, "moved"},
	}
	before := time.Now()
	for _, st := range steps {
		require.NoError(t, s.SetPlacement(ctx, st.p, st.reason))
		got, err := s.GetPlacement(ctx, "acme")
		require.NoError(t, err)
		require.WithinDuration(t, time.Now(), got.UpdatedAt, time.Minute)
		got.UpdatedAt = time.Time{}
		require.Equal(t, st.p, got)
	}
	events, err := s.PlacementHistory(ctx, "acme", 20)
	require.NoError(t, err)
	require.Len(t, events, 3)
	for i, e := range events { // newest first
		want := steps[len(steps)-1-i]
		require.Equal(t, want.p.Placement, e.Placement)
		require.Equal(t, want.p.Step, e.Step)
		require.Equal(t, want.reason, e.Reason)
		require.False(t, e.At.Before(before.Add(-time.Minute)))
		if i > 0 {
			require.False(t, e.At.After(events[i-1].At), "newest first")
		}
	}
	two, err := s.PlacementHistory(ctx, "acme", 2)
	require.NoError(t, err)
	require.Equal(t, events[:2], two)

	// Another tenant is untouched.
	other, err := s.GetPlacement(ctx, "globex")
	require.NoError(t, err)
	require.Equal(t, PlacementShared, other.Placement)
	otherEvents, err := s.PlacementHistory(ctx, "globex", 20)
	require.NoError(t, err)
	require.Empty(t, otherEvents)

	// Back to shared: the instance is cleared when not given.
	require.NoError(t, s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: PlacementShared}, "back"))
	got, err := s.GetPlacement(ctx, "acme")
	require.NoError(t, err)
	require.Nil(t, got.Instance)
	require.False(t, got.Forced)
	require.Equal(t, PlacementShared, got.Placement)

	all, err := s.PlacementsOf(ctx, []string{"acme", "globex", "nobody"})
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, PlacementShared, all["globex"].Placement)
	require.True(t, all["globex"].UpdatedAt.IsZero())
	require.Equal(t, PlacementShared, all["nobody"].Placement)
	require.Equal(t, got.UpdatedAt, all["acme"].UpdatedAt)
	require.Nil(t, all["acme"].Instance, "lists never carry instances")
	none, err := s.PlacementsOf(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, none)

	// Deleting the tenant's row removes its placement and history.
	require.NoError(t, s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: PlacementDedicated, Instance: sealed}, "again"))
	_, err = s.pool.Exec(ctx, `DELETE FROM tenants WHERE id = 'acme'`)
	require.NoError(t, err)
	var rows int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenant_placements WHERE tenant_id = 'acme')
		+ (SELECT count(*) FROM tenant_placement_events WHERE tenant_id = 'acme')`).Scan(&rows))
	require.Zero(t, rows)
}

func TestSetPlacementRefusesUnknownStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)
	for _, bad := range []string{"", "Shared", "dedicated ", "moving", "'; DROP TABLE tenants; --"} {
		err := s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: bad}, "x")
		require.ErrorIs(t, err, ErrInvalid, "%q", bad)
	}
	// The database holds the same list, whoever writes.
	_, err = s.pool.Exec(ctx, `INSERT INTO tenant_placements (tenant_id, placement) VALUES ('acme', 'elsewhere')`)
	require.ErrorContains(t, err, "check")
	p, err := s.GetPlacement(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, PlacementShared, p.Placement)
}

// A reason or step from anywhere (an error message, an admin's text) is
// stored bounded and as valid text.
func TestPlacementReasonsAreBoundedAndStorable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)

	long := strings.Repeat("é", MaxPlacementReasonLen) // two bytes each
	hostile := "bad\x00utf8\xff\xfe<script>"
	require.NoError(t, s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: PlacementMovingToDedicated, Step: "st\x00ep\xff"}, hostile))
	require.NoError(t, s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: PlacementDedicated}, long))
	events, err := s.PlacementHistory(ctx, "acme", 0)
	require.NoError(t, err)
	require.Len(t, events, 2)
	require.LessOrEqual(t, len(events[0].Reason), MaxPlacementReasonLen)
	require.True(t, utf8.ValidString(events[0].Reason))
	require.Equal(t, strings.Repeat("é", MaxPlacementReasonLen/2), events[0].Reason)
	require.Equal(t, "badutf8\uFFFD<script>", events[1].Reason)
	require.Equal(t, "step\uFFFD", events[1].Step)
}

func TestPlacementHistoryKeepsTheLastHundred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := createTenant(ctx, s, "acme", "Acme")
	require.NoError(t, err)
	_, err = createTenant(ctx, s, "globex", "Globex")
	require.NoError(t, err)
	require.NoError(t, s.SetPlacement(ctx, Placement{Tenant: "globex", Placement: PlacementDedicated}, "globex's own"))

	const total = MaxPlacementEvents + 20
	// Several writers at once: each step is recorded and pruned in turn.
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += 4 {
				errs <- s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: PlacementMovingToDedicated, Step: fmt.Sprintf("step-%03d", i)}, fmt.Sprintf("event %d", i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var stored int
	require.NoError(t, s.pool.QueryRow(ctx, `SELECT count(*) FROM tenant_placement_events WHERE tenant_id = 'acme'`).Scan(&stored))
	require.Equal(t, MaxPlacementEvents, stored)
	events, err := s.PlacementHistory(ctx, "acme", 1000)
	require.NoError(t, err)
	require.Len(t, events, MaxPlacementEvents)

	// The one written last is first, and the placement row agrees with it.
	p, err := s.GetPlacement(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, p.Step, events[0].Step)

	// One more write drops exactly the oldest.
	oldest := events[len(events)-1]
	require.NoError(t, s.SetPlacement(ctx, Placement{Tenant: "acme", Placement: PlacementDedicated}, "done"))
	events, err = s.PlacementHistory(ctx, "acme", 0)
	require.NoError(t, err)
	require.Len(t, events, MaxPlacementEvents)
	require.Equal(t, "done", events[0].Reason)
	for _, e := range events {
		require.NotEqual(t, oldest, e)
	}

	// Pruning one tenant never touches another's history.
	other, err := s.PlacementHistory(ctx, "globex", 0)
	require.NoError(t, err)
	require.Len(t, other, 1)
	require.Equal(t, "globex's own", other[0].Reason)
}
