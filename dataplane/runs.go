package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A pipeline whose spec has a schedule does not run its consumer
// continuously. The control plane asks for each run by writing a run
// request (a run ID) to the pipeline's key in RunsBucket; the runner holding
// the pipeline's lease polls the source once per new request and writes the
// run's result under the pipeline's result key, where the control plane
// reads it. The bucket sits next to the desired state, so runs need nothing
// else from the control plane and no Temporal call.

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
	return OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: RunsBucket, History: runsHistory})
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
