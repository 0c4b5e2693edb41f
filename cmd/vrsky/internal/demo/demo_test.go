package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
)

// startStack starts a fresh in-process dev stack and returns its data
// directory and when it was asked to start.
func startStack(t *testing.T) (string, devstack.Endpoints, time.Time) {
	t.Helper()
	dir := t.TempDir()
	began := time.Now()
	stack, err := devstack.Start(context.Background(), devstack.Config{
		DataDir: dir, HTTPAddr: "127.0.0.1:0", NATSAddr: "127.0.0.1:0", TemporalAddr: "127.0.0.1:0",
		TemporalUIAddr: "127.0.0.1:0", S3Addr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Shutdown(context.Background()) })
	return dir, stack.Endpoints(), began
}

// freeSlackURL picks a free loopback port for a Slack stand-in.
func freeSlackURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr + "/services/T0DEMO/B0DEMO/demo"
}

// demoOptions are a demo's settings with stand-ins on free ports and the
// database dbName of the stack's server. The demo stores them as its
// tenant's secrets: nothing is exported to the stack.
func demoOptions(t *testing.T, ep devstack.Endpoints, secret, dbName string) Options {
	t.Helper()
	dbURL, err := DatabaseURL(ep.Postgres, dbName)
	require.NoError(t, err)
	return Options{GitHubSecret: secret, SlackURL: freeSlackURL(t), DatabaseURL: dbURL, APIAddr: "127.0.0.1:0"}
}

func TestDemo1WebhookToSlack(t *testing.T) {
	dir, ep, began := startStack(t)
	opt := demoOptions(t, ep, "s3cret", DefaultDatabase)
	var out bytes.Buffer
	res, err := RunWith(context.Background(), 1, dir, &out, opt)
	require.NoError(t, err, out.String())
	t.Logf("demo 1: first message delivered %s after the stack was started (%s after deploy)",
		res.FirstDelivery.Sub(began).Round(time.Millisecond), res.FirstDelivery.Sub(res.Deployed).Round(time.Millisecond))
	require.Len(t, res.Slack, 2)
	texts := res.Slack[0].Text + "\n" + res.Slack[1].Text
	require.Contains(t, texts, "[acme/shop] octocat pushed to refs/heads/main: Fix checkout rounding (run "+res.RunID+")")
	require.Contains(t, texts, "[acme/shop] hubot opened pull request #42: Add order export (run "+res.RunID+") https://github.com/acme/shop/pull/42")
	require.Contains(t, out.String(), "refused (401)")
	require.Contains(t, out.String(), "look at:")
	require.Contains(t, out.String(), "secrets github-webhook-secret, slack-webhook-url stored")
	// The admin opened exactly the Slack stand-in to the tenant.
	admin, err := os.ReadFile(filepath.Join(dir, "admin-key"))
	require.NoError(t, err)
	var tenant struct {
		Egress struct {
			AllowPrivate bool     `json:"allowPrivate"`
			AllowHosts   []string `json:"allowHosts"`
		} `json:"egress"`
	}
	api, err := client.New("http://"+ep.HTTP, string(admin))
	require.NoError(t, err)
	got, err := api.GetTenantWithResponse(context.Background(), "demo")
	require.NoError(t, client.Check("get tenant", got, err, http.StatusOK))
	require.NoError(t, json.Unmarshal(got.Body, &tenant))
	require.False(t, tenant.Egress.AllowPrivate)
	require.Equal(t, []string{strings.TrimSuffix(strings.TrimPrefix(opt.SlackURL, "http://"), "/services/T0DEMO/B0DEMO/demo")}, tenant.Egress.AllowHosts)

	// A second run reuses the tenant and updates the integration.
	out.Reset()
	res2, err := RunWith(context.Background(), 1, dir, &out, opt)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "tenant demo: reused")
	require.NotEqual(t, res.RunID, res2.RunID)
	require.Len(t, res2.Slack, 2)
}

func TestDemo4OrderRouting(t *testing.T) {
	dir, ep, began := startStack(t)
	opt := demoOptions(t, ep, "s3cret", DefaultDatabase)
	var out bytes.Buffer
	res, err := RunWith(context.Background(), 4, dir, &out, opt)
	require.NoError(t, err, out.String())
	t.Logf("demo 4: first row delivered %s after the stack was started (%s after deploy)",
		res.FirstDelivery.Sub(began).Round(time.Millisecond), res.FirstDelivery.Sub(res.Deployed).Round(time.Millisecond))
	require.Equal(t, 4, res.Rows)
	require.Len(t, res.Slack, 2)
	require.Equal(t, 2, res.SlackFailures)
	// Slack's outage did not hold back the table.
	require.True(t, res.RowsComplete.Before(res.Slack[len(res.Slack)-1].At), "rows %s, last slack %s", res.RowsComplete, res.Slack[1].At)
	for _, m := range res.Slack {
		require.Regexp(t, `^Big order `+res.RunID+`-[13] from (ada|cyd): (1500|1280)$`, m.Text)
	}
	total, err := QueryInt(context.Background(), opt.DatabaseURL, `SELECT sum(total)::int FROM demo_orders WHERE order_id LIKE $1`, res.RunID+"-%")
	require.NoError(t, err)
	require.Equal(t, 1500+25+1280+24, total)
}

