package bench

import (
	"context"
	"fmt"
	"time"
)

// processSampleEvery is how often a measured window samples the processes'
// RSS.
const processSampleEvery = time.Second

// ProcessUse is one process's CPU and memory over a measured window.
type ProcessUse struct {
	Name       string  `json:"name"` // "stack" or the runner's name
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPercent is CPUSeconds per second of the window, in per cent of
	// one core.
	CPUPercent float64 `json:"cpu_percent_of_a_core"`
	// RSSMB is the mean of the RSS samples (one a second, and at both
	// ends); RSSStartMB the first; PeakRSSMB the process's VmHWM at the end.
	RSSMB      float64 `json:"rss_mb"`
	RSSStartMB float64 `json:"rss_start_mb"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
}

// IdleCost is what the stack costs with no load over a window.
type IdleCost struct {
	Integrations int          `json:"integrations"`
	WindowS      float64      `json:"window_s"`
	Processes    []ProcessUse `json:"processes"`
	// CPUPercent and RSSMB are summed over the processes.
	CPUPercent float64 `json:"cpu_percent_of_a_core"`
	RSSMB      float64 `json:"rss_mb"`
	// PostgresCPUPercent is the stack's PostgreSQL server with all its
	// sessions, when the stack runs one in its data directory.
	PostgresCPUPercent *float64 `json:"postgres_cpu_percent_of_a_core,omitempty"`
}

// measuredProcess is a process a window measures.
type measuredProcess struct {
	name string
	pid  int
}

// processWindow measures processes from begin to end: CPU time, RSS
// sampled along the way, and the peak RSS.
type processWindow struct {
	procs    []measuredProcess
	began    time.Time
	cpu0     []time.Duration
	rssSum   []float64
	rssFirst []float64
	samples  int
	// postgres is the PostgreSQL server measured for CPU (0: none).
	postgres    int
	postgresCPU time.Duration
	selfCPU     time.Duration
}

// processes are the stack's process and the runner processes.
func (s *scaleRun) processes() []measuredProcess {
	out := []measuredProcess{{name: "stack", pid: s.stack.PID}}
	for _, r := range s.runners {
		out = append(out, measuredProcess{name: r.Name, pid: r.PID})
	}
	return out
}

// beginWindow takes the first sample of procs (and of PostgreSQL's CPU,
// when postgres is not 0).
func beginWindow(procs []measuredProcess, postgres int) (*processWindow, error) {
	w := &processWindow{procs: procs, cpu0: make([]time.Duration, len(procs)), rssSum: make([]float64, len(procs)),
		rssFirst: make([]float64, len(procs)), postgres: postgres}
	for i, p := range procs {
		cpu, err := ProcCPU(p.pid)
		if err != nil {
			return nil, fmt.Errorf("measure %s: %w", p.name, err)
		}
		w.cpu0[i] = cpu
	}
	if postgres != 0 {
		cpu, err := TreeCPU(postgres)
		if err != nil {
			return nil, fmt.Errorf("measure postgres: %w", err)
		}
		w.postgresCPU = cpu
	}
	self, err := SelfCPU()
	if err != nil {
		return nil, err
	}
	w.selfCPU, w.began = self, time.Now()
	if err := w.sample(); err != nil {
		return nil, err
	}
	copy(w.rssFirst, w.rssSum)
	return w, nil
}

// sample adds one RSS sample of every process.
func (w *processWindow) sample() error {
	for i, p := range w.procs {
		m, err := ProcMemory(p.pid)
		if err != nil {
			return fmt.Errorf("measure %s: %w", p.name, err)
		}
		w.rssSum[i] += float64(m.RSS) / (1 << 20)
	}
	w.samples++
	return nil
}

// sampleUntil samples every processSampleEvery until ctx ends.
func (w *processWindow) sampleUntil(ctx context.Context) error {
	t := time.NewTicker(processSampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := w.sample(); err != nil {
				return err
			}
		}
	}
}

// windowResult is a window's figures.
type windowResult struct {
	seconds     float64
	processes   []ProcessUse
	postgresCPU *time.Duration
	selfCPU     time.Duration
}

// end takes the last sample and returns the window's figures.
func (w *processWindow) end() (windowResult, error) {
	if err := w.sample(); err != nil {
		return windowResult{}, err
	}
	res := windowResult{seconds: time.Since(w.began).Seconds()}
	for i, p := range w.procs {
		cpu, err := ProcCPU(p.pid)
		if err != nil {
			return res, fmt.Errorf("measure %s: %w", p.name, err)
		}
		m, err := ProcMemory(p.pid)
		if err != nil {
			return res, fmt.Errorf("measure %s: %w", p.name, err)
		}
		u := ProcessUse{Name: p.name, PID: p.pid, CPUSeconds: (cpu - w.cpu0[i]).Seconds(),
			RSSMB: w.rssSum[i] / float64(w.samples), RSSStartMB: w.rssFirst[i], PeakRSSMB: float64(m.Peak) / (1 << 20)}
		if res.seconds > 0 {
			u.CPUPercent = 100 * u.CPUSeconds / res.seconds
		}
		res.processes = append(res.processes, u)
	}
	if w.postgres != 0 {
		cpu, err := TreeCPU(w.postgres)
		if err != nil {
			return res, fmt.Errorf("measure postgres: %w", err)
		}
		d := cpu - w.postgresCPU
		res.postgresCPU = &d
	}
	self, err := SelfCPU()
	if err != nil {
		return res, err
	}
	res.selfCPU = self - w.selfCPU
	return res, nil
}

// measureIdle measures the stack and the runners, with no load, for the
// idle window; deployed is how many integrations are deployed.
func (s *scaleRun) measureIdle(ctx context.Context, deployed int) (IdleCost, error) {
	w, err := beginWindow(s.processes(), s.postgresPID)
	if err != nil {
		return IdleCost{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.Scale.IdleWindow)
	defer cancel()
	if err := w.sampleUntil(wctx); err != nil {
		return IdleCost{}, err
	}
	if err := ctx.Err(); err != nil {
		return IdleCost{}, err
	}
	res, err := w.end()
	if err != nil {
		return IdleCost{}, err
	}
	out := idleCost(deployed, res)
	if len(res.processes) > 0 {
		s.idleStackCores = res.processes[0].CPUPercent / 100
	}
	fmt.Fprintf(s.cfg.Progress, "idle with %d integrations: %.1f%% of a core, RSS %.0f MB\n", deployed, out.CPUPercent, out.RSSMB)
	return out, nil
}

// idleCost sums a window's figures over its processes.
func idleCost(deployed int, res windowResult) IdleCost {
	out := IdleCost{Integrations: deployed, WindowS: res.seconds, Processes: res.processes}
	for _, u := range res.processes {
		out.CPUPercent += u.CPUPercent
		out.RSSMB += u.RSSMB
	}
	if res.postgresCPU != nil && res.seconds > 0 {
		pct := 100 * res.postgresCPU.Seconds() / res.seconds
		out.PostgresCPUPercent = &pct
	}
	return out
}

// perIntegrationKB is the RSS each deployed integration adds, in KiB: the
// difference of the idle windows' mean RSS (summed over the processes) per
// integration deployed; nil when none was.
func perIntegrationKB(none, deployed IdleCost) *float64 {
	if deployed.Integrations <= none.Integrations {
		return nil
	}
	kb := (deployed.RSSMB - none.RSSMB) * 1024 / float64(deployed.Integrations-none.Integrations)
	return &kb
}
