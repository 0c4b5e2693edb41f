package pgcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startCluster starts a cluster on dir and stops it when the test ends.
func startCluster(t *testing.T, dir string) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A test that stopped the cluster itself already checked the result.
		if err := c.Stop(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartServesLogicalReplicationOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir())
	conn := connect(t, c.URL("postgres"))

	for _, tc := range []struct {
		sql  string
		want string
	}{
		{"SELECT (1 + 1)::text", "2"},
		{"SHOW wal_level", "logical"},
		{"SHOW listen_addresses", "127.0.0.1"},
		{"SELECT host(inet_server_addr())", "127.0.0.1"},
		{"SELECT (current_setting('max_replication_slots')::int >= 10)::text", "true"},
		{"SELECT (current_setting('max_wal_senders')::int >= 10)::text", "true"},
		{"SHOW server_encoding", "UTF8"},
		{"SELECT current_user", "postgres"},
	} {
		t.Run(tc.sql, func(t *testing.T) {
			if got := queryString(t, conn, tc.sql); got != tc.want {
				t.Errorf("%s = %q, want %q", tc.sql, got, tc.want)
			}
		})
	}

	t.Run("not reachable on other addresses", func(t *testing.T) {
		ip := nonLoopbackIPv4(t)
		d, err := net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(c.Port())), 2*time.Second)
		if err == nil {
			d.Close()
			t.Fatalf("server accepted a connection on %s, want loopback only", ip)
		}
	})

	t.Run("server log goes to a file in Dir", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(c.dir, "log", "postgres.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "ready to accept connections") {
			t.Errorf("server log lacks the startup line:\n%s", data)
		}
	})

	if got := c.URL("app"); got != fmt.Sprintf("postgres://postgres@127.0.0.1:%d/app?sslmode=disable", c.Port()) {
		t.Errorf("URL = %q", got)
	}
}

func nonLoopbackIPv4(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("list interface addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address on this machine")
	return ""
}

