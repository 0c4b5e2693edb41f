package dbmigrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/internal/pgcluster"
	"github.com/vrsky/vrsky/migrations"
)

var cluster *pgcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "vrsky-dbmigrate-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cluster, err = pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cluster.Stop(ctx)
	}()
	return m.Run()
}

// freshDatabase returns the URL of a new, empty database.
func freshDatabase(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	name := "migrate_" + hex.EncodeToString(b)
	if err := cluster.CreateDatabase(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return cluster.URL(name)
}

// latest is the highest version among the embedded migrations.
func latest(t *testing.T) uint {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no up migrations embedded: %v", err)
	}
	var highest uint
	for _, f := range files {
		n, err := strconv.ParseUint(strings.SplitN(f, "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s is not numbered: %v", f, err)
		}
		highest = max(uint(n), highest)
	}
	return highest
}

var schemaTables = []string{
	"tenants", "api_keys", "integrations", "integration_versions",
	"integration_events", "message_states", "tenant_secrets",
}

func tablesIn(t *testing.T, url string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	return set
}

func wantVersion(t *testing.T, url string, want uint) {
	t.Helper()
	v, dirty, err := Version(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if v != want || dirty {
		t.Fatalf("Version = %d, dirty %v; want %d, clean", v, dirty, want)
	}
}

func TestUpAndDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := freshDatabase(t)

	wantVersion(t, url, 0)

	for i := range 2 { // the second Up has nothing to do
		if err := Up(ctx, url); err != nil {
			t.Fatalf("Up #%d: %v", i+1, err)
		}
		tables := tablesIn(t, url)
		for _, name := range schemaTables {
			if !tables[name] {
				t.Errorf("after Up #%d: no table %s", i+1, name)
			}
		}
		wantVersion(t, url, latest(t))
	}

	for i := range 2 { // the second Down has nothing to do
		if err := Down(ctx, url); err != nil {
			t.Fatalf("Down #%d: %v", i+1, err)
		}
		tables := tablesIn(t, url)
		for _, name := range schemaTables {
			if tables[name] {
				t.Errorf("after Down #%d: table %s still there", i+1, name)
			}
		}
		wantVersion(t, url, 0)
	}

	// And up again: the down migration left nothing in the way.
	if err := Up(ctx, url); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	wantVersion(t, url, latest(t))
}

func TestAcceptedURLSchemes(t *testing.T) {
	t.Parallel()
	url := freshDatabase(t)
	rest := strings.TrimPrefix(url, "postgres://")
	for _, scheme := range []string{"postgres", "postgresql", "pgx5"} {
		t.Run(scheme, func(t *testing.T) {
			if err := Up(context.Background(), scheme+"://"+rest); err != nil {
				t.Fatal(err)
			}
			wantVersion(t, scheme+"://"+rest, latest(t))
		})
	}
}

