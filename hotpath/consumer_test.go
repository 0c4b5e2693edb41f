package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

// generator is a consumer that fails once, then publishes n messages and
// waits: it checks restart-on-failure and the sink.
type generator struct {
	n     int
	runs  atomic.Int32
	acked atomic.Int32
}

func (g *generator) Run(ctx context.Context, sink sdk.Sink) error {
	if g.runs.Add(1) == 1 {
		return errors.New("source not reachable yet")
	}
	for i := range g.n {
		if err := sink.Publish(ctx, []sdk.Message{{ID: fmt.Sprintf("gen-%d", i), Body: []byte("g")}}); err != nil {
			return err
		}
		g.acked.Add(1) // only now may a real consumer ack its source
	}
	<-ctx.Done()
	return nil
}

func TestConsumerConnectorRunsUnderLeaseAndRestartsAfterFailure(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	rec := newRecorder()
	gen := &generator{n: 5}
	catalog := sdk.NewCatalog(
		sdk.Connector{Name: "gen", Kind: sdk.KindConsumer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return gen, nil }},
		sdk.Connector{Name: "rec", Kind: sdk.KindProducer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return rec, nil }},
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Runner{JS: js, Catalog: catalog, Name: "r1", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}).Run(ctx)
	}()
	state, err := dataplane.OpenState(context.Background(), js)
	require.NoError(t, err)
	require.NoError(t, state.PutDesired(context.Background(), dataplane.Desired{Tenant: "t1", Integration: "gen", Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: "gen", Consumer: spec.Step{Connector: "gen"}, Producers: map[string]spec.Step{"out": {Connector: "rec"}}}}))
	require.Eventually(t, func() bool { return rec.delivered() == 5 }, 15*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 2, gen.runs.Load(), "restarted once after failing")
	require.EqualValues(t, 5, gen.acked.Load())
	cancel()
	require.NoError(t, <-done)
}
