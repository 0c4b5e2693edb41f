package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/natsserver"
	"github.com/vrsky/vrsky/internal/provision"
)

// childEnv, set in a child of the test binary, says what the child is:
// "serve" runs a NATS server from the configuration file in childConfEnv,
// as `vrsky nats-server -c FILE` does; "exit" fails at once with a
// message; "hang" runs and serves nothing; "stubborn" also ignores
// SIGTERM; "provisioner" (Linux) starts an instance and waits.
const (
	childEnv     = "VRSKY_TEST_LOCAL_CHILD"
	childConfEnv = "VRSKY_TEST_LOCAL_CONFIG"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := natsserver.RunConfigFile(ctx, os.Getenv(childConfEnv))
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	case "exit":
		fmt.Fprintln(os.Stderr, "boom: this server cannot start")
		os.Exit(3)
	case "provisioner":
		runProvisioner(os.Getenv(childConfEnv))
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Minute)
		os.Exit(0)
	case "hang":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		<-ctx.Done()
		stop()
		os.Exit(0)
	}
}

// child is a Command running this test binary as the child kind.
func child(kind string) func(string) *exec.Cmd {
	return func(conf string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+kind, childConfEnv+"="+conf)
		return cmd
	}
}

func newProvisioner(t *testing.T) *Provisioner {
	t.Helper()
	p := &Provisioner{
		Dir:         t.TempDir(),
		Command:     child("serve"),
		StopTimeout: 5 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
	t.Cleanup(p.Close)
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, in dataplane.Instance) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(strings.Join(in.URLs, ","), nats.UserInfo(in.User, in.Password), nats.Timeout(2*time.Second))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// storeOrders creates the ORDERS stream (file storage) and publishes n
// messages.
func storeOrders(ctx context.Context, t *testing.T, nc *nats.Conn, n int) {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	for i := range n {
		ack, err := js.Publish(ctx, "orders.new", fmt.Appendf(nil, "order-%d", i))
		require.NoError(t, err)
		require.Equal(t, "ORDERS", ack.Stream)
	}
}

// readOrders reads every message of ORDERS in order.
func readOrders(ctx context.Context, t *testing.T, nc *nats.Conn) []string {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	var got []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		require.NoError(t, err)
		got = append(got, string(m.Data))
	}
	return got
}

func port(t *testing.T, rawURL string) int {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return p
}

func TestEnsureStartsAnInstanceThatServesJetStreamToItsUserOnly(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)

	in, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.NoError(t, in.Validate())
	require.Len(t, in.URLs, 1)
	require.True(t, strings.HasPrefix(in.URLs[0], "nats://127.0.0.1:"), in.URLs[0])
	require.True(t, strings.HasPrefix(in.Monitor, "http://127.0.0.1:"), in.Monitor)
	require.Equal(t, "vrsky", in.User)
	require.Regexp(t, `^[0-9a-f]{64}$`, in.Password)

	nc := connect(t, in)
	storeOrders(ctx, t, nc, 3)
	require.Equal(t, []string{"order-0", "order-1", "order-2"}, readOrders(ctx, t, nc))

	for name, opt := range map[string]nats.Option{
		"wrong password": nats.UserInfo(in.User, strings.Repeat("0", 64)),
		"wrong user":     nats.UserInfo("admin", in.Password),
		"no credentials": func(*nats.Options) error { return nil },
	} {
		_, err := nats.Connect(in.URLs[0], opt, nats.Timeout(2*time.Second))
		require.ErrorIs(t, err, nats.ErrAuthorization, name)
	}

	again, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, in, again, "a second Ensure returns the running instance as it is")
	require.NoError(t, p.Check(ctx, "acme"))

	dir := filepath.Join(p.Dir, "acme")
	for _, f := range []string{stateFile, configFile} {
		info, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), f)
	}
	_, err = os.Stat(filepath.Join(dir, storeDir, "jetstream"))
	require.NoError(t, err, "JetStream stores in the tenant's directory")
}

