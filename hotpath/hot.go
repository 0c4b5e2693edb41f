package hotpath

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
)

// A hot integration gets more runners by itself, and fewer again when it
// cools (docs/adr/0024-hot-integrations-get-more-runners.md). Each runner
// reports in its registry entry the rate of its busy pipelines; every
// runner derives from the registry it already watches the same number of
// runners for each pipeline, with no coordinator.
const (
	// DefaultHotRatePerRunner is the messages per second one runner is
	// expected to take of one integration before the integration gets
	// another runner.
	DefaultHotRatePerRunner = 2000
	// DefaultHotCooldown is how long an integration's rate must stay low
	// before it gives a runner back.
	DefaultHotCooldown = time.Minute

	// hotFloorShare of the rate per runner is the least rate a pipeline
	// must reach here to be reported (unless it has extra runners).
	hotFloorShare = 0.1
	// hotShrinkShare: an integration with n runners gives one back when
	// its rate stays below hotShrinkShare × rate per runner × (n-1).
	hotShrinkShare = 0.5
	// hotReportMax bounds the pipelines one registry entry reports, and
	// how many of another runner's reports are read.
	hotReportMax = 64
	// hotKeyMax bounds a reported pipeline key; longer ones are ignored.
	hotKeyMax = 256
	// hotRateMax bounds a reported rate, so no entry can overflow a sum.
	hotRateMax = 1e9
)

// HotPipeline is a busy pipeline in a runner's registry entry.
type HotPipeline struct {
	// Key is the pipeline's desired-state key.
	Key string `json:"key"`
	// Rate is the messages per second its process stage took in on this
	// runner, the lower of the last two beats: a rate sustained, not a
	// spike.
	Rate float64 `json:"rate"`
	// Peak is the highest rate of a beat over the cooldown: low only when
	// the rate stayed low that long.
	Peak float64 `json:"peak"`
	// Runners is how many runners this runner runs it with.
	Runners int `json:"runners"`
}

// hotRunners decides how many runners a pipeline gets from what the
// runners alive report of it (at most one report each) and the rate one
// runner is expected to take. Its current count is the most any report
// says it runs with, but at most one more than the reports (a runner that
// just took it may not have reported yet; a stale or garbled count must
// not carry further). It gets one more when the sustained rates add up to
// more than the current count takes, one fewer when the peaks over the
// cooldown add up to less than half of what one fewer would take, else the
// same. The gap between the two thresholds keeps a pipeline near one from
// going back and forth. The result is between 1 and min(alive,
// spec.MaxRunners); the spec's own runners are a minimum applied by the
// caller.
func hotRunners(reports []HotPipeline, perRunner float64, alive int) int {
	current, rate, peak := 1, 0.0, 0.0
	for _, h := range reports {
		current = max(current, h.Runners)
		rate += h.Rate
		peak += h.Peak
	}
	current = min(current, len(reports)+1, spec.MaxRunners)
	n := current
	switch {
	case perRunner <= 0:
		n = 1
	case rate > perRunner*float64(current):
		n = current + 1
	case current > 1 && peak < perRunner*float64(current-1)*hotShrinkShare:
		n = current - 1
	}
	return max(1, min(n, alive, spec.MaxRunners))
}

// sanitizeHot keeps the reports of another runner that can be trusted to
// add up: at most hotReportMax, each once, with a plausible key, finite
// rates that are not negative (capped at hotRateMax), and a runner count
// within 1 and spec.MaxRunners. Anything else is dropped, not fixed.
func sanitizeHot(in []HotPipeline) []HotPipeline {
	out := make([]HotPipeline, 0, min(len(in), hotReportMax))
	seen := make(map[string]bool, min(len(in), hotReportMax))
	for _, h := range in {
		if len(out) == hotReportMax {
			break
		}
		if h.Key == "" || len(h.Key) > hotKeyMax || seen[h.Key] || !saneRate(h.Rate) || !saneRate(h.Peak) {
			continue
		}
		seen[h.Key] = true
		h.Rate, h.Peak = min(h.Rate, hotRateMax), min(h.Peak, hotRateMax)
		h.Runners = max(1, min(h.Runners, spec.MaxRunners))
		out = append(out, h)
	}
	return out
}