func TestDemo2CSVToPostgres(t *testing.T) {
	dir, ep, began := startStack(t)
	opt := demoOptions(t, ep, "s3cret", DefaultDatabase)
	var out bytes.Buffer
	res, err := RunWith(context.Background(), 2, dir, &out, opt)
	require.NoError(t, err, out.String())
	t.Logf("demo 2: first row delivered %s after the stack was started (%s after deploy; all %d rows %s after deploy)",
		res.FirstDelivery.Sub(began).Round(time.Millisecond), res.FirstDelivery.Sub(res.Deployed).Round(time.Millisecond),
		res.Rows, res.RowsComplete.Sub(res.Deployed).Round(time.Millisecond))
	require.Equal(t, 5+bigRows+1+8, res.Rows)
	require.Len(t, res.DeadLetters, 2)
	lines := []string{res.DeadLetters[0].Headers["line"], res.DeadLetters[1].Headers["line"]}
	require.ElementsMatch(t, []string{"4", "8"}, lines)
	for _, d := range res.DeadLetters {
		require.Contains(t, d.Error, "unreadable record")
		require.Contains(t, d.Error, "line "+d.Headers["line"])
	}
	qty, err := QueryInt(context.Background(), opt.DatabaseURL, `SELECT qty FROM demo_products WHERE sku = $1`, res.RunID+"-s4")
	require.NoError(t, err)
	require.Equal(t, 250, qty)
	require.Contains(t, out.String(), "no duplicates")
	require.Contains(t, out.String(), "look at:")
	_, big, _ := csvFiles(res.RunID)
	require.Greater(t, len(big.body), 1<<20)
}

func TestDemo3CDCToAPI(t *testing.T) {
	dir, ep, began := startStack(t)
	opt := demoOptions(t, ep, "s3cret", DefaultDatabase)
	var out bytes.Buffer
	res, err := RunWith(context.Background(), 3, dir, &out, opt)
	require.NoError(t, err, out.String())
	t.Logf("demo 3: first call delivered %s after the stack was started (%s after deploy)",
		res.FirstDelivery.Sub(began).Round(time.Millisecond), res.FirstDelivery.Sub(res.Deployed).Round(time.Millisecond))
	require.Len(t, res.API, 4)
	require.Equal(t, 2, res.APIFailures)
	byOp := map[string]APICall{}
	for _, c := range res.API {
		byOp[c.Body["op"].(string)] = c
		require.Equal(t, "/v1/customer-events", c.Path)
		require.NotEmpty(t, c.IdempotencyKey)
	}
	upd := byOp["update"].Body
	require.Equal(t, res.RunID+"-1", upd["id"])
	require.Equal(t, "ada.lovelace@example.com", upd["email"])
	require.Equal(t, "ada@example.com", upd["before"].(map[string]any)["email"])
	del := byOp["delete"].Body
	require.Equal(t, res.RunID+"-2", del["id"])
	require.Equal(t, "Bob "+res.RunID, del["name"])
	require.Nil(t, byOp["insert"].Body["before"])
	require.Contains(t, out.String(), "look at:")
}

