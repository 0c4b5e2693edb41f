package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/vrsky/vrsky/client"
)

// webhookToSlack is demo 1: a signed push and a signed pull_request event
// become two Slack messages; a badly signed request is refused.
func (r *runner) webhookToSlack(ctx context.Context) error {
	fail := r.opt.SlackFailFirst
	if fail < 0 {
		fail = 0
	}
	slack, slackURL, err := r.startSlack(fail)
	if err != nil {
		return err
	}
	defer slack.Close()
	secret := cmp.Or(r.opt.GitHubSecret, DefaultGitHubSecret)
	if err := r.provision(ctx, map[string]string{SecretGitHub: secret, SecretSlackURL: slackURL}, hostOf(slackURL)); err != nil {
		return err
	}
	spec, err := r.spec()
	if err != nil {
		return err
	}
	if err := r.deploy(ctx, spec); err != nil {
		return err
	}
	events := []struct{ kind, body string }{
		{"push", fmt.Sprintf(`{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246",
"after":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","compare":"https://github.com/acme/shop/compare/6113728f27ae...59b20b8d5c6f",
"repository":{"id":1296269,"name":"shop","full_name":"acme/shop","private":false,"html_url":"https://github.com/acme/shop"},
"pusher":{"name":"octocat","email":"octocat@github.com"},"sender":{"login":"octocat","id":1},
"commits":[{"id":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","message":"Fix checkout rounding (run %[1]s)","author":{"name":"Mona","username":"octocat"}}],
"head_commit":{"id":"59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5","message":"Fix checkout rounding (run %[1]s)","timestamp":"2026-01-05T10:00:00Z"}}`, r.runID)},
		{"pull_request", fmt.Sprintf(`{"action":"opened","number":42,
"pull_request":{"id":1,"number":42,"state":"open","title":"Add order export (run %[1]s)","html_url":"https://github.com/acme/shop/pull/42",
"user":{"login":"hubot","id":2},"head":{"ref":"export"},"base":{"ref":"main"},"merged":false},
"repository":{"id":1296269,"name":"shop","full_name":"acme/shop","private":false,"html_url":"https://github.com/acme/shop"},
"sender":{"login":"hubot","id":2}}`, r.runID)},
	}
	// A request signed with the wrong secret never gets in.
	bad := []byte(events[0].body)
	st, _, err := r.hook(ctx, bad, map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": GitHubSignature("wrong-"+secret, bad)})
	if err != nil {
		return err
	}
	if st != http.StatusUnauthorized {
		return fmt.Errorf("a webhook with a wrong signature was answered %d, want 401", st)
	}
	fmt.Fprintln(r.out, "webhook: a request with a wrong X-Hub-Signature-256 was refused (401)")
	for i, ev := range events {
		body := []byte(ev.body)
		st, raw, err := r.hook(ctx, body, map[string]string{
			"X-GitHub-Event": ev.kind, "X-GitHub-Delivery": fmt.Sprintf("%s-%d", r.runID, i),
			"Idempotency-Key": fmt.Sprintf("gh-%s-%d", r.runID, i), "X-Hub-Signature-256": GitHubSignature(secret, body),
		})
		if err != nil {
			return err
		}
		switch {
		case st == http.StatusUnauthorized:
			return fmt.Errorf("the webhook refused a request signed with the tenant's secret %s as the demo stored it: %s",
				SecretGitHub, client.ErrorOf(st, raw))
		case st != http.StatusAccepted:
			return fmt.Errorf("webhook %s answered %s", ev.kind, client.ErrorOf(st, raw))
		}
		fmt.Fprintf(r.out, "webhook: signed %s event accepted (202)\n", ev.kind)
	}
	if err := r.waitSlack(ctx, slack, len(events)); err != nil {
		return err
	}
	fmt.Fprintf(r.out, `
done: %d GitHub events reached Slack (stand-in) as messages.
look at:
  the spec:    examples/%s/integration.yaml
  its status:  curl -H "Authorization: Bearer $(cat %s)" %s/v1/integrations/%s/status
  its history: %s (workflow integration/%s/%s)
`, len(events), r.demo.Dir, r.keyFile(), r.api.Server(), r.demo.Name, r.ep.TemporalUI, r.opt.Tenant, r.demo.Name)
	return nil
}

func (r *runner) keyFile() string { return r.dataDir + "/demo/" + r.opt.Tenant + ".key" }

// waitSlack waits until the stand-in holds want messages of this run.
func (r *runner) waitSlack(ctx context.Context, slack *Slack, want int) error {
	for {
		got := slack.Matching(r.runID)
		r.res.Slack, r.res.SlackFailures = got, slack.Failed()
		if len(got) > 0 && (r.res.FirstDelivery.IsZero() || got[0].At.Before(r.res.FirstDelivery)) {
			r.res.FirstDelivery = got[0].At
		}
		if len(got) >= want {
			return nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("the Slack stand-in received %d of %d messages (it refused %d requests on purpose)", len(got), want, slack.Failed())
		}
	}
}

// order is one of demo 4's orders.
type order struct {
	ID       string `json:"id"`
	Customer string `json:"customer"`
	Items    []item `json:"items"`
}

type item struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

// orderRouting is demo 4: four orders, two of them big, reach the table;
// the big ones also reach Slack, which fails at first without holding back
// the table.
func (r *runner) orderRouting(ctx context.Context) error {
	fail := outage(r.opt.SlackFailFirst)
	dbURL, err := r.demoDatabase(ctx)
	if err != nil {
		return err
	}
	if err := Exec(ctx, dbURL, ordersTable); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "sample table: demo_orders in %s\n", redact(dbURL))
	slack, slackURL, err := r.startSlack(fail)
	if err != nil {
		return err
	}
	defer slack.Close()
	if err := r.provision(ctx, map[string]string{r.demo.DatabaseSecret: dbURL, SecretSlackURL: slackURL}, hostOf(slackURL), hostOf(dbURL)); err != nil {
		return err
	}
	spec, err := r.spec()
	if err != nil {
		return err
	}
	if err := r.deploy(ctx, spec); err != nil {
		return err
	}
	orders := []order{
		{ID: r.runID + "-1", Customer: "ada", Items: []item{{"desk", 3, 500}}},                   // 1500: big
		{ID: r.runID + "-2", Customer: "bob", Items: []item{{"pen", 10, 2.5}}},                   // 25
		{ID: r.runID + "-3", Customer: "cyd", Items: []item{{"chair", 4, 300}, {"lamp", 1, 80}}}, // 1280: big
		{ID: r.runID + "-4", Customer: "dan", Items: []item{{"mug", 2, 12}}},                     // 24
	}
	send := func(o order, key string) error {
		body, _ := json.Marshal(o)
		st, raw, err := r.hook(ctx, body, map[string]string{"Idempotency-Key": key})
		if err != nil {
			return err
		}
		if st != http.StatusAccepted {
			return fmt.Errorf("order %s: webhook answered %s", o.ID, client.ErrorOf(st, raw))
		}
		return nil
	}
	for _, o := range orders {
		if err := send(o, "order-"+o.ID); err != nil {
			return err
		}
	}
	// The same order again, as a client retrying with a new key would: the
	// table's key keeps it once.
	if err := send(orders[1], "order-"+orders[1].ID+"-again"); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "webhook: %d orders accepted (one of them twice); 2 are over 1000\n", len(orders))

	count := func() (int, error) {
		return QueryInt(ctx, dbURL, `SELECT count(*) FROM demo_orders WHERE order_id LIKE $1`, r.runID+"-%")
	}
	for {
		n, err := count()
		if err == nil {
			r.res.Rows = n
			if n > 0 && r.res.FirstDelivery.IsZero() {
				r.res.FirstDelivery = time.Now()
			}
			if n >= len(orders) {
				r.res.RowsComplete = time.Now()
				break
			}
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("demo_orders holds %d of %d orders of this run", r.res.Rows, len(orders))
		}
	}
	fmt.Fprintf(r.out, "postgres: all %d orders are in demo_orders (Slack stand-in so far: %d received, %d refused)\n",
		len(orders), len(slack.Matching(r.runID)), slack.Failed())
	first := r.res.FirstDelivery
	if err := r.waitSlack(ctx, slack, 2); err != nil {
		return err
	}
	r.res.FirstDelivery = first
	// Give a duplicate a moment to show up, should it get through.
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	n, err := count()
	if err != nil {
		return err
	}
	if r.res.Rows = n; n != len(orders) {
		return fmt.Errorf("demo_orders holds %d rows of this run, want %d", n, len(orders))
	}
	fmt.Fprintf(r.out, `
done: %d orders in PostgreSQL, %d big ones on Slack after it refused %d requests.
look at:
  the table:   psql '%s' -c "SELECT * FROM demo_orders WHERE order_id LIKE '%s-%%'"
  the spec:    examples/%s/integration.yaml
  its status:  curl -H "Authorization: Bearer $(cat %s)" %s/v1/integrations/%s/status
`, n, len(r.res.Slack), r.res.SlackFailures, redact(dbURL), r.runID, r.demo.Dir, r.keyFile(), r.api.Server(), r.demo.Name)
	return nil
}

// outage turns a FailFirst option into how many requests a stand-in
// refuses: 0 means the demo's default of 2, negative means none.
func outage(failFirst int) int {
	switch {
	case failFirst == 0:
		return 2
	case failFirst < 0:
		return 0
	}
	return failFirst
}

// demoDatabase makes sure the demos' database exists and returns its URL.
func (r *runner) demoDatabase(ctx context.Context) (string, error) {
	dbURL, err := r.databaseURL()
	if err != nil {
		return "", err
	}
	if err := EnsureDatabase(ctx, r.ep.Postgres, dbURL); err != nil {
		return "", err
	}
	return dbURL, nil
}
