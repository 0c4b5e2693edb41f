package hotpath

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestLatencyHistogramsLeaveTheIntegrationOutByDefault(t *testing.T) {
	p := dataplane.Pipeline{Tenant: "acme", Integration: "orders"}
	q := dataplane.Pipeline{Tenant: "acme", Integration: "invoices"}

	m := NewMetrics(prometheus.NewPedanticRegistry())
	var stages []*pipelineMetrics
	for _, pl := range []dataplane.Pipeline{p, q} {
		process, db, slack := m.forStage(pl, dataplane.StageProcess), m.forStage(pl, dataplane.DeliverStage("db")), m.forStage(pl, dataplane.DeliverStage("slack"))
		process.latency.Observe(0.01)
		db.latency.Observe(0.01)
		slack.endToEnd.Observe(0.1)
		stages = append(stages, process, db, slack)
	}
	require.Equal(t, 2, testutil.CollectAndCount(m.stageLatency), "acme × {process, deliver}, whatever its integrations and producers")
	require.Equal(t, 1, testutil.CollectAndCount(m.endToEnd), "acme only")
	require.Zero(t, testutil.CollectAndCount(m.messagesIn), "a stage that counted nothing holds no counter series")
	for _, st := range stages {
		st.in.Inc()
	}
	require.Equal(t, 6, testutil.CollectAndCount(m.messagesIn), "counters keep integration and stage")
	m.forget(p)
	require.Equal(t, 2, testutil.CollectAndCount(m.stageLatency), "the tenant's histograms outlive one integration")
	require.Equal(t, 3, testutil.CollectAndCount(m.messagesIn))

	m = NewMetricsWithOptions(prometheus.NewPedanticRegistry(), MetricsOptions{IntegrationLatency: true})
	for _, pl := range []dataplane.Pipeline{p, q} {
		m.forStage(pl, dataplane.StageProcess).latency.Observe(0.01)
		m.forStage(pl, dataplane.DeliverStage("db")).latency.Observe(0.01)
		m.forStage(pl, dataplane.DeliverStage("slack")).endToEnd.Observe(0.1)
	}
	require.Equal(t, 6, testutil.CollectAndCount(m.stageLatency), "per integration and full stage name: 2 × {process, deliver-db, deliver-slack}")
	require.Equal(t, 2, testutil.CollectAndCount(m.endToEnd))
	m.forget(p)
	require.Equal(t, 3, testutil.CollectAndCount(m.stageLatency))
	require.Equal(t, 1, testutil.CollectAndCount(m.endToEnd))

	require.Equal(t, "deliver", stageKind(dataplane.DeliverStage("x")))
	require.Equal(t, dataplane.StageProcess, stageKind(dataplane.StageProcess))
}

func TestStageCountersAreMadeByTheirFirstCount(t *testing.T) {
	m := NewMetrics(prometheus.NewPedanticRegistry())
	p := dataplane.Pipeline{Tenant: "acme", Integration: "orders"}
	st := m.forStage(p, dataplane.StageProcess)
	for _, vec := range []*prometheus.CounterVec{m.messagesIn, m.messagesOut, m.filtered, m.bytesIn, m.retries, m.dlq, m.claimBytes} {
		require.Zero(t, testutil.CollectAndCount(vec), "nothing counted yet")
	}

	const racers = 8
	done := make(chan struct{})
	for range racers {
		go func() { st.in.Inc(); done <- struct{}{} }()
	}
	for range racers {
		<-done
	}
	st.bytes.Add(512)
	require.Equal(t, 1, testutil.CollectAndCount(m.messagesIn), "racing first counts make one series")
	require.Equal(t, float64(racers), testutil.ToFloat64(m.messagesIn.WithLabelValues("acme", "orders", dataplane.StageProcess)))
	require.Equal(t, 512.0, testutil.ToFloat64(m.bytesIn.WithLabelValues("acme", "orders", dataplane.StageProcess)))
	require.Zero(t, testutil.CollectAndCount(m.messagesOut), "only what was counted")

	m.forget(p)
	require.Zero(t, testutil.CollectAndCount(m.messagesIn))
	again := m.forStage(p, dataplane.StageProcess)
	again.in.Inc()
	require.Equal(t, 1.0, testutil.ToFloat64(m.messagesIn.WithLabelValues("acme", "orders", dataplane.StageProcess)), "a restarted stage counts from zero")
}

