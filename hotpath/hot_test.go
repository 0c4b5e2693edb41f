package hotpath

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestHotRunnersGrowsShrinksAndHoldsBetween(t *testing.T) {
	const per = 100.0
	hp := func(rate, peak float64, runners int) HotPipeline {
		return HotPipeline{Key: "t.i", Rate: rate, Peak: peak, Runners: runners}
	}
	for _, tc := range []struct {
		name    string
		reports []HotPipeline
		alive   int
		want    int
	}{
		{"nobody reports it", nil, 5, 1},
		{"one runner below its share", []HotPipeline{hp(90, 95, 1)}, 5, 1},
		{"one runner exactly at its share stays alone", []HotPipeline{hp(100, 120, 1)}, 5, 1},
		{"one runner above its share gets a second", []HotPipeline{hp(101, 130, 1)}, 5, 2},
		{"a spike is not a sustained rate", []HotPipeline{hp(20, 5000, 1)}, 5, 1},
		{"two runners adding up to more than two shares get a third", []HotPipeline{hp(110, 120, 2), hp(95, 100, 2)}, 5, 3},
		{"two runners within their shares stay two", []HotPipeline{hp(90, 100, 2), hp(90, 100, 2)}, 5, 2},
		{"just above half a share stays two (hysteresis)", []HotPipeline{hp(20, 26, 2), hp(20, 25, 2)}, 5, 2},
		{"below half of one fewer runner's share gives one back", []HotPipeline{hp(10, 20, 2), hp(10, 20, 2)}, 5, 1},
		{"four runners idle give one back at a time", []HotPipeline{hp(0, 0, 4), hp(0, 0, 4), hp(0, 0, 4), hp(0, 0, 4)}, 5, 3},
		{"the most any runner reports is the current count", []HotPipeline{hp(50, 60, 3), hp(50, 60, 2)}, 5, 3},
		{"never more than the runners alive", []HotPipeline{hp(1e6, 1e6, 2)}, 2, 2},
		{"one report's count is trusted one above the reports, no further", []HotPipeline{hp(150, 150, 9)}, 5, 2},
		{"three runners above their shares with two alive", []HotPipeline{hp(200, 200, 3), hp(200, 200, 3), hp(200, 200, 3)}, 2, 2},
		{"never more than spec.MaxRunners", slices.Repeat([]HotPipeline{hp(1e9, 1e9, spec.MaxRunners)}, spec.MaxRunners), 500, spec.MaxRunners},
		{"alone, a runner runs it alone", []HotPipeline{hp(1e6, 1e6, 1)}, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, hotRunners(tc.reports, per, tc.alive))
		})
	}
	require.Equal(t, 1, hotRunners([]HotPipeline{hp(1e6, 1e6, 3)}, 0, 5), "no rate per runner: nothing is hot")
}

func TestHotRunnersForKeepsTheSpecMinimum(t *testing.T) {
	v := newHotView()
	v.perRunner = 100
	v.reports["r1"] = []HotPipeline{{Key: "t.hot", Rate: 150, Peak: 150, Runners: 1}}
	v.reports["r2"] = nil
	v.reports["gone"] = []HotPipeline{{Key: "t.other", Rate: 1e6, Peak: 1e6, Runners: 1}}
	known := func(k string) bool { return k != "gone" }
	v.recompute([]string{"r1", "r2", "r3"}, known)
	require.Equal(t, map[string]int{"t.hot": 2}, v.extra, "the reports of a runner no longer known count for nothing")
	require.NotContains(t, v.reports, "gone", "and are forgotten")
	require.Equal(t, []string{"t.hot"}, v.takeChanged())
	require.Empty(t, v.takeChanged(), "taken once")

	require.Equal(t, 2, v.runnersFor("t.hot", 0))
	require.Equal(t, 3, v.runnersFor("t.hot", 3), "the spec's runners are a minimum")
	require.Equal(t, 1, v.runnersFor("t.cold", 0))
	require.Equal(t, 4, v.runnersFor("t.cold", 4))
	require.Equal(t, spec.MaxRunners, v.runnersFor("t.cold", 1000))

	// A runner alive but not yet in the sorted list counts for nothing.
	v.recompute([]string{"r2", "r3"}, func(string) bool { return true })
	require.Empty(t, v.extra)
	require.Equal(t, []string{"t.hot"}, v.takeChanged(), "a pipeline that falls back is reconciled too")
}