// TestConfigurationLoadsInNATSServersParser renders a configuration and
// reads it back with nats-server's own parser.
func TestConfigurationLoadsInNATSServersParser(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space", "acme")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	st, err := newState()
	require.NoError(t, err)
	cfg := serverConfig{
		Tenant: "acme", Host: "127.0.0.1", Port: 14222, MonitorPort: 18222, Password: st.Password,
		Dir: dir, MaxStorage: 3 << 30, MaxMemory: 5 << 20,
	}
	file := filepath.Join(dir, configFile)
	require.NoError(t, os.WriteFile(file, []byte(cfg.render()), 0o600))

	opts, err := server.ProcessConfigFile(file)
	require.NoError(t, err)
	require.Equal(t, "vrsky-acme", opts.ServerName)
	require.Equal(t, "127.0.0.1", opts.Host)
	require.Equal(t, 14222, opts.Port)
	require.Equal(t, "127.0.0.1", opts.HTTPHost)
	require.Equal(t, 18222, opts.HTTPPort)
	require.Equal(t, "vrsky", opts.Username)
	require.Equal(t, st.Password, opts.Password)
	require.Empty(t, opts.TrustedOperators, "one account, no operator mode")
	require.True(t, opts.JetStream)
	require.Equal(t, filepath.Join(dir, storeDir), opts.StoreDir)
	require.Equal(t, int64(3<<30), opts.JetStreamMaxStore)
	require.Equal(t, int64(5<<20), opts.JetStreamMaxMemory)
	require.Equal(t, int32(1<<20), opts.MaxPayload)
	require.Equal(t, filepath.Join(dir, logFile), opts.LogFile)
	require.Equal(t, int64(maxLogBytes), opts.LogSizeLimit)
	require.Equal(t, filepath.Join(dir, pidFile), opts.PidFile)

	// IPv6 hosts are bracketed where nats-server expects host:port.
	cfg.Host = "::1"
	require.NoError(t, os.WriteFile(file, []byte(cfg.render()), 0o600))
	opts, err = server.ProcessConfigFile(file)
	require.NoError(t, err)
	require.Equal(t, "::1", opts.Host)
	require.Equal(t, "::1", opts.HTTPHost)
	require.Equal(t, 18222, opts.HTTPPort)
}

func TestAKilledInstanceIsReportedAndRestartedWithItsData(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)
	in, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	storeOrders(ctx, t, connect(t, in), 5)

	proc := p.current(p.tenants["acme"])
	require.NoError(t, syscall.Kill(proc.cmd.Process.Pid, syscall.SIGKILL))
	<-proc.exited

	err = p.Check(ctx, "acme")
	require.ErrorContains(t, err, "not running")
	require.ErrorContains(t, err, "signal: killed")
	require.NotErrorIs(t, err, provision.ErrNotFound)

	again, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, in, again, "the same credentials, and the same ports while they are free")
	require.NoError(t, p.Check(ctx, "acme"))
	require.Equal(t, []string{"order-0", "order-1", "order-2", "order-3", "order-4"}, readOrders(ctx, t, connect(t, again)))
}

func TestARestartMovesOffAPortTakenMeanwhile(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)
	in, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	storeOrders(ctx, t, connect(t, in), 1)

	proc := p.current(p.tenants["acme"])
	require.NoError(t, proc.cmd.Process.Kill())
	<-proc.exited
	// Something else takes the client port while the instance is down.
	squatter, err := net.Listen("tcp", strings.TrimPrefix(in.URLs[0], "nats://"))
	require.NoError(t, err)
	defer squatter.Close()

	moved, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.NotEqual(t, in.URLs, moved.URLs)
	require.NotEqual(t, port(t, in.URLs[0]), port(t, moved.URLs[0]))
	require.Equal(t, in.Monitor, moved.Monitor, "the free monitoring port is kept")
	require.Equal(t, in.Password, moved.Password)
	require.Equal(t, []string{"order-0"}, readOrders(ctx, t, connect(t, moved)))

	// And the new port is what instance.json keeps.
	st, ok, err := readState(filepath.Join(p.Dir, "acme"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, port(t, moved.URLs[0]), st.Port)
}

func TestRemoveStopsTheInstanceAndDeletesItsData(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)
	in, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	storeOrders(ctx, t, connect(t, in), 2)
	proc := p.current(p.tenants["acme"])

	require.NoError(t, p.Remove(ctx, "acme"))
	require.False(t, proc.running())
	require.Equal(t, "exit status 0", exitReason(proc), "stopped by SIGTERM, cleanly")
	_, err = os.Stat(filepath.Join(p.Dir, "acme"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorIs(t, p.Check(ctx, "acme"), provision.ErrNotFound)
	require.NoError(t, p.Remove(ctx, "acme"), "removing what is gone is not an error")
	require.NoError(t, p.Remove(ctx, "never-created"))
	require.ErrorIs(t, p.Check(ctx, "never-created"), provision.ErrNotFound)

	fresh, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.NotEqual(t, in.Password, fresh.Password, "a new instance gets a new password")
	js, err := jetstream.New(connect(t, fresh))
	require.NoError(t, err)
	_, err = js.Stream(ctx, "ORDERS")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "and none of the old data")
}

