package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// A pipeline whose spec has a schedule does not run its consumer
// continuously. The control plane asks for each run by writing a run
// request (a run ID) to the pipeline's key in RunsBucket; the runner holding
// the pipeline's lease polls the source once per new request and writes the
// run's result under the pipeline's result key, where the control plane
// reads it. The bucket sits next to the desired state, so runs need nothing
// else from the control plane and no Temporal call.

// RunsBucket holds the run requests and results of scheduled pipelines.
const RunsBucket = "vrsky_runs"

// runsHistory is how many values of each key the runs bucket keeps: each
// run writes its result twice (started, finished), so RecentRuns sees the
// last 32 runs at most.
const runsHistory = 64

// MaxRunIDLength bounds a run ID.
const MaxRunIDLength = 200

// RunRequest asks for one run of a scheduled pipeline.
type RunRequest struct {
	// RunID identifies the run; asking again with the same ID is the same
	// run.
	RunID       string    `json:"run_id"`
	RequestedAt time.Time `json:"requested_at"`
	// Deadline, when set, is when the requester stops waiting: a runner
	// that comes to the request later does not run it.
	Deadline time.Time `json:"deadline,omitzero"`
}

// RunResult is what one run of a scheduled pipeline took in.
type RunResult struct {
	RunID  string `json:"run_id"`
	Runner string `json:"runner"`
	// StartedAt is when the runner began to poll; FinishedAt is zero while
	// it polls.
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Messages counts the messages taken in (durable in the pipeline's
	// stream), also when the run failed.
	Messages int `json:"messages"`
	// Error says why the run failed or was interrupted; the next run
	// resumes where this one stopped.
	Error string `json:"error,omitempty"`
}

// Finished reports whether the run is over.
func (r RunResult) Finished() bool { return !r.FinishedAt.IsZero() }

func openRuns(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RunsBucket, History: runsHistory})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", RunsBucket, err)
	}
	return kv, nil
}

// RequestRun asks the runners for a run of a scheduled pipeline. Asking
// again for the run that was last asked for changes nothing, so a retried
// request never runs twice. A pipeline that is not running, or not
// scheduled, leaves the request unanswered.
func (s *State) RequestRun(ctx context.Context, p Pipeline, req RunRequest) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if req.RunID == "" || len(req.RunID) > MaxRunIDLength {
		return fmt.Errorf("run ID %q: want 1 to %d bytes", req.RunID, MaxRunIDLength)
	}
	entry, err := s.Runs.Get(ctx, p.RunRequestKey())
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("read the run request of %s: %w", p, err)
	default:
		var last RunRequest
		if json.Unmarshal(entry.Value(), &last) == nil && last.RunID == req.RunID {
			return nil
		}
	}
	if req.RequestedAt.IsZero() {
		req.RequestedAt = time.Now().UTC()
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := s.Runs.Put(ctx, p.RunRequestKey(), b); err != nil {
		return fmt.Errorf("request run %s of %s: %w", req.RunID, p, err)
	}
	return nil
}

// RunResult reads the result of a pipeline's last run; ok is false before
// its first run.
func (s *State) RunResult(ctx context.Context, p Pipeline) (res RunResult, ok bool, err error) {
	if err := p.Validate(); err != nil {
		return res, false, err
	}
	entry, err := s.Runs.Get(ctx, p.RunResultKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return res, false, nil
	}
	if err != nil {
		return res, false, fmt.Errorf("read the run result of %s: %w", p, err)
	}
	if err := json.Unmarshal(entry.Value(), &res); err != nil {
		return res, false, fmt.Errorf("decode the run result of %s: %w", p, err)
	}
	return res, true, nil
}

// RecentRuns returns up to n of a pipeline's last runs, newest first, each
// in its latest state (a run still polling has no FinishedAt).
func (s *State) RecentRuns(ctx context.Context, p Pipeline, n int) ([]RunResult, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	entries, err := s.Runs.History(ctx, p.RunResultKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the runs of %s: %w", p, err)
	}
	var out []RunResult
	seen := map[string]bool{}
	for i := len(entries) - 1; i >= 0 && len(out) < n; i-- {
		var res RunResult
		if entries[i].Operation() != jetstream.KeyValuePut || json.Unmarshal(entries[i].Value(), &res) != nil || seen[res.RunID] {
			continue
		}
		seen[res.RunID] = true
		out = append(out, res)
	}
	return out, nil
}

// forgetRuns purges a deleted pipeline's run request and results.
func (s *State) forgetRuns(ctx context.Context, p Pipeline) error {
	for _, key := range []string{p.RunRequestKey(), p.RunResultKey()} {
		if err := s.Runs.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("forget the runs of %s: %w", p, err)
		}
	}
	return nil
}

