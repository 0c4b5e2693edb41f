package bench

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSchedule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := Schedule{T0: t0, Rate: 200, Warmup: 100, Measured: 400}
	require.Equal(t, int64(500), s.Total())
	require.Equal(t, t0, s.Intended(0))
	require.Equal(t, t0.Add(5*time.Millisecond), s.Intended(1))
	require.Equal(t, t0.Add(500*time.Millisecond), s.MeasuredStart())
	require.Equal(t, t0.Add(2495*time.Millisecond), s.MeasuredEnd())
	require.False(t, s.IsMeasured(99))
	require.True(t, s.IsMeasured(100))
	require.True(t, s.IsMeasured(499))
	require.False(t, s.IsMeasured(500))
}

// TestCollectorCounts feeds a known story through a collector: 2 warm-up
// and 10 measured messages, every fifth filtered, some failing at the
// ingress, one lost, one duplicated, one arriving although filtered.
func TestCollectorCounts(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := Schedule{T0: t0, Rate: 100, Warmup: 2, Measured: 10} // 10 ms apart
	c := NewCollector(s, func(seq int64) bool { return seq%5 == 0 })
	for seq := range s.Total() {
		status := http.StatusAccepted
		switch seq {
		case 3:
			status = http.StatusServiceUnavailable
		case 4:
			status = 0
		}
		c.SetStatus(seq, status, s.Intended(seq).Add(time.Millisecond))
	}
	c.SetStatus(-1, 202, t0)  // ignored
	c.SetStatus(999, 202, t0) // ignored

	// Measured, expected seqs: 2 6 7 8 9 11 (3 and 4 failed, 5 and 10
	// are filtered). 9 is lost; 7 arrives twice; 10 arrives although
	// filtered; 0 and 1 are warm-up.
	arrive := func(seq int64, late time.Duration) { c.RecordArrival(seq, s.Intended(seq).Add(late)) }
	require.Equal(t, int64(6), c.Missing())
	arrive(0, time.Second) // warm-up: never in the histogram
	arrive(1, time.Second)
	arrive(2, 2*time.Millisecond)
	arrive(6, 2*time.Millisecond)
	arrive(7, 4*time.Millisecond)
	arrive(7, 400*time.Millisecond) // the duplicate's latency is not recorded
	arrive(8, 6*time.Millisecond)
	arrive(10, 8*time.Millisecond)
	c.RecordLines([][]byte{[]byte(`{"seq":11}`), []byte(`{"seq":4000}`), []byte(`not json`)}, s.Intended(11).Add(10*time.Millisecond))
	require.Equal(t, int64(1), c.Missing())

	n := c.Counts()
	require.Equal(t, Counts{
		Sent: 8, Errors: 2, ErrorsByStatus: map[string]int64{"503": 1, "no answer": 1},
		Expected: 6, Delivered: 5, Lost: 1, Duplicates: 1, Unexpected: 1, Unknown: 1, Malformed: 1,
	}, n)

	lat := c.ArrivalLatencies()
	require.Equal(t, int64(6), lat.Count) // 2, 6, 7, 8, 10 and 11
	require.InDelta(t, 4, lat.P50, 0.01)
	require.InDelta(t, 10, lat.P99, 0.01)
	require.InDelta(t, 10, lat.Max, 0.01)
	require.InDelta(t, 32.0/6, lat.Mean, 0.01)

	ack := c.AckLatencies()
	require.Equal(t, int64(8), ack.Count) // measured 202s
	require.InDelta(t, 1, ack.P99, 0.01)

	// 6 distinct measured arrivals from seq 2's intended time (t0+20ms) to
	// seq 11's arrival (t0+120ms).
	require.InDelta(t, 60, c.SustainedRate(), 0.001)
}

func TestRecordLatencyClamps(t *testing.T) {
	h := newHistogram()
	recordLatency(h, -time.Second)
	recordLatency(h, time.Hour)
	require.Equal(t, int64(histMinMicros), h.Min())
	require.InEpsilon(t, float64(histMaxMicros), float64(h.Max()), 0.001)
}