func TestHostileTenantNamesAreRefusedBeforeAnyPath(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	root := t.TempDir()
	p := &Provisioner{Dir: filepath.Join(root, "instances"), Command: child("serve")}
	t.Cleanup(p.Close)
	require.NoError(t, os.MkdirAll(p.Dir, 0o700))
	names := []string{
		"", ".", "..", "../x", "../../etc", "a/b", "/etc/passwd", "-rf", "Acme", "a b", "a\x00b", "a\nb",
		"acme.", "ac$me", strings.Repeat("a", 64), strings.Repeat("a", 100_000),
	}
	for _, name := range names {
		_, err := p.Ensure(ctx, name)
		require.ErrorContains(t, err, "invalid tenant name", "%q", name)
		require.Less(t, len(err.Error()), 300, "the error does not echo an oversize name")
		require.ErrorContains(t, p.Check(ctx, name), "invalid tenant name")
		require.ErrorContains(t, p.Remove(ctx, name), "invalid tenant name")
	}
	entries, err := os.ReadDir(p.Dir)
	require.NoError(t, err)
	require.Empty(t, entries)
	entries, err = os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing written beside Dir either")
}

func TestSettingsAreChecked(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	for name, p := range map[string]*Provisioner{
		"no dir":          {},
		"quote in dir":    {Dir: "/tmp/a\"b"},
		"dollar in dir":   {Dir: "/tmp/$HOME"},
		"newline in dir":  {Dir: "/tmp/a\nb"},
		"host":            {Dir: t.TempDir(), Host: "a b"},
		"host injection":  {Dir: t.TempDir(), Host: "127.0.0.1\"\nport: 1"},
		"negative limits": {Dir: t.TempDir(), MaxStorage: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Ensure(ctx, "acme")
			require.ErrorContains(t, err, "local provisioner")
			require.ErrorContains(t, p.Check(ctx, "acme"), "local provisioner")
			require.ErrorContains(t, p.Remove(ctx, "acme"), "local provisioner")
			p.Close()
		})
	}
}

func TestMalformedInstanceStateIsRefused(t *testing.T) {
	ctx := ctxFor(t, 10*time.Second)
	good, err := newState()
	require.NoError(t, err)
	for name, content := range map[string]string{
		"not json":      "{port: 1",
		"oversize":      `{"password":"` + strings.Repeat("a", maxStateBytes) + `"}`,
		"unknown field": fmt.Sprintf(`{"user":"vrsky","password":%q,"debug":true}`, good.Password),
		"other user":    fmt.Sprintf(`{"user":"admin","password":%q}`, good.Password),
		"weak password": `{"user":"vrsky","password":"secret"}`,
		"bad port":      fmt.Sprintf(`{"port":70000,"user":"vrsky","password":%q}`, good.Password),
	} {
		t.Run(name, func(t *testing.T) {
			p := &Provisioner{Dir: t.TempDir(), Command: child("serve")}
			t.Cleanup(p.Close)
			dir := filepath.Join(p.Dir, "acme")
			require.NoError(t, os.MkdirAll(dir, 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(dir, stateFile), []byte(content), 0o600))
			_, err := p.Ensure(ctx, "acme")
			require.ErrorContains(t, err, stateFile)
			require.ErrorContains(t, p.Check(ctx, "acme"), stateFile)
			require.Nil(t, p.current(p.tenants["acme"]), "nothing started")
		})
	}
}

func TestTwoTenantsRunAtOnceEachWithItsOwnInstance(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)
	names := []string{"acme", "globex"}
	got := make([]dataplane.Instance, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { got[i], errs[i] = p.Ensure(ctx, name) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.NotEqual(t, got[0].URLs, got[1].URLs)
	require.NotEqual(t, got[0].Monitor, got[1].Monitor)
	require.NotEqual(t, got[0].Password, got[1].Password)

	storeOrders(ctx, t, connect(t, got[0]), 2)
	js, err := jetstream.New(connect(t, got[1]))
	require.NoError(t, err)
	_, err = js.Stream(ctx, "ORDERS")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "one tenant's streams are not on the other's instance")
	_, err = nats.Connect(got[1].URLs[0], nats.UserInfo(got[0].User, got[0].Password), nats.Timeout(2*time.Second))
	require.ErrorIs(t, err, nats.ErrAuthorization, "nor do its credentials open it")
}