// TestAllDemosForThreeTenants runs every demo for three tenants at once,
// each with its own secrets, Slack and database: every message arrives,
// and only where its tenant's spec sends it.
func TestAllDemosForThreeTenants(t *testing.T) {
	dir, ep, _ := startStack(t)
	tenants := []string{"red", "green", "blue"}
	opts := map[string]Options{}
	for _, tn := range tenants {
		o := demoOptions(t, ep, "s3cret-"+tn, "vrsky_demo_"+tn)
		o.Tenant = tn
		opts[tn] = o
	}
	type outcome struct {
		tenant string
		n      int
		res    Result
		err    error
		out    string
	}
	var (
		mu  sync.Mutex
		got []outcome
		wg  sync.WaitGroup
	)
	for _, tn := range tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A tenant's demos run one after the other: they share its
			// Slack stand-in's address.
			for _, d := range Demos {
				var out bytes.Buffer
				res, err := RunWith(context.Background(), d.N, dir, &out, opts[tn])
				mu.Lock()
				got = append(got, outcome{tn, d.N, res, err, out.String()})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Len(t, got, len(tenants)*len(Demos))
	for _, o := range got {
		require.NoError(t, o.err, "tenant %s demo %d:\n%s", o.tenant, o.n, o.out)
		require.Equal(t, o.tenant, o.res.Tenant)
		switch o.n {
		case 1:
			require.Len(t, o.res.Slack, 2, o.tenant)
		case 2:
			require.Equal(t, 5+bigRows+1+8, o.res.Rows, o.tenant)
			require.Len(t, o.res.DeadLetters, 2, o.tenant)
		case 3:
			require.Len(t, o.res.API, 4, o.tenant)
			for _, c := range o.res.API {
				require.Contains(t, c.Raw, o.res.RunID)
			}
		case 4:
			require.Equal(t, 4, o.res.Rows, o.tenant)
			require.Len(t, o.res.Slack, 2, o.tenant)
		}
		for _, m := range o.res.Slack {
			require.Contains(t, m.Text, o.res.RunID)
		}
	}
	// Each tenant's table holds its own orders only.
	for _, tn := range tenants {
		var mine []string
		for _, o := range got {
			if o.tenant == tn && o.n == 4 {
				mine = append(mine, o.res.RunID)
			}
		}
		n, err := QueryInt(context.Background(), opts[tn].DatabaseURL, `SELECT count(*) FROM demo_orders`)
		require.NoError(t, err)
		require.Equal(t, 4*len(mine), n, tn)
		n, err = QueryInt(context.Background(), opts[tn].DatabaseURL, `SELECT count(*) FROM demo_orders WHERE order_id LIKE $1`, mine[0]+"-%")
		require.NoError(t, err)
		require.Equal(t, 4, n, tn)
	}
}

func TestRunReportsWhatIsWrong(t *testing.T) {
	ctx := context.Background()
	require.ErrorContains(t, Run(ctx, 9, t.TempDir(), nil), "no demo 9")
	require.ErrorContains(t, Run(ctx, 1, t.TempDir(), nil), "is vrsky dev running?")
	_, err := Lookup(4)
	require.NoError(t, err)
	require.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", GitHubSignature("It's a Secret to Everybody", []byte("Hello, World!")))
	require.Equal(t, "127.0.0.1:5433", hostOf("postgres://postgres@127.0.0.1:5433/vrsky_demo?sslmode=disable"))
	require.Equal(t, "localhost:8099", hostOf("http://localhost:8099/services/x"))
	require.Equal(t, "", hostOf("postgres:///db?host=/tmp"))
	_, err = DatabaseURL("mysql://x", "db")
	require.Error(t, err)
	_, err = databaseOf("postgres://h/Bad-Name")
	require.Error(t, err)
	require.Equal(t, fmt.Sprint("postgres://u:xxxxx@h/db"), redact("postgres://u:pw@h/db"))
}

func TestSlackStandIn(t *testing.T) {
	var out bytes.Buffer
	s, err := StartSlack("127.0.0.1:0", 1, &out)
	require.NoError(t, err)
	defer s.Close()
	post := func(body string) int {
		resp, err := (&httpClient{}).post(s.URL(), body)
		require.NoError(t, err)
		return resp
	}
	require.Equal(t, 400, post(`{}`))
	require.Equal(t, 400, post(`not json`))
	require.Equal(t, 503, post(`{"text":"first"}`))
	require.Equal(t, 200, post(`{"text":"second"}`))
	require.Len(t, s.Messages(), 1)
	require.Equal(t, 1, s.Failed())
	require.Contains(t, out.String(), `received "second"`)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
}

// TestAStandInClosesBesideAnUnusedConnection: a connection a client
// opened and never sent a request on does not make Close fail.
func TestAStandInClosesBesideAnUnusedConnection(t *testing.T) {
	s, err := StartSlack("127.0.0.1:0", 0, io.Discard)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer conn.Close()
	status, err := (&httpClient{}).post(s.URL(), `{"text":"hi"}`)
	require.NoError(t, err)
	require.Equal(t, 200, status)
	began := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(began), 4*time.Second)
}

func TestAPIStandIn(t *testing.T) {
	var out bytes.Buffer
	a, err := StartAPI("127.0.0.1:0", 1, &out)
	require.NoError(t, err)
	defer a.Close()
	u := "http://" + a.Addr() + "/v1/x"
	post := func(body string) int {
		st, err := (&httpClient{}).post(u, body)
		require.NoError(t, err)
		return st
	}
	require.Equal(t, 400, post(`[1]`))
	require.Equal(t, 503, post(`{"id":"a"}`))
	require.Equal(t, 201, post(`{"id":"b"}`))
	resp, err := http.Get(u)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 405, resp.StatusCode)
	require.Len(t, a.Calls(), 1)
	require.Len(t, a.Matching(`"b"`), 1)
	require.Empty(t, a.Matching(`"a"`))
	require.Equal(t, 1, a.Failed())
	require.Contains(t, out.String(), "answered 503")
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
}

type httpClient struct{}

func (httpClient) post(u, body string) (int, error) {
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