func TestStartWithFixedPort(t *testing.T) {
	t.Parallel()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := Start(ctx, Options{Dir: t.TempDir(), Port: port, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	if c.Port() != port {
		t.Errorf("Port() = %d, want %d", c.Port(), port)
	}
	if got := queryString(t, connect(t, c.URL("postgres")), "SELECT 'ok'"); got != "ok" {
		t.Errorf("got %q", got)
	}

	t.Run("a second server on the same port fails with its log", func(t *testing.T) {
		_, err := Start(ctx, Options{Dir: t.TempDir(), Port: port, Logger: quietLogger()})
		if err == nil {
			t.Fatal("Start on a taken port succeeded")
		}
		if !strings.Contains(err.Error(), "end of its log") {
			t.Errorf("error does not show the server log: %v", err)
		}
	})
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()

	c := startCluster(t, dir)
	conn := connect(t, c.URL("postgres"))
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept VALUES (1, 'one'), (2, 'two')`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	c2 := startCluster(t, dir)
	got := queryString(t, connect(t, c2.URL("postgres")), `SELECT string_agg(v, ',' ORDER BY id) FROM kept`)
	if got != "one,two" {
		t.Errorf("rows after restart = %q, want %q", got, "one,two")
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr bool
	}{
		{"fast shutdown", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 30*time.Second)
		}, false},
		{"killed at the deadline", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := startCluster(t, dir)
			conn := connect(t, c.URL("postgres")) // an open session must not block Stop
			_ = conn
			if n := len(clusterProcesses(c.dir)); n < 2 {
				t.Fatalf("expected the postmaster and its children, found %d processes", n)
			}

			ctx, cancel := tc.ctx()
			defer cancel()
			err := c.Stop(ctx)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Stop error = %v, want error %v", err, tc.wantErr)
			}
			if processAlive(c.pid) {
				t.Errorf("postmaster %d still alive after Stop", c.pid)
			}
			if left := clusterProcesses(c.dir); len(left) > 0 {
				t.Errorf("processes %v still alive after Stop", left)
			}
			if again := c.Stop(context.Background()); !errors.Is(again, err) && again != err {
				t.Errorf("second Stop = %v, want %v", again, err)
			}

			// The directory is usable again, even after a kill.
			c2 := startCluster(t, dir)
			if got := queryString(t, connect(t, c2.URL("postgres")), "SELECT 'back'"); got != "back" {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestStalePostmasterPid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("process killed", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		c := startCluster(t, dir)
		if _, err := connect(t, c.URL("postgres")).Exec(ctx, `CREATE TABLE survived (id int); INSERT INTO survived VALUES (7)`); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(c.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-c.exited
		if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err != nil {
			t.Fatalf("want a stale postmaster.pid after the kill: %v", err)
		}

		c2 := startCluster(t, dir)
		if got := queryString(t, connect(t, c2.URL("postgres")), "SELECT id::text FROM survived"); got != "7" {
			t.Errorf("got %q", got)
		}
	})

	t.Run("server still running", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		old := startCluster(t, dir) // its owner "forgets" it, as if killed

		c := startCluster(t, dir)
		select {
		case <-old.exited:
		case <-time.After(5 * time.Second):
			t.Fatalf("the leftover server %d is still running", old.pid)
		}
		if got := queryString(t, connect(t, c.URL("postgres")), "SELECT 'new'"); got != "new" {
			t.Errorf("got %q", got)
		}
	})

	t.Run("garbage pid file", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		c := startCluster(t, dir)
		if err := c.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte("not a pid\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		startCluster(t, dir)
	})
}

func TestCreateDatabase(t *testing.T) {
	t.Parallel()
	c := startCluster(t, t.TempDir())
	ctx := context.Background()

	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{"app", false},
		{"_tenant_42", false},
		{strings.Repeat("a", 63), false},
		{"", true},
		{"Upper", true},
		{"1starts_with_digit", true},
		{"has-dash", true},
		{`x"; DROP DATABASE postgres; --`, true},
		{"x y", true},
		{strings.Repeat("a", 64), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 2 { // idempotent
				err := c.CreateDatabase(ctx, tc.name)
				if (err != nil) != tc.wantErr {
					t.Fatalf("CreateDatabase(%q) error = %v, want error %v", tc.name, err, tc.wantErr)
				}
			}
			if tc.wantErr {
				return
			}
			if got := queryString(t, connect(t, c.URL(tc.name)), "SELECT current_database()"); got != tc.name {
				t.Errorf("current_database() = %q", got)
			}
		})
	}

	t.Run("server gone", func(t *testing.T) {
		c2 := startCluster(t, t.TempDir())
		if err := c2.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c2.CreateDatabase(ctx, "late"); err == nil {
			t.Error("CreateDatabase on a stopped cluster succeeded")
		}
	})
}

func TestLongDirUsesShortSocketDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	c := startCluster(t, dir)
	if c.socketDir == dir || !c.ownsSocket {
		t.Fatalf("socket dir = %s, want a short temporary one", c.socketDir)
	}
	if _, err := os.Stat(filepath.Join(c.socketDir, fmt.Sprintf(".s.PGSQL.%d", c.Port()))); err != nil {
		t.Errorf("no unix socket: %v", err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir %s not removed: %v", c.socketDir, err)
	}
}

