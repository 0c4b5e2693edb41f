package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/internal/dbmigrate"
	"github.com/vrsky/vrsky/internal/pgcluster"
)

// TestDatabaseURLEnv names the environment variable that points the tests at
// an existing PostgreSQL server instead of a private cluster. Its URL must
// name a database the user can connect to, and the user must be allowed to
// create and drop databases.
const TestDatabaseURLEnv = "VRSKY_TEST_DATABASE_URL"

// sharedPostgres is the one server the tests of a test binary share. Each
// test gets its own database on it.
var sharedPostgres struct {
	once     sync.Once
	mu       sync.Mutex
	cluster  *pgcluster.Cluster // nil when TestDatabaseURLEnv is used
	dir      string
	adminURL string // a database to connect to for CREATE and DROP DATABASE
	err      error
	stopped  bool
}

// postgresServer starts the shared cluster on first use and returns the URL
// to manage databases through.
func postgresServer() (string, error) {
	sharedPostgres.once.Do(func() {
		if u := os.Getenv(TestDatabaseURLEnv); u != "" {
			sharedPostgres.adminURL = u
			return
		}
		dir, err := os.MkdirTemp("", "vrsky-testpg-")
		if err != nil {
			sharedPostgres.err = fmt.Errorf("create directory for the test postgres: %w", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Logger: logger})
		if err != nil {
			_ = os.RemoveAll(dir)
			sharedPostgres.err = fmt.Errorf("%w (or set %s to use a running server)", err, TestDatabaseURLEnv)
			return
		}
		sharedPostgres.cluster = c
		sharedPostgres.dir = dir
		sharedPostgres.adminURL = c.URL("postgres")
	})
	sharedPostgres.mu.Lock()
	defer sharedPostgres.mu.Unlock()
	if sharedPostgres.stopped {
		return "", fmt.Errorf("the shared test postgres was stopped by StopPostgres")
	}
	return sharedPostgres.adminURL, sharedPostgres.err
}

// Postgres returns the URL of a fresh, empty database of its own for this
// test, with no migration applied. The database lives on one PostgreSQL
// server shared by the whole test binary: a private cluster started on first
// use (see StopPostgres), or the server named by VRSKY_TEST_DATABASE_URL.
// The database is dropped when the test ends. Safe for parallel tests.
func Postgres(t testing.TB) string {
	t.Helper()
	adminURL, err := postgresServer()
	if err != nil {
		t.Fatalf("test postgres: %v", err)
	}
	name := "test_" + RandomID(8)
	dbURL, err := withDatabase(adminURL, name)
	if err != nil {
		t.Fatalf("test postgres: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execAdmin(ctx, adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the sessions a test left open.
		if err := execAdmin(ctx, adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return dbURL
}

// PostgresMigrated is Postgres with every migration applied.
func PostgresMigrated(t testing.TB) string {
	t.Helper()
	dbURL := Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dbmigrate.Up(ctx, dbURL); err != nil {
		t.Fatalf("test postgres: %v", err)
	}
	return dbURL
}

// StopPostgres stops the shared test cluster, if one was started, and
// removes its directory. Call it from TestMain after m.Run; should the test
// binary die first, the cluster shuts itself down. Postgres fails once
// StopPostgres has been called.
func StopPostgres() {
	sharedPostgres.mu.Lock()
	defer sharedPostgres.mu.Unlock()
	if sharedPostgres.stopped {
		return
	}
	sharedPostgres.stopped = true
	if sharedPostgres.cluster == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sharedPostgres.cluster.Stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: stop the test postgres: %v\n", err)
	}
	if err := os.RemoveAll(sharedPostgres.dir); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: remove the test postgres directory: %v\n", err)
	}
}

// withDatabase returns serverURL pointing at database name instead.
func withDatabase(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// execAdmin runs one statement on a connection of its own to adminURL.
func execAdmin(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Main runs a package's tests and then stops the shared PostgreSQL cluster;
// call it from TestMain: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	StopPostgres()
	os.Exit(code)
}
