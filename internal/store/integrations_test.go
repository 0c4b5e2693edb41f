package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/spec"
)

func testSpec(name, path string) spec.Integration {
	return spec.Integration{
		Name:      name,
		Consumer:  spec.Step{Connector: "http-webhook"},
		Steps:     []spec.Step{{Connector: "json-transform", Config: json.RawMessage(`{"remove":["secret"]}`)}},
		Producers: map[string]spec.Step{"out": {Connector: "file", Config: json.RawMessage(`{"path":"` + path + `"}`)}},
	}
}

func newTenants(t *testing.T, s *Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		_, err := createTenant(context.Background(), s, id, "Tenant "+id)
		require.NoError(t, err)
	}
}

func TestCreateAndGetIntegration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	newTenants(t, s, "acme", "other")

	in := testSpec("orders", "out")
	created, err := s.CreateIntegration(ctx, "acme", in, "key-1")
	require.NoError(t, err)
	require.Equal(t, "acme", created.TenantID)
	require.Equal(t, "orders", created.ID)
	require.Equal(t, "orders", created.Name)
	require.Equal(t, 1, created.Version)
	require.Zero(t, created.DeployedVersion)
	require.Equal(t, "stopped", created.DesiredStatus)
	require.Equal(t, "stopped", created.Status)
	require.Empty(t, created.LastError)
	require.Equal(t, in.Producers["out"].Connector, created.Spec.Producers["out"].Connector)
	require.JSONEq(t, string(in.Steps[0].Config), string(created.Spec.Steps[0].Config))
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)

	got, err := s.GetIntegration(ctx, "acme", "orders")
	require.NoError(t, err)
	require.Equal(t, created, got)

	_, err = s.CreateIntegration(ctx, "acme", in, "key-1")
	require.ErrorIs(t, err, ErrConflict)

	// The same name in another tenant is another integration.
	theirs, err := s.CreateIntegration(ctx, "other", testSpec("orders", "theirs"), "key-2")
	require.NoError(t, err)
	require.Equal(t, "other", theirs.TenantID)
	got, err = s.GetIntegration(ctx, "acme", "orders")
	require.NoError(t, err)
	require.JSONEq(t, `{"path":"out"}`, string(got.Spec.Producers["out"].Config))

	_, err = s.GetIntegration(ctx, "acme", "nothing")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.CreateIntegration(ctx, "nobody", testSpec("x", "x"), "key-1")
	require.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, s.DeleteTenant(ctx, "other"))
	_, err = s.CreateIntegration(ctx, "other", testSpec("y", "y"), "key-2")
	require.ErrorIs(t, err, ErrNotFound, "a deleted tenant gets no new integration")

	bad := testSpec("Not Valid", "x")
	bad.Producers = nil
	_, err = s.CreateIntegration(ctx, "acme", bad, "key-1")
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "producers")
}

func TestPutIntegrationVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	newTenants(t, s, "acme", "other")
	_, err := s.CreateIntegration(ctx, "acme", testSpec("orders", "v1"), "key-1")
	require.NoError(t, err)

	v2, err := s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("orders", "v2"), "key-2", 1)
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)
	require.Contains(t, string(v2.Spec.Producers["out"].Config), "v2")

	_, err = s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("orders", "v3"), "key-2", 1)
	require.ErrorIs(t, err, ErrPrecondition, "version 1 is no longer the latest")
	v3, err := s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("orders", "v3"), "", 0)
	require.NoError(t, err, "no precondition")
	require.Equal(t, 3, v3.Version)

	_, err = s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("renamed", "x"), "key-2", 0)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = s.PutIntegrationVersion(ctx, "acme", "nothing", testSpec("nothing", "x"), "key-2", 0)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.PutIntegrationVersion(ctx, "other", "orders", testSpec("orders", "x"), "key-2", 0)
	require.ErrorIs(t, err, ErrNotFound, "another tenant's integration is unknown")
	bad := testSpec("orders", "x")
	bad.Consumer.Connector = ""
	_, err = s.PutIntegrationVersion(ctx, "acme", "orders", bad, "key-2", 0)
	require.ErrorIs(t, err, ErrInvalid)

	versions, err := s.ListVersions(ctx, "acme", "orders")
	require.NoError(t, err)
	require.Len(t, versions, 3)
	for i, v := range versions {
		require.Equal(t, 3-i, v.Version, "newest first")
		require.Contains(t, string(v.Spec.Producers["out"].Config), fmt.Sprintf("v%d", 3-i))
	}
	require.Equal(t, "key-1", versions[2].CreatedBy)
	require.Empty(t, versions[0].CreatedBy)
	_, err = s.ListVersions(ctx, "other", "orders")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestConcurrentPutsGetDistinctVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	newTenants(t, s, "acme")
	_, err := s.CreateIntegration(ctx, "acme", testSpec("orders", "v1"), "key-1")
	require.NoError(t, err)

	const writers = 5
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		versions  = map[int]bool{}
		preFailed int
	)
	for i := range writers {
		wg.Go(func() {
			got, err := s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("orders", fmt.Sprint(i)), "", 0)
			require.NoError(t, err)
			mu.Lock()
			versions[got.Version] = true
			mu.Unlock()
		})
		wg.Go(func() {
			// Only one of these can win against version 1.
			_, err := s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("orders", "x"), "", 1)
			if err != nil {
				require.ErrorIs(t, err, ErrPrecondition)
				mu.Lock()
				preFailed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, versions, writers)
	require.GreaterOrEqual(t, preFailed, writers-1)
	all, err := s.ListVersions(ctx, "acme", "orders")
	require.NoError(t, err)
	require.Len(t, all, 1+writers+(writers-preFailed))
}

func TestListIntegrationsPagesAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	newTenants(t, s, "acme", "other")
	var want []string
	for i := 4; i >= 0; i-- {
		id := fmt.Sprintf("i-%d", i)
		want = append([]string{id}, want...)
		_, err := s.CreateIntegration(ctx, "acme", testSpec(id, id), "")
		require.NoError(t, err)
	}
	_, err := s.CreateIntegration(ctx, "other", testSpec("i-9", "x"), "")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE integrations SET status = 'running' WHERE tenant_id = 'acme' AND id IN ('i-1', 'i-3')`)
	require.NoError(t, err)

	var seen []string
	page := Page{Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		got, next, err := s.ListIntegrations(ctx, "acme", page, "")
		require.NoError(t, err)
		for _, in := range got {
			require.Equal(t, "acme", in.TenantID)
			require.Equal(t, 1, in.Version)
			seen = append(seen, in.ID)
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	require.Equal(t, want, seen)

	running, next, err := s.ListIntegrations(ctx, "acme", Page{}, "running")
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, running, 2)
	require.Equal(t, "i-1", running[0].ID)
	require.Equal(t, "i-3", running[1].ID)

	none, _, err := s.ListIntegrations(ctx, "nobody", Page{}, "")
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestListEventsNewestFirstAndAfterDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	newTenants(t, s, "acme", "other")
	_, err := s.CreateIntegration(ctx, "acme", testSpec("orders", "v1"), "key-1")
	require.NoError(t, err)

	events, next, err := s.ListEvents(ctx, "acme", "orders", Page{})
	require.NoError(t, err)
	require.Empty(t, events)
	require.Empty(t, next)

	actions := []string{"deploy", "stop", "start", "stop", "delete"}
	for i, action := range actions {
		_, err := pool.Exec(ctx, `
			INSERT INTO integration_events (tenant_id, integration_id, actor, action, from_status, to_status, reason)
			VALUES ('acme', 'orders', 'key-1', $1, NULLIF($2, ''), 'stopped', $3)`,
			action, map[bool]string{true: "", false: "running"}[i == 0], fmt.Sprintf("reason %d", i))
		require.NoError(t, err)
	}
	// The integration is removed; its log stays readable.
	_, err = pool.Exec(ctx, `DELETE FROM integrations WHERE tenant_id = 'acme' AND id = 'orders'`)
	require.NoError(t, err)

	var seen []string
	page := Page{Limit: 2}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		got, next, err := s.ListEvents(ctx, "acme", "orders", page)
		require.NoError(t, err)
		for _, e := range got {
			seen = append(seen, e.Action)
			require.Equal(t, "key-1", e.Actor)
			require.Equal(t, "stopped", e.ToStatus)
		}
		if next == "" {
			break
		}
		page.Cursor = next
	}
	require.Equal(t, []string{"delete", "stop", "start", "stop", "deploy"}, seen)
	last, _, err := s.ListEvents(ctx, "acme", "orders", Page{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, "reason 4", last[0].Reason)
	require.Equal(t, "running", last[0].FromStatus)

	_, _, err = s.ListEvents(ctx, "other", "orders", Page{})
	require.ErrorIs(t, err, ErrNotFound, "another tenant's log is unknown")
	_, _, err = s.ListEvents(ctx, "acme", "nothing", Page{})
	require.ErrorIs(t, err, ErrNotFound)
	for _, cursor := range []string{"x", "-1", "0"} {
		_, _, err = s.ListEvents(ctx, "acme", "orders", Page{Cursor: cursor})
		require.ErrorIs(t, err, ErrInvalid, cursor)
	}
}

func TestIntegrationQueriesReportDatabaseErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	newTenants(t, s, "acme")
	_, err := s.CreateIntegration(ctx, "acme", testSpec("orders", "v1"), "")
	require.NoError(t, err)
	pool.Close()

	_, err = s.CreateIntegration(ctx, "acme", testSpec("more", "v1"), "")
	require.Error(t, err)
	_, err = s.GetIntegration(ctx, "acme", "orders")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrNotFound)
	_, _, err = s.ListIntegrations(ctx, "acme", Page{}, "")
	require.Error(t, err)
	_, err = s.PutIntegrationVersion(ctx, "acme", "orders", testSpec("orders", "v2"), "", 0)
	require.Error(t, err)
	_, err = s.ListVersions(ctx, "acme", "orders")
	require.Error(t, err)
	_, _, err = s.ListEvents(ctx, "acme", "orders", Page{})
	require.Error(t, err)
}