// consumerWork returns what the holder of a pipeline's lease runs: the
// consumer continuously, or, when the spec has a schedule, one Poll per run
// request.
func consumerWork(d deps, want Desired, consumer sdk.Consumer, log *slog.Logger) (func(context.Context), error) {
	p := want.Pipeline()
	sink := sinkFor(d.pub, p)
	if want.Spec.Schedule == "" {
		return func(ctx context.Context) {
			if lr, ok := consumer.(sdk.LagReporter); ok && d.metrics != nil {
				lagCtx, stop := context.WithCancel(ctx)
				done := make(chan struct{})
				go func() { defer close(done); reportSourceLag(lagCtx, lr, d.metrics, p) }()
				defer func() { stop(); <-done }()
			}
			runConsumer(ctx, consumer, sink, log)
		}, nil
	}
	poller, ok := consumer.(sdk.Poller)
	if !ok {
		return nil, fmt.Errorf("consumer %q does not support schedules", want.Spec.Consumer.Connector)
	}
	if d.state == nil || d.state.Runs == nil {
		return nil, errors.New("scheduled pipelines need the runs bucket")
	}
	r := &scheduledRuns{kv: d.state.Runs, p: p, poller: poller, sink: sink, runner: d.runnerName,
		log: log.With("schedule", want.Spec.Schedule)}
	return r.serve, nil
}

// scheduledRuns serves one scheduled pipeline's run requests while this
// runner holds its lease.
type scheduledRuns struct {
	kv     jetstream.KeyValue
	p      Pipeline
	poller sdk.Poller
	sink   sdk.Sink
	runner string
	log    *slog.Logger
	// done is the last run handled: finished and its result written.
	done string
	// unwritten is a finished run whose result could not be written yet;
	// rev is the revision of its started entry.
	unwritten *RunResult
	rev       uint64
}

// serve watches the pipeline's run requests until ctx ends, watching again
// with backoff when the watch fails.
func (r *scheduledRuns) serve(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := r.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("serving run requests failed; retrying", "error", err, "in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// watch handles each run request as it comes, beginning with the one
// already there (asked for while no runner held the lease, or interrupted
// by a crash). It returns when ctx ends or the bucket fails.
func (r *scheduledRuns) watch(ctx context.Context) error {
	w, err := r.kv.Watch(ctx, r.p.RunRequestKey())
	if err != nil {
		return fmt.Errorf("watch run requests: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case entry, ok := <-w.Updates():
			if !ok {
				return errors.New("the run-request watch closed")
			}
			if entry == nil || entry.Operation() != jetstream.KeyValuePut {
				continue
			}
			var req RunRequest
			if err := json.Unmarshal(entry.Value(), &req); err != nil || req.RunID == "" {
				r.log.Error("ignoring malformed run request", "error", err)
				continue
			}
			if err := r.handle(ctx, req); err != nil {
				return err
			}
		}
	}
}

// handle carries out one run request, unless it was handled already, here
// or by an earlier lease holder, or expired. It returns an error only when
// the bucket cannot be read or written; the request is then handled again.
func (r *scheduledRuns) handle(ctx context.Context, req RunRequest) error {
	if req.RunID == r.done {
		return nil
	}
	if r.unwritten != nil && r.unwritten.RunID == req.RunID {
		return r.finish(ctx, *r.unwritten)
	}
	log := r.log.With("run_id", req.RunID)
	if !req.Deadline.IsZero() && time.Now().After(req.Deadline) {
		log.Info("run request expired before it was served; skipped")
		r.done = req.RunID
		return nil
	}
	entry, err := r.kv.Get(ctx, r.p.RunResultKey())
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("read the last run result: %w", err)
	default:
		var last RunResult
		if json.Unmarshal(entry.Value(), &last) == nil && last.RunID == req.RunID && last.Finished() {
			r.done = req.RunID
			return nil
		}
	}

	res := RunResult{RunID: req.RunID, Runner: r.runner, StartedAt: time.Now().UTC()}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if r.rev, err = r.kv.Put(ctx, r.p.RunResultKey(), b); err != nil {
		return fmt.Errorf("record the start of run %s: %w", req.RunID, err)
	}
	log.Info("scheduled run started")
	out, err := r.poller.Poll(ctx, r.sink)
	res.FinishedAt, res.Messages = time.Now().UTC(), out.Messages
	switch {
	case ctx.Err() != nil:
		res.Error = "interrupted: the pipeline stopped or this runner lost its lease; the next run resumes"
	case err != nil:
		res.Error = err.Error()
	}
	if res.Error != "" {
		log.Warn("scheduled run failed", "error", res.Error, "messages", res.Messages)
	} else {
		log.Info("scheduled run finished", "messages", res.Messages, "took", res.FinishedAt.Sub(res.StartedAt).String())
	}
	// The result is written even when ctx ended, so that whoever waits
	// for it learns the run was interrupted.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return r.finish(wctx, res)
}

// finish writes a run's result over its started entry, unless another
// runner has written since (it took the run over).
func (r *scheduledRuns) finish(ctx context.Context, res RunResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = r.kv.Update(ctx, r.p.RunResultKey(), b, r.rev)
	switch {
	case err == nil:
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		r.log.Info("another runner took the run over; its result stands", "run_id", res.RunID)
	default:
		r.unwritten = &res
		return fmt.Errorf("record the result of run %s: %w", res.RunID, err)
	}
	r.done, r.unwritten = res.RunID, nil
	return nil
}
