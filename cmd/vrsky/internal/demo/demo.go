// Package demo runs the example integrations in examples/ against a running
// dev stack: it creates a demo tenant through the REST API, starts local
// stand-ins for the outside world (a Slack incoming webhook, a target REST
// API, sample tables), stores the settings the example's spec reads as the
// tenant's secrets, opens the stand-ins to the tenant with its egress
// policy, deploys the spec, drives its input and waits until the expected
// messages arrived.
package demo

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vrsky/vrsky/client"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/devstack"
	"github.com/vrsky/vrsky/cmd/vrsky/internal/tenantkey"
	"github.com/vrsky/vrsky/examples"
)

// Tenant secrets the examples' specs reference ({ secret: NAME }). The demo
// stores them for its tenant through the API before it deploys, so they
// are per tenant: several tenants run the same demo with values of their
// own.
const (
	SecretGitHub   = "github-webhook-secret"
	SecretSlackURL = "slack-webhook-url"
)

// Defaults of the demo's settings.
const (
	DefaultGitHubSecret = "vrsky-demo-secret"
	DefaultSlackURL     = "http://127.0.0.1:8099/services/T0DEMO/B0DEMO/demo"
	DefaultDatabase     = "vrsky_demo"
	// DefaultAPIAddr is where demo 3's target API stand-in listens, as its
	// spec names it.
	DefaultAPIAddr = "127.0.0.1:8098"
	// specSlot is demo 3's replication slot as its spec names it.
	specSlot = "vrsky_demo_cdc"

	// DefaultTenant is the tenant the demos run as.
	DefaultTenant = "demo"
	// DefaultTimeout bounds how long a demo waits for its messages.
	DefaultTimeout = 60 * time.Second
)

// Demo names one example.
type Demo struct {
	N    int
	Dir  string // directory under examples/
	Name string // the integration's name in its spec
	What string
	// DatabaseSecret is the tenant secret its spec reads the demo
	// database's URL from; "" when it uses no database.
	DatabaseSecret string
}

// Demos are the runnable examples.
var Demos = []Demo{
	{1, "1-webhook-to-slack", "github-to-slack", "signed GitHub webhooks → json-transform → Slack", ""},
	{2, "2-csv-to-postgres", "csv-to-postgres", "CSV files → json-transform → PostgreSQL", "products-database-url"},
	{3, "3-cdc-to-api", "cdc-to-api", "PostgreSQL changes (CDC) → json-transform → REST API", "customers-database-url"},
	{4, "4-order-routing", "order-routing", "orders → total → router → PostgreSQL and (big orders) Slack", "orders-database-url"},
}

// Lookup returns demo n.
func Lookup(n int) (Demo, error) {
	var have []string
	for _, d := range Demos {
		if d.N == n {
			return d, nil
		}
		have = append(have, fmt.Sprint(d.N))
	}
	return Demo{}, fmt.Errorf("no demo %d (have %s)", n, strings.Join(have, ", "))
}

// Options change how a demo runs; the zero value runs it as `vrsky demo`
// does.
type Options struct {
	// Tenant is the tenant to run as; default "demo".
	Tenant string
	// GitHubSecret signs demo 1's webhooks, and is stored as the tenant's
	// secret github-webhook-secret; default DefaultGitHubSecret.
	GitHubSecret string
	// SlackURL is the incoming-webhook URL the runner posts to, stored as
	// the tenant's secret slack-webhook-url; the Slack stand-in listens on
	// its host:port (127.0.0.1 or localhost). Default DefaultSlackURL.
	SlackURL string
	// DatabaseURL is the runner's URL of the demo database, stored as the
	// tenant secret the demo's spec names (Demo.DatabaseSecret); default
	// the dev stack's server with database vrsky_demo.
	DatabaseURL string
	// SlackFailFirst is how many Slack requests the stand-in refuses
	// before it accepts any; default 2 for demo 4, 0 otherwise; -1 for none.
	SlackFailFirst int
	// APIAddr is where demo 3's target API stand-in listens (host:port,
	// port 0 picks one); default DefaultAPIAddr.
	APIAddr string
	// APIFailFirst is how many calls demo 3's target API refuses with 503
	// before it accepts any; default 2, -1 for none.
	APIFailFirst int
	// Timeout bounds the wait for the demo's messages; default 60 s.
	Timeout time.Duration
}

