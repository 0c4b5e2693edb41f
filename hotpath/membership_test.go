package hotpath

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

func TestAssignSpreadsPipelinesEvenlyAndMovesFewWhenARunnerJoins(t *testing.T) {
	three := []string{"r1", "r2", "r3"}
	four := []string{"r1", "r2", "r3", "r4"}
	per := map[string]int{}
	moved := 0
	const keys = 3000
	for i := range keys {
		key := fmt.Sprintf("t%d.i%d", i%100, i)
		before, after := assign(key, three, 1)[0], assign(key, four, 1)[0]
		per[before]++
		if before != after {
			moved++
			require.Equal(t, "r4", after, "a runner joining only takes pipelines, never shuffles the others")
		}
	}
	for name, n := range per {
		require.InDelta(t, keys/3, n, keys/10, "%s runs %d of %d", name, n, keys)
	}
	require.InDelta(t, keys/4, moved, keys/10, "about a quarter moves to the fourth runner")

	two := assign("t.hot", four, 2)
	require.Len(t, two, 2)
	require.NotEqual(t, two[0], two[1])
	require.Equal(t, two[0], assign("t.hot", four, 1)[0], "asking for more runners keeps the first")
	require.Len(t, assign("t.hot", four, 99), 4, "never more runners than are alive")
	require.Len(t, assign("t.hot", four, 0), 1)
}

func TestMembershipFollowsRegistrationsDeparturesAndSilence(t *testing.T) {
	m := newMembership("me")
	require.Equal(t, []string{"me"}, m.alive)
	require.True(t, m.owns("any", 1), "alone, a runner runs everything")

	now := time.Now()
	require.True(t, m.saw("other", now))
	require.False(t, m.saw("other", now.Add(time.Second)), "a heartbeat changes nothing")
	require.Equal(t, []string{"me", "other"}, m.alive)

	require.False(t, m.saw("ghost", now.Add(-time.Hour)), "a registration from long ago is not a runner alive")
	require.True(t, m.saw("ghost", now), "until it registers again")
	require.True(t, m.left("ghost"))
	require.False(t, m.left("ghost"))
	require.False(t, m.left("me"), "a runner never leaves its own view")

	require.False(t, m.expire(now.Add(runnerGone/2)))
	require.True(t, m.expire(now.Add(time.Second+runnerGone)), "silent for runnerGone: gone")
	require.Equal(t, []string{"me"}, m.alive)
}

// TestRunnersShareTheWorkAndHandOverUnderLoadLosingNothing: pipelines are
// spread over the runners alive; while messages flow, a runner joins, one
// stops, another joins, and every message is delivered.
func TestRunnersShareTheWorkAndHandOverUnderLoadLosingNothing(t *testing.T) {
	h := newHarness(t, "out")
	const pipelines = 12
	ps := make([]dataplane.Pipeline, 0, pipelines)
	for i := range pipelines {
		ps = append(ps, h.deploy(fmt.Sprintf("p%d", i), []string{"upper"}, "out"))
	}

	start := func(name string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.runner(name).Run(ctx) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-done:
					require.NoError(t, err)
				case <-time.After(30 * time.Second):
					t.Error("runner did not stop")
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	shares := func() map[string]int { return h.runnerShares(t) }
	shared := func(names ...string) {
		t.Helper()
		require.Eventually(t, func() bool {
			got := shares()
			sum := 0
			for _, n := range names {
				if got[n] == 0 {
					return false
				}
				sum += got[n]
			}
			return len(got) == len(names) && sum == pipelines
		}, 30*time.Second, 200*time.Millisecond, "pipelines shared by %v (registry: %v)", names, shares())
	}

	// Messages flow the whole time.
	var sent sync.WaitGroup
	const rounds = 60
	sent.Go(func() {
		for r := range rounds {
			for i, p := range ps {
				h.send(p, sdk.Message{ID: fmt.Sprintf("m-%d-%d", r, i), Body: []byte("x")})
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	stop2 := start("runner-2")
	shared("test-runner", "runner-2")
	stop2()
	shared("test-runner")
	start("runner-3")
	shared("test-runner", "runner-3")
	sent.Wait()

	rec := h.producers["out"]
	require.Eventually(t, func() bool { return rec.delivered() == rounds*pipelines }, 60*time.Second, 100*time.Millisecond,
		"every message delivered through the hand-overs (%d of %d)", rec.delivered(), rounds*pipelines)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	dups := 0
	for _, n := range rec.count {
		dups += n - 1
	}
	t.Logf("%d messages through two joins and one departure: 0 lost, %d delivered twice", rounds*pipelines, dups)
	require.Zero(t, dups, "a drained runner acks what it took before it lets go")
}
