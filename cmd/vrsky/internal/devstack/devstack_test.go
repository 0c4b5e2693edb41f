package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/control/wire"
	"github.com/vrsky/vrsky/internal/natscluster"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/workflows"
)

func testConfig(dir string) Config {
	return Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", PostgresPort: 0, Version: "test",
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
}

func startStack(t *testing.T, cfg Config) *Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

func readyz(t *testing.T, ep Endpoints) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + ep.HTTP + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

// TestDevStackStartsReadyStopsAndResumesState is the newcomer's path: start,
// everything reports up, state is written to every store, stop, start again
// on the same directory, and the state is all still there.
func TestDevStackStartsReadyStopsAndResumesState(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s := startStack(t, testConfig(dir))
	ep := s.Endpoints()
	onDisk, err := ReadEndpoints(dir)
	require.NoError(t, err)
	require.Equal(t, ep, onDisk)
	require.Regexp(t, `^nats://127\.0\.0\.1:\d+$`, ep.NATS)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+$`, ep.S3)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+$`, ep.TemporalUI)
	require.Regexp(t, `^postgres://`, ep.Postgres)
	require.True(t, ep.Runner, "the stack runs its own runner")

	code, body := readyz(t, ep)
	require.Equal(t, http.StatusOK, code, body)
	// The key ring of tenant secrets is made on first start, private.
	info, err := os.Stat(filepath.Join(dir, SecretsKeyFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	firstRing, err := os.ReadFile(filepath.Join(dir, SecretsKeyFile))
	require.NoError(t, err)
	deps := body["dependencies"].(map[string]any)
	for _, name := range []string{"postgres", "nats", "temporal", "s3"} {
		require.Equal(t, "up", deps[name].(map[string]any)["status"], name)
	}
	resp, err := http.Get(ep.TemporalUI + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "Temporal Web UI answers")

	// A second stack on the same directory refuses.
	_, err = Start(ctx, testConfig(dir))
	require.ErrorContains(t, err, "already running on data directory")

	// Leave state in every store.
	pg, err := pgx.Connect(ctx, ep.Postgres)
	require.NoError(t, err)
	_, err = pg.Exec(ctx, `INSERT INTO tenants (id, name) VALUES ('t-keep', 'Keep')`)
	require.NoError(t, err)
	require.NoError(t, pg.Close(ctx))

	nc, err := nats.Connect(ep.NATS, ep.NATSOptions()...)
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep"}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, "keep", []byte("m1"))
	require.NoError(t, err)
	nc.Close()

	store, err := blobstore.New(blobstore.Config{Endpoint: ep.S3[len("http://"):], AccessKey: s3AccessKey, SecretKey: s3SecretKey, Bucket: Bucket})
	require.NoError(t, err)
	require.NoError(t, store.Put(ctx, "claims/t-keep/obj", bytes.NewReader([]byte("blob")), 4, ""))

	tc, err := client.Dial(client.Options{HostPort: ep.Temporal})
	require.NoError(t, err)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "janitor-once", TaskQueue: wire.ControlTaskQueue},
		workflows.BlobJanitor, wire.BlobJanitorInput{})
	require.NoError(t, err)
	var res workflows.BlobJanitorResult
	require.NoError(t, run.Get(ctx, &res), "the control-plane worker runs workflows")
	require.Zero(t, res.Removed, "fresh claim-check objects are kept")
	tc.Close()

	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, s.Shutdown(ctx), "idempotent")
	_, err = http.Get("http://" + ep.HTTP + "/healthz")
	require.Error(t, err, "nothing serves after shutdown")

	// Start again: everything is where it was.
	s = startStack(t, testConfig(dir))
	ep = s.Endpoints()
	code, _ = readyz(t, ep)
	require.Equal(t, http.StatusOK, code)
	ring, err := os.ReadFile(filepath.Join(dir, SecretsKeyFile))
	require.NoError(t, err)
	require.Equal(t, firstRing, ring, "the key ring survives a restart")

	pg, err = pgx.Connect(ctx, ep.Postgres)
	require.NoError(t, err)
	var name string
	require.NoError(t, pg.QueryRow(ctx, `SELECT name FROM tenants WHERE id = 't-keep'`).Scan(&name))
	require.Equal(t, "Keep", name)
	require.NoError(t, pg.Close(ctx))

	nc, err = nats.Connect(ep.NATS, ep.NATSOptions()...)
	require.NoError(t, err)
	defer nc.Close()
	js, err = jetstream.New(nc)
	require.NoError(t, err)
	stream, err := js.Stream(ctx, "KEEP")
	require.NoError(t, err)
	msg, err := stream.GetLastMsgForSubject(ctx, "keep")
	require.NoError(t, err)
	require.Equal(t, "m1", string(msg.Data))

	store, err = blobstore.New(blobstore.Config{Endpoint: ep.S3[len("http://"):], AccessKey: s3AccessKey, SecretKey: s3SecretKey, Bucket: Bucket})
	require.NoError(t, err)
	size, err := store.Stat(ctx, "claims/t-keep/obj")
	require.NoError(t, err)
	require.EqualValues(t, 4, size)

	tc, err = client.Dial(client.Options{HostPort: ep.Temporal})
	require.NoError(t, err)
	defer tc.Close()
	desc, err := tc.DescribeWorkflowExecution(ctx, "janitor-once", "")
	require.NoError(t, err, "Temporal history survives the restart")
	require.Equal(t, "Completed", desc.WorkflowExecutionInfo.Status.String())
	_, err = tc.ScheduleClient().GetHandle(ctx, wire.BlobJanitorScheduleID).Describe(ctx)
	require.NoError(t, err, "the janitor schedule exists")
}

