package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/dataplane"
)

// Membership timing. A runner that stops cleanly deletes its key, so the
// others take its integrations over at once; one that dies is noticed
// within runnerGone.
const (
	runnerBeat = 5 * time.Second
	runnerGone = 15 * time.Second
	// runnersMaxAge drops the keys of runners that died long ago.
	runnersMaxAge = time.Hour
)

// RunnerInfo is what a runner says of itself in RunnersBucket.
type RunnerInfo struct {
	Name string `json:"name"`
	// Pipelines is how many pipelines it runs.
	Pipelines int       `json:"pipelines"`
	UpdatedAt time.Time `json:"updated_at"`
	// Hot are its busy pipelines and their rates (hot.go), busiest
	// first, at most 64.
	Hot []HotPipeline `json:"hot,omitempty"`
}

func openRunners(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	return dataplane.OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: dataplane.RunnersBucket, History: 1, TTL: runnersMaxAge})
}

// ListRunners returns the runners registered in the last runnerGone, by
// name.
func ListRunners(ctx context.Context, js jetstream.JetStream) ([]RunnerInfo, error) {
	kv, err := js.KeyValue(ctx, dataplane.RunnersBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", dataplane.RunnersBucket, err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []RunnerInfo
	for key := range keys.Keys() {
		e, err := kv.Get(ctx, key)
		if err != nil {
			continue
		}
		var info RunnerInfo
		if json.Unmarshal(e.Value(), &info) == nil && time.Since(e.Created()) < runnerGone {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b RunnerInfo) int { return cmpString(a.Name, b.Name) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// membership is one runner's view of the runners alive, and the rule that
// assigns each pipeline to some of them: rendezvous hashing, so that a
// runner joining takes over an even share of the pipelines and a runner
// leaving hands out only its own. Runners are known by their registry key.
type membership struct {
	self string
	// seen is when each runner (self included) last registered.
	seen map[string]time.Time
	// alive is the sorted keys of the runners alive.
	alive []string
	// hot is what the runners report of their busy pipelines, and the
	// runners each gets from it.
	hot *hotView
}

func newMembership(self string) *membership {
	m := &membership{self: self, seen: map[string]time.Time{self: time.Now()}, hot: newHotView()}
	m.refresh(time.Now())
	return m
}

// saw records a registration; it reports whether the set alive changed.
func (m *membership) saw(key string, at time.Time) bool {
	if prev, ok := m.seen[key]; !ok || at.After(prev) {
		m.seen[key] = at
	}
	return m.refresh(time.Now())
}

// left records a runner gone (it deleted its key); self never leaves its
// own view.
func (m *membership) left(key string) bool {
	if key != m.self {
		delete(m.seen, key)
		delete(m.hot.reports, key)
	}
	return m.refresh(time.Now())
}

// expire forgets the runners not heard from for runnerGone; it reports
// whether the set alive changed.
func (m *membership) expire(now time.Time) bool {
	for key, at := range m.seen {
		if key != m.self && now.Sub(at) >= runnerGone {
			delete(m.seen, key)
		}
	}
	return m.refresh(now)
}

// refresh recomputes the set alive and the runners of the hot pipelines,
// and reports whether the set alive changed.
func (m *membership) refresh(now time.Time) bool {
	alive := make([]string, 0, len(m.seen))
	for key, at := range m.seen {
		if key == m.self || now.Sub(at) < runnerGone {
			alive = append(alive, key)
		}
	}
	slices.Sort(alive)
	changed := !slices.Equal(alive, m.alive)
	m.alive = alive
	m.hot.recompute(alive, func(key string) bool { _, ok := m.seen[key]; return ok })
	return changed
}

// owns reports whether this runner is among the runners key is assigned
// to: n (n < 1 means 1), or more while the pipeline is hot.
func (m *membership) owns(key string, n int) bool {
	return slices.Contains(assign(key, m.alive, m.hot.runnersFor(key, n)), m.self)
}

// assign returns the n runners of alive with the highest rendezvous score
// for key, best first.
func assign(key string, alive []string, n int) []string {
	n = max(1, min(n, len(alive)))
	type scored struct {
		name  string
		score uint64
	}
	all := make([]scored, 0, len(alive))
	for _, name := range alive {
		h := fnv.New64a()
		_, _ = h.Write([]byte(name))
		_, _ = h.Write([]byte{0})
		_, _ = h.Write([]byte(key))
		all = append(all, scored{name, mix(h.Sum64())})
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		return cmpString(a.name, b.name)
	})
	out := make([]string, 0, n)
	for _, s := range all[:n] {
		out = append(out, s.name)
	}
	return out
}

// mix spreads FNV's output over all 64 bits (the finaliser of
// SplitMix64), so that names differing in one character score apart.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// register writes this runner's RunnerInfo.
func register(ctx context.Context, kv jetstream.KeyValue, info RunnerInfo) error {
	info.UpdatedAt = time.Now().UTC()
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, dataplane.RunnerKey(info.Name), b)
	return err
}

// readRunners loads the registrations present now into m, so that a runner
// starting knows its peers before it decides what to run.
func readRunners(ctx context.Context, kv jetstream.KeyValue, m *membership) (jetstream.KeyWatcher, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dataplane.RunnersBucket, err)
	}
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("runner registry watch closed")
			}
			if e == nil { // the initial values are in
				return w, nil
			}
			m.apply(e)
		}
	}
}

// apply records one registry entry, with its hot pipelines; it reports
// whether the set alive changed (the pipelines whose runners changed are
// in m.hot).
func (m *membership) apply(e jetstream.KeyValueEntry) bool {
	if e.Operation() != jetstream.KeyValuePut {
		return m.left(e.Key())
	}
	info, ok := decodeRunnerInfo(e.Value())
	if !ok || dataplane.RunnerKey(info.Name) != e.Key() {
		return false
	}
	m.hot.reports[e.Key()] = sanitizeHot(info.Hot)
	return m.saw(e.Key(), e.Created())
}
