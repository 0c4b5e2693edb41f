package hotpath

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// processCPU is the CPU time this process (runner and embedded NATS
// server) has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdlePipelines measures what deployed integrations cost while no
// message moves: one runner and the NATS server in this process, 150
// integrations (one converter, one producer), a 10 s window. It reports
// the share of a core and the heap per integration; it asserts nothing.
// VRSKY_IDLE_PROFILE=path writes a CPU profile of the idle window.
//
//	go test -run '^$' -bench IdlePipelines -benchtime 1x ./hotpath/
func BenchmarkIdlePipelines(b *testing.B) {
	const n, window = 150, 10 * time.Second
	for range b.N {
		h := newHarness(b, "out")
		c0 := processCPU()
		time.Sleep(window)
		base := processCPU() - c0
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapInuse
		for i := range n {
			h.deploy(fmt.Sprintf("i%d", i), []string{"upper"}, "out")
		}
		time.Sleep(5 * time.Second) // let the builds' own work settle
		stopProfile := profileTo(b, os.Getenv("VRSKY_IDLE_PROFILE"))
		c0 = processCPU()
		time.Sleep(window)
		idle := processCPU() - c0
		stopProfile()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(100*base.Seconds()/window.Seconds(), "%core-empty")
		b.ReportMetric(100*idle.Seconds()/window.Seconds(), "%core-idle")
		b.ReportMetric(float64(int64(ms.HeapInuse)-int64(heap0))/n/1024, "KiB-heap/integration")
		b.ReportMetric(float64(runtime.NumGoroutine())/n, "goroutines/integration")
	}
}

// profileTo starts a CPU profile written to path ("" profiles nothing) and
// returns what stops it.
func profileTo(b *testing.B, path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

// BenchmarkNATSCostPerStreamAndConsumer measures what the NATS server in
// this process keeps for each pipeline stream and each stage consumer, as
// VRSky configures them, while no message moves: heap and goroutine stacks
// after a collection, and goroutines. It asserts nothing.
//
//	go test -run '^$' -bench NATSCostPerStreamAndConsumer -benchtime 1x ./hotpath/
func BenchmarkNATSCostPerStreamAndConsumer(b *testing.B) {
	const n = 300
	ctx := context.Background()
	for range b.N {
		_, js := testenv.JetStream(b)
		memory := func() (uint64, int) {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapInuse + ms.StackInuse, runtime.NumGoroutine()
		}
		settle := func() { time.Sleep(2 * time.Second) } // the servers' goroutines start
		pipelines := make([]dataplane.Pipeline, n)
		for i := range pipelines {
			pipelines[i] = dataplane.Pipeline{Tenant: "t", Integration: fmt.Sprintf("i%d", i)}
		}
		// The tenant's DLQ stream comes with its first pipeline.
		if _, err := dataplane.EnsureStreams(ctx, js, pipelines[0]); err != nil {
			b.Fatal(err)
		}
		settle()
		mem0, g0 := memory()
		streams := make([]jetstream.Stream, n)
		for i, p := range pipelines {
			s, err := dataplane.EnsureStreams(ctx, js, p)
			if err != nil {
				b.Fatal(err)
			}
			streams[i] = s
		}
		settle()
		mem1, g1 := memory()
		for i, p := range pipelines {
			if _, err := ensureConsumer(ctx, streams[i], dataplane.StageProcess, p.InSubject()); err != nil {
				b.Fatal(err)
			}
		}
		settle()
		mem2, g2 := memory()
		// The first stream existed before mem0: n-1 new ones.
		b.ReportMetric(float64(int64(mem1)-int64(mem0))/(n-1)/1024, "KiB/stream")
		b.ReportMetric(float64(g1-g0)/(n-1), "goroutines/stream")
		b.ReportMetric(float64(int64(mem2)-int64(mem1))/n/1024, "KiB/consumer")
		b.ReportMetric(float64(g2-g1)/n, "goroutines/consumer")
	}
}