func TestRatePerSecond(t *testing.T) {
	require.Zero(t, ratePerSecond(10, 0))
	require.InDelta(t, 20, ratePerSecond(10, 500*time.Millisecond), 1e-9)
}

func TestFillCountsAndProcesses(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := Schedule{T0: t0, Rate: 10, Measured: 10}
	c := NewCollector(s, func(seq int64) bool { return seq%10 == 0 })
	for seq := range s.Total() {
		c.SetStatus(seq, http.StatusAccepted, s.Intended(seq))
		if seq%10 != 0 {
			c.RecordArrival(seq, s.Intended(seq).Add(5*time.Millisecond))
		}
	}
	var rep Report
	fillCounts(&rep, c)
	require.Equal(t, int64(10), rep.Sent)
	require.Equal(t, int64(9), rep.Expected)
	require.Equal(t, int64(9), rep.Delivered)
	require.Nil(t, rep.ErrorsByStatus)
	require.InDelta(t, 5, rep.P99, 0.01)
	// 9 arrivals over 0.905 s; counting the filtered tenth, 10 inputs.
	require.InDelta(t, 9/0.905, rep.SustainedRate, 0.001)
	require.InDelta(t, rep.SustainedRate*10/9, rep.InputRate, 0.001)

	before := procSample{stackCPU: time.Second, stackMem: Memory{RSS: 100 << 20, Peak: 120 << 20}, selfCPU: time.Second}
	after := procSample{stackCPU: 1500 * time.Millisecond, stackMem: Memory{RSS: 110 << 20, Peak: 150 << 20}, selfCPU: 1250 * time.Millisecond}
	fillProcesses(&rep, before, after)
	require.InDelta(t, 0.5, rep.StackCPUSeconds, 1e-9)
	require.InDelta(t, 0.5/9*1e6, rep.CPUSecondsPerMillion, 1e-6)
	require.InDelta(t, 100, rep.RSSBeforeMB, 1e-9)
	require.InDelta(t, 150, rep.PeakRSSMB, 1e-9)
	require.InDelta(t, 0.25, rep.LoadgenCPUSeconds, 1e-9)
	require.Nil(t, rep.RunnerCPUSeconds, "no split runner: no runner figures")
	require.Nil(t, rep.RunnerPeakRSSMB)

	before.split, before.runnerCPU, before.runnerMem = true, 2*time.Second, Memory{RSS: 30 << 20, Peak: 40 << 20}
	after.split, after.runnerCPU, after.runnerMem = true, 2300*time.Millisecond, Memory{RSS: 35 << 20, Peak: 45 << 20}
	fillProcesses(&rep, before, after)
	require.InDelta(t, 0.5, rep.StackCPUSeconds, 1e-9, "the stack's figures stay the stack's")
	require.InDelta(t, 0.3, *rep.RunnerCPUSeconds, 1e-9)
	require.InDelta(t, 0.3/9*1e6, *rep.RunnerCPUSecondsPerMillion, 1e-6)
	require.InDelta(t, 30, *rep.RunnerRSSBeforeMB, 1e-9)
	require.InDelta(t, 45, *rep.RunnerPeakRSSMB, 1e-9)

	rep.setBaseline(BaselineResult{Rate: 20, MessageSize: 1024})
	require.InDelta(t, rep.SustainedRate/20, rep.PipelineVsBaseline, 1e-9)
	require.InDelta(t, rep.InputRate/20, rep.InputVsBaseline, 1e-9)
	rep.setBaseline(BaselineResult{})
	require.Zero(t, rep.BaselineRate)
}

func TestReportHeld(t *testing.T) {
	ok := Report{P99: 50, Delivered: 1}
	require.True(t, ok.Held())
	for name, r := range map[string]Report{
		"slow":      {P99: 50.1, Delivered: 1},
		"lost":      {Lost: 1, Delivered: 1},
		"errors":    {Errors: 1, Delivered: 1},
		"delivered": {},
	} {
		require.False(t, r.Held(), name)
	}
}

