package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// ScaleReport is the scale scenario's part of a Report.
type ScaleReport struct {
	Tenants      int `json:"tenants"`
	Integrations int `json:"integrations"`
	Active       int `json:"active"`
	Runners      int `json:"runners"`
	// TenantsSeconds is how long creating the tenants took, until every one
	// was active.
	TenantsSeconds float64      `json:"tenants_create_s"`
	Deploy         DeployResult `json:"deploy"`
	// IdleNone is the stack (and runners) idle with the tenants but no
	// integration, before deploying; IdleDeployed with every integration
	// that runs deployed.
	IdleNone     IdleCost `json:"idle_without_integrations"`
	IdleDeployed IdleCost `json:"idle_with_integrations"`
	// PerIntegrationRSSKB is (IdleDeployed.RSSMB - IdleNone.RSSMB) per
	// integration deployed, in KiB.
	PerIntegrationRSSKB *float64 `json:"per_integration_rss_kb,omitempty"`
	// RunnerRegistry is the runners' own count of the pipelines each runs,
	// read at the end of the idle window with the integrations deployed.
	RunnerRegistry RunnerRegistry `json:"runner_registry"`
	// StatusRunners counts the running integrations by the runner their
	// status named when the deployment saw them running.
	StatusRunners map[string]int `json:"integrations_by_status_runner,omitempty"`
	// Phases are the measured load phases: "quiet", "one integration", and
	// "with flood" when FloodTenantRate is set.
	Phases []ScalePhase `json:"phases"`
	// The p99 of the rate spread over the active integrations, of the same
	// rate on one of them, and the first over the second.
	SpreadP99Ms         *float64 `json:"spread_p99_ms,omitempty"`
	OneIntegrationP99Ms *float64 `json:"one_integration_p99_ms,omitempty"`
	SpreadToOneP99      *float64 `json:"spread_to_one_p99,omitempty"`
	FloodTenantRate     float64  `json:"flood_tenant_rate,omitempty"`
	// The active (quiet) integrations' p99 without and with the flood.
	QuietP99WithoutFloodMs *float64 `json:"quiet_p99_without_flood_ms,omitempty"`
	QuietP99WithFloodMs    *float64 `json:"quiet_p99_with_flood_ms,omitempty"`
}

