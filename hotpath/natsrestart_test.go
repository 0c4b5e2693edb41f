package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
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

// TestNATSRestartUnderLoadLosesNothingAcked: while NATS is down, publishing
// fails with ErrUnavailable (the ingress turns it into 503); every message
// whose publish was acknowledged is delivered once NATS is back.
func TestNATSRestartUnderLoadLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a NATS server")
	}
	ctx := context.Background()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	ns, err := natsserver.Start(ctx, natsserver.Options{Addr: addr, StoreDir: dir})
	require.NoError(t, err)

	connect := func() (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect("nats://"+addr, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		require.NoError(t, err)
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		return nc, js
	}
	_, runnerJS := connect()
	_, pubJS := connect()
	rec := newRecorder()
	runCtx, cancel := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() {
		runDone <- (&Runner{JS: runnerJS, Name: "r", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Catalog: sdk.NewCatalog(ingressStub, sdk.Connector{Name: "rec", Kind: sdk.KindProducer,
				Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return rec, nil }})}).Run(runCtx)
	}()
	t.Cleanup(func() { cancel(); <-runDone; ns.Shutdown() })

	state, err := dataplane.OpenState(ctx, pubJS)
	require.NoError(t, err)
	p := dataplane.Pipeline{Tenant: "restart", Integration: "load"}
	require.NoError(t, state.PutDesired(ctx, dataplane.Desired{Tenant: p.Tenant, Integration: p.Integration, Version: 1, Status: dataplane.DesiredRunning,
		Spec: spec.Integration{Name: p.Integration, Consumer: spec.Step{Connector: dataplane.WebhookConnector}, Producers: map[string]spec.Step{"out": {Connector: "rec"}}}}))
	require.Eventually(t, func() bool {
		st, ok, _ := state.GetStatus(ctx, p)
		return ok && st.Status == dataplane.StatusRunning
	}, 10*time.Second, 20*time.Millisecond)

	pub := &dataplane.Publisher{Accounts: dataplane.SharedAccount{JS: pubJS}}
	var mu sync.Mutex
	acked, unavailable := map[string]bool{}, 0
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("n-%06d", i)
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err := pub.Publish(pctx, p, []sdk.Message{{ID: id, Body: []byte("x")}})
			cancel()
			mu.Lock()
			if err == nil {
				acked[id] = true
			} else if errors.Is(err, dataplane.ErrUnavailable) {
				unavailable++
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	ns.Shutdown()
	time.Sleep(500 * time.Millisecond)
	ns, err = natsserver.Start(ctx, natsserver.Options{Addr: addr, StoreDir: dir})
	require.NoError(t, err)
	time.Sleep(time.Second)
	close(stop)
	<-sent

	mu.Lock()
	defer mu.Unlock()
	require.Greater(t, unavailable, 0, "publishing failed while NATS was down")
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for id := range acked {
			if rec.count[id] == 0 {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "every acknowledged message is delivered after the restart")
	t.Logf("acked %d, refused while down %d", len(acked), unavailable)
}