func TestReportOutput(t *testing.T) {
	peak, perMsg, maxRate, held := uint64(2048), uint64(600), 900.0, 1000.0
	step := Report{Scenario: ScenarioClaimCheck, OfferedRate: 1000, SustainedRate: 900, P99: 3, Delivered: 10, Durability: Durability}
	bad := Report{Scenario: ScenarioClaimCheck, OfferedRate: 1500, SustainedRate: 1000, P99: 80, Delivered: 10, Errors: 2,
		ErrorsByStatus: map[string]int64{"503": 1, "429": 1}}
	rep := step
	rep.MBPerS, rep.NATSStreamBytes, rep.NATSStreamMaxMsgBytes = 943.7, &peak, &perMsg
	rep.BaselineRate, rep.BaselineMessageSize, rep.PipelineVsBaseline = 2000, 1024, 0.45
	rep.Unexpected = 1
	rep.Steps = []Report{step, bad}
	rep.MaxSustainedRate, rep.MaxOfferedRateHeld = &maxRate, &held

	var out bytes.Buffer
	require.NoError(t, rep.WriteSummary(&out))
	for _, want := range []string{"find-max", "→ held", "→ did not hold", "highest offered rate that held: 1000", "p99 3.00 ms",
		"baseline", "45%", "claim-check     943.7 MB/s", "600 bytes per message", "unexpected 1"} {
		require.Contains(t, out.String(), want)
	}
	require.NotContains(t, out.String(), "no Idempotency-Key")
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	require.NotContains(t, string(b), "no_idempotency_key", "said only when the requests carried no key")
	keyless := step
	keyless.NoIdempotencyKey = true
	out.Reset()
	require.NoError(t, keyless.WriteSummary(&out))
	require.Contains(t, out.String(), Durability+", no Idempotency-Key")
	out.Reset()
	require.NoError(t, bad.WriteSummary(&out))
	require.Contains(t, out.String(), "errors 2 (429: 1, 503: 1)")
	require.NotContains(t, out.String(), "baseline")

	none := Report{Steps: []Report{bad}}
	out.Reset()
	require.NoError(t, none.WriteSummary(&out))
	require.Contains(t, out.String(), "no step held")

	require.NotContains(t, out.String(), "runner ")
	b, err = json.Marshal(rep)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"runner_`, "runner fields only with a split runner")

	cpu, perMillion, rss, peakRSS := 1.5, 150.0, 31.0, 47.0
	split := step
	split.RunnerCPUSeconds, split.RunnerCPUSecondsPerMillion, split.RunnerRSSBeforeMB, split.RunnerPeakRSSMB = &cpu, &perMillion, &rss, &peakRSS
	out.Reset()
	require.NoError(t, split.WriteSummary(&out))
	require.Contains(t, out.String(), "runner          1.50 CPU s (150.0 CPU s per million delivered), RSS 31 MB before, peak 47 MB")
	b, err = json.Marshal(split)
	require.NoError(t, err)
	var splitFields map[string]any
	require.NoError(t, json.Unmarshal(b, &splitFields))
	for k, want := range map[string]float64{"runner_cpu_seconds": cpu, "runner_cpu_seconds_per_million": perMillion,
		"runner_rss_before_mb": rss, "runner_peak_rss_mb": peakRSS} {
		require.Equal(t, want, splitFields[k], k)
	}

	b, err = json.Marshal(rep)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	for _, k := range []string{"scenario", "offered_rate", "sustained_rate", "p50_ms", "p99_ms", "p999_ms", "max_ms", "sent", "errors",
		"expected", "delivered", "lost", "duplicates", "baseline_rate", "pipeline_vs_baseline", "pipeline_msgs_per_s_incl_filtered",
		"cpu_seconds_per_million", "peak_rss_mb", "loadgen_cpu_seconds", "message_size", "duration_s", "durability", "machine",
		"mb_per_s", "nats_stream_bytes", "steps", "max_sustained_rate"} {
		require.Contains(t, fields, k)
	}
}
