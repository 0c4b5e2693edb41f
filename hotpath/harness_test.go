package hotpath

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/natsauth"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

// recorder is a producer that remembers every message it was given and can
// be told to fail.
type recorder struct {
	mu       sync.Mutex
	got      map[string][]byte // ID → body
	count    map[string]int    // ID → deliveries
	attempts map[string][]time.Time
	failWith func(sdk.Message) error
	closed   int
	// batchBytes holds the body bytes of each Write.
	batchBytes []int
	// streamed holds the IDs written with WriteStream, in order.
	streamed []string
}

// streamingRecorder is a recorder that also takes bodies as streams.
type streamingRecorder struct{ *recorder }

func (streamingRecorder) CanStream(sdk.Message) bool { return true }

func (r streamingRecorder) WriteStream(ctx context.Context, m sdk.Message, body io.Reader, size int64) error {
	if m.Body != nil {
		return errors.New("a streamed message has no Body")
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("streamed %d bytes, announced %d", len(b), size)
	}
	m.Body = b
	if err := r.Write(ctx, []sdk.Message{m}); err != nil {
		return err
	}
	r.mu.Lock()
	r.streamed = append(r.streamed, m.ID)
	r.mu.Unlock()
	return nil
}

func newRecorder() *recorder {
	return &recorder{got: map[string][]byte{}, count: map[string]int{}, attempts: map[string][]time.Time{}}
}

func (r *recorder) Write(_ context.Context, batch []sdk.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	failed := map[int]error{}
	size := 0
	for _, m := range batch {
		size += len(m.Body)
	}
	r.batchBytes = append(r.batchBytes, size)
	for i, m := range batch {
		r.attempts[m.ID] = append(r.attempts[m.ID], time.Now())
		if r.failWith != nil {
			if err := r.failWith(m); err != nil {
				failed[i] = err
				continue
			}
		}
		r.got[m.ID] = m.Body
		r.count[m.ID]++
	}
	if len(failed) > 0 {
		return &sdk.BatchError{Failed: failed}
	}
	return nil
}

func (r *recorder) Close(context.Context) error { r.mu.Lock(); r.closed++; r.mu.Unlock(); return nil }

func (r *recorder) setFail(f func(sdk.Message) error) { r.mu.Lock(); r.failWith = f; r.mu.Unlock() }

// failID is a setFail function failing the message id with err and
// writing every other.
func failID(id string, err error) func(sdk.Message) error {
	return func(m sdk.Message) error {
		if m.ID == id {
			return err
		}
		return nil
	}
}

func (r *recorder) delivered() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func (r *recorder) body(id string) []byte { r.mu.Lock(); defer r.mu.Unlock(); return r.got[id] }

func (r *recorder) attemptTimes(id string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.attempts[id]...)
}

// retiringSource is a consumer that takes nothing in and counts how often
// it was retired.
type retiringSource struct{ retired *atomic.Int64 }

func (retiringSource) Run(ctx context.Context, _ sdk.Sink) error { <-ctx.Done(); return ctx.Err() }

func (s retiringSource) Retire(context.Context) error { s.retired.Add(1); return nil }

// upper is a converter that upper-cases the body; "poison" bodies fail
// permanently and "flaky" ones retryably.
type upper struct{}

func (upper) Convert(_ context.Context, m sdk.Message) (sdk.Message, error) {
	switch string(m.Body) {
	case "poison":
		return m, sdk.Permanentf("cannot convert poison")
	case "flaky":
		return m, errors.New("converter hiccup")
	}
	m.Body = []byte(strings.ToUpper(string(m.Body)))
	return m, nil
}

// exclaim is a converter that appends "!" to the body: running it twice on
// one message shows.
type exclaim struct{}

func (exclaim) Convert(_ context.Context, m sdk.Message) (sdk.Message, error) {
	m.Body = append(m.Body[:len(m.Body):len(m.Body)], '!')
	return m, nil
}

// headerRouter drops messages with header drop=yes and routes by header to.
type headerRouter struct{}

func (headerRouter) Filter(_ context.Context, m sdk.Message) (sdk.Decision, error) {
	if m.Header("drop") == "yes" {
		return sdk.Decision{Drop: true}, nil
	}
	if to := m.Header("to"); to != "" {
		return sdk.Decision{Routes: strings.Split(to, ",")}, nil
	}
	return sdk.Decision{}, nil
}

