package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
)

// Deployment timings.
const (
	// deployPollEvery is the pause between two sweeps of the status API
	// over the integrations not yet running.
	deployPollEvery = 250 * time.Millisecond
	// deployProgressEvery is how often progress says how far it got.
	deployProgressEvery = 5 * time.Second
	// maxDeployErrors is how many deployment errors a report quotes.
	maxDeployErrors = 10
)

// scaleIntegration is one of the scenario's integrations and what its
// deployment went through.
type scaleIntegration struct {
	tenant, name string
	api          *client.API // the tenant's
	version      int64
	// submitted is when the API accepted its deploy; running when the
	// status API first showed a runner running that version.
	submitted, running time.Time
	runner             string // the runner named in that status
	err                string
}

// DeployResult is how deploying the integrations through the API went.
type DeployResult struct {
	Requested int `json:"requested"`
	Running   int `json:"running"`
	// Failed were refused by the API, reported degraded, or not running
	// when the deploy timeout passed (TimedOut).
	Failed   int      `json:"failed"`
	TimedOut bool     `json:"timed_out,omitempty"`
	Errors   []string `json:"errors,omitempty"` // the first few
	// SubmitSeconds is from the first create request to the last deploy
	// the API accepted; Seconds from the first create request to the last
	// integration the status API showed running.
	SubmitSeconds float64 `json:"submit_s"`
	Seconds       float64 `json:"seconds"`
	// PerSecond is Running / Seconds.
	PerSecond float64 `json:"deploys_per_s"`
}

// deploy creates and deploys items through their tenants' API keys,
// scaleAPIConcurrency requests at a time, while sweeping the status API
// over those submitted until each is running, failed, or timeout passed.
// Failures are counted, not fatal: the run goes on with what runs.
func (s *scaleRun) deploy(ctx context.Context, items []*scaleIntegration, timeout time.Duration) DeployResult {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	first := time.Now()
	submitted := make(chan *scaleIntegration, len(items))
	jobs := make(chan *scaleIntegration)
	var workers sync.WaitGroup
	for range min(scaleAPIConcurrency, len(items)) {
		workers.Go(func() {
			for it := range jobs {
				if err := s.submit(ctx, it); err != nil {
					it.err = err.Error()
					continue
				}
				submitted <- it
			}
		})
	}
	go func() {
		defer close(submitted)
		defer workers.Wait()
		defer close(jobs)
		for _, it := range items {
			select {
			case jobs <- it:
			case <-ctx.Done():
				return
			}
		}
	}()
	s.awaitRunning(ctx, submitted)
	for range submitted { // the submitters are done once it is closed
	}

	res := DeployResult{Requested: len(items), TimedOut: ctx.Err() != nil && parent.Err() == nil}
	var lastSubmit, lastRunning time.Time
	for _, it := range items {
		if it.submitted.After(lastSubmit) {
			lastSubmit = it.submitted
		}
		switch {
		case !it.running.IsZero():
			res.Running++
			if it.running.After(lastRunning) {
				lastRunning = it.running
			}
		case it.err == "":
			it.err = fmt.Sprintf("%s/%s: not running after %s", it.tenant, it.name, timeout)
			fallthrough
		default:
			res.Failed++
			if len(res.Errors) < maxDeployErrors {
				res.Errors = append(res.Errors, it.err)
			}
		}
	}
	if !lastSubmit.IsZero() {
		res.SubmitSeconds = lastSubmit.Sub(first).Seconds()
	}
	if !lastRunning.IsZero() {
		res.Seconds = lastRunning.Sub(first).Seconds()
		res.PerSecond = ratePerSecond(int64(res.Running), lastRunning.Sub(first))
	}
	return res
}

// submit creates integration it with the scenario's spec and asks for its
// deploy.
func (s *scaleRun) submit(ctx context.Context, it *scaleIntegration) error {
	body, err := json.Marshal(IntegrationSpec(s.cfg, it.name))
	if err != nil {
		return fmt.Errorf("%s/%s: encode spec: %w", it.tenant, it.name, err)
	}
	cr, err := it.api.CreateIntegrationWithBodyWithResponse(ctx, nil, "application/json", bytes.NewReader(body))
	if err := client.Check(it.tenant+"/"+it.name+": create", cr, err, http.StatusCreated); err != nil {
		return err
	}
	if cr.JSON201 == nil {
		return fmt.Errorf("%s/%s: create answered %d without a JSON integration", it.tenant, it.name, cr.StatusCode())
	}
	it.version = cr.JSON201.Version
	reason := "vrsky bench --scenario scale"
	dr, err := it.api.DeployIntegrationWithResponse(ctx, it.name, nil, client.DeployIntegrationJSONRequestBody{Version: &it.version, Reason: &reason})
	if err := client.Check(it.tenant+"/"+it.name+": deploy", dr, err, http.StatusAccepted); err != nil {
		return err
	}
	it.submitted = time.Now()
	return nil
}

