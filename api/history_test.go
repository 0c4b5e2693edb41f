package api

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/store"
)

func TestIntegrationMetricsHistory(t *testing.T) {
	t.Parallel()
	e := newConsoleEnv(t, false, nil)
	key, _ := e.createTenant(t, "acme")
	other, _ := e.createTenant(t, "other")
	res := call(t, e.h, http.MethodPost, "/v1/integrations", key, specNamed("orders", "out"))
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	ctx := context.Background()

	base := time.Now().UTC().Truncate(10 * time.Second).Add(-10 * time.Minute)
	var samples []store.Sample
	for i := range 7 {
		x := store.Sample{
			TenantID: "acme", IntegrationID: "orders", At: base.Add(time.Duration(i) * 10 * time.Second),
			In: int64(100 * i), Out: int64(90 * i), Errors: int64(2 * i), DLQ: int64(i),
		}
		if i > 1 { // the first interval measured no latency
			p50, p99 := float64(i), float64(10*i)
			x.P50, x.P99 = &p50, &p99
		}
		samples = append(samples, x)
	}
	_, err := e.st.WriteSamples(ctx, samples)
	require.NoError(t, err)

	res = call(t, e.h, http.MethodGet, "/v1/integrations/orders/metrics", key, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.EqualValues(t, 10, res.body["step_seconds"])
	points := res.body["points"].([]any)
	require.Len(t, points, 6)
	first := points[0].(map[string]any)
	require.Equal(t, base.Add(10*time.Second).Format(time.RFC3339), first["time"])
	require.InDelta(t, 10, first["in_per_second"], 1e-9)
	require.InDelta(t, 9, first["out_per_second"], 1e-9)
	require.InDelta(t, 0.2, first["errors_per_second"], 1e-9)
	require.InDelta(t, 0.1, first["dlq_per_second"], 1e-9)
	require.Contains(t, first, "p50_ms")
	require.Nil(t, first["p50_ms"], "no latency measured in the interval")
	require.Nil(t, first["p99_ms"])
	second := points[1].(map[string]any)
	require.InDelta(t, 2, second["p50_ms"], 1e-9)
	require.InDelta(t, 20, second["p99_ms"], 1e-9)

	q := url.Values{"since": {base.Add(25 * time.Second).Format(time.RFC3339)}, "step": {"60"}}
	res = call(t, e.h, http.MethodGet, "/v1/integrations/orders/metrics?"+q.Encode(), key, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	require.EqualValues(t, 60, res.body["step_seconds"])
	var in float64
	for _, p := range res.body["points"].([]any) {
		in += p.(map[string]any)["in_per_second"].(float64)
	}
	require.Greater(t, in, 0.0)

	// A bucket of several samples: the highest p99, the p50s' mean
	// weighted by deliveries (here 90 in every interval, so their mean).
	type latency struct {
		p50s, p99 float64
		n         int
	}
	want := map[string]*latency{}
	for _, x := range samples[2:] {
		b := x.At.Truncate(time.Minute).Format(time.RFC3339)
		if want[b] == nil {
			want[b] = &latency{}
		}
		want[b].p50s += *x.P50
		want[b].p99 = max(want[b].p99, *x.P99)
		want[b].n++
	}
	q = url.Values{"since": {base.Format(time.RFC3339)}, "step": {"60"}}
	res = call(t, e.h, http.MethodGet, "/v1/integrations/orders/metrics?"+q.Encode(), key, "")
	require.Equal(t, http.StatusOK, res.code, res.raw)
	for _, p := range res.body["points"].([]any) {
		pt := p.(map[string]any)
		w := want[pt["time"].(string)]
		if w == nil {
			require.Nil(t, pt["p50_ms"], "only the first interval, unmeasured, ends in %s", pt["time"])
			continue
		}
		require.InDelta(t, w.p50s/float64(w.n), pt["p50_ms"], 1e-9)
		require.InDelta(t, w.p99, pt["p99_ms"], 1e-9)
		delete(want, pt["time"].(string))
	}
	require.Empty(t, want, "every bucket with a latency has a point")

	// Another tenant's integration is unknown; so is a malformed ID.
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/orders/metrics", other, ""), http.StatusNotFound)
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/Not%20Valid/metrics", key, ""), http.StatusNotFound)
	for _, tc := range []struct{ query, location string }{
		{"since=" + url.QueryEscape(time.Now().Add(-48*time.Hour).Format(time.RFC3339)), "query.since"},
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), "query.since"},
		{"since=" + url.QueryEscape(time.Now().Add(-23*time.Hour).Format(time.RFC3339)) + "&step=1", "query.step"},
		{"step=0", "query.step"},
		{"step=99999", "query.step"},
		{"since=yesterday", "query.since"},
	} {
		res := call(t, e.h, http.MethodGet, "/v1/integrations/orders/metrics?"+tc.query, key, "")
		requireProblem(t, res, http.StatusUnprocessableEntity)
		require.Equal(t, []string{tc.location}, problemLocations(res), tc.query)
	}
	require401(t, call(t, e.h, http.MethodGet, "/v1/integrations/orders/metrics", "", ""))
}
