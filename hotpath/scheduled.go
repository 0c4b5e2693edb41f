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
	"github.com/vrsky/vrsky/dataplane"
)

// consumerWork returns what the holder of a pipeline's lease runs: the
// consumer continuously, or, when the spec has a schedule, one Poll per run
// request.
func consumerWork(d deps, want dataplane.Desired, consumer sdk.Consumer, log *slog.Logger) (func(context.Context), error) {
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
	p      dataplane.Pipeline
	poller sdk.Poller
	sink   sdk.Sink
	runner string
	log    *slog.Logger
	// done is the last run handled: finished and its result written.
	done string
	// unwritten is a finished run whose result could not be written yet;
	// rev is the revision of its started entry.
	unwritten *dataplane.RunResult
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
			var req dataplane.RunRequest
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
func (r *scheduledRuns) handle(ctx context.Context, req dataplane.RunRequest) error {
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
		var last dataplane.RunResult
		if json.Unmarshal(entry.Value(), &last) == nil && last.RunID == req.RunID && last.Finished() {
			r.done = req.RunID
			return nil
		}
	}

	res := dataplane.RunResult{RunID: req.RunID, Runner: r.runner, StartedAt: time.Now().UTC()}
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
func (r *scheduledRuns) finish(ctx context.Context, res dataplane.RunResult) error {
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
