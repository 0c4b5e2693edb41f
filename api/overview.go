package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/vrsky/vrsky/internal/store"
)

// overviewRateWindow is how far back the overview's rates look.
const overviewRateWindow = time.Minute

// TenantCounts counts tenants by status.
type TenantCounts struct {
	Total        int `json:"total" doc:"Every tenant not deleted."`
	Active       int `json:"active"`
	Provisioning int `json:"provisioning"`
	Failed       int `json:"failed"`
}

// IntegrationCounts counts integrations by status.
type IntegrationCounts struct {
	Total    int `json:"total" doc:"Every integration of every tenant not deleted (pending ones are only in total)."`
	Running  int `json:"running"`
	Degraded int `json:"degraded"`
	Stopped  int `json:"stopped"`
}

// Overview is the platform at a glance.
type Overview struct {
	Tenants           TenantCounts      `json:"tenants"`
	Integrations      IntegrationCounts `json:"integrations"`
	MessagesPerSecond float64           `json:"messages_per_second" doc:"Messages entering every running integration, per second, over the last minute's samples."`
	ErrorsPerSecond   float64           `json:"errors_per_second" doc:"Failed attempts of every running integration, per second, over the last minute's samples."`
	DLQMessages       int64             `json:"dlq_messages" doc:"Dead letters of the running integrations at their latest sample."`
	Components        map[string]string `json:"components" doc:"postgres, nats, temporal and s3: up, down, or not_configured when this API does not use it."`
}

// OverviewOutput is the platform overview.
type OverviewOutput struct {
	Body Overview
}

// componentNames are the dependencies the overview always reports.
var componentNames = []string{"postgres", "nats", "temporal", "s3"}

// overview serves get-overview.
type overview struct {
	st     *store.Store
	checks []Check
	log    *slog.Logger
}

// RegisterOverview adds get-overview for the platform admin key: counts
// from the store, rates from the metrics samples, and each dependency's
// state from the readiness checks.
func RegisterOverview(api huma.API, st *store.Store, checks []Check, log *slog.Logger) {
	h := &overview{st: st, checks: checks, log: log}
	huma.Register(api, huma.Operation{
		OperationID: "get-overview",
		Method:      http.MethodGet,
		Path:        "/v1/overview",
		Summary:     "Get the platform overview",
		Description: "Returns the platform at a glance, across every tenant: tenants and integrations by status, " +
			"the messages and failed attempts per second of the running integrations over the last minute and their " +
			"dead letters (from the metrics samples the platform writes every 10 seconds; 0 while none were written), " +
			"and whether PostgreSQL, NATS, Temporal and S3 answer their readiness probe (`not_configured` for one this " +
			"API does not use). Only the platform admin key may call it.",
		Tags:     []string{"Platform"},
		Security: requireScopes(store.ScopePlatformAdmin),
		Errors:   withAuthErrors(),
	}, h.get)
}

// get answers the platform at a glance.
func (h *overview) get(ctx context.Context, _ *struct{}) (*OverviewOutput, error) {
	o, err := h.st.Overview(ctx, overviewRateWindow)
	if err != nil {
		return nil, storeError(ctx, h.log, "get-overview", "", err)
	}
	out := &OverviewOutput{Body: Overview{
		MessagesPerSecond: o.MessagesPerSecond, ErrorsPerSecond: o.ErrorsPerSecond, DLQMessages: o.DLQMessages,
		Components: probeComponents(ctx, h.checks),
	}}
	for status, n := range o.Tenants {
		out.Body.Tenants.Total += n
		switch status {
		case store.TenantActive:
			out.Body.Tenants.Active = n
		case store.TenantProvisioning:
			out.Body.Tenants.Provisioning = n
		case store.TenantFailed:
			out.Body.Tenants.Failed = n
		}
	}
	for status, n := range o.Integrations {
		out.Body.Integrations.Total += n
		switch status {
		case "running":
			out.Body.Integrations.Running = n
		case "degraded":
			out.Body.Integrations.Degraded = n
		case "stopped":
			out.Body.Integrations.Stopped = n
		}
	}
	return out, nil
}

// probeComponents runs the readiness checks at once, each bounded by
// checkTimeout, and reports every component the overview names.
func probeComponents(ctx context.Context, checks []Check) map[string]string {
	out := make(map[string]string, len(componentNames))
	for _, n := range componentNames {
		out[n] = "not_configured"
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			state := "up"
			if err := c.Probe(pctx); err != nil {
				state = "down"
			}
			mu.Lock()
			out[c.Name] = state
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// registerConsole adds the operations the admin UI is built on (connectors,
// dry run, metrics history, message inspection, platform overview); the
// DLQ's replay progress is with the DLQ operations.
func registerConsole(api huma.API, opts Options, log *slog.Logger) {
	if opts.Store == nil {
		return
	}
	RegisterConnectors(api)
	RegisterDryRun(api, opts.Tenancy, opts.TenantEnvAllowed, log)
	RegisterHistory(api, opts.Store, log)
	RegisterOverview(api, opts.Store, opts.Checks, log)
	if opts.Accounts != nil {
		RegisterInspect(api, opts.Store, opts.Accounts, log)
	}
}