func TestFindBinDir(t *testing.T) {
	// Not parallel: it sets an environment variable.
	t.Run("found on this machine", func(t *testing.T) {
		dir, err := FindBinDir()
		if err != nil {
			t.Skipf("no PostgreSQL binaries here: %v", err)
		}
		if err := hasServerBinaries(dir); err != nil {
			t.Error(err)
		}

		t.Setenv("VRSKY_PG_BIN", dir)
		got, err := FindBinDir()
		if err != nil || got != dir {
			t.Errorf("with VRSKY_PG_BIN=%s: got %q, %v", dir, got, err)
		}
	})

	for _, tc := range []struct {
		name  string
		setup func(dir string)
	}{
		{"empty dir", func(string) {}},
		{"not executable", func(dir string) {
			for _, name := range []string{"initdb", "postgres"} {
				_ = os.WriteFile(filepath.Join(dir, name), nil, 0o644)
			}
		}},
		{"directories", func(dir string) {
			for _, name := range []string{"initdb", "postgres"} {
				_ = os.Mkdir(filepath.Join(dir, name), 0o755)
			}
		}},
	} {
		t.Run("VRSKY_PG_BIN with "+tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(dir)
			t.Setenv("VRSKY_PG_BIN", dir)
			_, err := FindBinDir()
			if err == nil {
				t.Fatal("FindBinDir succeeded")
			}
			for _, want := range []string{dir, "apt-get install -y postgresql"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			_, err = Start(context.Background(), Options{Dir: t.TempDir(), Logger: quietLogger()})
			if err == nil || !strings.Contains(err.Error(), "VRSKY_PG_BIN") {
				t.Errorf("Start error = %v, want the VRSKY_PG_BIN error", err)
			}
		})
	}

	t.Run("nothing anywhere", func(t *testing.T) {
		t.Setenv("VRSKY_PG_BIN", "")
		t.Setenv("PATH", t.TempDir())
		dir, err := FindBinDir()
		if err == nil {
			// /usr/lib/postgresql/*/bin is still searched.
			if !strings.HasPrefix(dir, "/usr/lib/postgresql/") {
				t.Errorf("found %s with an empty PATH", dir)
			}
			return
		}
		if !strings.Contains(err.Error(), "apt-get install -y postgresql") {
			t.Errorf("error %q does not say how to install PostgreSQL", err)
		}
	})
}

func TestStartRejectsEmptyDir(t *testing.T) {
	if _, err := Start(context.Background(), Options{}); err == nil {
		t.Fatal("Start without a Dir succeeded")
	}
}

func TestVersionOrder(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want float64
	}{
		{"/usr/lib/postgresql/15/bin", 15},
		{"/usr/lib/postgresql/9.6/bin", 9.6},
		{"/usr/lib/postgresql/dev/bin", -1},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			if got := versionOf(tc.dir); got != tc.want {
				t.Errorf("versionOf(%s) = %v, want %v", tc.dir, got, tc.want)
			}
		})
	}
}

func TestTailOfMissingFile(t *testing.T) {
	if got := tail(filepath.Join(t.TempDir(), "none"), 10); !strings.Contains(got, "cannot read") {
		t.Errorf("tail of a missing file = %q", got)
	}
}

// ownerDirEnv makes TestOwnerProcess act as a process that owns a cluster.
const ownerDirEnv = "VRSKY_PGCLUSTER_OWNER_DIR"

// TestOwnerProcess is run as a child process by TestClusterDiesWithOwner:
// it starts a cluster, prints the server's pid and waits to be killed.
func TestOwnerProcess(t *testing.T) {
	dir := os.Getenv(ownerDirEnv)
	if dir == "" {
		t.Skip("only runs as the child of TestClusterDiesWithOwner")
	}
	c, err := Start(context.Background(), Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Printf("pid=%d\n", c.pid)
	time.Sleep(time.Minute)
	os.Exit(2)
}

func TestClusterDiesWithOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOwnerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), ownerDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read from the owner process: %v", err)
	}
	var pid int
	if _, err := fmt.Sscanf(line, "pid=%d", &pid); err != nil {
		t.Fatalf("owner process said %q", line)
	}
	if !processAlive(pid) {
		t.Fatalf("server %d not running", pid)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !waitGone(pid, 15*time.Second) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("server %d outlived its owner", pid)
	}
	if left := killLeftovers(dir, 5*time.Second, quietLogger()); len(left) > 0 {
		t.Errorf("processes %v outlived the owner", left)
	}
}