// writeScaleSummary writes the scale scenario's human-readable summary.
func (r *Report) writeScaleSummary(w io.Writer) error {
	s := r.Scale
	var b strings.Builder
	runners := "the stack's own runner"
	if s.Runners > 0 {
		runners = fmt.Sprintf("%d runner processes", s.Runners)
	}
	fmt.Fprintf(&b, "scenario        scale: %d integrations (webhook → json-transform → file) over %d tenants, %s, %d-byte messages, %s%s\n",
		s.Integrations, s.Tenants, runners, r.MessageSize, r.Durability, keysNote(r))
	fmt.Fprintf(&b, "tenants         %d created and active in %.1f s\n", s.Tenants, s.TenantsSeconds)
	d := s.Deploy
	fmt.Fprintf(&b, "deploy          %d of %d running in %.1f s from the first create (%.1f deploys/s; all accepted after %.1f s), %d failed",
		d.Running, d.Requested, d.Seconds, d.PerSecond, d.SubmitSeconds, d.Failed)
	if d.TimedOut {
		b.WriteString(", deploy timeout reached")
	}
	b.WriteString("\n")
	for _, e := range d.Errors {
		fmt.Fprintf(&b, "                  %s\n", e)
	}
	writeIdle(&b, "idle, none", s.IdleNone)
	writeIdle(&b, "idle, deployed", s.IdleDeployed)
	if s.PerIntegrationRSSKB != nil {
		fmt.Fprintf(&b, "per integration %.0f KiB of RSS ((RSS with %d deployed - RSS with none) / %d)\n",
			*s.PerIntegrationRSSKB, s.IdleDeployed.Integrations, s.IdleDeployed.Integrations-s.IdleNone.Integrations)
	}
	writeRegistry(&b, s.RunnerRegistry)
	if len(s.StatusRunners) > 0 {
		fmt.Fprintf(&b, "status API      running integrations by the runner named in their status: %s\n", formatCounts(s.StatusRunners))
	}
	for i := range s.Phases {
		writePhase(&b, &s.Phases[i])
	}
	if s.SpreadP99Ms != nil && s.OneIntegrationP99Ms != nil && s.SpreadToOneP99 != nil {
		fmt.Fprintf(&b, "spread          p99 %.2f ms over %d integrations, %.2f ms on one at the same rate: %.2f×\n",
			*s.SpreadP99Ms, len(s.Phases[0].Integrations), *s.OneIntegrationP99Ms, *s.SpreadToOneP99)
	}
	if s.QuietP99WithoutFloodMs != nil && s.QuietP99WithFloodMs != nil {
		fmt.Fprintf(&b, "fairness        quiet tenants' p99 %.2f ms without the flood, %.2f ms with %.0f msgs/s flooding one tenant\n",
			*s.QuietP99WithoutFloodMs, *s.QuietP99WithFloodMs, s.FloodTenantRate)
	}
	if r.BaselineRate > 0 {
		fmt.Fprintf(&b, "baseline        raw JetStream publish+consume %.0f msgs/s (%d-byte)\n", r.BaselineRate, r.BaselineMessageSize)
	}
	m := r.Machine
	fmt.Fprintf(&b, "machine         %d CPUs (%s), %s, %s; each phase measured %.0f s after %.0f s warm-up, %d workers in all\n",
		m.NumCPU, m.CPUModel, m.GoVersion, m.OS, r.DurationS, r.WarmupS, r.Workers)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeIdle(b *strings.Builder, label string, c IdleCost) {
	fmt.Fprintf(b, "%-15s %d integrations, %.0f s: %.1f%% of a core, RSS %.0f MB", label, c.Integrations, c.WindowS, c.CPUPercent, c.RSSMB)
	if c.PostgresCPUPercent != nil {
		fmt.Fprintf(b, " (PostgreSQL apart: %.1f%% of a core)", *c.PostgresCPUPercent)
	}
	b.WriteString("\n")
	if len(c.Processes) > 1 {
		for _, p := range c.Processes {
			fmt.Fprintf(b, "                  %s (pid %d): %.1f%% of a core, RSS %.0f MB\n", p.Name, p.PID, p.CPUPercent, p.RSSMB)
		}
	}
}

func writeRegistry(b *strings.Builder, reg RunnerRegistry) {
	if !reg.Available {
		b.WriteString("runners         runner registry not available")
		if len(reg.Problems) > 0 {
			fmt.Fprintf(b, " (%s)", strings.Join(reg.Problems, "; "))
		}
		b.WriteString("\n")
		return
	}
	parts := make([]string, 0, len(reg.Runners))
	for _, rr := range reg.Runners {
		parts = append(parts, fmt.Sprintf("%s %d", rr.Name, rr.Pipelines))
	}
	fmt.Fprintf(b, "runners         pipelines each runner runs (registry): %s; %d in all\n", strings.Join(parts, ", "), reg.Pipelines)
	for _, p := range reg.Problems {
		fmt.Fprintf(b, "                  left out: %s\n", p)
	}
}

func writePhase(b *strings.Builder, p *ScalePhase) {
	fmt.Fprintf(b, "load %-10s offered %.0f/s over %d integrations, sustained %.0f/s at the sinks\n", p.Name, p.OfferedRate, len(p.Integrations), p.SustainedRate)
	fmt.Fprintf(b, "  latency       p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (intended send → tenant's sink file)\n", p.P50, p.P99, p.P999, p.Max)
	fmt.Fprintf(b, "  messages      sent %d, errors %d%s, delivered %d, lost %d (%d integrations lost some), duplicates %d\n",
		p.Sent, p.Errors, formatErrors(p.ErrorsByStatus), p.Delivered, p.Lost, p.IntegrationsWithLoss, p.Duplicates)
	if p.Unexpected+p.Malformed+p.Unknown > 0 {
		fmt.Fprintf(b, "  oddities      unexpected %d, malformed lines %d, unknown seqs %d\n", p.Unexpected, p.Malformed, p.Unknown)
	}
	for _, u := range p.Processes {
		fmt.Fprintf(b, "  %-13s %.2f CPU s (%.1f%% of a core), RSS %.0f MB, peak %.0f MB\n", u.Name, u.CPUSeconds, u.CPUPercent, u.RSSMB, u.PeakRSSMB)
	}
	if f := p.Flood; f != nil {
		fmt.Fprintf(b, "  flood         %s/%s offered %.0f/s: sent %d, errors %d%s, delivered %d, lost %d, p99 %.2f ms\n",
			f.Tenant, f.Integration, f.OfferedRate, f.Sent, f.Errors, formatErrors(f.ErrorsByStatus), f.Delivered, f.Lost, f.P99)
	}
}

// formatCounts writes name → count pairs sorted by name.
func formatCounts(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name := k
		if name == "" {
			name = `""`
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}
