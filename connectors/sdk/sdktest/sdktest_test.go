package sdktest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/sdk"
)

type fakeConfig struct {
	Mode   string      `json:"mode"`
	Nested []fakeInner `json:"nested,omitempty"`
	At     time.Time   `json:"at,omitzero"`
	hidden int
}

type fakeInner struct {
	Name string `json:"name"`
}

type converter struct{}

func (converter) Convert(ctx context.Context, m sdk.Message) (sdk.Message, error) {
	return m, ctx.Err()
}

type filter struct{}

func (filter) Filter(ctx context.Context, _ sdk.Message) (sdk.Decision, error) {
	return sdk.Decision{}, ctx.Err()
}

type consumer struct{}

func (consumer) Run(ctx context.Context, _ sdk.Sink) error {
	<-ctx.Done()
	return ctx.Err()
}

type poller struct{ consumer }

func (poller) Poll(ctx context.Context, _ sdk.Sink) (sdk.PollResult, error) {
	return sdk.PollResult{}, ctx.Err()
}

type producer struct{}

func (*producer) Write(ctx context.Context, _ []sdk.Message) error { return ctx.Err() }
func (p *producer) Close(context.Context) error                    { return nil }

func fake(kind sdk.Kind, inst func() any) sdk.Connector {
	return sdk.Connector{
		Name: "fake-" + string(kind), Kind: kind, Summary: "A fake.",
		NewConfig: func() any { return new(fakeConfig) },
		Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
			var cfg fakeConfig
			if err := config.Decode(raw, &cfg); err != nil {
				return nil, err
			}
			if cfg.Mode == "bad" {
				return nil, errors.New("mode bad")
			}
			return inst(), nil
		},
	}
}

func TestConformanceOfEveryKind(t *testing.T) {
	bad := map[string]json.RawMessage{"bad mode": json.RawMessage(`{"mode":"bad"}`)}
	Conformance(t, fake(sdk.KindConverter, func() any { return converter{} }), sdk.Env{}, json.RawMessage(`{"mode":"ok"}`), bad)
	Conformance(t, fake(sdk.KindFilter, func() any { return filter{} }), sdk.Env{}, nil, bad)
	Conformance(t, fake(sdk.KindConsumer, func() any { return consumer{} }), sdk.Env{}, nil, bad)
	Conformance(t, fake(sdk.KindProducer, func() any { return &producer{} }), sdk.Env{}, nil, bad)
	polling := fake(sdk.KindConsumer, func() any { return poller{} })
	polling.Polls = true
	Conformance(t, polling, sdk.Env{}, nil, bad)
}

func TestUntagged(t *testing.T) {
	type inner struct {
		Tagged   string `json:"tagged"`
		Untagged string
	}
	type cfg struct {
		A     string             `json:",omitempty"`
		B     string             `json:"b"`
		In    *inner             `json:"in"`
		Many  map[string][]inner `json:"many"`
		Self  *cfg               `json:"self"`
		lower string
	}
	require.ElementsMatch(t, []string{"cfg.A", "inner.Untagged"}, untagged(reflect.TypeFor[cfg](), nil))
	require.Empty(t, untagged(reflect.TypeFor[fakeConfig](), nil))
	require.Empty(t, untagged(reflect.TypeFor[string](), nil))
}

func TestCheckKind(t *testing.T) {
	for kind, inst := range map[sdk.Kind]any{
		sdk.KindConsumer:  consumer{},
		sdk.KindConverter: converter{},
		sdk.KindFilter:    filter{},
		sdk.KindProducer:  &producer{},
	} {
		t.Run(string(kind), func(t *testing.T) { checkKind(t, kind, inst) })
	}
}

type leaky struct{ stop chan struct{} }

func (l *leaky) park() { <-l.stop }

func TestGoroutinesInFindsALeak(t *testing.T) {
	l := &leaky{stop: make(chan struct{})}
	go l.park()
	pkg := "github.com/vrsky/vrsky/connectors/sdk/sdktest"
	require.Eventually(t, func() bool { return strings.Contains(goroutinesIn(pkg), "leaky).park") }, time.Second, 10*time.Millisecond)
	close(l.stop)
	require.Eventually(t, func() bool { return goroutinesIn(pkg) == "" }, time.Second, 10*time.Millisecond)
	noGoroutineLeft(t, l)
}

// TestPeakHeapSeesWhatAnAttackHolds: memory held while the attack runs is
// reported, and released memory is not counted before it was taken.
func TestPeakHeapSeesWhatAnAttackHolds(t *testing.T) {
	var keep [][]byte
	held := PeakHeap(func() {
		for range 64 {
			keep = append(keep, make([]byte, 1<<20))
		}
	})
	require.GreaterOrEqual(t, held, uint64(48<<20), "64 MiB held")
	require.Len(t, keep, 64)
	require.Less(t, PeakHeap(func() {}), uint64(16<<20), "an attack that holds nothing")
}
