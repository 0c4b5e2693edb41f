package testenv

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/internal/dbmigrate"
)

func TestMain(m *testing.M) { Main(m) }

func TestPostgresGivesEachTestItsOwnDatabase(t *testing.T) {
	var (
		mu   sync.Mutex
		urls = map[string]string{}
	)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"first", "second"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dbURL := Postgres(t)
				ctx := context.Background()
				conn, err := pgx.Connect(ctx, dbURL)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)

				// The same table in both databases: they must not collide.
				if _, err := conn.Exec(ctx, `CREATE TABLE owner (name text)`); err != nil {
					t.Fatalf("database not empty or not usable: %v", err)
				}
				if _, err := conn.Exec(ctx, `INSERT INTO owner VALUES ($1)`, name); err != nil {
					t.Fatal(err)
				}
				var got string
				if err := conn.QueryRow(ctx, `SELECT string_agg(name, ',') FROM owner`).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != name {
					t.Errorf("owner rows = %q, want only %q", got, name)
				}
				mu.Lock()
				urls[name] = dbURL
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	if urls["first"] == urls["second"] {
		t.Fatalf("both tests got %s", urls["first"])
	}

	// Their cleanups ran: the databases are gone.
	adminURL, err := postgresServer()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for name, dbURL := range urls {
		cfg, err := pgx.ParseConfig(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, cfg.Database).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s of test %s not dropped", cfg.Database, name)
		}
	}
}

func TestPostgresDropsDatabaseWithOpenSessions(t *testing.T) {
	var dbURL string
	var conn *pgx.Conn
	t.Run("leaves a session open", func(t *testing.T) {
		dbURL = Postgres(t)
		var err error
		if conn, err = pgx.Connect(context.Background(), dbURL); err != nil {
			t.Fatal(err)
		}
	})
	defer conn.Close(context.Background())
	if err := conn.Ping(context.Background()); err == nil {
		t.Errorf("session on %s survived the drop of its database", dbURL)
	}
}

func TestPostgresMigrated(t *testing.T) {
	t.Parallel()
	dbURL := PostgresMigrated(t)
	version, dirty, err := dbmigrate.Version(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if version == 0 || dirty {
		t.Fatalf("version %d, dirty %v; want migrated and clean", version, dirty)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `INSERT INTO tenants (id, name) VALUES ('t1', 'One')`); err != nil {
		t.Fatalf("schema not there: %v", err)
	}
}

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test_x?sslmode=disable"},
		{"postgres://u:p@db.example:5432?sslmode=require", "postgres://u:p@db.example:5432/test_x?sslmode=require"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := withDatabase(tc.in, "test_x")
			if err != nil || got != tc.want {
				t.Errorf("withDatabase = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := withDatabase("postgres://a b:%zz@h/db", "x"); err == nil {
		t.Error("an unparsable URL was accepted")
	}
}
