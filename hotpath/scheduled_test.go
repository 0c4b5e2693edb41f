package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

// pollSource is a polling consumer over an in-memory source: each Poll
// takes every item added since the last one. Run must never be called on
// a scheduled pipeline.
type pollSource struct {
	mu      sync.Mutex
	items   []string
	next    int
	polls   int
	runs    int
	failing error
	// hold, when set, makes Poll wait until it is closed or ctx ends.
	hold chan struct{}
}

func (s *pollSource) add(items ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = append(s.items, items...)
}

func (s *pollSource) counts() (polls, runs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls, s.runs
}

func (s *pollSource) Run(ctx context.Context, _ sdk.Sink) error {
	s.mu.Lock()
	s.runs++
	s.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (s *pollSource) Poll(ctx context.Context, sink sdk.Sink) (sdk.PollResult, error) {
	s.mu.Lock()
	s.polls++
	hold, failing := s.hold, s.failing
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return sdk.PollResult{}, ctx.Err()
		}
	}
	if failing != nil {
		return sdk.PollResult{}, failing
	}
	s.mu.Lock()
	batch := s.items[s.next:]
	s.mu.Unlock()
	var msgs []sdk.Message
	for i, body := range batch {
		msgs = append(msgs, sdk.Message{ID: fmt.Sprintf("item-%d", i+s.next), Body: []byte(body), Received: time.Now()})
	}
	if len(msgs) > 0 {
		if err := sink.Publish(ctx, msgs); err != nil {
			return sdk.PollResult{}, err
		}
	}
	s.mu.Lock()
	s.next += len(msgs)
	s.mu.Unlock()
	return sdk.PollResult{Messages: len(msgs)}, nil
}

// runOnly is a consumer that cannot poll.
type runOnly struct{}

func (runOnly) Run(ctx context.Context, _ sdk.Sink) error { <-ctx.Done(); return nil }

// scheduledEnv is a runner with a polling source and a recording producer.
type scheduledEnv struct {
	t      *testing.T
	state  *dataplane.State
	src    *pollSource
	rec    *recorder
	tenant string
}

func newScheduledEnv(t *testing.T) *scheduledEnv {
	t.Helper()
	_, js := testenv.JetStream(t)
	e := &scheduledEnv{t: t, src: &pollSource{}, rec: newRecorder(), tenant: "t" + testenv.RandomID(4)}
	catalog := sdk.NewCatalog(
		sdk.Connector{Name: "src", Kind: sdk.KindConsumer, Polls: true,
			Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return e.src, nil }},
		sdk.Connector{Name: "run-only", Kind: sdk.KindConsumer,
			Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return runOnly{}, nil }},
		sdk.Connector{Name: "rec", Kind: sdk.KindProducer,
			Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return e.rec, nil }},
	)
	state, err := dataplane.OpenState(t.Context(), js)
	require.NoError(t, err)
	e.state = state
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Runner{JS: js, Catalog: catalog, Name: "r1", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}).Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("runner did not stop")
		}
	})
	return e
}

func (e *scheduledEnv) put(name, consumer, status string, version int) dataplane.Pipeline {
	e.t.Helper()
	d := dataplane.Desired{Tenant: e.tenant, Integration: name, Version: version, Status: status, Spec: spec.Integration{
		Name: name, Consumer: spec.Step{Connector: consumer}, Producers: map[string]spec.Step{"out": {Connector: "rec"}},
		Schedule: "*/5 * * * *",
	}}
	require.NoError(e.t, e.state.PutDesired(context.Background(), d))
	return d.Pipeline()
}

func (e *scheduledEnv) waitStatus(p dataplane.Pipeline, version int, want string) dataplane.Status {
	e.t.Helper()
	var st dataplane.Status
	require.Eventually(e.t, func() bool {
		var ok bool
		st, ok, _ = e.state.GetStatus(context.Background(), p)
		return ok && st.Version == version && st.Status == want
	}, 15*time.Second, 20*time.Millisecond, "pipeline %s never reached %s (last: %+v)", p, want, st)
	return st
}

// run asks for a run and waits for its result.
func (e *scheduledEnv) run(p dataplane.Pipeline, runID string) dataplane.RunResult {
	e.t.Helper()
	require.NoError(e.t, e.state.RequestRun(context.Background(), p, dataplane.RunRequest{RunID: runID}))
	return e.awaitResult(p, runID)
}

func (e *scheduledEnv) awaitResult(p dataplane.Pipeline, runID string) dataplane.RunResult {
	e.t.Helper()
	var res dataplane.RunResult
	require.Eventually(e.t, func() bool {
		var ok bool
		res, ok, _ = e.state.RunResult(context.Background(), p)
		return ok && res.RunID == runID && res.Finished()
	}, 15*time.Second, 20*time.Millisecond, "run %s never finished (last: %+v)", runID, res)
	return res
}

