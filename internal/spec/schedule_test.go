package spec

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckScheduleAcceptsStandardCron(t *testing.T) {
	for _, expr := range []string{
		"*/5 * * * *", "0 3 * * *", "15,45 8-18 * * MON-FRI", "0 0 1 JAN,jul *", "0 12 * * 0",
		"  30 2 * * 1-5  ", "@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually",
	} {
		require.NoError(t, CheckSchedule(expr), expr)
	}
}

func TestCheckScheduleRejectsWhatTemporalWouldReadDifferently(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{"* * * *", "want 5 fields"},
		{"0 * * * * *", "want 5 fields"},
		{"0 0 * * * 2027", "want 5 fields"},
		{"CRON_TZ=Europe/Paris 0 3 * * *", "time zones are not supported"},
		{"TZ=UTC 0 3 * * *", "time zones are not supported"},
		{"@every 5m", "@every is not supported"},
		{"@daily 3", "stands alone"},
		{"@sometimes", "@sometimes"},
		{"0 0 ? * MON", "'?' is not supported"},
		{"60 * * * *", "above maximum"},
		{"* 24 * * *", "above maximum"},
		{"* * 0 * *", "below minimum"},
		{"* * * 13 *", "above maximum"},
		{"* * * * 7", "above maximum"},
		{"*/0 * * * *", "step"},
		{"a b c d e", "failed to parse"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			err := CheckSchedule(tc.expr)
			require.Error(t, err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestValidateLocatesABadSchedule(t *testing.T) {
	_, err := ParseJSON([]byte(`{"name":"a","consumer":{"connector":"file"},"producers":{"p":{"connector":"y"}},"schedule":"every day"}`))
	require.ErrorContains(t, err, `schedule: "every day": want 5 fields`)

	in, err := ParseYAML([]byte("name: a\nconsumer: {connector: file}\nproducers: {p: {connector: y}}\nschedule: '0 6 * * MON-FRI'\n"))
	require.NoError(t, err)
	require.Equal(t, "0 6 * * MON-FRI", in.Schedule)
}

func TestScheduleTimesIncludesBothEnds(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	got, err := ScheduleTimes("0 6 * * *", at("2026-11-01T06:00:00Z"), at("2026-11-03T06:00:00Z"), 10)
	require.NoError(t, err)
	require.Equal(t, []time.Time{at("2026-11-01T06:00:00Z"), at("2026-11-02T06:00:00Z"), at("2026-11-03T06:00:00Z")}, got)

	got, err = ScheduleTimes("*/15 * * * *", at("2026-11-01T07:00:00.5+01:00"), at("2026-11-01T07:40:00+01:00"), 10)
	require.NoError(t, err)
	require.Equal(t, []time.Time{at("2026-11-01T06:15:00Z"), at("2026-11-01T06:30:00Z")}, got, "in UTC, a start with a fraction excludes its whole second")

	got, err = ScheduleTimes("* * * * *", at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"), 5)
	require.NoError(t, err)
	require.Len(t, got, 5, "at most limit")

	got, err = ScheduleTimes("0 0 1 1 *", at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"), 5)
	require.NoError(t, err)
	require.Empty(t, got)

	_, err = ScheduleTimes("nope", time.Time{}, time.Time{}, 1)
	require.Error(t, err)
}