func TestConcurrentEnsuresOfOneTenantStartOneInstance(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)
	const n = 4
	got := make([]dataplane.Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = p.Ensure(ctx, "acme") })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	for i := 1; i < n; i++ {
		require.Equal(t, got[0], got[i])
	}
	require.NoError(t, p.Check(ctx, "acme"))
}

func TestAServerThatCannotStartIsReportedWithItsLog(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	p := newProvisioner(t)
	p.Command = child("exit")
	_, err := p.Ensure(ctx, "acme")
	require.ErrorContains(t, err, "exit status 3")
	require.ErrorContains(t, err, "boom: this server cannot start")
	err = p.Check(ctx, "acme")
	require.ErrorContains(t, err, "not running")
	require.ErrorContains(t, err, "exit status 3")
}

func TestAnInstanceThatNeverGetsHealthyIsUnhealthyThenRestarted(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	p := newProvisioner(t)
	p.Command = child("hang")
	p.UnhealthyGrace = 300 * time.Millisecond

	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := p.Ensure(short, "acme")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	hung := p.current(p.tenants["acme"])
	require.True(t, hung.running(), "left running for the next call")

	err = p.Check(ctx, "acme")
	require.ErrorContains(t, err, "unhealthy")

	// Another call on the tenant waits for the one in progress, as long as
	// its context allows.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	_, unlock, err := p.acquire(ctx, "acme")
	require.NoError(t, err)
	go func() { <-release; unlock() }()
	waiting, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	require.ErrorContains(t, p.Check(waiting, "acme"), "wait for another call on tenant acme")
	release <- struct{}{}

	// Ensure gives the unhealthy instance its grace, then replaces it.
	p.Command = child("serve")
	in, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.False(t, hung.running(), "the hung process was stopped")
	require.NoError(t, p.Check(ctx, "acme"))
	connect(t, in)
}

func TestCloseStopsEveryInstance(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	p := newProvisioner(t)
	var procs []*process
	for _, name := range []string{"acme", "globex"} {
		_, err := p.Ensure(ctx, name)
		require.NoError(t, err)
		procs = append(procs, p.current(p.tenants[name]))
	}
	p.Close()
	for _, proc := range procs {
		require.False(t, proc.running())
	}
	_, err := p.Ensure(ctx, "acme")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, p.Check(ctx, "acme"), ErrClosed)
	_, err = os.Stat(filepath.Join(p.Dir, "acme", stateFile))
	require.NoError(t, err, "Close keeps the instances for the next start")

	// A new Provisioner on the same Dir brings the instance back as it was.
	again := &Provisioner{Dir: p.Dir, Command: child("serve")}
	t.Cleanup(again.Close)
	require.ErrorContains(t, again.Check(ctx, "acme"), "not running")
	_, err = again.Ensure(ctx, "acme")
	require.NoError(t, err)
}

func TestTheDefaultCommandIsVrskyNATSServer(t *testing.T) {
	cmd, err := vrskyNATSServer("/data/acme/nats.conf")
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	require.Equal(t, exe, cmd.Path)
	require.Equal(t, []string{exe, "nats-server", "-c", "/data/acme/nats.conf"}, cmd.Args)
}

func TestAStopThatTakesTooLongEndsInAKill(t *testing.T) {
	cmd := child("stubborn")("")
	cmd.SysProcAttr = procAttr()
	require.NoError(t, cmd.Start())
	proc := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { proc.err = cmd.Wait(); close(proc.exited) }()
	time.Sleep(200 * time.Millisecond) // let it start ignoring SIGTERM
	p := &Provisioner{}
	start := time.Now()
	quiet := slog.New(slog.DiscardHandler)
	p.stop(context.Background(), settings{stopTimeout: 300 * time.Millisecond}, proc, quiet)
	require.False(t, proc.running())
	require.Equal(t, "signal: killed", exitReason(proc))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond, "it had its time to stop")
}

// runProvisioner is the "provisioner" child: it ensures one instance in
// the directory childConfEnv names, prints its pid and waits to be killed.
func runProvisioner(dir string) {
	p := &Provisioner{Dir: dir, Command: child("serve")}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := p.Ensure(ctx, "acme"); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("instance pid " + strconv.Itoa(p.current(p.tenants["acme"]).cmd.Process.Pid) + "\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}