func TestScheduledPipelinePollsOncePerRunRequest(t *testing.T) {
	t.Parallel()
	e := newScheduledEnv(t)
	e.src.add("a", "b", "c")
	p := e.put("poll", "src", dataplane.DesiredRunning, 1)
	e.waitStatus(p, 1, dataplane.StatusRunning)

	time.Sleep(300 * time.Millisecond)
	polls, runs := e.src.counts()
	require.Zero(t, runs, "a scheduled consumer never runs continuously")
	require.Zero(t, polls, "nor polls before a run is asked for")
	require.Zero(t, e.rec.delivered())

	first := e.run(p, "run-1")
	require.Equal(t, 3, first.Messages)
	require.Empty(t, first.Error)
	require.Equal(t, "r1", first.Runner)
	require.False(t, first.StartedAt.After(first.FinishedAt))
	require.Eventually(t, func() bool { return e.rec.delivered() == 3 }, 15*time.Second, 20*time.Millisecond,
		"what the poll took in reaches the producer")

	// Asking again for the same run changes nothing.
	require.NoError(t, e.state.RequestRun(context.Background(), p, dataplane.RunRequest{RunID: "run-1"}))
	time.Sleep(200 * time.Millisecond)
	polls, _ = e.src.counts()
	require.Equal(t, 1, polls)

	e.src.add("d")
	second := e.run(p, "run-2")
	require.Equal(t, 1, second.Messages)
	empty := e.run(p, "run-3")
	require.Zero(t, empty.Messages)
	polls, runs = e.src.counts()
	require.Equal(t, 3, polls)
	require.Zero(t, runs)

	recent, err := e.state.RecentRuns(context.Background(), p, 10)
	require.NoError(t, err)
	require.Len(t, recent, 3, "one entry per run, in its final state")
	require.Equal(t, []string{"run-3", "run-2", "run-1"}, []string{recent[0].RunID, recent[1].RunID, recent[2].RunID})
	for _, r := range recent {
		require.True(t, r.Finished())
	}
	two, err := e.state.RecentRuns(context.Background(), p, 2)
	require.NoError(t, err)
	require.Len(t, two, 2)
}

func TestScheduledRunReportsFailuresAndInterruptions(t *testing.T) {
	t.Parallel()
	e := newScheduledEnv(t)
	p := e.put("fail", "src", dataplane.DesiredRunning, 1)
	e.waitStatus(p, 1, dataplane.StatusRunning)

	e.src.mu.Lock()
	e.src.failing = errors.New("source unreachable")
	e.src.mu.Unlock()
	failed := e.run(p, "run-1")
	require.Equal(t, "source unreachable", failed.Error)
	require.True(t, failed.Finished())

	// A run interrupted by a stop says so.
	e.src.mu.Lock()
	e.src.failing, e.src.hold = nil, make(chan struct{})
	e.src.mu.Unlock()
	require.NoError(t, e.state.RequestRun(context.Background(), p, dataplane.RunRequest{RunID: "run-2"}))
	require.Eventually(t, func() bool {
		res, ok, _ := e.state.RunResult(context.Background(), p)
		return ok && res.RunID == "run-2" && !res.Finished()
	}, 15*time.Second, 20*time.Millisecond, "the run starts")
	e.put("fail", "src", dataplane.DesiredStopped, 1)
	interrupted := e.awaitResult(p, "run-2")
	require.Contains(t, interrupted.Error, "interrupted")
}

func TestScheduledRunRequestedWhileStoppedIsServedOnStart(t *testing.T) {
	t.Parallel()
	e := newScheduledEnv(t)
	e.src.add("x", "y")
	p := e.put("later", "src", dataplane.DesiredStopped, 1)
	e.waitStatus(p, 1, dataplane.StatusStopped)
	require.NoError(t, e.state.RequestRun(context.Background(), p, dataplane.RunRequest{RunID: "early"}))
	time.Sleep(200 * time.Millisecond)
	_, ok, err := e.state.RunResult(context.Background(), p)
	require.NoError(t, err)
	require.False(t, ok, "a stopped pipeline runs nothing")

	e.put("later", "src", dataplane.DesiredRunning, 1)
	res := e.awaitResult(p, "early")
	require.Equal(t, 2, res.Messages)

	// A restart (a new version) does not run a finished request again.
	e.put("later", "src", dataplane.DesiredRunning, 2)
	e.waitStatus(p, 2, dataplane.StatusRunning)
	time.Sleep(300 * time.Millisecond)
	polls, _ := e.src.counts()
	require.Equal(t, 1, polls)

	// An expired request is skipped.
	e.src.add("z")
	require.NoError(t, e.state.RequestRun(context.Background(), p, dataplane.RunRequest{RunID: "stale", Deadline: time.Now().Add(-time.Minute)}))
	time.Sleep(300 * time.Millisecond)
	last, _, err := e.state.RunResult(context.Background(), p)
	require.NoError(t, err)
	require.Equal(t, "early", last.RunID, "nobody waits for an expired request any more")
	require.Equal(t, 1, e.run(p, "fresh").Messages)
}

func TestScheduleNeedsAPollingConsumer(t *testing.T) {
	t.Parallel()
	e := newScheduledEnv(t)
	p := e.put("cannot", "run-only", dataplane.DesiredRunning, 1)
	st := e.waitStatus(p, 1, dataplane.StatusDegraded)
	require.Contains(t, st.LastError, `consumer "run-only" does not support schedules`)
}
