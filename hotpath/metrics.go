package hotpath

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hot path's Prometheus metrics, labelled by tenant,
// integration and stage.
type Metrics struct {
	messagesIn   *prometheus.CounterVec
	messagesOut  *prometheus.CounterVec
	filtered     *prometheus.CounterVec
	bytesIn      *prometheus.CounterVec
	retries      *prometheus.CounterVec
	dlq          *prometheus.CounterVec
	claimBytes   *prometheus.CounterVec
	stageLatency *prometheus.HistogramVec
	endToEnd     *prometheus.HistogramVec
	consumerLag  *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	labels := []string{"tenant", "integration", "stage"}
	m := &Metrics{
		messagesIn:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_stage_messages_in_total", Help: "Messages a stage received."}, labels),
		messagesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_stage_messages_out_total", Help: "Messages a stage completed (published onward or delivered)."}, labels),
		filtered:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_stage_messages_filtered_total", Help: "Messages a filter dropped."}, labels),
		bytesIn:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_stage_bytes_in_total", Help: "Body bytes a stage received."}, labels),
		retries:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_stage_retries_total", Help: "Messages scheduled for redelivery after a failure."}, labels),
		dlq:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_stage_dlq_total", Help: "Messages sent to the dead-letter queue."}, labels),
		claimBytes:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vrsky_claimcheck_bytes_total", Help: "Body bytes fetched from the blob store."}, labels),
		stageLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vrsky_stage_duration_seconds", Help: "Time a stage spent on a batch, per message.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, labels),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vrsky_end_to_end_seconds", Help: "Time from a message's ingestion to its delivery by a producer.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, labels),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vrsky_stage_consumer_lag", Help: "Messages waiting for a stage."}, labels),
	}
	if reg != nil {
		reg.MustRegister(m.messagesIn, m.messagesOut, m.filtered, m.bytesIn, m.retries, m.dlq, m.claimBytes, m.stageLatency, m.endToEnd, m.consumerLag)
	}
	return m
}

// pipelineMetrics are the metrics of one stage of one pipeline, resolved
// once so the hot loop does no label lookups.
type pipelineMetrics struct {
	in, out, filtered, bytes, retries, dlq, claimBytes prometheus.Counter
	latency, endToEnd                                  prometheus.Observer
}

func (m *Metrics) forStage(p Pipeline, stage string) *pipelineMetrics {
	l := prometheus.Labels{"tenant": p.Tenant, "integration": p.Integration, "stage": stage}
	return &pipelineMetrics{
		in: m.messagesIn.With(l), out: m.messagesOut.With(l), filtered: m.filtered.With(l),
		bytes: m.bytesIn.With(l), retries: m.retries.With(l), dlq: m.dlq.With(l),
		claimBytes: m.claimBytes.With(l), latency: m.stageLatency.With(l), endToEnd: m.endToEnd.With(l),
	}
}

// forget removes a stopped pipeline's series.
func (m *Metrics) forget(p Pipeline) {
	l := prometheus.Labels{"tenant": p.Tenant, "integration": p.Integration}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.messagesIn, m.messagesOut, m.filtered, m.bytesIn, m.retries, m.dlq, m.claimBytes, m.stageLatency, m.endToEnd, m.consumerLag,
	} {
		v.DeletePartialMatch(l)
	}
}