// harness runs a runner against private NATS and S3 with test connectors.
// NATS runs in operator mode: the runner's own state is in the platform
// account, the tenant's streams in the tenant's account.
type harness struct {
	t testing.TB
	// js is the tenant's JetStream.
	js        jetstream.JetStream
	state     *dataplane.State
	store     *blobstore.Store
	pub       *dataplane.Publisher
	producers map[string]*recorder
	tenant    string
	// retired counts Retire calls of retiring-source consumers.
	retired atomic.Int64
	cancel  context.CancelFunc
	done    chan error
	// runner makes another runner like the harness's, on the same NATS,
	// connectors and blob store.
	runner func(name string) *Runner
	// platformJS is the platform account's JetStream.
	platformJS jetstream.JetStream
}

func newHarness(t testing.TB, producerNames ...string) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOptions{}, producerNames...)
}

// harnessOptions change what newHarnessWith starts.
type harnessOptions struct {
	// connectors are added to the test catalog.
	connectors []sdk.Connector
	// buildTimeout is the runner's BuildTimeout.
	buildTimeout time.Duration
	// infraBackoff is the runner's InfraBackoff.
	infraBackoff func(int) time.Duration
	// store replaces the private S3 store given to the runner and the
	// publisher (the harness's store field stays the direct one).
	store func(direct blobstore.Config) *blobstore.Store
	// configure changes each runner the harness makes before it runs.
	configure func(*Runner)
}

func newHarnessWith(t testing.TB, opts harnessOptions, producerNames ...string) *harness {
	t.Helper()
	tenant := "t" + testenv.RandomID(4)
	accounts, platformJS := tenantAccounts(t, tenant)
	js, err := accounts.JetStream(context.Background(), tenant)
	require.NoError(t, err)
	store, storeCfg := testenv.S3(t)
	runnerStore := store
	if opts.store != nil {
		runnerStore = opts.store(storeCfg)
	}
	h := &harness{t: t, js: js, store: store, producers: map[string]*recorder{}, tenant: tenant}
	var conns []sdk.Connector
	for _, name := range producerNames {
		rec := newRecorder()
		h.producers[name] = rec
		var prod sdk.Producer = rec
		if strings.HasPrefix(name, "stream-") {
			prod = streamingRecorder{rec}
		}
		conns = append(conns, sdk.Connector{Name: "rec-" + name, Kind: sdk.KindProducer,
			Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return prod, nil }})
	}
	conns = append(conns,
		sdk.Connector{Name: "retiring-source", Kind: sdk.KindConsumer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) {
			return retiringSource{retired: &h.retired}, nil
		}},
		sdk.Connector{Name: "upper", Kind: sdk.KindConverter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return upper{}, nil }},
		sdk.Connector{Name: "exclaim", Kind: sdk.KindConverter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return exclaim{}, nil }},
		sdk.Connector{Name: "header-router", Kind: sdk.KindFilter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return headerRouter{}, nil }},
	)
	conns = append(conns, ingressStub)
	conns = append(conns, opts.connectors...)
	claims := &dataplane.ClaimCheck{Store: runnerStore, Threshold: 64 << 10}
	ctx, cancel := context.WithCancel(context.Background())
	state, err := dataplane.OpenState(ctx, platformJS)
	require.NoError(t, err)
	h.state, h.cancel, h.done = state, cancel, make(chan error, 1)
	h.pub = &dataplane.Publisher{Accounts: accounts, Claims: &dataplane.ClaimCheck{Store: store, Threshold: claims.Threshold}}
	catalog := sdk.NewCatalog(conns...)
	h.platformJS = platformJS
	h.runner = func(name string) *Runner {
		r := &Runner{
			JS: platformJS, Accounts: accounts, Catalog: catalog, Claims: claims, Name: name,
			Logger:       slog.New(slog.NewJSONHandler(io.Discard, nil)),
			Backoff:      func(n int) time.Duration { return 100 * time.Millisecond << (n - 1) },
			InfraBackoff: opts.infraBackoff,
			BuildTimeout: opts.buildTimeout,
		}
		if opts.configure != nil {
			opts.configure(r)
		}
		return r
	}
	runner := h.runner("test-runner")
	go func() { h.done <- runner.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// tenantAccounts starts NATS in operator mode with tenant's account and
// returns the tenant accounts and the platform account's JetStream.
func tenantAccounts(t testing.TB, tenant string) (*natsauth.Pool, jetstream.JetStream) {
	t.Helper()
	url, keys := testenv.NATSWithAccounts(t)
	sys, err := keys.SystemUser("test")
	require.NoError(t, err)
	_, err = natsauth.NewAdmin(keys, testenv.Connect(t, url, sys)).PutTenant(context.Background(), tenant, natsauth.DefaultLimits)
	require.NoError(t, err)
	platform, err := keys.PlatformUser("test")
	require.NoError(t, err)
	platformJS, err := jetstream.New(testenv.Connect(t, url, platform))
	require.NoError(t, err)
	pool := natsauth.NewPool(url, keys, "test")
	t.Cleanup(pool.Close)
	return pool, platformJS
}

func (h *harness) stop() {
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(20 * time.Second):
		h.t.Error("runner did not stop")
	}
}

