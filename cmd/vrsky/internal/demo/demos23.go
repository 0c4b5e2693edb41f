package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vrsky/vrsky/client"
)

// Demo 2's files, rows and tables.
const (
	// csvDir is the directory demo 2's spec reads, under the tenant's file
	// root.
	csvDir = "incoming"
	// bigRows is how many ordinary rows the big file holds.
	bigRows = 1500
	// wideNotes is the size of the notes of the big file's one wide row:
	// over the claim-check threshold of 256 KiB.
	wideNotes = 300 << 10
)

// productsTable is demo 2's table.
const productsTable = `CREATE TABLE IF NOT EXISTS demo_products (
	sku         text PRIMARY KEY,
	name        text NOT NULL,
	qty         integer NOT NULL,
	price       numeric NOT NULL,
	notes       text,
	imported_at timestamptz NOT NULL DEFAULT now()
)`

// customersTable is demo 3's table; its before images are whole rows.
var customersTable = []string{`CREATE TABLE IF NOT EXISTS demo_customers (
	id    text PRIMARY KEY,
	name  text NOT NULL,
	email text NOT NULL
)`, `ALTER TABLE demo_customers REPLICA IDENTITY FULL`}

// DeadLetter is a dead letter as GET /v1/dlq lists it.
type DeadLetter struct {
	ID          string            `json:"id"`
	MessageID   string            `json:"message_id"`
	Integration string            `json:"integration"`
	Stage       string            `json:"stage"`
	Error       string            `json:"error"`
	Headers     map[string]string `json:"headers"`
	At          time.Time         `json:"at"`
}

// csvFile is one file demo 2 drops.
type csvFile struct {
	name string
	body []byte
	rows int // rows that should reach the table
}

// csvFiles returns demo 2's files: a small one, one over 1 MB with one row
// over the claim-check threshold, and one with two ragged rows (lines 4
// and 8).
func csvFiles(run string) (small, big, bad csvFile) {
	header := "sku,name,qty,price,notes\n"
	var b strings.Builder
	b.WriteString(header)
	for i, p := range []struct {
		name       string
		qty, price string
	}{{"desk", "3", "500.00"}, {"chair", "12", "149.90"}, {"lamp", "7", "39.50"}, {"pen", "250", "0.99"}, {"mug", "40", "6.25"}} {
		fmt.Fprintf(&b, "%s-s%d,%s,%s,%s,\n", run, i+1, p.name, p.qty, p.price)
	}
	small = csvFile{name: run + "-products.csv", body: []byte(b.String()), rows: 5}

	b.Reset()
	b.WriteString(header)
	filler := strings.Repeat("lorem ipsum dolor sit amet ", 24) // 648 bytes
	for i := range bigRows {
		fmt.Fprintf(&b, "%s-c%05d,item %d,%d,%d.%02d,\"%s\"\n", run, i+1, i+1, i%100+1, i%900+10, i%100, filler)
	}
	fmt.Fprintf(&b, "%s-wide,wide item,1,1.00,%s\n", run, strings.Repeat("x", wideNotes))
	big = csvFile{name: run + "-catalog.csv", body: []byte(b.String()), rows: bigRows + 1}

	b.Reset()
	b.WriteString(header)
	for i := 1; i <= 10; i++ {
		switch i {
		case 3: // line 4: a field missing
			fmt.Fprintf(&b, "%s-b%d,broken,%d\n", run, i, i)
		case 7: // line 8: a field too many
			fmt.Fprintf(&b, "%s-b%d,broken,%d,1.00,,extra\n", run, i, i)
		default:
			fmt.Fprintf(&b, "%s-b%d,part %d,%d,%d.50,\n", run, i, i, i, i)
		}
	}
	bad = csvFile{name: run + "-bad-rows.csv", body: []byte(b.String()), rows: 8}
	return small, big, bad
}

// drop writes a file into dir the way a transfer should: as NAME.part,
// which the consumer skips, then renamed. A non-zero mtime is set on it.
func drop(dir string, f csvFile, mtime time.Time) error {
	part := filepath.Join(dir, f.name+".part")
	if err := os.WriteFile(part, f.body, 0o644); err != nil {
		return fmt.Errorf("drop %s: %w", f.name, err)
	}
	if !mtime.IsZero() {
		if err := os.Chtimes(part, mtime, mtime); err != nil {
			return fmt.Errorf("drop %s: %w", f.name, err)
		}
	}
	if err := os.Rename(part, filepath.Join(dir, f.name)); err != nil {
		return fmt.Errorf("drop %s: %w", f.name, err)
	}
	return nil
}