func TestDLQSizeIsReadOncePerIntervalPerTenant(t *testing.T) {
	m := NewMetrics(nil)
	now := time.Now()
	require.True(t, m.dlqDue("acme", now, lagInterval))
	require.False(t, m.dlqDue("acme", now.Add(time.Second), lagInterval), "another pipeline of acme within the interval")
	require.True(t, m.dlqDue("beta", now.Add(time.Second), lagInterval))
	require.True(t, m.dlqDue("acme", now.Add(lagInterval+time.Millisecond), lagInterval))

	later := now.Add(lagInterval + time.Millisecond)
	require.False(t, m.dlqDue("acme", later.Add(lagInterval+time.Millisecond), lagIdleInterval), "an idle pipeline reads it once per lagIdleInterval")
	require.True(t, m.dlqDue("acme", later.Add(lagInterval+time.Millisecond), lagInterval), "an active one every few seconds")
	require.True(t, m.dlqDue("acme", later.Add(lagInterval+lagIdleInterval+time.Millisecond), lagIdleInterval))
}

// TestReportLagReadsTheTenantsDLQ: the lag loop sets the tenant's DLQ
// size from its DLQ stream.
func TestReportLagReadsTheTenantsDLQ(t *testing.T) {
	_, js := testenv.JetStream(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := dataplane.Pipeline{Tenant: "acme", Integration: "orders"}
	stream, err := dataplane.EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	for range 3 {
		_, err := js.Publish(ctx, p.DLQSubject(), []byte("dead"))
		require.NoError(t, err)
	}
	m := NewMetrics(prometheus.NewPedanticRegistry())
	loop := newLagLoop(m)
	src := loop.add(js, stream, p, nil, func() bool { return true }, func(string) {})
	defer src.stop()
	loop.readDue(ctx)
	require.Equal(t, 3.0, testutil.ToFloat64(m.dlqMessages.WithLabelValues("acme")))
}

// lagging reports the lag it is given, failing first.
type lagging struct {
	calls atomic.Int32
	lag   int64
}

func (l *lagging) Lag(context.Context) (int64, error) {
	if l.calls.Add(1) == 1 {
		return 0, errors.New("slot not created yet")
	}
	return l.lag, nil
}

var _ sdk.LagReporter = (*lagging)(nil)

func TestSourceLagIsReportedWhileTheConsumerRuns(t *testing.T) {
	m := NewMetrics(prometheus.NewPedanticRegistry())
	p := dataplane.Pipeline{Tenant: "acme", Integration: "cdc"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	src := &lagging{lag: 4096}
	go func() { defer close(done); reportSourceLag(ctx, src, m, p) }()
	require.Eventually(t, func() bool {
		return testutil.CollectAndCount(m.sourceLag) == 1 && testutil.ToFloat64(m.sourceLag.WithLabelValues("acme", "cdc")) == 4096
	}, sourceLagRetry+5*time.Second, 20*time.Millisecond, "a failed read is retried soon")
	cancel()
	<-done
	require.Zero(t, testutil.CollectAndCount(m.sourceLag), "the series goes with the consumer: another runner may take it over")
}

func TestClaimCheckCountsFailedOperations(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens: every operation fails
	store, err := blobstore.New(blobstore.Config{Endpoint: addr, AccessKey: "k", SecretKey: "s", Bucket: "b", MaxRetries: 1})
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	errs := NewClaimErrors(reg)
	require.Same(t, errs.vec, NewClaimErrors(reg).vec, "roles on one registry share the counter")
	require.Equal(t, 3, testutil.CollectAndCount(errs.vec), "every operation shows at 0")
	c := &dataplane.ClaimCheck{Store: store, Threshold: 4, Errors: errs}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	env := &dataplane.Envelope{Msg: sdk.Message{ID: "m1", Body: []byte("more than four bytes")}}
	require.Error(t, c.Offload(ctx, "claims/acme/m1", env))
	require.Error(t, c.Resolve(ctx, &dataplane.Envelope{Msg: sdk.Message{ID: "m2"}, BodyRef: "claims/acme/m2"}))
	c.Release(ctx, "claims/acme/m3")
	_, err = c.KeepForDLQ(ctx, "claims/acme/m4", "dlq/acme/m4")
	require.Error(t, err)

	require.Equal(t, 2.0, testutil.ToFloat64(errs.vec.WithLabelValues("put")), "offload and the dead letter's copy")
	require.Equal(t, 1.0, testutil.ToFloat64(errs.vec.WithLabelValues("get")))
	require.Equal(t, 1.0, testutil.ToFloat64(errs.vec.WithLabelValues("delete")))

	var none *ClaimErrors
	none.Inc("put") // a ClaimCheck without counter counts nothing
}