func saneRate(r float64) bool { return r >= 0 && !math.IsNaN(r) && !math.IsInf(r, 0) }

// decodeRunnerInfo reads a registry entry. An entry whose hot list does
// not parse (another version's, or garbage) still registers its runner,
// without reports.
func decodeRunnerInfo(b []byte) (RunnerInfo, bool) {
	var info RunnerInfo
	if json.Unmarshal(b, &info) == nil {
		return info, true
	}
	var bare struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(b, &bare) != nil {
		return RunnerInfo{}, false
	}
	return RunnerInfo{Name: bare.Name}, true
}

// hotView is what a runner knows of the hot pipelines: the reports of
// every runner it has heard from, the runners each reported pipeline gets
// from them, and its own pipelines' rates.
type hotView struct {
	// perRunner is the rate one runner is expected to take; cooldown how
	// long a rate must stay low before a runner is given back.
	perRunner float64
	cooldown  time.Duration
	// reports are each runner's sanitized reports, by registry key.
	reports map[string][]HotPipeline
	// extra is the runners each reported pipeline gets, where more than
	// one, by pipeline key.
	extra map[string]int
	// changed are the pipelines whose runners changed since the runner
	// last reconciled them.
	changed map[string]bool
	// rates measures this runner's pipelines, by pipeline key.
	rates map[string]*pipelineRate
}

func newHotView() *hotView {
	return &hotView{
		perRunner: DefaultHotRatePerRunner, cooldown: DefaultHotCooldown,
		reports: map[string][]HotPipeline{}, extra: map[string]int{},
		changed: map[string]bool{}, rates: map[string]*pipelineRate{},
	}
}

// recompute derives every reported pipeline's runners from the reports of
// the runners alive (sorted), forgets the reports of runners no longer
// known, and notes the pipelines whose runners changed.
func (v *hotView) recompute(alive []string, known func(string) bool) {
	byKey := map[string][]HotPipeline{}
	for runner, hs := range v.reports {
		if !known(runner) {
			delete(v.reports, runner)
			continue
		}
		if _, ok := slices.BinarySearch(alive, runner); !ok {
			continue
		}
		for _, h := range hs {
			byKey[h.Key] = append(byKey[h.Key], h)
		}
	}
	extra := make(map[string]int, len(v.extra))
	for key, hs := range byKey {
		if n := hotRunners(hs, v.perRunner, len(alive)); n > 1 {
			extra[key] = n
		}
	}
	for key, n := range extra {
		if v.extra[key] != n {
			v.changed[key] = true
		}
	}
	for key := range v.extra {
		if _, ok := extra[key]; !ok {
			v.changed[key] = true
		}
	}
	v.extra = extra
}

// runnersFor is the runners a pipeline with the spec's runners gets: the
// spec's (0 means 1), or more while it is hot.
func (v *hotView) runnersFor(key string, specRunners int) int {
	return min(max(1, specRunners, v.extra[key]), spec.MaxRunners)
}

// takeChanged returns, and forgets, the pipelines whose runners changed.
func (v *hotView) takeChanged() []string {
	if len(v.changed) == 0 {
		return nil
	}
	keys := make([]string, 0, len(v.changed))
	for key := range v.changed {
		keys = append(keys, key)
	}
	clear(v.changed)
	slices.Sort(keys)
	return keys
}

// pipelineRate is one pipeline's recent rates on this runner: one per
// beat, newest last.
type pipelineRate struct {
	count float64
	at    time.Time
	rates []float64
}

// observe records that the pipeline's process stage had taken in count
// messages by now, and returns its sustained rate (the lower of the last
// two beats; 0 before there are two) and its peak over the cooldown. A
// count lower than the last one (the counter started again) counts from 0.
func (v *hotView) observe(key string, count float64, now time.Time) (rate, peak float64) {
	pr := v.rates[key]
	if pr == nil {
		v.rates[key] = &pipelineRate{count: count, at: now}
		return 0, 0
	}
	elapsed := now.Sub(pr.at).Seconds()
	if elapsed <= 0 {
		return pr.summary()
	}
	delta := count - pr.count
	if delta < 0 {
		delta = count
	}
	pr.count, pr.at = count, now
	pr.rates = append(pr.rates, delta/elapsed)
	if keep := v.windows(); len(pr.rates) > keep {
		pr.rates = slices.Delete(pr.rates, 0, len(pr.rates)-keep)
	}
	return pr.summary()
}