// csvToPostgres is demo 2: three CSV files reach demo_products, except the
// bad file's two ragged rows, which reach the DLQ with their line numbers;
// the first file dropped again adds no rows.
func (r *runner) csvToPostgres(ctx context.Context) error {
	dbURL, err := r.demoDatabase(ctx)
	if err != nil {
		return err
	}
	if err := Exec(ctx, dbURL, productsTable); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "sample table: demo_products in %s\n", redact(dbURL))
	if err := r.provision(ctx, map[string]string{r.demo.DatabaseSecret: dbURL}, hostOf(dbURL)); err != nil {
		return err
	}
	spec, err := r.spec()
	if err != nil {
		return err
	}
	if err := r.deploy(ctx, spec); err != nil {
		return err
	}
	dir := filepath.Join(r.dataDir, "files", r.opt.Tenant, csvDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the demo's input directory: %w", err)
	}
	started := time.Now()
	small, big, bad := csvFiles(r.runID)
	mtime := time.Now().Add(-time.Minute).Truncate(time.Second)
	for _, f := range []csvFile{small, big, bad} {
		if err := drop(dir, f, mtime); err != nil {
			return err
		}
		fmt.Fprintf(r.out, "file: dropped %s (%d bytes) into %s\n", f.name, len(f.body), dir)
	}
	want := small.rows + big.rows + bad.rows
	count := func() (int, error) {
		return QueryInt(ctx, dbURL, `SELECT count(*) FROM demo_products WHERE sku LIKE $1`, r.runID+"-%")
	}
	for {
		n, err := count()
		if err == nil {
			r.res.Rows = n
			if n > 0 && r.res.FirstDelivery.IsZero() {
				r.res.FirstDelivery = time.Now()
			}
			if n >= want {
				r.res.RowsComplete = time.Now()
				break
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("demo_products holds %d of %d rows of this run", r.res.Rows, want)
		}
	}
	fmt.Fprintf(r.out, "postgres: all %d good rows are in demo_products\n", want)
	wide, err := QueryInt(ctx, dbURL, `SELECT length(notes) FROM demo_products WHERE sku = $1`, r.runID+"-wide")
	if err != nil {
		return err
	}
	if wide != wideNotes {
		return fmt.Errorf("the wide row's notes are %d characters, want %d", wide, wideNotes)
	}
	fmt.Fprintf(r.out, "postgres: the wide row (a %d KiB message, sent through the claim-check) arrived whole\n", wideNotes>>10)

	for {
		dl, err := r.deadLetters(ctx, started.Add(-5*time.Second), bad.name)
		if err == nil {
			r.res.DeadLetters = dl
			if len(dl) >= 2 {
				break
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("the DLQ holds %d of the 2 bad rows of %s (last error: %v)", len(r.res.DeadLetters), bad.name, err)
		}
	}
	for _, d := range r.res.DeadLetters {
		fmt.Fprintf(r.out, "dlq: %s line %s: %s\n", d.Headers["file"], d.Headers["line"], d.Error)
	}

	// The first file again, under the same name and with another mtime, as
	// a client retrying a transfer would: sku keeps every row once.
	if err := drop(dir, small, mtime.Add(30*time.Second)); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "file: dropped %s again\n", small.name)
	for {
		if _, err := os.Stat(filepath.Join(dir, small.name)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("%s was not picked up again", small.name)
		}
	}
	// Give a duplicate a moment to show up, should it get through.
	if err := sleep(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	n, err := count()
	if err != nil {
		return err
	}
	if r.res.Rows = n; n != want {
		return fmt.Errorf("demo_products holds %d rows of this run after the file came again, want %d", n, want)
	}
	fmt.Fprintf(r.out, "postgres: still %d rows after %s came again: no duplicates\n", n, small.name)
	fmt.Fprintf(r.out, `
done: %d rows of 3 files in PostgreSQL, 2 bad rows in the DLQ, a file dropped twice imported once.
look at:
  the table:   psql '%s' -c "SELECT sku, name, qty, price FROM demo_products WHERE sku LIKE '%s-%%' ORDER BY sku LIMIT 20"
  the files:   %s (read ones move to done/)
  the DLQ:     curl -H "Authorization: Bearer $(cat %s)" '%s/v1/dlq?integration=%s'
  the spec:    examples/%s/integration.yaml
`, n, redact(dbURL), r.runID, dir, r.keyFile(), r.api.Server(), r.demo.Name, r.demo.Dir)
	return nil
}

// deadLetters lists the integration's dead letters since then whose file
// header is file.
func (r *runner) deadLetters(ctx context.Context, since time.Time, file string) ([]DeadLetter, error) {
	params := &client.ListDeadLettersParams{Integration: &r.demo.Name, Since: client.Ptr(since.UTC()), Limit: client.Ptr[int64](100)}
	var got []DeadLetter
	for {
		var page struct {
			Items []DeadLetter `json:"items"`
			Next  string       `json:"next"`
		}
		resp, err := r.tenantC.ListDeadLettersWithResponse(ctx, params)
		if err := client.Check("list dead letters", resp, err, http.StatusOK); err != nil {
			return got, err
		}
		if err := json.Unmarshal(resp.Body, &page); err != nil {
			return got, fmt.Errorf("list dead letters: %w", err)
		}
		for _, d := range page.Items {
			if d.Headers["file"] == file {
				got = append(got, d)
			}
		}
		if page.Next == "" {
			return got, nil
		}
		params.Cursor = &page.Next
	}
}

// cdcToAPI is demo 3: two inserts, an update and a delete on
// demo_customers reach the target API, which is down for its first calls.
func (r *runner) cdcToAPI(ctx context.Context) error {
	fail := outage(r.opt.APIFailFirst)
	dbURL, err := r.demoDatabase(ctx)
	if err != nil {
		return err
	}
	if err := Exec(ctx, dbURL, customersTable...); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "sample table: demo_customers in %s\n", redact(dbURL))
	addr := r.opt.APIAddr
	if addr == "" {
		addr = DefaultAPIAddr
	}
	api, err := StartAPI(addr, fail, r.out)
	if err != nil {
		return err
	}
	defer api.Close()
	fmt.Fprintf(r.out, "target API stand-in: listening at http://%s (refuses the first %d calls)\n", api.Addr(), fail)
	// Replication slots are per cluster: each tenant gets its own.
	slot := specSlot
	if r.opt.Tenant != DefaultTenant {
		slot += "_" + strings.Map(func(c rune) rune {
			if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
				return c
			}
			return '_'
		}, strings.ToLower(r.opt.Tenant))
	}
	if err := r.provision(ctx, map[string]string{r.demo.DatabaseSecret: dbURL}, api.Addr(), hostOf(dbURL)); err != nil {
		return err
	}
	spec, err := r.spec(DefaultAPIAddr, api.Addr(), "slot: "+specSlot, "slot: "+slot)
	if err != nil {
		return err
	}
	if err := r.deploy(ctx, spec); err != nil {
		return err
	}
	// Changes count from the moment the slot streams.
	for {
		n, err := QueryInt(ctx, dbURL, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1 AND active`, slot)
		if err == nil && n > 0 {
			break
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("replication slot %s is not streaming", slot)
		}
	}
	fmt.Fprintf(r.out, "postgres-cdc: replication slot %s is streaming\n", slot)
	id1, id2 := r.runID+"-1", r.runID+"-2"
	if err := Exec(ctx, dbURL,
		fmt.Sprintf(`INSERT INTO demo_customers (id, name, email) VALUES ('%s', 'Ada %s', 'ada@example.com'), ('%s', 'Bob %s', 'bob@example.com')`, id1, r.runID, id2, r.runID),
		fmt.Sprintf(`UPDATE demo_customers SET email = 'ada.lovelace@example.com' WHERE id = '%s'`, id1),
		fmt.Sprintf(`DELETE FROM demo_customers WHERE id = '%s'`, id2),
	); err != nil {
		return err
	}
	fmt.Fprintln(r.out, "postgres: inserted 2 customers, updated 1, deleted 1")
	const want = 4
	for {
		got := api.Matching(r.runID)
		r.res.API, r.res.APIFailures = got, api.Failed()
		if len(got) > 0 && r.res.FirstDelivery.IsZero() {
			r.res.FirstDelivery = got[0].At
		}
		if len(got) >= want {
			break
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("the target API received %d of %d calls (it refused %d on purpose)", len(got), want, api.Failed())
		}
	}
	ops := map[string]int{}
	for _, c := range r.res.API {
		op, _ := c.Body["op"].(string)
		ops[op]++
	}
	if ops["insert"] != 2 || ops["update"] != 1 || ops["delete"] != 1 {
		return fmt.Errorf("the target API got ops %v, want 2 inserts, 1 update, 1 delete", ops)
	}
	fmt.Fprintf(r.out, `
done: 2 inserts, 1 update and 1 delete reached the target API after it refused %d calls.
look at:
  the table:   psql '%s' -c "SELECT * FROM demo_customers"
  the spec:    examples/%s/integration.yaml
  its status:  curl -H "Authorization: Bearer $(cat %s)" %s/v1/integrations/%s/status
`, r.res.APIFailures, redact(dbURL), r.demo.Dir, r.keyFile(), r.api.Server(), r.demo.Name)
	return nil
}
