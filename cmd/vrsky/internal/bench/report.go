package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

// Durability names the durability settings every run uses: JetStream file
// storage with the server's default sync, and a file producer that fsyncs
// each batch before it is acknowledged.
const Durability = "file storage, default sync"

// durabilityOf is Durability with the replica count of a cluster's
// streams, and without the file sink's fsync when noFsync.
func durabilityOf(replicas int, noFsync bool) string {
	d := Durability
	if replicas > 1 {
		d = fmt.Sprintf("%s, %d replicas", d, replicas)
	}
	if noFsync {
		d += ", file sink not fsynced"
	}
	return d
}

// Report is the result of one run, or of one step of --find-max. Rates are
// per second, latencies in milliseconds, and every count covers the measured
// window only (warm-up messages are left out).
type Report struct {
	Scenario    string  `json:"scenario"`
	Integration string  `json:"integration"`
	OfferedRate float64 `json:"offered_rate"`
	// SustainedRate is distinct measured messages arrived at the sink per
	// second, from the first measured intended send time to the last
	// measured arrival.
	SustainedRate float64 `json:"sustained_rate"`
	// InputRate is the rate the pipeline took messages in, counting those
	// its router filtered out: SustainedRate × sent / expected.
	InputRate float64 `json:"pipeline_msgs_per_s_incl_filtered"`

	// Arrival latency: intended send time to arrival in the sink file (in
	// the CDC scenario: intended insert time to the row in the target
	// table). Ack latency: to the 202 (CDC: to the source commit).
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
	Mean   float64 `json:"mean_ms"`
	AckP50 float64 `json:"ack_p50_ms"`
	AckP99 float64 `json:"ack_p99_ms"`

	Sent           int64            `json:"sent"`
	Errors         int64            `json:"errors"`
	ErrorsByStatus map[string]int64 `json:"errors_by_status,omitempty"`
	Expected       int64            `json:"expected"`
	Delivered      int64            `json:"delivered"`
	Lost           int64            `json:"lost"`
	Duplicates     int64            `json:"duplicates"`
	Unexpected     int64            `json:"unexpected"`
	Malformed      int64            `json:"malformed_lines"`
	Unknown        int64            `json:"unknown_seqs"`
	// DrainSeconds is how long after the last answer the bench waited for
	// the sink.
	DrainSeconds float64 `json:"drain_s"`
	// StagesAfterDrain are the pipeline's stage counters when messages were
	// missing after the drain: they tell messages still waiting or in
	// flight in the stream (a stall) from messages gone.
	StagesAfterDrain []dataplane.StageCount `json:"stages_after_drain,omitempty"`

	BaselineRate        float64 `json:"baseline_rate"`
	BaselineMessageSize int     `json:"baseline_message_size,omitempty"`
	PipelineVsBaseline  float64 `json:"pipeline_vs_baseline"`
	// InputVsBaseline is InputRate / BaselineRate: every input message is
	// one JetStream hop in, whether the router keeps it or not.
	InputVsBaseline float64 `json:"pipeline_incl_filtered_vs_baseline"`

	// Floor is the same load through the least a durable platform does
	// per message (see Floor), in the same run; P99VsFloor is P99 divided
	// by its p99. Single-rate pipeline and claim-check runs with the
	// baseline only.
	Floor      *FloorResult `json:"floor,omitempty"`
	P99VsFloor float64      `json:"p99_vs_floor,omitempty"`
	// CPUVsFloor is the CPU per message sent of the stack, the split
	// runner and the load generator, divided by the floor's.
	CPUVsFloor float64 `json:"cpu_vs_floor,omitempty"`

	StackCPUSeconds float64 `json:"stack_cpu_seconds"`
	// StackIdleCores is the stack's CPU use with no load, in cores,
	// sampled for a second before the first step.
	StackIdleCores       float64 `json:"stack_idle_cores"`
	CPUSecondsPerMillion float64 `json:"cpu_seconds_per_million"`
	RSSBeforeMB          float64 `json:"rss_before_mb"`
	PeakRSSMB            float64 `json:"peak_rss_mb"`
	LoadgenCPUSeconds    float64 `json:"loadgen_cpu_seconds"`

	// Split runner only (--split-runner): the runner process over the same
	// window as the stack, whose figures above then leave the runner out.
	RunnerCPUSeconds           *float64 `json:"runner_cpu_seconds,omitempty"`
	RunnerCPUSecondsPerMillion *float64 `json:"runner_cpu_seconds_per_million,omitempty"`
	RunnerRSSBeforeMB          *float64 `json:"runner_rss_before_mb,omitempty"`
	RunnerPeakRSSMB            *float64 `json:"runner_peak_rss_mb,omitempty"`

	MessageSize int     `json:"message_size"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	Workers     int     `json:"workers"`
	Batch       int     `json:"batch,omitempty"`
	Durability  string  `json:"durability"`
	// NoIdempotencyKey: the requests carried no Idempotency-Key.
	NoIdempotencyKey bool `json:"no_idempotency_key,omitempty"`
	// KeyMemory is the webhook consumer's keyMemory when the run set one.
	KeyMemory  sdk.KeyMemory `json:"key_memory,omitempty"`
	StackOwned bool          `json:"stack_is_child"`
	Machine    Machine       `json:"machine"`

	// Claim-check scenario only.
	MBPerS float64 `json:"mb_per_s,omitempty"`
	// NATSStreamBytes is the most the pipeline's stream held at once,
	// sampled every 200 ms; with the claim-check only references ride on
	// NATS, so it stays far below one body.
	NATSStreamBytes       *uint64 `json:"nats_stream_bytes,omitempty"`
	NATSStreamMaxMsgBytes *uint64 `json:"nats_stream_max_bytes_per_msg,omitempty"`

	// CDC scenario only: the load's transaction interval and how many
	// source transactions it committed in the measured window;
	// the replication slot's lag (WAL bytes not yet confirmed by the
	// consumer), sampled every 100 ms from the start of the measured
	// window to the end of the drain; and the CPU of the stack's
	// PostgreSQL server and all its sessions over the same window as the
	// stack's, when the stack runs the server in its data directory.
	TxIntervalMs                 *float64 `json:"tx_interval_ms,omitempty"`
	SourceTransactions           *int64   `json:"source_transactions,omitempty"`
	ReplicationLagMaxBytes       *int64   `json:"replication_lag_max_bytes,omitempty"`
	ReplicationLagMeanBytes      *float64 `json:"replication_lag_mean_bytes,omitempty"`
	PostgresCPUSeconds           *float64 `json:"postgres_cpu_seconds,omitempty"`
	PostgresCPUSecondsPerMillion *float64 `json:"postgres_cpu_seconds_per_million,omitempty"`

	// Scale scenario only: deployment, idle cost, runners and the load
	// phases; the figures above are then the first load phase's (without
	// the flood), over every active integration.
	Scale *ScaleReport `json:"scale,omitempty"`

	// --find-max only: each step's report, and the best step that held.
	Steps              []Report `json:"steps,omitempty"`
	MaxSustainedRate   *float64 `json:"max_sustained_rate,omitempty"`
	MaxOfferedRateHeld *float64 `json:"max_offered_rate_held,omitempty"`
}

// FindMax stop rule: a step holds when all three are true.
const (
	findMaxP99Ms  = 50
	findMaxFactor = 1.5
	findMaxSteps  = 12
)

// Held reports whether a --find-max step held its offered rate: p99 at most
// 50 ms, nothing lost and no errors.
func (r *Report) Held() bool {
	return r.P99 <= findMaxP99Ms && r.Lost == 0 && r.Errors == 0 && r.Delivered > 0
}

// setFloor fills in the floor and the ratios to it.
func (r *Report) setFloor(f FloorResult) {
	r.Floor = &f
	if f.P99 > 0 {
		r.P99VsFloor = r.P99 / f.P99
	}
	if f.CPUPerMessage > 0 {
		r.CPUVsFloor = r.cpuPerMessage() / f.CPUPerMessage
	}
}

// cpuPerMessage is the CPU of every measured process — the stack, the
// split runner, the load generator — in microseconds per message sent.
func (r *Report) cpuPerMessage() float64 {
	if r.Sent == 0 {
		return 0
	}
	cpu := r.StackCPUSeconds + r.LoadgenCPUSeconds
	if r.RunnerCPUSeconds != nil {
		cpu += *r.RunnerCPUSeconds
	}
	return cpu / float64(r.Sent) * 1e6
}

// setBaseline fills in the baseline and the ratios to it.
func (r *Report) setBaseline(b BaselineResult) {
	r.BaselineRate = b.Rate
	r.BaselineMessageSize = b.MessageSize
	if b.Rate > 0 {
		r.PipelineVsBaseline = r.SustainedRate / b.Rate
		r.InputVsBaseline = r.InputRate / b.Rate
	}
}

// keysNote says how the run treated keys when it set how: the requests
// carried no Idempotency-Key, or the webhook kept them as KeyMemory says.
func keysNote(r *Report) string {
	switch {
	case r.NoIdempotencyKey:
		return ", no Idempotency-Key"
	case r.KeyMemory != "":
		return ", key memory " + string(r.KeyMemory)
	}
	return ""
}

// WriteSummary writes a human-readable summary of r.
func (r *Report) WriteSummary(w io.Writer) error {
	if r.Scale != nil {
		return r.writeScaleSummary(w)
	}
	var b strings.Builder
	if len(r.Steps) > 0 {
		fmt.Fprintf(&b, "find-max (%s, %d-byte messages): ×%.1f per step while p99 ≤ %d ms, nothing lost, no errors\n",
			r.Scenario, r.MessageSize, findMaxFactor, findMaxP99Ms)
		for i := range r.Steps {
			s := &r.Steps[i]
			verdict := "held"
			if !s.Held() {
				verdict = "did not hold"
			}
			fmt.Fprintf(&b, "  offered %8.0f/s  sustained %8.0f/s  p50 %7.2f ms  p99 %8.2f ms  lost %d  errors %d  → %s\n",
				s.OfferedRate, s.SustainedRate, s.P50, s.P99, s.Lost, s.Errors, verdict)
		}
		if r.MaxOfferedRateHeld != nil {
			fmt.Fprintf(&b, "highest offered rate that held: %.0f msgs/s (sustained %.0f msgs/s at the sink)\n\n", *r.MaxOfferedRateHeld, *r.MaxSustainedRate)
		} else {
			fmt.Fprintf(&b, "no step held\n\n")
		}
		fmt.Fprintf(&b, "best step:\n")
	}
	if r.Scenario == ScenarioCDC {
		r.writeCDCSummary(&b)
	} else {
		fmt.Fprintf(&b, "scenario        %s (integration bench/%s), %d-byte messages, %s%s\n", r.Scenario, r.Integration, r.MessageSize, r.Durability, keysNote(r))
		fmt.Fprintf(&b, "rate            offered %.0f/s, sustained %.0f/s at the sink, %.0f/s into the pipeline (filtered included)\n", r.OfferedRate, r.SustainedRate, r.InputRate)
		fmt.Fprintf(&b, "latency         p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (intended send → sink file)\n", r.P50, r.P99, r.P999, r.Max)
		fmt.Fprintf(&b, "ack latency     p50 %.2f ms  p99 %.2f ms  (intended send → 202)\n", r.AckP50, r.AckP99)
		fmt.Fprintf(&b, "messages        sent %d, errors %d%s, expected %d, delivered %d, lost %d, duplicates %d\n",
			r.Sent, r.Errors, formatErrors(r.ErrorsByStatus), r.Expected, r.Delivered, r.Lost, r.Duplicates)
	}
	if r.Unexpected+r.Malformed+r.Unknown > 0 {
		fmt.Fprintf(&b, "oddities        unexpected %d, malformed lines %d, unknown seqs %d\n", r.Unexpected, r.Malformed, r.Unknown)
	}
	if r.BaselineRate > 0 {
		fmt.Fprintf(&b, "baseline        raw JetStream publish+consume %.0f msgs/s (%d-byte); pipeline %.0f%% of it (%.0f%% counting filtered)\n",
			r.BaselineRate, r.BaselineMessageSize, 100*r.PipelineVsBaseline, 100*r.InputVsBaseline)
	}
	if f := r.Floor; f != nil {
		fmt.Fprintf(&b, "floor           the same load through a bare HTTP handler publishing each to raw JetStream and waiting, and a consumer fsyncing a file: p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  ack p99 %.2f ms, lost %d, errors %d, %.0f CPU µs per message; pipeline p99 %.1f× and CPU %.1f× the floor's\n",
			f.P50, f.P99, f.P999, f.AckP99, f.Lost, f.Errors, f.CPUPerMessage, r.P99VsFloor, r.CPUVsFloor)
	}
	fmt.Fprintf(&b, "stack           %.2f CPU s (%.1f CPU s per million delivered; %.2f cores when idle), RSS %.0f MB before, peak %.0f MB\n",
		r.StackCPUSeconds, r.CPUSecondsPerMillion, r.StackIdleCores, r.RSSBeforeMB, r.PeakRSSMB)
	if r.RunnerCPUSeconds != nil && r.RunnerCPUSecondsPerMillion != nil && r.RunnerRSSBeforeMB != nil && r.RunnerPeakRSSMB != nil {
		fmt.Fprintf(&b, "runner          %.2f CPU s (%.1f CPU s per million delivered), RSS %.0f MB before, peak %.0f MB (own process, not in the stack's figures)\n",
			*r.RunnerCPUSeconds, *r.RunnerCPUSecondsPerMillion, *r.RunnerRSSBeforeMB, *r.RunnerPeakRSSMB)
	}
	fmt.Fprintf(&b, "load generator  %.2f CPU s\n", r.LoadgenCPUSeconds)
	if r.MBPerS > 0 || r.NATSStreamBytes != nil {
		fmt.Fprintf(&b, "claim-check     %.1f MB/s", r.MBPerS)
		if r.NATSStreamBytes != nil && r.NATSStreamMaxMsgBytes != nil {
			fmt.Fprintf(&b, ", NATS stream held at most %d bytes (%d bytes per message)", *r.NATSStreamBytes, *r.NATSStreamMaxMsgBytes)
		}
		b.WriteString("\n")
	}
	if r.PostgresCPUSeconds != nil && r.PostgresCPUSecondsPerMillion != nil {
		fmt.Fprintf(&b, "postgres        %.2f CPU s (%.1f CPU s per million delivered; the server and all its sessions, the bench's inserts included)\n",
			*r.PostgresCPUSeconds, *r.PostgresCPUSecondsPerMillion)
	}
	m := r.Machine
	fmt.Fprintf(&b, "machine         %d CPUs (%s), %s, %s; measured %.0f s after %.0f s warm-up",
		m.NumCPU, m.CPUModel, m.GoVersion, m.OS, r.DurationS, r.WarmupS)
	if r.Scenario != ScenarioCDC {
		fmt.Fprintf(&b, ", %d workers", r.Workers)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeCDCSummary writes the CDC scenario's lines about what ran, its
// rates, latencies and counts.
func (r *Report) writeCDCSummary(b *strings.Builder) {
	fmt.Fprintf(b, "scenario        %s (integration bench/%s), %d-byte payloads, %s\n", r.Scenario, r.Integration, r.MessageSize, r.Durability)
	fmt.Fprintf(b, "rate            offered %.0f rows/s, sustained %.0f rows/s into the target table\n", r.OfferedRate, r.SustainedRate)
	fmt.Fprintf(b, "latency         p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (intended insert → row in the target table)\n", r.P50, r.P99, r.P999, r.Max)
	fmt.Fprintf(b, "commit latency  p50 %.2f ms  p99 %.2f ms  (intended insert → source commit)\n", r.AckP50, r.AckP99)
	fmt.Fprintf(b, "rows            inserted %d, failed %d%s, delivered %d, lost %d, duplicates %d\n",
		r.Sent, r.Errors, formatErrors(r.ErrorsByStatus), r.Delivered, r.Lost, r.Duplicates)
	if r.TxIntervalMs != nil && r.SourceTransactions != nil {
		perTx := 0.0
		if *r.SourceTransactions > 0 {
			perTx = float64(r.Sent) / float64(*r.SourceTransactions)
		}
		fmt.Fprintf(b, "transactions    one every %.0f ms: %d committed, %.1f rows each\n", *r.TxIntervalMs, *r.SourceTransactions, perTx)
	}
	if r.ReplicationLagMaxBytes != nil && r.ReplicationLagMeanBytes != nil {
		fmt.Fprintf(b, "slot lag        max %d bytes, mean %.0f bytes of WAL not confirmed by the consumer\n", *r.ReplicationLagMaxBytes, *r.ReplicationLagMeanBytes)
	}
}

func formatErrors(by map[string]int64) string {
	if len(by) == 0 {
		return ""
	}
	parts := make([]string, 0, len(by))
	for _, k := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, by[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