func TestBadURL(t *testing.T) {
	t.Parallel()
	missing := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/does_not_exist?sslmode=disable", cluster.Port())
	for _, tc := range []struct {
		name string
		url  string
		want string
	}{
		{"other scheme", "mysql://root@localhost/db", `want a postgres:// URL, got scheme "mysql"`},
		{"unparsable", "postgres://a b:%zz@host/db", "parse database URL"},
		{"no host", "postgres:///db", "no host"},
		{"no such database", missing, "connect"},
		{"nobody listening", "postgres://postgres:secret@127.0.0.1:1/db?sslmode=disable", "connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			errs := map[string]error{"Up": Up(ctx, tc.url), "Down": Down(ctx, tc.url)}
			_, _, errs["Version"] = Version(ctx, tc.url)
			for op, err := range errs {
				if err == nil {
					t.Errorf("%s(%q) succeeded", op, tc.url)
					continue
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s error %q does not say %q", op, err, tc.want)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("%s error %q shows the password", op, err)
				}
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	url := freshDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Up(ctx, url); err == nil {
		t.Fatal("Up with a canceled context succeeded")
	}
	wantVersion(t, url, 0)
}

// TestSchemaContract checks the rules the schema promises its users.
func TestSchemaContract(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := freshDatabase(t)
	if err := Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	t.Run("tenant_id leads every key and index of tenant-owned tables", func(t *testing.T) {
		rows, err := conn.Query(ctx, `
			SELECT c.relname, i.relname, a.attname
			FROM pg_index x
			JOIN pg_class c ON c.oid = x.indrelid
			JOIN pg_class i ON i.oid = x.indexrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
			WHERE n.nspname = 'public'
			  AND EXISTS (SELECT 1 FROM pg_attribute t
			              WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)`)
		if err != nil {
			t.Fatal(err)
		}
		// api_keys is found by key id or hash before the tenant is known;
		// metric samples are pruned by age across the platform.
		allowed := map[string]bool{"api_keys_pkey": true, "api_keys_hash_key": true, "integration_samples_at_idx": true}
		var seen int
		for rows.Next() {
			var table, index, first string
			if err := rows.Scan(&table, &index, &first); err != nil {
				t.Fatal(err)
			}
			seen++
			if first != "tenant_id" && !allowed[index] {
				t.Errorf("index %s on %s starts with %s, not tenant_id", index, table, first)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if seen == 0 {
			t.Fatal("found no index")
		}
	})

	exec := func(t *testing.T, sql string, args ...any) error {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		return err
	}
	if err := exec(t, `INSERT INTO tenants (id, name) VALUES ('t1', 'Tenant one')`); err != nil {
		t.Fatal(err)
	}
	if err := exec(t, `INSERT INTO integrations (tenant_id, id, name) VALUES ('t1', 'i1', 'orders')`); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		sql     string
		wantErr bool
	}{
		{"tenant defaults", `INSERT INTO tenants (id, name) VALUES ('t2', 'Two') RETURNING status`, false},
		{"integration name unique per tenant", `INSERT INTO integrations (tenant_id, id, name) VALUES ('t1', 'i2', 'orders')`, true},
		{"same name in another tenant", `INSERT INTO integrations (tenant_id, id, name) VALUES ('t2', 'i1', 'orders')`, false},
		{"integration needs its tenant", `INSERT INTO integrations (tenant_id, id, name) VALUES ('nobody', 'i1', 'x')`, true},
		{"version of a known integration", `INSERT INTO integration_versions (tenant_id, integration_id, version, spec) VALUES ('t1', 'i1', 1, '{"name":"orders"}')`, false},
		{"version of another tenant's integration", `INSERT INTO integration_versions (tenant_id, integration_id, version, spec) VALUES ('t2', 'i9', 1, '{}')`, true},
		{"message state retrying", `INSERT INTO message_states (tenant_id, integration_id, message_id, stage, state) VALUES ('t1', 'i1', 'm1', 'in', 'retrying')`, false},
		{"message state unknown", `INSERT INTO message_states (tenant_id, integration_id, message_id, stage, state) VALUES ('t1', 'i1', 'm2', 'in', 'done')`, true},
		{"api key hash unique", `INSERT INTO api_keys (id, tenant_id, prefix, hash, scopes) VALUES ('k1', 't1', 'vrs_', '\x01', '{read}'), ('k2', 't1', 'vrs_', '\x01', '{read}')`, true},
		{"event log", `INSERT INTO integration_events (tenant_id, integration_id, actor, action, from_status, to_status) VALUES ('t1', 'i1', 'api', 'deploy', 'stopped', 'running')`, false},
		{"secret", `INSERT INTO tenant_secrets (tenant_id, name, ciphertext, key_id) VALUES ('t1', 'HOOK', '\x00', '1')`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := exec(t, tc.sql)
			if (err != nil) != tc.wantErr {
				t.Errorf("error = %v, want error %v", err, tc.wantErr)
			}
		})
	}

	t.Run("deleting an integration removes its versions and message states, keeps its events", func(t *testing.T) {
		if err := exec(t, `DELETE FROM integrations WHERE tenant_id = 't1' AND id = 'i1'`); err != nil {
			t.Fatal(err)
		}
		var versions, states, events int
		err := conn.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM integration_versions WHERE tenant_id = 't1'),
			(SELECT count(*) FROM message_states WHERE tenant_id = 't1'),
			(SELECT count(*) FROM integration_events WHERE tenant_id = 't1')`).Scan(&versions, &states, &events)
		if err != nil {
			t.Fatal(err)
		}
		if versions != 0 || states != 0 || events != 1 {
			t.Errorf("versions %d, states %d, events %d; want 0, 0, 1", versions, states, events)
		}
	})
}
