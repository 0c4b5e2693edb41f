package hotpath

import (
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// discardProducer confirms every write at once.
type discardProducer struct{}

func (discardProducer) Write(context.Context, []sdk.Message) error { return nil }
func (discardProducer) Close(context.Context) error                { return nil }

// BenchmarkDeliverHandle runs batches of 100 messages through the deliver
// stage (decode, producer write, settle, the metrics of a finished
// delivery) to a producer that confirms at once: no network. Its
// sub-benchmarks run it without and with the latency histogram of the
// metrics history, so their difference is that histogram's cost per
// message, measured in one run.
func BenchmarkDeliverHandle(b *testing.B) {
	for _, withHistory := range []bool{false, true} {
		name := "history=off"
		if withHistory {
			name = "history=on"
		}
		b.Run(name, func(b *testing.B) {
			p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
			stage := dataplane.DeliverStage(benchSink)
			m := NewMetrics(nil).forStage(p, stage)
			if withHistory {
				m.latencies = newTally(nil, nil).latency(p.CountKey(dataplane.LatencyCount))
			}
			log := slog.New(slog.DiscardHandler)
			dl := &deliverer{p: p, stage: stage, producer: discardProducer{}, metrics: m, log: log,
				settler: &settler{p: p, stage: stage, failures: &failures{metrics: m}, metrics: m, log: log}}
			received := time.Now()
			batch := make([]jetstream.Msg, 100)
			for i := range batch {
				id := "bench-" + strconv.Itoa(i)
				batch[i] = &benchMsg{m: dataplane.Encode(p.OutSubject(benchSink), id+"/"+benchSink, dataplane.Envelope{Msg: sdk.Message{
					ID: id, Tenant: p.Tenant, Integration: p.Integration, ContentType: "application/json",
					Body: benchBody(int64(i)), Received: received,
				}})}
			}
			b.ReportAllocs()
			for b.Loop() {
				dl.handle(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/msg")
		})
	}
}

// BenchmarkDelivered is the metrics of one finished delivery: Prometheus'
// end-to-end histogram alone, and with the metrics history's histogram.
func BenchmarkDelivered(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	m := NewMetrics(nil).forStage(p, dataplane.DeliverStage(benchSink))
	b.Run("prometheus", func(b *testing.B) {
		for b.Loop() {
			m.endToEnd.Observe((3 * time.Millisecond).Seconds())
		}
	})
	b.Run("prometheus+history", func(b *testing.B) {
		m.latencies = newTally(nil, nil).latency(p.CountKey(dataplane.LatencyCount))
		for b.Loop() {
			m.delivered(3 * time.Millisecond)
		}
	})
	b.Run("history", func(b *testing.B) {
		for b.Loop() {
			m.latencies.observe(3 * time.Millisecond)
		}
	})
}