func TestSanitizeHotDropsWhatCannotBeTrusted(t *testing.T) {
	long := strings.Repeat("k", hotKeyMax+1)
	in := []HotPipeline{
		{Key: "t.ok", Rate: 10, Peak: 20, Runners: 2},
		{Key: "t.ok", Rate: 1e6, Peak: 1e6, Runners: 9}, // the same key again
		{Key: "", Rate: 10, Peak: 10, Runners: 1},
		{Key: long, Rate: 10, Peak: 10, Runners: 1},
		{Key: "t.negative", Rate: -5, Peak: 10, Runners: 1},
		{Key: "t.nan", Rate: math.NaN(), Peak: 10, Runners: 1},
		{Key: "t.inf", Rate: 10, Peak: math.Inf(1), Runners: 1},
		{Key: "t.huge", Rate: 1e300, Peak: 1e300, Runners: 1e9},
		{Key: "t.zero-runners", Rate: 1, Peak: 1, Runners: -3},
	}
	got := sanitizeHot(in)
	require.Equal(t, []HotPipeline{
		{Key: "t.ok", Rate: 10, Peak: 20, Runners: 2},
		{Key: "t.huge", Rate: hotRateMax, Peak: hotRateMax, Runners: spec.MaxRunners},
		{Key: "t.zero-runners", Rate: 1, Peak: 1, Runners: 1},
	}, got)

	many := make([]HotPipeline, 10*hotReportMax)
	for i := range many {
		many[i] = HotPipeline{Key: fmt.Sprintf("t.i%d", i), Rate: 1, Peak: 1, Runners: 1}
	}
	require.Len(t, sanitizeHot(many), hotReportMax, "a huge list is cut at hotReportMax")
	require.Empty(t, sanitizeHot(nil))

	// Summing the most any list can hold stays finite.
	worst := make([]HotPipeline, 0, 200)
	for range 200 {
		worst = append(worst, sanitizeHot([]HotPipeline{{Key: "t.x", Rate: math.MaxFloat64, Peak: math.MaxFloat64, Runners: 1}})...)
	}
	require.Equal(t, 2, hotRunners(worst, 100, 2))
}

func TestHotRatesAreSustainedAndPeaksSpanTheCooldown(t *testing.T) {
	v := newHotView()
	v.cooldown = 3 * runnerBeat
	t0 := time.Unix(1000, 0)
	at := func(beats int) time.Time { return t0.Add(time.Duration(beats) * runnerBeat) }
	step := func(beat int, count float64) (float64, float64) { return v.observe("t.i", count, at(beat)) }

	rate, peak := step(0, 500)
	require.Zero(t, rate, "the first look only sets the baseline")
	require.Zero(t, peak)
	rate, peak = step(1, 1000) // 100/s
	require.Zero(t, rate, "one beat is not sustained")
	require.InDelta(t, 100, peak, 1e-9)
	rate, peak = step(2, 2500) // 300/s
	require.InDelta(t, 100, rate, 1e-9, "the lower of the last two beats")
	require.InDelta(t, 300, peak, 1e-9)
	rate, peak = v.observe("t.i", 9999, at(2)) // no time passed: nothing measured
	require.InDelta(t, 100, rate, 1e-9)
	require.InDelta(t, 300, peak, 1e-9)
	rate, _ = step(3, 4000) // 300/s
	require.InDelta(t, 300, rate, 1e-9)
	rate, peak = step(4, 50) // the counter started again (the pipeline came back): 10/s
	require.InDelta(t, 10, rate, 1e-9)
	require.InDelta(t, 300, peak, 1e-9, "the peak remembers the cooldown")
	step(5, 50)
	_, peak = step(6, 50)
	require.InDelta(t, 10, peak, 1e-9, "three beats later the peak of 300/s is gone")
	step(7, 50)
	_, peak = step(8, 50)
	require.Zero(t, peak)

	v.cooldown = time.Second
	require.Equal(t, 2, v.windows(), "at least two beats")
}

