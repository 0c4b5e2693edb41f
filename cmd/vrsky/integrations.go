package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vrsky/vrsky/client"
)

const integrationsUsage = `Usage: vrsky integrations COMMAND [ID] [flags]

  list [--status S]     the tenant's integrations
  get ID                an integration and its latest spec
  status ID             its state, each stage's counters and its dead letters
  logs ID [--limit N]   its execution log, newest first
  versions ID           its spec versions, newest first
  deploy ID             roll the latest version out and run it
  start ID              run the deployed version again
  stop ID               stop the deployed version
  delete ID             stop it and delete it with its versions (the log stays)

--json prints the API's JSON. deploy, start, stop and delete wait until the
change is carried out unless --wait=false. --tenant, --data-dir, --api and
--key pick the API and the key as for vrsky apply.
`

// integrationCommands are the subcommands of `vrsky integrations`; all but
// list name an integration.
var integrationCommands = []string{"list", "get", "status", "logs", "versions", "deploy", "start", "stop", "delete"}

// runIntegrations reads and changes the tenant's integrations through the
// REST API.
func runIntegrations(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, integrationsUsage)
		return fmt.Errorf("%w: vrsky integrations COMMAND [ID]", errUsage)
	}
	cmd := args[0]
	switch {
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, integrationsUsage)
		return nil
	case !slices.Contains(integrationCommands, cmd):
		fmt.Fprint(stderr, integrationsUsage)
		return fmt.Errorf("%w: unknown integrations command %q", errUsage, cmd)
	}

	fs := flag.NewFlagSet("integrations "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, integrationsUsage+"\nFlags of "+cmd+":\n")
		fs.PrintDefaults()
	}
	target := addTenantFlags(fs)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	timeout := fs.Duration("timeout", 60*time.Second, "how long the command may take, waiting included")
	var (
		status, reason string
		limit          int
		wait           bool
	)
	switch cmd {
	case "list":
		fs.StringVar(&status, "status", "", "only integrations in this status: running, stopped, degraded or pending")
	case "logs":
		fs.IntVar(&limit, "limit", 50, "how many entries to print, newest first")
	case "deploy", "start", "stop", "delete":
		fs.BoolVar(&wait, "wait", true, "wait until the change is carried out")
		fs.StringVar(&reason, "reason", "vrsky integrations "+cmd, "why, recorded in the execution log")
	}
	id, err := parseWithID(fs, args[1:], cmd != "list")
	if err != nil {
		return err
	}
	if cmd == "logs" && limit < 1 {
		return fmt.Errorf("%w: --limit must be at least 1", errUsage)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	api, err := target.client(ctx)
	if err != nil {
		return err
	}
	out := integrationsOutput{w: stdout, asJSON: *asJSON}
	switch cmd {
	case "list":
		list, err := api.AllIntegrations(ctx, status)
		return out.print(items(list), err, func(w io.Writer) { printIntegrations(w, list) })
	case "get":
		r, err := api.GetIntegrationWithResponse(ctx, id)
		if err := client.Check("get integration "+id, r, err, http.StatusOK); err != nil {
			return err
		}
		return out.print(r.Body, nil, func(w io.Writer) { printIntegration(w, *r.JSON200) })
	case "status":
		r, err := api.GetIntegrationStatusWithResponse(ctx, id)
		if err := client.Check("get status of integration "+id, r, err, http.StatusOK); err != nil {
			return err
		}
		return out.print(r.Body, nil, func(w io.Writer) { printStatus(w, *r.JSON200) })
	case "logs":
		events, err := api.RecentLogs(ctx, id, limit)
		return out.print(items(events), err, func(w io.Writer) { printEvents(w, events) })
	case "versions":
		r, err := api.ListIntegrationVersionsWithResponse(ctx, id)
		if err := client.Check("list versions of integration "+id, r, err, http.StatusOK); err != nil {
			return err
		}
		return out.print(r.Body, nil, func(w io.Writer) { printVersions(w, deref(r.JSON200.Items)) })
	}
	accepted, err := api.ChangeIntegration(ctx, id, cmd, reason)
	if err := out.print(accepted.Body, err, func(w io.Writer) { printAccepted(w, id, accepted.ChangeAccepted) }); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	if err := api.AwaitChange(ctx, id, accepted); err != nil {
		return err
	}
	if out.asJSON {
		return nil
	}
	if accepted.Action == "delete" {
		fmt.Fprintf(stdout, "deleted %s\n", id)
		return nil
	}
	r, err := api.GetIntegrationStatusWithResponse(ctx, id)
	if err := client.Check("get status of integration "+id, r, err, http.StatusOK); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s version %d %s\n", id, r.JSON200.Version, r.JSON200.Status)
	return nil
}

