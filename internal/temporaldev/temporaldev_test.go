package temporaldev

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/log/tag"
)

const taskQueue = "temporaldev-test"

// Greet is the workflow the tests run: it asks an activity for a greeting.
func Greet(ctx workflow.Context, name string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	var greeting string
	err := workflow.ExecuteActivity(ctx, ComposeGreeting, name).Get(ctx, &greeting)
	return greeting, err
}

// ComposeGreeting is the activity Greet calls.
func ComposeGreeting(_ context.Context, name string) (string, error) {
	return "hello " + name, nil
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	began := time.Now()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s", time.Since(began))
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func dial(t *testing.T, s *Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: s.Namespace()})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddr(), err)
	}
	return c
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	began := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %s", time.Since(began))
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("Stop took %s, want a few seconds", took)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "data", "temporal.db")
	opts := Options{
		DBFile:       dbFile,
		FrontendAddr: "127.0.0.1:0",
		UIAddr:       "127.0.0.1:0",
		Logger:       testLogger(),
	}
	const workflowID = "greet-ada"

	s := startServer(t, opts)
	if got := s.Namespace(); got != DefaultNamespace {
		t.Errorf("Namespace() = %q, want %q", got, DefaultNamespace)
	}
	if _, port, err := net.SplitHostPort(s.FrontendAddr()); err != nil || port == "0" {
		t.Fatalf("FrontendAddr() = %q, want a host:port with a real port", s.FrontendAddr())
	}

	c := dial(t, s)
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflow(Greet)
	w.RegisterActivity(ComposeGreeting)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflowID, TaskQueue: taskQueue}, Greet, "Ada")
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var greeting string
	if err := run.Get(ctx, &greeting); err != nil {
		t.Fatalf("run workflow: %v", err)
	}
	if greeting != "hello Ada" {
		t.Fatalf("workflow result = %q, want %q", greeting, "hello Ada")
	}
	if _, err := os.Stat(dbFile + "-wal"); err != nil {
		t.Errorf("the database commits to a write-ahead log: %v", err)
	}

	t.Run("UI serves the web app", func(t *testing.T) {
		if !strings.HasPrefix(s.UIURL(), "http://127.0.0.1:") {
			t.Fatalf("UIURL() = %q, want http://127.0.0.1:<port>", s.UIURL())
		}
		resp, err := http.Get(s.UIURL() + "/")
		if err != nil {
			t.Fatalf("GET /: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / status = %s", resp.Status)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET / Content-Type = %q, want text/html", ct)
		}
		if !bytes.Contains(bytes.ToLower(body), []byte("<html")) {
			t.Errorf("GET / body is not an HTML page: %.200s", body)
		}
	})

	w.Stop()
	c.Close()
	stop(t, s)
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if resp, err := http.Get(s.UIURL() + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("UI still answers after Stop")
	}

	// Same file, no UI this time: the finished workflow must still be there.
	opts.UIAddr = ""
	s = startServer(t, opts)
	if s.UIURL() != "" {
		t.Errorf("UIURL() = %q without UIAddr, want empty", s.UIURL())
	}
	c = dial(t, s)
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		t.Fatalf("describe workflow after restart: %v", err)
	}
	if got := desc.GetWorkflowExecutionInfo().GetStatus(); got != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		t.Errorf("workflow status after restart = %s, want COMPLETED", got)
	}
	greeting = ""
	if err := c.GetWorkflow(ctx, workflowID, "").Get(ctx, &greeting); err != nil {
		t.Fatalf("get workflow result after restart: %v", err)
	}
	if greeting != "hello Ada" {
		t.Errorf("workflow result after restart = %q, want %q", greeting, "hello Ada")
	}
	c.Close()
	stop(t, s)
}

func TestStartRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	regularFile := filepath.Join(dir, "not-a-dir")
	if err := os.WriteFile(regularFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no database file", Options{}, "no database file"},
		{"database dir is a regular file", Options{DBFile: filepath.Join(regularFile, "temporal.db")}, "create directory for Temporal database"},
		{"database file is a directory", Options{DBFile: dir, FrontendAddr: "127.0.0.1:0"}, "is a directory"},
		{"frontend host is a name", Options{DBFile: filepath.Join(dir, "a.db"), FrontendAddr: "example.com:7233"}, "not an IP address"},
		{"frontend port out of range", Options{DBFile: filepath.Join(dir, "b.db"), FrontendAddr: "127.0.0.1:70000"}, "invalid port"},
		{"frontend without port", Options{DBFile: filepath.Join(dir, "c.db"), FrontendAddr: "127.0.0.1"}, "frontend address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.opts)
			if err == nil {
				_ = s.Stop()
				t.Fatalf("Start succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Start error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestStartUIFailsWhenAddressIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &Server{frontendAddr: "127.0.0.1:1", namespace: DefaultNamespace}
	err = s.startUI(context.Background(), ln.Addr().String())
	if err == nil || !strings.Contains(err.Error(), "start Temporal UI") {
		t.Fatalf("startUI on a taken address: err = %v, want a start Temporal UI error", err)
	}
	if s.ui != nil {
		t.Errorf("UI server was created although its address is taken")
	}
}

func TestServerLoggerPassesOnlyWarningsAndErrors(t *testing.T) {
	var buf bytes.Buffer
	logger := serverLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})).With("component", "temporal")}

	logger.Debug("debug line")
	logger.Info("info line", tag.NewStringTag("shard", "1"))
	logger.Warn("warn line", tag.NewStringTag("shard", "2"))
	logger.Error("error line")
	logger.DPanic("dpanic line")
	logger.Panic("panic line")
	logger.Fatal("fatal line")

	out := buf.String()
	for _, dropped := range []string{"debug line", "info line"} {
		if strings.Contains(out, dropped) {
			t.Errorf("log contains %q, want it dropped:\n%s", dropped, out)
		}
	}
	for _, kept := range []string{"level=WARN msg=\"warn line\" component=temporal shard=2", "error line", "dpanic line", "panic line", "fatal line"} {
		if !strings.Contains(out, kept) {
			t.Errorf("log lacks %q:\n%s", kept, out)
		}
	}
	if n := strings.Count(out, "level=ERROR"); n != 4 {
		t.Errorf("got %d ERROR lines, want 4 (error, dpanic, panic, fatal):\n%s", n, out)
	}
}

func TestServerLoggerIsSilencedByLevel(t *testing.T) {
	var buf bytes.Buffer
	level := new(slog.LevelVar)
	level.Set(quietLevel)
	logger := serverLogger{log: slog.New(slog.NewTextHandler(&buf, nil)), level: level}
	logger.Error("torn down")
	logger.Fatal("torn down")
	if buf.Len() != 0 {
		t.Errorf("silenced logger wrote:\n%s", buf.String())
	}
}

func TestMinLevelHandler(t *testing.T) {
	var buf bytes.Buffer
	h := minLevelHandler{Handler: slog.NewTextHandler(&buf, nil), min: slog.LevelWarn}
	logger := slog.New(h).With("a", 1).WithGroup("g")
	logger.Info("quiet")
	logger.Warn("loud", "b", 2)
	if out := buf.String(); strings.Contains(out, "quiet") || !strings.Contains(out, "loud") || !strings.Contains(out, "g.b=2") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

func TestPortsArePickedBelowTheEphemeralRange(t *testing.T) {
	ports, err := pickPorts("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range []int{ports.frontendGRPC, ports.frontendHTTP, ports.history, ports.matching, ports.worker} {
		if p < pickFrom || p >= pickTo || seen[p] {
			t.Fatalf("port %d: want distinct ports in [%d, %d)", p, pickFrom, pickTo)
		}
		seen[p] = true
	}
}