// awaitRunning sweeps the status API over the integrations received from
// submitted until submitted is closed and every one of them settled
// (running or degraded), or ctx ends.
func (s *scaleRun) awaitRunning(ctx context.Context, submitted <-chan *scaleIntegration) {
	var pending []*scaleIntegration
	open := true
	began, said := time.Now(), time.Now()
	settled := 0
	for {
		// Take in what was submitted since the last sweep, waiting for
		// something when there is nothing to sweep.
	take:
		for open {
			if len(pending) == 0 {
				select {
				case it, ok := <-submitted:
					if !ok {
						open = false
						break take
					}
					pending = append(pending, it)
				case <-ctx.Done():
					return
				}
				continue
			}
			select {
			case it, ok := <-submitted:
				if !ok {
					open = false
					break take
				}
				pending = append(pending, it)
			default:
				break take
			}
		}
		before := len(pending)
		pending = s.sweep(ctx, pending)
		settled += before - len(pending)
		if !open && len(pending) == 0 {
			return
		}
		if time.Since(said) >= deployProgressEvery {
			said = time.Now()
			fmt.Fprintf(s.cfg.Progress, "deploy: after %s %d settled (running or degraded), %d accepted and not running yet\n",
				time.Since(began).Round(time.Second), settled, len(pending))
		}
		if sleep(ctx, deployPollEvery) != nil {
			return
		}
	}
}

// sweep asks the status API about each of pending, scaleAPIConcurrency at
// a time, records those a runner reports running (or degraded) at their
// deployed version, and returns the others.
func (s *scaleRun) sweep(ctx context.Context, pending []*scaleIntegration) []*scaleIntegration {
	settled := make([]bool, len(pending))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(scaleAPIConcurrency, len(pending)) {
		wg.Go(func() {
			for i := range jobs {
				settled[i] = checkRunning(ctx, pending[i])
			}
		})
	}
	for i := range pending {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	left := pending[:0]
	for i, it := range pending {
		if !settled[i] {
			left = append(left, it)
		}
	}
	return left
}

// checkRunning asks the status API about it and reports whether its
// deployment settled: a runner reports its version running (it.running is
// set) or degraded (it.err is set).
func checkRunning(ctx context.Context, it *scaleIntegration) bool {
	r, err := it.api.GetIntegrationStatusWithResponse(ctx, it.name)
	if err != nil || r.JSON200 == nil || r.JSON200.Runner == nil || r.JSON200.Runner.Version != it.version {
		return false // not reported yet; a failed request is asked again
	}
	st := r.JSON200
	switch st.Runner.Status {
	case "running":
		it.running, it.runner = time.Now(), st.Runner.Runner
		return true
	case "degraded":
		reason := ""
		if st.Runner.LastError != nil {
			reason = *st.Runner.LastError
		}
		it.err = fmt.Sprintf("%s/%s: degraded on runner %q: %s", it.tenant, it.name, st.Runner.Runner, reason)
		return true
	}
	return false
}

// statusRunners counts the running integrations by the runner the status
// API named for each.
func statusRunners(items []*scaleIntegration) map[string]int {
	out := map[string]int{}
	for _, it := range items {
		if !it.running.IsZero() {
			out[it.runner]++
		}
	}
	return out
}

// createTenants creates tenants through the API with the admin key,
// scaleAPIConcurrency at a time, waits until each is active, and returns a
// client holding each one's first key (kept in the stack's keys folder).
func (s *scaleRun) createTenants(ctx context.Context, tenants []string) (map[string]*client.API, error) {
	clients := make([]*client.API, len(tenants))
	errs := make([]error, len(tenants))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(scaleAPIConcurrency, len(tenants)) {
		wg.Go(func() {
			for i := range jobs {
				clients[i], _, errs[i] = tenantkey.Ensure(ctx, s.admin, tenants[i], s.keyFile(tenants[i]))
			}
		})
	}
	for i := range tenants {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	out := make(map[string]*client.API, len(tenants))
	for i, t := range tenants {
		if errs[i] != nil {
			return out, fmt.Errorf("create benchmark tenant: %w", errs[i])
		}
		out[t] = clients[i]
	}
	return out, nil
}