// parseWithID parses args, which may hold the integration's ID before,
// between or after the flags. It is a usage error for the ID to be missing
// when needed, present when not, or followed by another argument.
func parseWithID(fs *flag.FlagSet, args []string, needID bool) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%w: %w", errUsage, err)
	}
	var id string
	if rest := fs.Args(); len(rest) > 0 {
		id = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return "", fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	switch {
	case needID && id == "":
		fs.Usage()
		return "", fmt.Errorf("%w: vrsky %s ID: no integration ID given", errUsage, fs.Name())
	case !needID && id != "":
		return "", fmt.Errorf("%w: vrsky %s takes no ID, got %q", errUsage, fs.Name(), id)
	case fs.NArg() > 0:
		return "", fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return id, nil
}

// integrationsOutput prints an answer of the API: its JSON as is, indented,
// or readably.
type integrationsOutput struct {
	w      io.Writer
	asJSON bool
}

// print prints raw (with json) or what readable writes, unless the request
// failed with err.
func (o integrationsOutput) print(raw []byte, err error, readable func(io.Writer)) error {
	if err != nil {
		return err
	}
	if !o.asJSON {
		readable(o.w)
		return nil
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("indent the API's answer: %w", err)
	}
	b.WriteByte('\n')
	_, err = o.w.Write(b.Bytes())
	return err
}

// items is the JSON of a collection read page by page, as the API sends
// one page: {"items":[…]}.
func items[T any](list []T) []byte {
	b, _ := json.Marshal(struct {
		Items []T `json:"items"`
	}{list})
	return b
}

// deref is *p, or the zero value when p is nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func printIntegrations(w io.Writer, list []client.Integration) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no integrations")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tVERSION\tDEPLOYED\tSTATUS\tDESIRED\tUPDATED")
	for _, it := range list {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", it.Id, it.Version, versionOrNone(it.DeployedVersion),
			it.Status, it.DesiredStatus, when(it.UpdatedAt))
	}
	_ = tw.Flush()
}

func printIntegration(w io.Writer, it client.Integration) {
	tw := table(w)
	fmt.Fprintf(tw, "id:\t%s\n", it.Id)
	fmt.Fprintf(tw, "version:\t%d (deployed: %s)\n", it.Version, versionOrNone(it.DeployedVersion))
	fmt.Fprintf(tw, "status:\t%s (desired: %s)\n", it.Status, it.DesiredStatus)
	if e := deref(it.LastError); e != "" {
		fmt.Fprintf(tw, "last error:\t%s\n", e)
	}
	fmt.Fprintf(tw, "consumer:\t%s\n", it.Spec.Consumer.Connector)
	if steps := deref(it.Spec.Steps); len(steps) > 0 {
		fmt.Fprintf(tw, "steps:\t%s\n", stepNames(steps))
	}
	fmt.Fprintf(tw, "producers:\t%s\n", producerNames(it.Spec.Producers))
	if sched := deref(it.Spec.Schedule); sched != "" {
		fmt.Fprintf(tw, "schedule:\t%s\n", sched)
	}
	fmt.Fprintf(tw, "created:\t%s\n", when(it.CreatedAt))
	fmt.Fprintf(tw, "updated:\t%s\n", when(it.UpdatedAt))
	_ = tw.Flush()
}

