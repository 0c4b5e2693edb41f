package hotpath

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/connectors"
	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// The benchmarks below measure the process stage without NATS: the chain is
// the one the pipeline scenario of `vrsky bench` deploys (cmd/vrsky/internal/bench
// IntegrationSpec: a json-transform totalling the order's items, then a
// router dropping every tenth seq), over 1 KiB order bodies shaped like
// cmd/vrsky/internal/bench AppendBody's.

// benchSink is the producer the benchmark chain routes to.
const benchSink = "sink"

// benchChain builds the benchmark integration's converter/filter chain the
// way the pipeline builds it.
func benchChain(tb testing.TB) dataplane.Chain {
	tb.Helper()
	return buildBenchChain(tb, benchSteps(tb))
}

// benchSteps are the benchmark integration's converter and filter.
func benchSteps(tb testing.TB) []spec.Step {
	tb.Helper()
	return []spec.Step{
		{Connector: jsontransform.Connector.Name, Config: mustMarshal(tb, jsontransform.Config{
			Set: map[string]string{"total": "sum(map(items, #.qty * #.price))"},
		})},
		{Connector: router.Connector.Name, Config: mustMarshal(tb, router.Config{
			Routes: []router.Route{{When: "seq % 10 != 0", To: []string{benchSink}}},
		})},
	}
}

func buildBenchChain(tb testing.TB, specSteps []spec.Step) dataplane.Chain {
	tb.Helper()
	chain, err := dataplane.BuildChain(context.Background(), connectors.Catalog(), specSteps, func(string) sdk.Env { return sdk.Env{} })
	if err != nil {
		tb.Fatal(err)
	}
	return chain
}

func mustMarshal(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// benchBody is a 1 KiB order for seq, shaped like the load generator's.
func benchBody(seq int64) []byte {
	cust := strconv.FormatInt(seq%1000, 10)
	var b strings.Builder
	b.WriteString(`{"seq":` + strconv.FormatInt(seq, 10) + `,"customer":{"id":"c-` + cust + `","name":"Customer ` + cust +
		`","email":"customer` + cust + `@example.com","tier":"gold"},"items":[`)
	for k := int64(0); k < 3; k++ {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"sku-` + strconv.FormatInt((seq+k)%500, 10) + `","qty":` + strconv.FormatInt(1+(seq+k)%5, 10) +
			`,"price":` + strconv.FormatInt(5+3*k, 10) + `.25}`)
	}
	b.WriteString(`],"pad":"`)
	b.WriteString(strings.Repeat("x", 1024-b.Len()-2))
	b.WriteString(`"}`)
	return []byte(b.String())
}

// benchInputs are n messages as the webhook ingress stores them in `in`.
func benchInputs(p dataplane.Pipeline, n int) []*nats.Msg {
	received := time.Now()
	msgs := make([]*nats.Msg, n)
	for i := range msgs {
		id := "bench-" + strconv.Itoa(i)
		msgs[i] = dataplane.Encode(p.InSubject(), id, dataplane.Envelope{Msg: sdk.Message{
			ID: id, Tenant: p.Tenant, Integration: p.Integration, ContentType: "application/json",
			Headers: map[string]string{"user-agent": "Go-http-client/1.1"}, Body: benchBody(int64(i)), Received: received,
		}})
	}
	return msgs
}

