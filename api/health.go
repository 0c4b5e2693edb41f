package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// Check is one dependency /readyz reports on.
type Check struct {
	Name string
	// Probe returns nil when the dependency is usable.
	Probe func(ctx context.Context) error
}

// checkTimeout bounds each readiness probe so one hung dependency cannot hang
// the endpoint.
const checkTimeout = 2 * time.Second

// HealthOutput is the liveness answer.
type HealthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok" doc:"Always ok while the process serves HTTP."`
	}
}

// DependencyState is one dependency's readiness.
type DependencyState struct {
	Status string `json:"status" enum:"up,down" doc:"up when the dependency answered its probe."`
	Error  string `json:"error,omitempty" doc:"Why the probe failed."`
}

// ReadyOutput is the readiness answer: 200 when every dependency is up, 503
// otherwise.
type ReadyOutput struct {
	Status int
	Body   struct {
		Status       string                     `json:"status" enum:"ready,not_ready"`
		Dependencies map[string]DependencyState `json:"dependencies,omitempty" doc:"Each dependency's state; left out on a public listener whose admin listener has them."`
	}
}

// RegisterHealth adds GET /healthz and GET /readyz.
func RegisterHealth(api huma.API, checks []Check) { registerHealth(api, checks, true) }

// registerHealth adds GET /healthz and GET /readyz; without details,
// /readyz says only whether every dependency is up, not which or why (the
// errors may name internal hosts).
func registerHealth(api huma.API, checks []Check, details bool) {
	h := &healthHandler{checks: checks, details: details}
	huma.Register(api, huma.Operation{
		OperationID: "get-health",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Summary:     "Liveness",
		Description: "Answers 200 while the process is serving HTTP.",
		Tags:        []string{"Health"},
		Security:    []map[string][]string{}, // public
	}, h.health)

	huma.Register(api, huma.Operation{
		OperationID: "get-readiness",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Summary:     "Readiness",
		Description: "Probes every dependency (PostgreSQL, NATS, Temporal, S3). 200 only when all are up, 503 otherwise.",
		Tags:        []string{"Health"},
		Security:    []map[string][]string{}, // public
		Responses: map[string]*huma.Response{
			"503": {Description: "At least one dependency is down; the body says which."},
		},
	}, h.ready)
}

// healthHandler answers the probes; without details, /readyz says only
// whether every dependency is up.
type healthHandler struct {
	checks  []Check
	details bool
}

func (h *healthHandler) health(ctx context.Context, _ *struct{}) (*HealthOutput, error) {
	out := &HealthOutput{}
	out.Body.Status = "ok"
	return out, nil
}

func (h *healthHandler) ready(ctx context.Context, _ *struct{}) (*ReadyOutput, error) {
	states := probeAll(ctx, h.checks)
	out := &ReadyOutput{Status: http.StatusOK}
	out.Body.Status = "ready"
	if h.details {
		out.Body.Dependencies = states
	}
	for _, st := range states {
		if st.Status != "up" {
			out.Status = http.StatusServiceUnavailable
			out.Body.Status = "not_ready"
		}
	}
	return out, nil
}

func probeAll(ctx context.Context, checks []Check) map[string]DependencyState {
	states := make(map[string]DependencyState, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			st := DependencyState{Status: "up"}
			if err := c.Probe(ctx); err != nil {
				st = DependencyState{Status: "down", Error: err.Error()}
			}
			mu.Lock()
			states[c.Name] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	return states
}
