package hotpath

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vrsky/vrsky/dataplane"
)

// Metrics are the hot path's Prometheus metrics. Counters and the consumer
// lag are labelled by tenant, integration and stage. The latency histograms
// cost a series per bucket, so by default they are labelled by tenant and
// stage kind only ("process" or "deliver", vrsky_end_to_end_seconds by
// tenant only); MetricsOptions.IntegrationLatency adds the integration and
// the full stage name ("deliver-<producer>").
type Metrics struct {
	integrationLatency bool
	dlqMessages        *prometheus.GaugeVec
	sourceLag          *prometheus.GaugeVec
	// dlqRead is when each tenant's DLQ size was last read (tenant →
	// time.Time), so that a tenant's pipelines read it once per lagInterval
	// between them.
	dlqRead sync.Map

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
	ackErrors    *prometheus.CounterVec
}

// MetricsOptions choose the labels of the hot path's metrics.
type MetricsOptions struct {
	// IntegrationLatency adds the integration label (and the full stage
	// name) to vrsky_stage_duration_seconds and vrsky_end_to_end_seconds
	// (VRSKY_METRICS_INTEGRATION_LATENCY=true): a histogram's series per
	// integration instead of per tenant.
	IntegrationLatency bool
}

// NewMetrics creates the metrics with the default options and registers
// them with reg (nil: not registered, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return NewMetricsWithOptions(reg, MetricsOptions{})
}

// NewMetricsWithOptions creates the metrics and registers them with reg
// (nil: not registered, for tests).
func NewMetricsWithOptions(reg prometheus.Registerer, opts MetricsOptions) *Metrics {
	labels := []string{"tenant", "integration", "stage"}
	stageLabels, e2eLabels := []string{"tenant", "stage"}, []string{"tenant"}
	if opts.IntegrationLatency {
		stageLabels, e2eLabels = labels, []string{"tenant", "integration"}
	}
	m := &Metrics{
		integrationLatency: opts.IntegrationLatency,
		dlqMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vrsky_dlq_messages", Help: "Messages in the tenant's dead-letter stream, read every few seconds while one of its pipelines here moves, every 5 minutes while they are idle.",
		}, []string{"tenant"}),
		sourceLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vrsky_cdc_slot_lag_bytes", Help: "Bytes of source log a consumer holds unconfirmed (a PostgreSQL CDC replication slot's WAL), read every 15 s.",
		}, []string{"tenant", "integration"}),
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
		}, stageLabels),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vrsky_end_to_end_seconds", Help: "Time from a message's ingestion to its delivery by a producer.",
			Buckets: dataplane.LatencyBoundsSeconds(), // the buckets the metrics history counts too
		}, e2eLabels),
		consumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "vrsky_stage_consumer_lag", Help: "Messages waiting for a stage."}, labels),
		ackErrors:   newAckErrors(),
	}
	if reg != nil {
		reg.MustRegister(m.messagesIn, m.messagesOut, m.filtered, m.bytesIn, m.retries, m.dlq, m.claimBytes, m.stageLatency, m.endToEnd, m.consumerLag, m.dlqMessages, m.sourceLag, m.ackErrors)
	}
	return m
}

// pipelineMetrics are the metrics of one stage of one pipeline, each
// resolved once so the hot loop does no label lookups.
type pipelineMetrics struct {
	in, out, filtered, bytes, retries, dlq, claimBytes *stageCounter
	latency, endToEnd                                  prometheus.Observer
	// latencies is the pipeline's latency histogram for the metrics
	// history (counts.go), shared by its deliver stages; nil counts
	// nothing.
	latencies *latencyCount
	// ackErrors count failed ack calls by op (settle.go).
	ackErrors [len(ackOps)]prometheus.Counter
}

func (m *Metrics) forStage(p dataplane.Pipeline, stage string) *pipelineMetrics {
	labels := []string{p.Tenant, p.Integration, stage}
	var latency, endToEnd prometheus.Observer
	if m.integrationLatency {
		latency, endToEnd = m.stageLatency.WithLabelValues(labels...), m.endToEnd.WithLabelValues(p.Tenant, p.Integration)
	} else {
		latency, endToEnd = m.stageLatency.WithLabelValues(p.Tenant, stageKind(stage)), m.endToEnd.WithLabelValues(p.Tenant)
	}
	counter := func(vec *prometheus.CounterVec) *stageCounter { return &stageCounter{vec: vec, labels: labels} }
	return &pipelineMetrics{
		in: counter(m.messagesIn), out: counter(m.messagesOut), filtered: counter(m.filtered),
		bytes: counter(m.bytesIn), retries: counter(m.retries), dlq: counter(m.dlq),
		claimBytes: counter(m.claimBytes), latency: latency, endToEnd: endToEnd,
		ackErrors: ackErrorsOf(m.ackErrors, stage),
	}
}