func TestHotReportListsBusyAndBoostedPipelinesBusiestFirst(t *testing.T) {
	v := newHotView()
	v.perRunner = 100 // the floor is 10/s
	t0 := time.Unix(1000, 0)
	beat := func(i int, counts map[string]float64, specRunners map[string]int) []HotPipeline {
		var running []runningPipeline
		for key, c := range counts {
			running = append(running, runningPipeline{key: key, count: c, specRunners: specRunners[key]})
			running = append(running, runningPipeline{key: key, count: c, specRunners: specRunners[key]}) // at a second location
		}
		return v.report(running, 4, t0.Add(time.Duration(i)*runnerBeat))
	}
	require.Empty(t, beat(0, map[string]float64{"t.busy": 0, "t.quiet": 0, "t.boosted": 0, "t.spec": 0}, nil))
	v.extra["t.boosted"] = 3
	got := beat(1, map[string]float64{"t.busy": 1000, "t.quiet": 5, "t.boosted": 0, "t.spec": 100}, map[string]int{"t.spec": 2})
	require.Equal(t, []HotPipeline{
		{Key: "t.busy", Peak: 200, Runners: 1},
		{Key: "t.spec", Peak: 20, Runners: 2},
		{Key: "t.boosted", Runners: 3},
	}, got, "below the floor only a pipeline with extra runners is listed, so its runners stay known")

	got = beat(2, map[string]float64{"t.busy": 2000}, nil)
	require.Equal(t, []HotPipeline{{Key: "t.busy", Rate: 200, Peak: 200, Runners: 1}}, got)
	require.Len(t, v.rates, 1, "pipelines no longer running here are forgotten")

	counts := map[string]float64{}
	for i := range 3 * hotReportMax {
		counts[fmt.Sprintf("t.p%03d", i)] = 0
	}
	beat(3, counts, nil)
	for i := range 3 * hotReportMax {
		counts[fmt.Sprintf("t.p%03d", i)] = float64(1000 + i*10)
	}
	got = beat(4, counts, nil)
	require.Len(t, got, hotReportMax, "an entry stays small")
	require.Equal(t, fmt.Sprintf("t.p%03d", 3*hotReportMax-1), got[0].Key, "the busiest first")
	b, err := json.Marshal(RunnerInfo{Name: "r", Hot: got})
	require.NoError(t, err)
	require.Less(t, len(b), 8<<10, "a full entry is a few KiB")
}