// windows is how many beats the cooldown spans (at least two).
func (v *hotView) windows() int {
	return max(2, int(math.Ceil(float64(v.cooldown)/float64(runnerBeat))))
}

func (pr *pipelineRate) summary() (rate, peak float64) {
	n := len(pr.rates)
	if n >= 2 {
		rate = min(pr.rates[n-1], pr.rates[n-2])
	}
	for _, r := range pr.rates {
		peak = max(peak, r)
	}
	return rate, peak
}

// report measures this runner's pipelines and returns what goes into its
// registry entry: those whose peak reached the floor or that run on more
// runners than their spec asks, busiest first, at most hotReportMax.
// running gives each pipeline's key, the messages its process stage took
// in so far and its spec's runners; alive is the runners alive.
func (v *hotView) report(running []runningPipeline, alive int, now time.Time) []HotPipeline {
	var out []HotPipeline
	seen := make(map[string]bool, len(running))
	for _, p := range running {
		if seen[p.key] {
			continue // at two locations during a move: one counter
		}
		seen[p.key] = true
		rate, peak := v.observe(p.key, p.count, now)
		n := min(v.runnersFor(p.key, p.specRunners), max(1, alive))
		if peak >= v.perRunner*hotFloorShare || n > max(1, p.specRunners) {
			out = append(out, HotPipeline{Key: p.key, Rate: rate, Peak: peak, Runners: n})
		}
	}
	for key := range v.rates {
		if !seen[key] {
			delete(v.rates, key)
		}
	}
	slices.SortFunc(out, func(a, b HotPipeline) int {
		return cmp.Or(cmp.Compare(b.Peak, a.Peak), cmp.Compare(a.Key, b.Key))
	})
	return out[:min(len(out), hotReportMax)]
}

// runningPipeline is what report needs of a pipeline running here.
type runningPipeline struct {
	key         string
	count       float64
	specRunners int
}

// processed returns how many messages p's process stage took in on this
// runner (vrsky_stage_messages_in_total): reading it costs the hot loop
// nothing.
func (m *Metrics) processed(p dataplane.Pipeline) float64 {
	c, err := m.messagesIn.GetMetricWithLabelValues(p.Tenant, p.Integration, dataplane.StageProcess)
	if err != nil {
		return 0
	}
	var out dto.Metric
	if c.Write(&out) != nil {
		return 0
	}
	return out.GetCounter().GetValue()
}

// startHot applies the runner's settings to its view of hot pipelines.
func (r *Runner) startHot() {
	if r.HotRatePerRunner > 0 {
		r.members.hot.perRunner = r.HotRatePerRunner
	}
	if r.HotCooldown > 0 {
		r.members.hot.cooldown = r.HotCooldown
	}
}

// hotReport is the hot part of this runner's registry entry.
func (r *Runner) hotReport(now time.Time) []HotPipeline {
	running := make([]runningPipeline, 0, len(r.running))
	for _, pl := range r.running {
		p := pl.desired.Pipeline()
		running = append(running, runningPipeline{key: p.Key(), count: r.Metrics.processed(p), specRunners: pl.desired.Spec.Runners})
	}
	return r.members.hot.report(running, len(r.members.alive), now)
}

// reconcileHot reconciles the pipelines whose runners changed because
// they got hot or cooled: like a change of the runners alive, but only
// for them.
func (r *Runner) reconcileHot(lc loop) {
	for _, key := range r.members.hot.takeChanged() {
		if entry, ok := r.desired[key]; ok {
			lc.d.log.Info("hot pipeline's runners changed", "key", key, "hot_runners", max(1, r.members.hot.extra[key]))
			r.reconcile(lc, entry)
		}
	}
}
