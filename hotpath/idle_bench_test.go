package hotpath

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
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
