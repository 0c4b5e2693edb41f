package roles

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

// provisioningOperations maps the tenant workflows to the operation label
// of the provisioning metrics.
var provisioningOperations = map[string]string{
	"TenantProvision":    "create_tenant",
	"TenantDecommission": "delete_tenant",
	"TenantLimits":       "update_tenant",
}

// provisioningMetrics records how long each tenant workflow took and how
// it ended (vrsky_provisioning_duration_seconds{operation,outcome},
// vrsky_provisioning_failures_total{operation}). It is a worker
// interceptor, so the workflows stay free of it: it times a run from its
// start to its end in workflow time and records only outside replay, so a
// run is recorded once and its history is never touched.
type provisioningMetrics struct {
	interceptor.WorkerInterceptorBase
	duration *prometheus.HistogramVec
	failures *prometheus.CounterVec
}

// newProvisioningMetrics creates the metrics and registers them with reg.
func newProvisioningMetrics(reg prometheus.Registerer) *provisioningMetrics {
	m := &provisioningMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vrsky_provisioning_duration_seconds", Help: "Time from the start of a tenant workflow to its end, by operation and outcome.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600},
		}, []string{"operation", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vrsky_provisioning_failures_total", Help: "Tenant workflows that ended in failure, by operation.",
		}, []string{"operation"}),
	}
	for _, op := range provisioningOperations {
		m.failures.WithLabelValues(op) // shown at 0 until one fails
	}
	if reg != nil {
		reg.MustRegister(m.duration, m.failures)
	}
	return m
}

func (m *provisioningMetrics) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	op, ok := provisioningOperations[workflow.GetInfo(ctx).WorkflowType.Name]
	if !ok {
		return next
	}
	return &provisioningRun{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, m: m, operation: op}
}

type provisioningRun struct {
	interceptor.WorkflowInboundInterceptorBase
	m         *provisioningMetrics
	operation string
}

func (r *provisioningRun) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	result, err := r.Next.ExecuteWorkflow(ctx, in)
	var continued *workflow.ContinueAsNewError
	if workflow.IsReplaying(ctx) || errors.As(err, &continued) {
		return result, err
	}
	outcome := "succeeded"
	if err != nil {
		outcome = "failed"
		r.m.failures.WithLabelValues(r.operation).Inc()
	}
	took := workflow.Now(ctx).Sub(workflow.GetInfo(ctx).WorkflowStartTime)
	r.m.duration.WithLabelValues(r.operation, outcome).Observe(took.Seconds())
	return result, err
}
