package roles

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// IntegrationLatencyVar, when true, labels the hot path's latency
// histograms by integration too (hotpath.MetricsOptions).
const IntegrationLatencyVar = "VRSKY_METRICS_INTEGRATION_LATENCY"

// IntegrationLatencyFromEnv reads IntegrationLatencyVar (unset: false).
func IntegrationLatencyFromEnv() (bool, error) {
	v, err := strconv.ParseBool(cmp.Or(os.Getenv(IntegrationLatencyVar), "false"))
	if err != nil {
		return false, fmt.Errorf("%s: %w", IntegrationLatencyVar, err)
	}
	return v, nil
}

// RegisterBuildInfo registers vrsky_build_info{version,goversion,role} = 1
// with reg. role is "api", "worker", "runner", or "dev" for vrsky dev, which
// runs them all in one process.
func RegisterBuildInfo(reg prometheus.Registerer, version, role string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "vrsky_build_info",
		Help:        "Always 1; its labels are the running binary's version, Go version and role.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "role": role},
	}, func() float64 { return 1 }))
}

// temporalReportInterval is how often the Temporal SDK's metrics move
// from its tally scope into the Prometheus registry.
const temporalReportInterval = time.Second

// TemporalMetrics returns the Temporal SDK's metrics handler for a client
// (client.Options.MetricsHandler): the SDK's temporal_* metrics, through
// its tally handler and tally's Prometheus reporter, land in reg and are
// served with every other metric on the role's /metrics. Close stops the
// scope's reporting.
func TemporalMetrics(reg *prometheus.Registry, logger *slog.Logger) (client.MetricsHandler, io.Closer) {
	reporter := tallyprom.NewReporter(tallyprom.Options{
		Registerer:       reg,
		DefaultTimerType: tallyprom.HistogramTimerType,
		OnRegisterError: func(err error) {
			// A metric the SDK emits with another label set than before:
			// it is left out, the role goes on.
			if logger != nil {
				logger.Warn("temporal metric not registered", "error", err)
			}
		},
	})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:         reporter,
		Separator:              tallyprom.DefaultSeparator,
		SanitizeOptions:        &sdktally.PrometheusSanitizeOptions,
		OmitCardinalityMetrics: true,
	}, temporalReportInterval)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer
}
