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
// delivery) to a producer that confirms at once: no network.
func BenchmarkDeliverHandle(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	stage := dataplane.DeliverStage(benchSink)
	m := NewMetrics(nil).forStage(p, stage)
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
}
