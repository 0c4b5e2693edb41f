package activities

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

// fakeSchedules keeps schedules in memory, as Temporal would.
type fakeSchedules struct {
	mu      sync.Mutex
	byKey   map[string]IntegrationSchedule
	deletes int
	fail    error
}

func (m *fakeSchedules) PutSchedule(_ context.Context, s IntegrationSchedule) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	key := s.Tenant + "/" + s.Integration
	if old, ok := m.byKey[key]; ok && s.KeepPaused {
		s.Paused = old.Paused
	}
	m.byKey[key] = s
	return nil
}

func (m *fakeSchedules) DeleteSchedule(_ context.Context, tenant, integration string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deletes++
	delete(m.byKey, tenant+"/"+integration)
	return nil
}

func (m *fakeSchedules) get(tenant, integration string) (IntegrationSchedule, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byKey[tenant+"/"+integration]
	return s, ok
}

func TestSyncScheduleFollowsTheDeployedSpec(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	f.addVersion(t, 2, `{"name":"orders","consumer":{"connector":"file"},"producers":{"db":{"connector":"postgres"}},"schedule":"*/5 * * * *"}`)
	f.addVersion(t, 3, `{"name":"orders","consumer":{"connector":"file"},"producers":{"db":{"connector":"postgres"}},"schedule":"0 6 * * *"}`)
	m := &fakeSchedules{byKey: map[string]IntegrationSchedule{}}
	a := &Schedules{DB: f.db, Manager: m}
	apply := func(version int, running, keep bool) SyncScheduleResult {
		t.Helper()
		res, err := a.SyncSchedule(ctx, SyncScheduleInput{Tenant: f.tenant, Integration: f.id, Version: version, Running: running, KeepPaused: keep, Actor: "alice"})
		require.NoError(t, err)
		return res
	}

	require.Equal(t, SyncScheduleResult{}, apply(1, true, false), "version 1 has no schedule")
	_, ok := m.get(f.tenant, f.id)
	require.False(t, ok)

	require.Equal(t, "*/5 * * * *", apply(2, true, false).Cron)
	s, ok := m.get(f.tenant, f.id)
	require.True(t, ok)
	require.Equal(t, IntegrationSchedule{Tenant: f.tenant, Integration: f.id, Cron: "*/5 * * * *", Note: "version 2 running by alice"}, s)

	apply(2, false, true)
	s, _ = m.get(f.tenant, f.id)
	require.True(t, s.Paused, "a stopped integration's schedule is paused, whatever KeepPaused says")
	require.False(t, s.KeepPaused)
	require.Equal(t, "version 2 stopped by alice", s.Note)

	apply(3, true, true)
	s, _ = m.get(f.tenant, f.id)
	require.Equal(t, "0 6 * * *", s.Cron, "a new version brings its cron expression")
	require.True(t, s.Paused, "and keeps the pause when asked to")
	apply(3, true, false)
	s, _ = m.get(f.tenant, f.id)
	require.False(t, s.Paused, "a start resumes it")

	apply(1, true, false)
	_, ok = m.get(f.tenant, f.id)
	require.False(t, ok, "a version without a schedule deletes it")

	require.NoError(t, a.RemoveSchedule(ctx, PipelineInput{Tenant: f.tenant, Integration: f.id}))
	require.Equal(t, 3, m.deletes)
}

func TestSyncScheduleErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newIntegrationFixture(t)
	f.addVersion(t, 2, `{"name":"orders","consumer":{"connector":"file"},"producers":{"db":{"connector":"postgres"}},"schedule":"0 * * * *"}`)
	m := &fakeSchedules{byKey: map[string]IntegrationSchedule{}, fail: errors.New("temporal: unavailable")}
	a := &Schedules{DB: f.db, Manager: m}

	_, err := a.SyncSchedule(ctx, SyncScheduleInput{Tenant: f.tenant, Integration: f.id, Version: 9, Running: true})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, ErrVersionNotFound, appErr.Type())

	_, err = a.SyncSchedule(ctx, SyncScheduleInput{Tenant: f.tenant, Integration: f.id, Version: 2, Running: true})
	require.ErrorContains(t, err, "temporal: unavailable")
}