// TestHotRegistryEntriesFromOtherProcessesAreReadSafely writes hostile
// and malformed entries into a real registry bucket and reads it as a
// starting runner does.
func TestHotRegistryEntriesFromOtherProcessesAreReadSafely(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	kv, err := openRunners(ctx, js)
	require.NoError(t, err)
	put := func(name, value string) {
		_, err := kv.Put(ctx, dataplane.RunnerKey(name), []byte(value))
		require.NoError(t, err)
	}
	hot := func(rate float64, runners int) string {
		b, _ := json.Marshal([]HotPipeline{{Key: "t.hot", Rate: rate, Peak: rate, Runners: runners}})
		return string(b)
	}
	huge := make([]HotPipeline, 5000)
	for i := range huge {
		huge[i] = HotPipeline{Key: fmt.Sprintf("t.flood%d", i), Rate: 1e9, Peak: 1e9, Runners: 64}
	}
	hugeJSON, _ := json.Marshal(RunnerInfo{Name: "flood", Hot: huge})

	put("honest", `{"name":"honest","hot":`+hot(150, 1)+`}`)
	put("garbage", `{"name":`)                                       // not JSON: not a runner
	put("impostor", `{"name":"someone-else","hot":`+hot(1e6, 1)+`}`) // its key is not its name
	put("wrong-type", `{"name":"wrong-type","hot":"lots"}`)          // a runner, no reports
	put("out-of-range", `{"name":"out-of-range","hot":[{"key":"t.hot","rate":1e999,"peak":1,"runners":1}]}`)
	put("negative", `{"name":"negative","hot":[{"key":"t.hot","rate":-1e9,"peak":-1e9,"runners":64}]}`)
	put("flood", string(hugeJSON))

	m := newMembership(dataplane.RunnerKey("me"))
	m.hot.perRunner = 100
	w, err := readRunners(ctx, kv, m)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Stop() })

	var alive []string
	for _, key := range m.alive {
		alive = append(alive, key)
	}
	require.ElementsMatch(t, []string{"me", "honest", "wrong-type", "out-of-range", "negative", "flood"}, alive)
	require.Empty(t, m.hot.reports[dataplane.RunnerKey("wrong-type")])
	require.Empty(t, m.hot.reports[dataplane.RunnerKey("out-of-range")])
	require.Empty(t, m.hot.reports[dataplane.RunnerKey("negative")])
	require.Len(t, m.hot.reports[dataplane.RunnerKey("flood")], hotReportMax)
	require.Equal(t, 2, m.hot.extra["t.hot"], "only the honest report counts: 150/s on one runner at 100/s each")
	require.Equal(t, 2, m.hot.runnersFor("t.hot", 0))
	flooded := 0
	for key, n := range m.hot.extra {
		if strings.HasPrefix(key, "t.flood") {
			flooded++
			require.Equal(t, 3, n, "one entry claiming 64 runners and 1e9/s moves a pipeline from one runner to three, no further")
		}
	}
	require.Equal(t, hotReportMax, flooded, "a flood reaches at most hotReportMax pipelines")

	// The honest runner's next entry says it cooled; its deletion ends its
	// reports.
	put("honest", `{"name":"honest","hot":`+hot(0, 2)+`}`)
	require.Eventually(t, func() bool {
		select {
		case e := <-w.Updates():
			m.apply(e)
		default:
		}
		return m.hot.extra["t.hot"] == 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Contains(t, m.hot.takeChanged(), "t.hot")
	require.NoError(t, kv.Delete(ctx, dataplane.RunnerKey("flood")))
	require.Eventually(t, func() bool {
		select {
		case e := <-w.Updates():
			m.apply(e)
		default:
		}
		return !slices.Contains(m.alive, dataplane.RunnerKey("flood"))
	}, 5*time.Second, 10*time.Millisecond)
	require.NotContains(t, m.hot.reports, dataplane.RunnerKey("flood"))
	require.Empty(t, m.hot.extra)
}

// TestHotRunnersAgreeAndSettle plays the registry between five runners:
// each beat every runner reports what it measured, and every runner
// derives the pipeline's runners from the same entries. They agree at
// every step, grow while the load exceeds their shares, and give runners
// back one at a time once it has stayed low for the cooldown.
func TestHotRunnersAgreeAndSettle(t *testing.T) {
	const per = 100.0
	names := []string{"r1", "r2", "r3", "r4", "r5"}
	members := map[string]*membership{}
	for _, n := range names {
		m := newMembership(n)
		m.hot.perRunner, m.hot.cooldown = per, 3*runnerBeat
		for _, o := range names {
			m.saw(o, time.Now())
		}
		members[n] = m
	}
	const key = "t.hot"
	counts := map[string]float64{}
	t0 := time.Unix(1000, 0)
	var history []int
	runBeat := func(i int, load float64) int {
		owners := assign(key, names, members["r1"].hot.runnersFor(key, 0))
		for _, n := range names {
			require.Equal(t, owners, assign(key, names, members[n].hot.runnersFor(key, 0)), "beat %d: %s disagrees", i, n)
		}
		entries := map[string][]HotPipeline{}
		for _, n := range names {
			var running []runningPipeline
			if slices.Contains(owners, n) {
				counts[n] += load / float64(len(owners)) * runnerBeat.Seconds()
				running = append(running, runningPipeline{key: key, count: counts[n]})
			}
			entries[n] = members[n].hot.report(running, len(names), t0.Add(time.Duration(i)*runnerBeat))
		}
		for _, n := range names { // every runner reads every entry
			for _, o := range names {
				members[n].hot.reports[o] = sanitizeHot(entries[o])
			}
			members[n].refresh(time.Now())
		}
		history = append(history, len(owners))
		return len(owners)
	}
	i := 0
	for ; i < 20; i++ {
		runBeat(i, 350)
	}
	require.Equal(t, 4, history[len(history)-1], "350/s at 100/s a runner: four runners (history %v)", history)
	first := slices.Index(history, 2)
	require.Positive(t, first, "the second runner comes after two beats of load (history %v)", history)
	require.LessOrEqual(t, first, 3)
	for ; i < 30; i++ {
		runBeat(i, 160)
	}
	require.Equal(t, []int{4, 4, 4, 4, 4}, history[len(history)-5:], "160/s is above half of three runners' shares: four stay (history %v)", history)
	for ; i < 40; i++ {
		runBeat(i, 120)
	}
	require.Equal(t, []int{3, 3, 3, 3, 3}, history[len(history)-5:], "120/s: one runner goes, three stay (history %v)", history)
	for ; i < 60; i++ {
		runBeat(i, 0)
	}
	require.Equal(t, 1, history[len(history)-1], "idle: back to one (history %v)", history)
	for j := 1; j < len(history); j++ {
		require.LessOrEqual(t, abs(history[j]-history[j-1]), 1, "one step at a time (history %v)", history)
	}
	t.Logf("runners per beat: %v", history)
}

func abs(x int) int { return max(x, -x) }

// TestHotIntegrationGetsASecondRunnerAndGivesItBack: two runners, one
// integration. Driven above one runner's share it ends up run by both;
// when the load stops it falls back to one; every message is delivered
// once.
func TestHotIntegrationGetsASecondRunnerAndGivesItBack(t *testing.T) {
	var mu sync.Mutex
	metrics := map[string]*Metrics{}
	h := newHarnessWith(t, harnessOptions{configure: func(r *Runner) {
		r.HotRatePerRunner, r.HotCooldown = 20, 10*time.Second
		r.Metrics = NewMetrics(nil)
		mu.Lock()
		metrics[r.Name] = r.Metrics
		mu.Unlock()
	}}, "out")
	p := h.deploy("hot", []string{"upper"}, "out")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.runner("runner-2").Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("runner-2 did not stop")
		}
	})
	running := func() map[string]int { return h.runnerShares(t) }
	runBy := func(n int, within time.Duration) {
		t.Helper()
		require.Eventually(t, func() bool {
			got := running()
			return len(got) == 2 && got["test-runner"]+got["runner-2"] == n
		}, within, 200*time.Millisecond, "the integration run by %d runners (registry: %v)", n, running())
	}
	runBy(1, 30*time.Second)
	processed := func(name string) float64 {
		mu.Lock()
		defer mu.Unlock()
		return metrics[name].processed(p)
	}
	before := map[string]float64{"test-runner": processed("test-runner"), "runner-2": processed("runner-2")}

	// 100 msgs/s, five times one runner's share.
	var sent atomic.Int64
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	load.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
			}
			msgs := make([]sdk.Message, 10)
			for i := range msgs {
				msgs[i] = sdk.Message{ID: fmt.Sprintf("m-%d", sent.Add(1)), Body: []byte("x")}
			}
			h.send(p, msgs...)
		}
	})
	loadStarted := time.Now()
	runBy(2, 60*time.Second)
	grew := time.Since(loadStarted)
	require.Eventually(t, func() bool {
		return processed("test-runner") > before["test-runner"] && processed("runner-2") > before["runner-2"]
	}, 30*time.Second, 100*time.Millisecond, "both runners take the integration's messages")
	time.Sleep(3 * time.Second)
	close(stopLoad)
	load.Wait()
	loadStopped := time.Now()
	runBy(1, 90*time.Second)
	shrank := time.Since(loadStopped)

	// Still run, by one runner.
	for i := range 20 {
		h.send(p, sdk.Message{ID: fmt.Sprintf("after-%d", i), Body: []byte("x")})
	}
	total := int(sent.Load()) + 20
	rec := h.producers["out"]
	require.Eventually(t, func() bool { return rec.delivered() == total }, 60*time.Second, 100*time.Millisecond,
		"every message delivered (%d of %d)", rec.delivered(), total)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	dups := 0
	for _, n := range rec.count {
		dups += n - 1
	}
	require.Zero(t, dups, "a runner giving the integration back acks what it took first")
	require.Equal(t, 1, running()["test-runner"]+running()["runner-2"], "no flapping back")
	t.Logf("%d messages at 100/s (one runner's share: 20/s): second runner after %s, back to one %s after the load stopped (cooldown 10 s); 0 lost, %d duplicates",
		total, grew.Round(100*time.Millisecond), shrank.Round(100*time.Millisecond), dups)
}
