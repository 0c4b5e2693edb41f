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

// schedulesGroup is `vrsky schedules`: the cron schedules of integrations
// whose spec has a schedule.
var schedulesGroup = group{
	name:    "schedules",
	summary: "Show, pause, resume, trigger and backfill an integration's schedule (specs with schedule:).",
	subs: []subcommand{
		{name: "get", args: []string{"INTEGRATION"}, summary: "the schedule, its next runs and its recent ones", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.GetIntegrationScheduleWithResponse(ctx, c.args[0])
			if err := client.Check("get schedule of integration "+c.args[0], r, err, http.StatusOK); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) { printSchedule(w, *r.JSON200) })
		})},
		{name: "pause", args: []string{"INTEGRATION"}, summary: "start no run on the schedule until resumed", flags: scheduleNote("pause")},
		{name: "resume", args: []string{"INTEGRATION"}, summary: "start runs on the schedule again", flags: scheduleNote("resume")},
		{name: "trigger", args: []string{"INTEGRATION"}, summary: "start one run now", flags: noFlags(func(ctx context.Context, c call) error {
			r, err := c.api.TriggerIntegrationScheduleWithResponse(ctx, c.args[0])
			if err := client.Check("trigger schedule of integration "+c.args[0], r, err, http.StatusAccepted); err != nil {
				return err
			}
			return c.out.print(r.Body, nil, func(w io.Writer) { fmt.Fprintf(w, "run of %s triggered\n", c.args[0]) })
		})},
		{name: "backfill", args: []string{"INTEGRATION"}, summary: "run the schedule's times in a past window",
			flags: func(fs *flag.FlagSet) func(context.Context, call) error {
				start := fs.String("start", "", "start of the window (RFC 3339), included")
				end := fs.String("end", "", "end of the window (RFC 3339), included; default now")
				return func(ctx context.Context, c call) error {
					s, err := time.Parse(time.RFC3339, *start)
					if err != nil {
						return fmt.Errorf("%w: --start: %q is not an RFC 3339 time", errUsage, *start)
					}
					e := time.Now().UTC().Truncate(time.Second)
					if *end != "" {
						if e, err = time.Parse(time.RFC3339, *end); err != nil {
							return fmt.Errorf("%w: --end: %q is not an RFC 3339 time", errUsage, *end)
						}
					}
					r, err := c.api.BackfillIntegrationScheduleWithResponse(ctx, c.args[0], client.BackfillInputBody{Start: s, End: e})
					if err := client.Check("backfill schedule of integration "+c.args[0], r, err, http.StatusAccepted); err != nil {
						return err
					}
					return c.out.print(r.Body, nil, func(w io.Writer) {
						fmt.Fprintf(w, "backfill of %s accepted; scheduled times in the window: %d\n", c.args[0], deref(r.JSON202.ScheduledTimes))
					})
				}
			}},
	},
}

// scheduleNote is the flags and run of vrsky schedules pause and resume.
func scheduleNote(action string) func(*flag.FlagSet) func(context.Context, call) error {
	return func(fs *flag.FlagSet) func(context.Context, call) error {
		reason := fs.String("reason", "vrsky schedules "+action, "why; the schedule keeps it as its note")
		return func(ctx context.Context, c call) error {
			body := client.ChangeReason{Reason: reason}
			var (
				resp client.Response
				err  error
				raw  []byte
				sch  *client.IntegrationSchedule
			)
			if action == "pause" {
				r, e := c.api.PauseIntegrationScheduleWithResponse(ctx, c.args[0], body)
				resp, err = r, e
				if e == nil {
					raw, sch = r.Body, r.JSON200
				}
			} else {
				r, e := c.api.ResumeIntegrationScheduleWithResponse(ctx, c.args[0], body)
				resp, err = r, e
				if e == nil {
					raw, sch = r.Body, r.JSON200
				}
			}
			if err := client.Check(action+" schedule of integration "+c.args[0], resp, err, http.StatusOK); err != nil {
				return err
			}
			return c.out.print(raw, nil, func(w io.Writer) { printSchedule(w, *sch) })
		}
	}
}

func printSchedule(w io.Writer, s client.IntegrationSchedule) {
	tw := table(w)
	fmt.Fprintf(tw, "integration:\t%s (version %d)\n", s.Integration, s.Version)
	fmt.Fprintf(tw, "cron:\t%s (UTC)\n", s.Cron)
	state := "active"
	if s.Paused {
		state = "paused"
	}
	if s.Running {
		state += ", a run in progress"
	}
	fmt.Fprintf(tw, "state:\t%s\n", state)
	if n := deref(s.Note); n != "" {
		fmt.Fprintf(tw, "note:\t%s\n", n)
	}
	for i, t := range deref(s.NextRuns) {
		label := ""
		if i == 0 {
			label = "next runs:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, when(t))
	}
	_ = tw.Flush()
}
