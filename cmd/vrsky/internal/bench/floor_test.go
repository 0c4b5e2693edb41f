package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

func TestFloorDeliversEveryMessageThroughAFsyncedFileAndCleansUp(t *testing.T) {
	url := testenv.NATS(t)
	dir := t.TempDir()
	sched := Schedule{T0: time.Now().Add(startDelay), Rate: 400, Warmup: 40, Measured: 200}
	res, err := Floor(context.Background(), FloorConfig{URL: url, StackPID: os.Getpid(), Replicas: 1, Dir: dir, Sched: sched, Size: 512, Workers: 8})
	require.NoError(t, err)
	require.Equal(t, int64(200), res.Delivered, "every measured message reaches the file")
	require.Zero(t, res.Lost)
	require.Zero(t, res.Errors)
	require.Positive(t, res.P50)
	require.GreaterOrEqual(t, res.P99, res.P50)
	require.GreaterOrEqual(t, res.P999, res.P99)
	require.Positive(t, res.AckP99)
	require.InDelta(t, 400, res.Rate, 100)
	require.Positive(t, res.CPUPerMessage)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "the floor's sink directory is removed")
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	names := js.StreamNames(context.Background())
	for name := range names.Name() {
		t.Errorf("stream %s left behind", name)
	}
	require.NoError(t, names.Err())
}

func TestFloorFailsClearly(t *testing.T) {
	sched := Schedule{T0: time.Now(), Rate: 100, Measured: 10}
	_, err := Floor(context.Background(), FloorConfig{URL: "nats://127.0.0.1:1", Dir: t.TempDir(), Sched: sched, Size: 512})
	require.ErrorContains(t, err, "floor: connect to nats")

	url := testenv.NATS(t)
	blocked := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(blocked, nil, 0o600))
	_, err = Floor(context.Background(), FloorConfig{URL: url, Dir: blocked, Sched: sched, Size: 512})
	require.ErrorContains(t, err, "floor:", "its directory cannot be made under a file")

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	long := Schedule{T0: time.Now(), Rate: 100, Measured: 100_000}
	_, err = Floor(ctx, FloorConfig{URL: url, StackPID: os.Getpid(), Dir: t.TempDir(), Sched: long, Size: 512})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestTheFloorsWriterAcknowledgesOnlyWhatItWrote: a write that fails
// leaves the batch unacknowledged, so JetStream redelivers it.
func TestTheFloorsWriterAcknowledgesOnlyWhatItWrote(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), floorFile))
	require.NoError(t, err)
	require.NoError(t, file.Close())
	received := make(chan jetstream.Msg, 1)
	m := &ackCounter{data: []byte(`{"seq":1}`)}
	received <- m
	err = writeFloor(context.Background(), file, received, true)
	require.ErrorContains(t, err, "write sink file")
	require.Zero(t, m.acks)
}

type ackCounter struct {
	jetstream.Msg
	data []byte
	acks int
}

func (m *ackCounter) Data() []byte { return m.data }
func (m *ackCounter) Ack() error   { m.acks++; return nil }

// TestTheFloorsIngressAnswers202OnlyForAStoredMessage: the floor's
// webhook answers 202 once JetStream stored the body, 503 when the publish
// fails, 413 for a body over its bound, 400 for one it cannot read, and
// stores nothing then.
func TestTheFloorsIngressAnswers202OnlyForAStoredMessage(t *testing.T) {
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FLOORIN", Subjects: []string{"floorin"}})
	require.NoError(t, err)
	post := func(h http.Handler, body []byte) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
		return w.Code
	}

	require.Equal(t, http.StatusAccepted, post(floorIngress(js, "floorin"), []byte(`{"seq":1}`)))
	msg, err := stream.GetMsg(ctx, 1)
	require.NoError(t, err)
	require.JSONEq(t, `{"seq":1}`, string(msg.Data))

	require.Equal(t, http.StatusServiceUnavailable, post(floorIngress(js, "nostream"), []byte(`{"seq":2}`)))
	require.Equal(t, http.StatusRequestEntityTooLarge, post(floorIngress(js, "floorin"), make([]byte, floorMaxBody+1)))
	broken := httptest.NewRecorder()
	floorIngress(js, "floorin").ServeHTTP(broken, httptest.NewRequest(http.MethodPost, "/", iotest.ErrReader(errors.New("connection reset"))))
	require.Equal(t, http.StatusBadRequest, broken.Code, "a body that cannot be read")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs, "only the accepted body is stored")
}

func TestTheFloorIsReportedBesideTheStep(t *testing.T) {
	rep := Report{Scenario: ScenarioPipeline, P99: 12, Sent: 10_000, Delivered: 9_000, Durability: Durability,
		StackCPUSeconds: 1.5, LoadgenCPUSeconds: 0.5}
	rep.setFloor(FloorResult{P50: 1, P99: 3, P999: 6, AckP99: 2, Delivered: 10_000, CPUPerMessage: 100})
	require.InDelta(t, 4, rep.P99VsFloor, 1e-9)
	require.InDelta(t, 2, rep.CPUVsFloor, 1e-9, "200 µs per message sent against 100")
	runnerCPU := 2.0
	split := rep
	split.RunnerCPUSeconds = &runnerCPU
	require.InDelta(t, 400, split.cpuPerMessage(), 1e-9, "a split runner's CPU counts too")
	require.Zero(t, (&Report{}).cpuPerMessage(), "nothing sent")
	var out bytes.Buffer
	require.NoError(t, rep.WriteSummary(&out))
	require.Contains(t, out.String(), "floor           the same load through a bare HTTP handler")
	require.Contains(t, out.String(), "p99 3.00 ms")
	require.Contains(t, out.String(), "100 CPU µs per message; pipeline p99 4.0× and CPU 2.0× the floor's")
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	var fields map[string]any
	require.NoError(t, json.Unmarshal(b, &fields))
	require.Equal(t, 4.0, fields["p99_vs_floor"])
	require.Equal(t, 2.0, fields["cpu_vs_floor"])
	require.Equal(t, 3.0, fields["floor"].(map[string]any)["p99_ms"])

	none := Report{Scenario: ScenarioPipeline, P99: 12}
	out.Reset()
	require.NoError(t, none.WriteSummary(&out))
	require.NotContains(t, out.String(), "floor")
	b, err = json.Marshal(none)
	require.NoError(t, err)
	require.NotContains(t, string(b), "floor")
}

func TestFloorAppliesToOneRateOfSingleMessages(t *testing.T) {
	for name, c := range map[string]struct {
		cfg  Config
		want bool
	}{
		"pipeline":    {Config{Scenario: ScenarioPipeline}, true},
		"claim-check": {Config{Scenario: ScenarioClaimCheck}, true},
		"find-max":    {Config{Scenario: ScenarioPipeline, FindMax: true}, false},
		"batches":     {Config{Scenario: ScenarioPipeline, Batch: 10}, false},
		"cdc":         {Config{Scenario: ScenarioCDC}, false},
	} {
		r := &runner{cfg: c.cfg}
		require.Equal(t, c.want, r.floorApplies(), name)
	}
}