func TestReadyzReportsADownDependency(t *testing.T) {
	dir := t.TempDir()
	s := startStack(t, testConfig(dir))
	ep := s.Endpoints()
	// Stop S3 alone: /readyz must turn 503 and name it.
	require.NoError(t, stopPart(s, "s3"))
	code, body := readyz(t, ep)
	require.Equal(t, http.StatusServiceUnavailable, code)
	deps := body["dependencies"].(map[string]any)
	require.Equal(t, "down", deps["s3"].(map[string]any)["status"])
	require.Equal(t, "up", deps["nats"].(map[string]any)["status"])
}

func TestStartFailsCleanlyWhenAPortIsTaken(t *testing.T) {
	first := startStack(t, testConfig(t.TempDir()))
	cfg := testConfig(t.TempDir())
	cfg.HTTPAddr = first.Endpoints().HTTP
	_, err := Start(context.Background(), cfg)
	require.ErrorContains(t, err, "listen for HTTP")
	// The failed start released its directory: a new start there works.
	cfg.HTTPAddr = "127.0.0.1:0"
	startStack(t, cfg)
}

func TestReadEndpointsErrors(t *testing.T) {
	_, err := ReadEndpoints(t.TempDir())
	require.ErrorContains(t, err, "is vrsky dev running?")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, EndpointsFile), []byte("{"), 0o600))
	_, err = ReadEndpoints(dir)
	require.Error(t, err)
}

// stopPart stops one named part of a running stack, as a crash would.
func stopPart(s *Stack, name string) error {
	for _, part := range s.stops {
		if part.name == name {
			return part.stop(context.Background())
		}
	}
	return os.ErrNotExist
}

// TestOwnConnectionsPingTheEmbeddedServerSeldom: connections to the
// standalone server the stack runs ping it at nats.go's default interval;
// those to an external server or cluster keep every role's quick pings.
func TestOwnConnectionsPingTheEmbeddedServerSeldom(t *testing.T) {
	applied := func(s *Stack) time.Duration {
		o := nats.GetDefaultOptions()
		for _, opt := range append(natscluster.ClientOptions("test"), s.natsClientOptions()...) {
			require.NoError(t, opt(&o))
		}
		return o.PingInterval
	}
	require.Equal(t, nats.DefaultPingInterval, applied(&Stack{natsServer: &natsserver.Server{}}))
	require.Equal(t, natscluster.PingInterval, applied(&Stack{}))
}