// Result says what a demo saw.
type Result struct {
	Tenant      string
	Integration string
	RunID       string
	// Deployed is when the runners reported the integration running.
	Deployed time.Time
	// FirstDelivery is when the first message reached its destination.
	FirstDelivery time.Time
	// Slack holds the Slack messages of this run.
	Slack []SlackMessage
	// SlackFailures is how many Slack requests the stand-in refused.
	SlackFailures int
	// Rows is how many rows of this run reached the demo table.
	Rows int
	// RowsComplete is when the table first held every expected row.
	RowsComplete time.Time
	// DeadLetters are the dead letters of this run (demo 2's bad rows).
	DeadLetters []DeadLetter
	// API holds the calls the target API accepted in this run (demo 3).
	API []APICall
	// APIFailures is how many calls the target API refused.
	APIFailures int
}

// Run runs demo n against the dev stack whose data directory is dataDir,
// writing what happens and what to look at to out.
func Run(ctx context.Context, n int, dataDir string, out io.Writer) error {
	_, err := RunWith(ctx, n, dataDir, out, Options{})
	return err
}

// RunWith is Run with options.
func RunWith(ctx context.Context, n int, dataDir string, out io.Writer, opt Options) (Result, error) {
	d, err := Lookup(n)
	if err != nil {
		return Result{}, err
	}
	if out == nil {
		out = io.Discard
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Tenant == "" {
		opt.Tenant = DefaultTenant
	}
	ep, err := devstack.ReadEndpoints(dataDir)
	if err != nil {
		return Result{}, err
	}
	admin, err := os.ReadFile(filepath.Join(dataDir, "admin-key"))
	if err != nil {
		return Result{}, fmt.Errorf("read the admin key of the dev stack in %s: %w", dataDir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()

	api, err := client.New("http://"+ep.HTTP, string(admin))
	if err != nil {
		return Result{}, err
	}
	r := &runner{demo: d, opt: opt, out: out, ep: ep, dataDir: dataDir, runID: newRunID(), api: api}
	r.res = Result{Tenant: opt.Tenant, Integration: d.Name, RunID: r.runID}
	fmt.Fprintf(out, "demo %d: %s (tenant %s, run %s)\n", d.N, d.What, opt.Tenant, r.runID)
	if err := r.tenant(ctx); err != nil {
		return r.res, err
	}
	switch d.N {
	case 1:
		err = r.webhookToSlack(ctx)
	case 2:
		err = r.csvToPostgres(ctx)
	case 3:
		err = r.cdcToAPI(ctx)
	case 4:
		err = r.orderRouting(ctx)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("demo %d: gave up after %s: %w", d.N, opt.Timeout, err)
	}
	return r.res, err
}

type runner struct {
	demo    Demo
	opt     Options
	out     io.Writer
	ep      devstack.Endpoints
	dataDir string
	runID   string
	api     *client.API // with the platform admin key
	tenantC *client.API // with the demo tenant's key
	res     Result
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tenant creates the demo tenant, or reuses it with the API key kept in
// DATA_DIR/demo/<tenant>.key when it was created by an earlier run.
func (r *runner) tenant(ctx context.Context) error {
	keyFile := r.keyFile()
	c, created, err := tenantkey.Ensure(ctx, r.api, r.opt.Tenant, keyFile)
	if errors.Is(err, tenantkey.ErrLost) {
		return fmt.Errorf("%w: run with another --tenant", err)
	}
	if err != nil {
		return err
	}
	r.tenantC = c
	if created {
		fmt.Fprintf(r.out, "tenant %s: created; its API key is in %s\n", r.opt.Tenant, keyFile)
	} else {
		fmt.Fprintf(r.out, "tenant %s: reused (key in %s)\n", r.opt.Tenant, keyFile)
	}
	return nil
}

// spec returns the example's spec as deployed: with the stand-ins'
// addresses (pairs of the spec's text and its replacement).
func (r *runner) spec(repl ...string) ([]byte, error) {
	b, err := examples.FS.ReadFile(r.demo.Dir + "/integration.yaml")
	if err != nil {
		return nil, err
	}
	s := string(b)
	for i := 0; i+1 < len(repl); i += 2 {
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	return []byte(s), nil
}

// deploy creates (or updates) the integration, deploys it and waits until
// the runners report it running.
func (r *runner) deploy(ctx context.Context, spec []byte) error {
	got, err := r.tenantC.Deploy(ctx, r.demo.Name, spec, "vrsky demo "+r.runID, false)
	if err != nil {
		return err
	}
	r.res.Deployed = time.Now()
	fmt.Fprintf(r.out, "integration %s/%s version %d: running\n", r.opt.Tenant, got.Name, got.Version)
	return nil
}

// provision stores the demo's settings as its tenant's secrets (with the
// tenant's key) and sets the tenant's egress policy (with the admin key)
// to allow exactly hosts: the loopback stand-ins and the database the
// demo uses, as host:port spelled in their URLs. Connectors refuse
// loopback and private addresses unless the policy allows them.
func (r *runner) provision(ctx context.Context, secrets map[string]string, hosts ...string) error {
	var allow []string
	for _, h := range hosts {
		if h != "" && !slices.Contains(allow, h) {
			allow = append(allow, h)
		}
	}
	pr, err := r.api.UpdateTenantWithResponse(ctx, r.opt.Tenant, client.TenantPatch{Egress: &client.EgressPolicy{AllowHosts: &allow}})
	if err := client.Check("update tenant "+r.opt.Tenant, pr, err, http.StatusOK); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "tenant %s: egress allowed to %s\n", r.opt.Tenant, strings.Join(allow, ", "))
	names := slices.Sorted(maps.Keys(secrets))
	for _, name := range names {
		sr, err := r.tenantC.PutSecretWithResponse(ctx, name, client.PutSecretJSONRequestBody{Value: secrets[name]})
		if err := client.Check("store secret "+name, sr, err, http.StatusOK, http.StatusNoContent, http.StatusCreated); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.out, "tenant %s: secrets %s stored\n", r.opt.Tenant, strings.Join(names, ", "))
	return nil
}

// hostOf is the host[:port] of a URL as the URL spells it; "" when it
// names none (a Unix socket).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// startSlack starts the Slack stand-in on the host:port of the runner's
// Slack URL, and returns the URL the runner is to post to (the stand-in's
// address when the URL's port was 0).
func (r *runner) startSlack(failFirst int) (*Slack, string, error) {
	raw := cmp.Or(r.opt.SlackURL, DefaultSlackURL)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("Slack URL %q: want an http://host:port/… URL", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		return nil, "", fmt.Errorf("Slack URL %s: the demo's Slack stand-in listens on 127.0.0.1 only", raw)
	}
	s, err := StartSlack(u.Host, failFirst, r.out)
	if err != nil {
		return nil, "", err
	}
	if _, got, _ := net.SplitHostPort(s.Addr()); got != port {
		u.Host = net.JoinHostPort(host, got)
	}
	fmt.Fprintf(r.out, "slack stand-in: listening at %s\n", u)
	return s, u.String(), nil
}

func (r *runner) databaseURL() (string, error) {
	if r.opt.DatabaseURL != "" {
		return r.opt.DatabaseURL, nil
	}
	return DatabaseURL(r.ep.Postgres, DefaultDatabase)
}

// hook posts body to the integration's webhook.
func (r *runner) hook(ctx context.Context, body []byte, headers map[string]string) (int, []byte, error) {
	setHeaders := func(_ context.Context, req *http.Request) error {
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		return nil
	}
	resp, err := r.api.PostWebhookWithBodyWithResponse(ctx, r.opt.Tenant, r.demo.Name, nil, "application/json", bytes.NewReader(body), setHeaders)
	if err != nil {
		return 0, nil, fmt.Errorf("post webhook: %w", err)
	}
	return resp.StatusCode(), resp.Body, nil
}

// GitHubSignature is X-Hub-Signature-256 of body under secret.
func GitHubSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
