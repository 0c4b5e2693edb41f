package hotpath

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/spec"
)

// TestMain lets a test start this binary as a separate runner process that
// it can kill -9.
func TestMain(m *testing.M) {
	if url := os.Getenv("VRSKY_TEST_CHILD_RUNNER_NATS"); url != "" {
		os.Exit(childRunner(url, os.Getenv("VRSKY_TEST_CHILD_RUNNER_SINK")))
	}
	os.Exit(m.Run())
}

// idFile is a producer that appends message IDs to a file and fsyncs before
// returning: a durable sink whose content the test can count.
type idFile struct {
	mu sync.Mutex
	f  *os.File
}

func (p *idFile) Write(_ context.Context, batch []sdk.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, m := range batch {
		b.WriteString(m.ID)
		b.WriteByte('\n')
	}
	if _, err := p.f.WriteString(b.String()); err != nil {
		return err
	}
	return p.f.Sync()
}

func (p *idFile) Close(context.Context) error { return nil }

func childRunner(natsURL, sinkPath string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	js, _ := jetstream.New(nc)
	f, err := os.OpenFile(sinkPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sink := &idFile{f: f}
	r := &Runner{JS: js, Name: "child", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Catalog: sdk.NewCatalog(ingressStub,
			sdk.Connector{Name: "id-file", Kind: sdk.KindProducer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return sink, nil }},
			sdk.Connector{Name: "upper", Kind: sdk.KindConverter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return upper{}, nil }},
		)}
	if err := r.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChildRunner(t *testing.T, natsURL, sinkPath string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VRSKY_TEST_CHILD_RUNNER_NATS="+natsURL, "VRSKY_TEST_CHILD_RUNNER_SINK="+sinkPath)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd
}

func countIDs(t *testing.T, path string) map[string]int {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return map[string]int{}
	}
	require.NoError(t, err)
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" {
			seen[line]++
		}
	}
	return seen
}

// TestRunnerKilledMidStreamLosesNothing: a runner process is killed with
// SIGKILL while messages stream at a few thousand per second; after a new
// runner starts, every message acknowledged to the sender has been
// delivered. Duplicates are possible (a batch written but not yet acked) and
// are counted.
func TestRunnerKilledMidStreamLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts runner processes")
	}
	ctx := context.Background()
	ns, err := natsserver.Start(ctx, natsserver.Options{StoreDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	state, err := dataplane.OpenState(ctx, js)
	require.NoError(t, err)

	p := dataplane.Pipeline{Tenant: "crash", Integration: "stream"}
	require.NoError(t, state.PutDesired(ctx, dataplane.Desired{Tenant: p.Tenant, Integration: p.Integration, Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: p.Integration, Consumer: spec.Step{Connector: dataplane.WebhookConnector},
			Steps: []spec.Step{{Connector: "upper"}}, Producers: map[string]spec.Step{"sink": {Connector: "id-file"}}}}))
	sinkPath := filepath.Join(t.TempDir(), "sink.ids")
	first := startChildRunner(t, ns.ClientURL(), sinkPath)
	require.Eventually(t, func() bool {
		st, ok, _ := state.GetStatus(ctx, p)
		return ok && st.Status == dataplane.StatusRunning
	}, 20*time.Second, 20*time.Millisecond)

	// Send 3,000 messages/s for 3 s; kill the runner after 1 s.
	pub := &dataplane.Publisher{Accounts: dataplane.SharedAccount{JS: js}}
	const total = 9000
	acked := make(map[string]bool, total)
	var ackMu sync.Mutex
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < total; i += 30 {
			<-tick.C
			batch := make([]sdk.Message, 0, 30)
			for j := i; j < i+30; j++ {
				batch = append(batch, sdk.Message{ID: fmt.Sprintf("m-%05d", j), Body: []byte("x"), Received: time.Now()})
			}
			if pub.Publish(ctx, p, batch) == nil {
				ackMu.Lock()
				for _, m := range batch {
					acked[m.ID] = true
				}
				ackMu.Unlock()
			}
		}
	}()
	time.Sleep(time.Second)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_, _ = first.Process.Wait()
	deliveredAtKill := len(countIDs(t, sinkPath))
	require.Greater(t, deliveredAtKill, 0, "the first runner delivered some before it died")
	require.Less(t, deliveredAtKill, total, "the kill happened mid-stream")

	startChildRunner(t, ns.ClientURL(), sinkPath)
	<-sendDone
	ackMu.Lock()
	defer ackMu.Unlock()
	require.Len(t, acked, total, "every publish was acknowledged")
	var seen map[string]int
	require.Eventually(t, func() bool {
		seen = countIDs(t, sinkPath)
		return len(seen) >= len(acked)
	}, 60*time.Second, 100*time.Millisecond, "after the restart everything arrives")
	lost, dups := 0, 0
	for id := range acked {
		if seen[id] == 0 {
			lost++
		}
		dups += max(seen[id]-1, 0)
	}
	require.Zero(t, lost)
	require.LessOrEqual(t, dups, maxAckPending, "duplicates are bounded by what was in flight")
	t.Logf("killed after %d of %d delivered; lost %d, duplicates %d", deliveredAtKill, total, lost, dups)
}
