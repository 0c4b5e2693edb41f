package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vrsky/vrsky/client"
)

// dlqFilter is the flags that pick dead letters, as the API's filters.
type dlqFilter struct {
	integration, producer, errText, since, until string
}

func addDLQFilter(fs *flag.FlagSet) *dlqFilter {
	f := &dlqFilter{}
	fs.StringVar(&f.integration, "integration", "", "only this integration's")
	fs.StringVar(&f.producer, "producer", "", "only those that failed delivering to this producer")
	fs.StringVar(&f.errText, "error", "", "only those whose error contains this text")
	fs.StringVar(&f.since, "since", "", "only those dead-lettered at or after this time (RFC 3339)")
	fs.StringVar(&f.until, "until", "", "only those dead-lettered before this time (RFC 3339)")
	return f
}

// times parses --since and --until.
func (f *dlqFilter) times() (since, until *time.Time, err error) {
	parse := func(name, v string) (*time.Time, error) {
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("%w: --%s: %q is not an RFC 3339 time", errUsage, name, v)
		}
		return &t, nil
	}
	if since, err = parse("since", f.since); err != nil {
		return nil, nil, err
	}
	until, err = parse("until", f.until)
	return since, until, err
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// dlqGroup is `vrsky dlq`: the tenant's dead letters.
var dlqGroup = group{
	name:    "dlq",
	summary: "Read, replay and discard the tenant's dead letters (needs a key with scope dlq).",
	subs: []subcommand{
		{name: "list", summary: "dead letters, oldest first", flags: func(fs *flag.FlagSet) func(context.Context, call) error {
			filter := addDLQFilter(fs)
			limit := fs.Int("limit", 50, "at most this many (1 to 100)")
			return func(ctx context.Context, c call) error {
				since, until, err := filter.times()
				if err != nil {
					return err
				}
				if *limit < 1 || *limit > client.MaxPageSize {
					return fmt.Errorf("%w: --limit must be 1 to %d", errUsage, client.MaxPageSize)
				}
				r, err := c.api.ListDeadLettersWithResponse(ctx, &client.ListDeadLettersParams{
					Integration: nonEmpty(filter.integration), Producer: nonEmpty(filter.producer), Error: nonEmpty(filter.errText),
					Since: since, Until: until, Limit: client.Ptr(int64(*limit)),
				})
				if err := client.Check("list dead letters", r, err, http.StatusOK); err != nil {
					return err
				}
				return c.out.print(r.Body, nil, func(w io.Writer) {
					list := deref(r.JSON200.Items)
					if len(list) == 0 {
						fmt.Fprintln(w, "no dead letters")
						return
					}
					tw := table(w)
					fmt.Fprintln(tw, "ID\tAT\tINTEGRATION\tSTAGE\tATTEMPTS\tERROR")
					for _, d := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.Id, when(d.At), d.Integration, d.Stage, d.Attempts, d.Error)
					}
					_ = tw.Flush()
				})
			}
		}},
		{name: "get", args: []string{"ID"}, summary: "one dead letter with its body", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.GetDeadLetterWithResponse(ctx, c.args[0])
			if err := client.Check("get dead letter "+c.args[0], r, err, http.StatusOK); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) {
				d := r.JSON200
				tw := table(w)
				fmt.Fprintf(tw, "id:\t%s\n", d.Id)
				fmt.Fprintf(tw, "message:\t%s\n", d.MessageId)
				fmt.Fprintf(tw, "integration:\t%s\n", d.Integration)
				fmt.Fprintf(tw, "stage:\t%s\n", d.Stage)
				fmt.Fprintf(tw, "attempts:\t%d\n", d.Attempts)
				fmt.Fprintf(tw, "error:\t%s\n", d.Error)
				fmt.Fprintf(tw, "at:\t%s\n", when(d.At))
				fmt.Fprintf(tw, "body:\t%d bytes\n", d.BodySize)
				_ = tw.Flush()
			})
		})},
		{name: "replay", summary: "publish dead letters into their pipeline again, each once", flags: dlqAction("replay")},
		{name: "discard", summary: "delete dead letters", flags: dlqAction("discard")},
		{name: "replay-status", args: []string{"REPLAY-ID"}, summary: "how far a replay got", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.GetDlqReplayWithResponse(ctx, c.args[0])
			if err := client.Check("get replay "+c.args[0], r, err, http.StatusOK); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) {
				p := r.JSON200
				fmt.Fprintf(w, "replay %s: %s, %d of %d done, %d failed\n", p.ReplayId, p.State, p.Done, p.Total, p.Failed)
			})
		})},
	},
}

// dlqAction is the flags and run of vrsky dlq replay and discard.
func dlqAction(action string) func(*flag.FlagSet) func(context.Context, call) error {
	return func(fs *flag.FlagSet) func(context.Context, call) error {
		filter := addDLQFilter(fs)
		ids := fs.String("ids", "", "only these dead letters (comma-separated IDs)")
		maxMessages := fs.Int64("max", 0, "at most this many; 0: all that match")
		all := fs.Bool("all", false, "with no other filter: every dead letter of the tenant")
		return func(ctx context.Context, c call) error {
			since, until, err := filter.times()
			if err != nil {
				return err
			}
			body := client.DLQActionBody{
				Integration: nonEmpty(filter.integration), Producer: nonEmpty(filter.producer), Error: nonEmpty(filter.errText),
				Since: since, Until: until,
			}
			if list := splitList(*ids); len(list) > 0 {
				body.Ids = &list
			}
			if *maxMessages < 0 {
				return fmt.Errorf("%w: --max must not be negative", errUsage)
			}
			if *maxMessages > 0 {
				body.MaxMessages = maxMessages
			}
			if body == (client.DLQActionBody{}) && !*all {
				return fmt.Errorf("%w: vrsky dlq %s: pick dead letters (--integration, --ids…) or give --all", errUsage, action)
			}
			var (
				resp     client.Response
				accepted *client.DLQActionAccepted
				raw      []byte
			)
			if action == "replay" {
				r, e := c.api.ReplayDeadLettersWithResponse(ctx, nil, body)
				resp, err = r, e
				if e == nil {
					accepted, raw = r.JSON202, r.Body
				}
			} else {
				r, e := c.api.DiscardDeadLettersWithResponse(ctx, nil, body)
				resp, err = r, e
				if e == nil {
					accepted, raw = r.JSON202, r.Body
				}
			}
			if err := client.Check(action+" dead letters", resp, err, http.StatusAccepted); err != nil {
				return err
			}
			return c.out.print(raw, nil, func(w io.Writer) {
				fmt.Fprintf(w, "%s accepted: %s (vrsky dlq replay-status %s)\n", action, accepted.ReplayId, accepted.ReplayId)
			})
		}
	}
}
