// Package api serves VRSky's REST API with Huma v2: one file per resource,
// each with a Register function, problem-details errors, and the OpenAPI 3.1
// document at /openapi.json with its docs at /docs.
//
// Handlers validate input, check the caller's tenant, write metadata and
// start workflows; they never wait on a workflow inside a request and never
// touch message bodies beyond the webhook ingress hand-off to the hot path.
package api

import (
	"log/slog"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vrsky/vrsky/internal/logging"
)

// Options are the dependencies of the API.
type Options struct {
	// Version is reported in the OpenAPI document.
	Version string
	// Checks are the dependencies /readyz reports on.
	Checks []Check
	// Gatherer is exposed on /metrics; default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
}

// Server is the API's HTTP handler and its Huma API, to which resources add
// their operations.
type Server struct {
	mux *http.ServeMux
	api huma.API
	log *slog.Logger
}

// New builds the API with its built-in operations (health, readiness,
// metrics, OpenAPI, docs).
func New(opts Options) *Server {
	mux := http.NewServeMux()
	cfg := huma.DefaultConfig("VRSky API", opts.Version)
	cfg.Info.Description = "VRSky is a multi-tenant integration platform: consumers take data in, " +
		"converters and filters shape it, producers deliver it."
	humaAPI := humago.New(mux, cfg)

	gatherer := opts.Gatherer
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))

	s := &Server{mux: mux, api: humaAPI, log: logging.Component(opts.Logger, "api")}
	RegisterHealth(humaAPI, opts.Checks)
	return s
}

// Handler is the root HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// API is the Huma API that resources register their operations on.
func (s *Server) API() huma.API { return s.api }