// deploy writes desired state for an integration through the given steps
// to the named recorder producers, and waits until it is running.
func (h *harness) deploy(name string, steps []string, producers ...string) dataplane.Pipeline {
	h.t.Helper()
	in := spec.Integration{Name: name, Consumer: spec.Step{Connector: dataplane.WebhookConnector}, Producers: map[string]spec.Step{}}
	for _, s := range steps {
		in.Steps = append(in.Steps, spec.Step{Connector: s})
	}
	for _, p := range producers {
		in.Producers[p] = spec.Step{Connector: "rec-" + p}
	}
	d := dataplane.Desired{Tenant: h.tenant, Integration: name, Version: 1, Status: dataplane.DesiredRunning, Spec: in}
	require.NoError(h.t, h.state.PutDesired(context.Background(), d))
	h.waitStatus(d.Pipeline(), dataplane.StatusRunning)
	return d.Pipeline()
}

func (h *harness) waitStatus(p dataplane.Pipeline, want string) dataplane.Status {
	h.t.Helper()
	var st dataplane.Status
	require.Eventually(h.t, func() bool {
		var ok bool
		st, ok, _ = h.state.GetStatus(context.Background(), p)
		return ok && st.Status == want
	}, 15*time.Second, 20*time.Millisecond, "pipeline %s never reached %s (last: %+v)", p, want, st)
	return st
}

func (h *harness) send(p dataplane.Pipeline, msgs ...sdk.Message) {
	h.t.Helper()
	for i := range msgs {
		msgs[i].Tenant, msgs[i].Integration = p.Tenant, p.Integration
		if msgs[i].Received.IsZero() {
			msgs[i].Received = time.Now()
		}
	}
	require.NoError(h.t, h.pub.Publish(context.Background(), p, msgs))
}

// dlq returns the dead letters of the harness's tenant.
func (h *harness) dlq() []jetstream.RawStreamMsg {
	h.t.Helper()
	ctx := context.Background()
	stream, err := h.js.Stream(ctx, dataplane.DLQStream(h.tenant))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	require.NoError(h.t, err)
	info, err := stream.Info(ctx)
	require.NoError(h.t, err)
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		if err == nil {
			out = append(out, *m)
		}
	}
	return out
}

// pendingIn reports messages still in the pipeline's stream.
func (h *harness) streamMsgs(p dataplane.Pipeline) uint64 {
	info, err := h.js.Stream(context.Background(), p.Stream())
	require.NoError(h.t, err)
	i, err := info.Info(context.Background())
	require.NoError(h.t, err)
	return i.State.Msgs
}

type specStep = spec.Step

// runnerShares returns how many pipelines each registered runner says it
// runs.
func (h *harness) runnerShares(t *testing.T) map[string]int {
	t.Helper()
	infos, err := ListRunners(context.Background(), h.platformJS)
	require.NoError(t, err)
	out := map[string]int{}
	for _, in := range infos {
		out[in.Name] = in.Pipelines
	}
	return out
}