// BenchmarkProcessChain runs decoded messages through the chain, as
// processor.run does for each input.
func BenchmarkProcessChain(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	pr := &processor{p: p, chain: benchChain(b)}
	in := benchInputs(p, 100)
	envs := make([]dataplane.Envelope, len(in))
	for i, m := range in {
		env, err := dataplane.DecodeEnvelope(p, m.Header, m.Data)
		if err != nil {
			b.Fatal(err)
		}
		envs[i] = env
	}
	ctx := context.Background()
	b.SetBytes(int64(len(envs[0].Msg.Body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, _, err := pr.chain.Run(ctx, envs[i%len(envs)].Msg); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkProcessChainUnshared is BenchmarkProcessChain with every step
// decoding the body afresh, as before steps shared decoded objects: each
// step gets its own copy of the bytes, so it finds no object recorded.
func BenchmarkProcessChainUnshared(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	var steps []dataplane.Chain // one chain per step
	for _, s := range benchSteps(b) {
		steps = append(steps, buildBenchChain(b, []spec.Step{s}))
	}
	in := benchInputs(p, 100)
	ctx := context.Background()
	b.SetBytes(int64(len(in[0].Data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		msg := sdk.Message{ID: "m", Body: in[i%len(in)].Data}
		for _, step := range steps {
			msg.Body = bytes.Clone(msg.Body)
			var drop bool
			var err error
			if msg, _, drop, err = step.Run(ctx, msg); err != nil {
				b.Fatal(err)
			}
			if drop {
				break
			}
		}
		i++
	}
}

// BenchmarkProcessHandle runs batches of 100 messages through
// processor.handle with JetStream replaced by a publisher that acks at once:
// codec, chain, routing and output encoding, but no network.
func BenchmarkProcessHandle(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	m := NewMetrics(nil).forStage(p, dataplane.StageProcess)
	pr := newProcessor(&processor{p: p, js: ackingJetStream{}, chain: benchChain(b), producers: []string{benchSink},
		known: map[string]bool{benchSink: true}, metrics: m,
		settler: &settler{p: p, stage: dataplane.StageProcess, failures: &failures{metrics: m}, metrics: m, log: slog.New(slog.DiscardHandler)}})
	in := benchInputs(p, 100)
	batch := make([]jetstream.Msg, len(in))
	for i, nm := range in {
		batch[i] = &benchMsg{m: nm}
	}
	b.SetBytes(int64(len(in[0].Data)) * int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		pr.handle(batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/msg")
}

func BenchmarkCodecEncode(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	env := dataplane.Envelope{Msg: sdk.Message{
		ID: "bench-1", Tenant: p.Tenant, Integration: p.Integration, ContentType: "application/json",
		Headers: map[string]string{"user-agent": "Go-http-client/1.1"}, Body: benchBody(1), Received: time.Now(),
	}}
	subject := p.OutSubject(benchSink)
	b.ReportAllocs()
	for b.Loop() {
		_ = dataplane.Encode(subject, "bench-1/"+benchSink, env)
	}
}

func BenchmarkCodecDecode(b *testing.B) {
	p := dataplane.Pipeline{Tenant: "t1", Integration: "bench"}
	m := benchInputs(p, 1)[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dataplane.DecodeEnvelope(p, m.Header, m.Data); err != nil {
			b.Fatal(err)
		}
	}
}

// ackingJetStream acknowledges every asynchronous publish at once.
type ackingJetStream struct{ jetstream.JetStream }

func (ackingJetStream) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	return ackedFuture{m: m}, nil
}

// acked is a closed channel: a receive from it succeeds at once.
var acked = func() chan *jetstream.PubAck { c := make(chan *jetstream.PubAck); close(c); return c }()

type ackedFuture struct{ m *nats.Msg }

func (ackedFuture) Ok() <-chan *jetstream.PubAck { return acked }
func (ackedFuture) Err() <-chan error            { return nil }
func (f ackedFuture) Msg() *nats.Msg             { return f.m }

// benchMsg is an input message whose acks go nowhere.
type benchMsg struct {
	jetstream.Msg
	m *nats.Msg
}

func (b *benchMsg) Data() []byte                              { return b.m.Data }
func (b *benchMsg) Headers() nats.Header                      { return b.m.Header }
func (b *benchMsg) Subject() string                           { return b.m.Subject }
func (b *benchMsg) Ack() error                                { return nil }
func (b *benchMsg) NakWithDelay(time.Duration) error          { return nil }
func (b *benchMsg) Metadata() (*jetstream.MsgMetadata, error) { return &firstDelivery, nil }

var firstDelivery = jetstream.MsgMetadata{NumDelivered: 1}