func printStatus(w io.Writer, st client.IntegrationStatus) {
	tw := table(w)
	fmt.Fprintf(tw, "id:\t%s\n", st.Id)
	fmt.Fprintf(tw, "status:\t%s (desired: %s)\n", st.Status, st.DesiredStatus)
	fmt.Fprintf(tw, "version:\t%s (latest: %d)\n", versionOrNone(st.Version), st.LatestVersion)
	if e := deref(st.LastError); e != "" {
		fmt.Fprintf(tw, "last error:\t%s\n", e)
	}
	if r := st.Runner; r != nil {
		fmt.Fprintf(tw, "runner:\t%s reports version %d %s at %s\n", r.Runner, r.Version, r.Status, when(r.UpdatedAt))
		if e := deref(r.LastError); e != "" {
			fmt.Fprintf(tw, "runner error:\t%s\n", e)
		}
	} else {
		fmt.Fprintf(tw, "runner:\tnone reported\n")
	}
	fmt.Fprintf(tw, "dead letters:\t%d\n", st.DeadLetters)
	fmt.Fprintf(tw, "updated:\t%s\n", when(st.UpdatedAt))
	_ = tw.Flush()
	stages := deref(st.Stages)
	if len(stages) == 0 {
		return
	}
	fmt.Fprintln(w, "stages:")
	tw = table(w)
	fmt.Fprintln(tw, "  STAGE\tFINISHED\tWAITING\tIN FLIGHT\tREDELIVERED")
	for _, s := range stages {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\n", s.Stage, s.Acked, s.Pending, s.InFlight, s.Redelivered)
	}
	_ = tw.Flush()
}

func printEvents(w io.Writer, events []client.IntegrationEvent) {
	tw := table(w)
	fmt.Fprintln(tw, "AT\tACTION\tFROM\tTO\tACTOR\tREASON")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(e.At), e.Action, orDash(deref(e.FromStatus)), orDash(deref(e.ToStatus)),
			orDash(e.Actor), orDash(deref(e.Reason)))
	}
	_ = tw.Flush()
}

func printVersions(w io.Writer, versions []client.IntegrationVersion) {
	tw := table(w)
	fmt.Fprintln(tw, "VERSION\tCREATED\tBY\tCONSUMER\tPRODUCERS")
	for _, v := range versions {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", v.Version, when(v.CreatedAt), orDash(deref(v.CreatedBy)),
			v.Spec.Consumer.Connector, producerNames(v.Spec.Producers))
	}
	_ = tw.Flush()
}

// printAccepted says which change was accepted. The version is named for a
// deploy only: for start and stop it is the one recorded when the change
// was accepted, which can lag behind a deploy still being carried out.
func printAccepted(w io.Writer, id string, c client.ChangeAccepted) {
	if c.Action == "deploy" {
		fmt.Fprintf(w, "deploy of %s version %d accepted\n", id, c.Version)
		return
	}
	fmt.Fprintf(w, "%s of %s accepted\n", c.Action, id)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// when prints t to the second in local time.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func versionOrNone(v int64) string {
	if v == 0 {
		return "none"
	}
	return fmt.Sprint(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stepNames lists the steps' connectors in order: "a → b".
func stepNames(steps []client.Step) string {
	names := make([]string, 0, len(steps))
	for _, s := range steps {
		names = append(names, s.Connector)
	}
	return strings.Join(names, " → ")
}

// producerNames lists the producers by name with their connectors:
// "archive (s3), out (file)".
func producerNames(producers map[string]client.Step) string {
	names := make([]string, 0, len(producers))
	for _, name := range slices.Sorted(maps.Keys(producers)) {
		names = append(names, fmt.Sprintf("%s (%s)", name, producers[name].Connector))
	}
	return strings.Join(names, ", ")
}
