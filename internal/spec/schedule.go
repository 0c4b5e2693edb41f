package spec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// scheduleParser reads the standard five cron fields and the @hourly-style
// descriptors (but not @every, whose durations Temporal reads differently).
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CheckSchedule checks an integration's schedule: a standard five-field cron
// expression (minute, hour, day of month, month, day of week; ranges, lists,
// steps, and names such as JAN or MON) or one of @hourly, @daily,
// @midnight, @weekly, @monthly, @yearly and @annually. Schedules run in UTC.
//
// It accepts only what both this parser and Temporal's read the same way,
// so a spec that passes is one a Temporal Schedule runs as written.
func CheckSchedule(expr string) error {
	expr = strings.TrimSpace(expr)
	fields := strings.Fields(expr)
	switch {
	case expr == "":
		return errors.New("empty: want a cron expression such as \"*/5 * * * *\"")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return fmt.Errorf("%q: time zones are not supported; schedules run in UTC", expr)
	case strings.HasPrefix(expr, "@every"):
		return fmt.Errorf("%q: @every is not supported; use the cron fields (\"*/15 * * * *\")", expr)
	case strings.HasPrefix(expr, "@"):
		if len(fields) != 1 {
			return fmt.Errorf("%q: a descriptor stands alone", expr)
		}
	case len(fields) != 5:
		return fmt.Errorf("%q: want 5 fields (minute hour day-of-month month day-of-week), got %d", expr, len(fields))
	case strings.Contains(expr, "?"):
		return fmt.Errorf("%q: '?' is not supported; use '*'", expr)
	}
	if _, err := scheduleParser.Parse(expr); err != nil {
		return fmt.Errorf("%q: %w", expr, err)
	}
	return nil
}

// ScheduleTimes returns the times of a valid schedule (see CheckSchedule)
// from start to end, both included, in UTC: at most limit of them.
func ScheduleTimes(expr string, start, end time.Time, limit int) ([]time.Time, error) {
	if err := CheckSchedule(expr); err != nil {
		return nil, err
	}
	sched, err := scheduleParser.Parse(strings.TrimSpace(expr))
	if err != nil {
		return nil, err
	}
	start, end = start.UTC(), end.UTC()
	var out []time.Time
	// Next returns times strictly after its argument, whole seconds.
	for t := sched.Next(start.Add(-time.Second)); !t.IsZero() && !t.After(end) && len(out) < limit; t = sched.Next(t) {
		if !t.Before(start) {
			out = append(out, t)
		}
	}
	return out, nil
}