// stageCounter is one stage's series of a counter, made when the stage
// first counts something: a deployed integration that moves nothing holds
// no series (seven per stage cost a thousand idle integrations about 12 MB
// of heap, and Prometheus as many series to scrape).
type stageCounter struct {
	vec    *prometheus.CounterVec
	labels []string // tenant, integration, stage
	series atomic.Pointer[prometheus.Counter]
}

func (c *stageCounter) Inc()          { c.counter().Inc() }
func (c *stageCounter) Add(v float64) { c.counter().Add(v) }

func (c *stageCounter) counter() prometheus.Counter {
	if s := c.series.Load(); s != nil {
		return *s
	}
	s := c.vec.WithLabelValues(c.labels...) // the same series if two race here
	c.series.Store(&s)
	return s
}

// delivered records the end-to-end latency of a message a producer
// delivered: from its ingestion to the producer's confirmation. It is
// counted twice, into Prometheus' vrsky_end_to_end_seconds and into the
// pipeline's histogram the metrics history reads (one atomic add).
func (m *pipelineMetrics) delivered(latency time.Duration) {
	m.endToEnd.Observe(latency.Seconds())
	m.latencies.observe(latency)
}

// stageKind is a stage's name without its producer: "process" or
// "deliver".
func stageKind(stage string) string {
	if strings.HasPrefix(stage, dataplane.StageDeliverPrefix) {
		return strings.TrimSuffix(dataplane.StageDeliverPrefix, "-")
	}
	return stage
}

// dlqDue reports whether tenant's DLQ size, last read by any of its
// pipelines, is at least every old, and if so marks it read now.
func (m *Metrics) dlqDue(tenant string, now time.Time, every time.Duration) bool {
	last, ok := m.dlqRead.Load(tenant)
	if ok && now.Sub(last.(time.Time)) < every {
		return false
	}
	if ok {
		return m.dlqRead.CompareAndSwap(tenant, last, now)
	}
	_, loaded := m.dlqRead.LoadOrStore(tenant, now)
	return !loaded
}

// forget removes a stopped pipeline's series; the tenant's latency
// histograms and DLQ size stay (the tenant's other pipelines share them).
func (m *Metrics) forget(p dataplane.Pipeline) {
	l := prometheus.Labels{"tenant": p.Tenant, "integration": p.Integration}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.messagesIn, m.messagesOut, m.filtered, m.bytesIn, m.retries, m.dlq, m.claimBytes, m.stageLatency, m.endToEnd, m.consumerLag, m.sourceLag,
	} {
		v.DeletePartialMatch(l)
	}
}

// ClaimErrors counts the claim-check's failed blob-store operations
// (vrsky_claimcheck_errors_total{operation}: put, get or delete); it is the
// dataplane.ErrorCounter of a dataplane.ClaimCheck. A nil *ClaimErrors
// counts nothing.
type ClaimErrors struct{ vec *prometheus.CounterVec }

// NewClaimErrors creates the counter and registers it with reg (nil: not
// registered), or uses the one reg already holds: every role that uses the
// claim-check on one registry shares it.
func NewClaimErrors(reg prometheus.Registerer) *ClaimErrors {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vrsky_claimcheck_errors_total", Help: "Failed blob-store operations of the claim-check (put includes the copy of a dead letter's body).",
	}, []string{"operation"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				panic(err)
			}
			vec = already.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	for _, op := range []string{dataplane.ClaimPut, dataplane.ClaimGet, dataplane.ClaimDelete} {
		vec.WithLabelValues(op) // every operation shows, at 0 until it fails
	}
	return &ClaimErrors{vec: vec}
}

// Inc counts one failed operation.
func (e *ClaimErrors) Inc(operation string) {
	if e != nil {
		e.vec.WithLabelValues(operation).Inc()
	}
}
