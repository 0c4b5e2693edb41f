package api

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimitersAllowUpToBurstThenSayWhen(t *testing.T) {
	t.Parallel()
	l := newLimiters(1, 2)
	for range 2 {
		ok, wait := l.allow("a")
		require.True(t, ok)
		require.Zero(t, wait)
	}
	ok, wait := l.allow("a")
	require.False(t, ok)
	require.Positive(t, wait)
	require.LessOrEqual(t, wait, time.Second)

	ok, _ = l.allow("b")
	require.True(t, ok, "keys have their own buckets")
}

func TestLimitersRejectedRequestsTakeNoToken(t *testing.T) {
	t.Parallel()
	l := newLimiters(10, 1)
	now := time.Now()
	r, wait := l.reserve("a", now)
	require.NotNil(t, r)
	require.Zero(t, wait)
	_, wait = l.reserve("a", now)
	require.InDelta(t, 100*time.Millisecond, wait, float64(time.Millisecond))
	_, again := l.reserve("a", now)
	require.Equal(t, wait, again, "the rejected request did not queue behind itself")

	r.CancelAt(now)
	r, wait = l.reserve("a", now)
	require.NotNil(t, r, "a token given back can be taken again")
	require.Zero(t, wait)
}

func TestLimitersUnlimitedAndDefaultBurst(t *testing.T) {
	t.Parallel()
	for _, l := range []*limiters{nil, newLimiters(0, 0)} {
		for range 1000 {
			ok, wait := l.allow("a")
			require.True(t, ok)
			require.Zero(t, wait)
		}
	}
	require.Equal(t, 3, newLimiters(3.7, 0).burst, "burst defaults to the rate")
	require.Equal(t, 1, newLimiters(0.5, 0).burst, "and is at least 1")
}

func TestRetryAfterSeconds(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 0: "1", 90 * time.Second: "90",
	} {
		require.Equal(t, want, retryAfterSeconds(d), d)
	}
}

// requireTooMany checks a 429 with a Retry-After of whole seconds, ≥ 1.
func requireTooMany(t *testing.T, res response, detail string) {
	t.Helper()
	requireProblem(t, res, http.StatusTooManyRequests)
	require.Contains(t, res.body["detail"], detail)
	secs, err := strconv.Atoi(res.header.Get("Retry-After"))
	require.NoError(t, err, res.header.Get("Retry-After"))
	require.GreaterOrEqual(t, secs, 1)
}

// TestAPIRateLimitsPerKeyAndPerTenant: rates so low that no token comes
// back during the test; each key may make 2 requests, each tenant 3.
func TestAPIRateLimitsPerKeyAndPerTenant(t *testing.T) {
	t.Parallel()
	e := newAuthEnvWith(t, func(o *Options) {
		o.KeyRate, o.KeyBurst = 0.001, 2
		o.TenantRate, o.TenantBurst = 0.001, 3
	})
	keyA1, _ := e.createTenant(t, "rate-a")        // admin 1
	keyB, _ := e.createTenant(t, "rate-b")         // admin 2
	keyA2, _ := e.createKey(t, keyA1, `["write"]`) // A1 1, tenant A 1

	res := call(t, e.h, http.MethodPost, "/v1/tenants", e.adminKey, `{"id":"rate-c","name":"C"}`)
	requireTooMany(t, res, "API key is over its request rate")
	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/api-keys", keyB, "").code,
		"the platform admin's limit is its own")

	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/api-keys", keyA1, "").code) // A1 2, tenant A 2
	res = call(t, e.h, http.MethodPost, "/v1/api-keys", keyA1, `{"scopes":["read"]}`)
	requireTooMany(t, res, "API key is over its request rate")
	keys, err := e.st.ListAPIKeys(context.Background(), "rate-a")
	require.NoError(t, err)
	require.Len(t, keys, 2, "the rejected request created nothing")

	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/api-keys", keyA2, "").code,
		"another key of the tenant still passes") // A2 1, tenant A 3
	requireTooMany(t, call(t, e.h, http.MethodGet, "/v1/api-keys", keyA2, ""), "tenant is over its request rate")

	require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/v1/api-keys", keyB, "").code,
		"another tenant is not affected")
	requireTooMany(t, call(t, e.h, http.MethodGet, "/v1/api-keys", keyB, ""), "API key is over its request rate")

	// Operations without security are never limited.
	for range 5 {
		require.Equal(t, http.StatusOK, call(t, e.h, http.MethodGet, "/healthz", "", "").code)
	}
}

// TestLimitersForgetIdleBuckets: a revoked key or a passing address leaves
// no bucket behind once it has been idle long enough to be full again.
func TestLimitersForgetIdleBuckets(t *testing.T) {
	t.Parallel()
	l := newLimiters(10, 20)
	now := time.Now()
	for i := range 100 {
		l.reserve("key-"+strconv.Itoa(i), now)
	}
	require.Equal(t, 100, l.size())
	l.reserve("key-live", now.Add(limiterIdle-time.Second)) // a sweep runs: nothing idle long enough yet
	require.Equal(t, 101, l.size())
	l.reserve("key-live", now.Add(limiterIdle+sweepEvery))
	require.Equal(t, 1, l.size(), "only the bucket still in use is kept")

	slow := newLimiters(0.001, 2) // refills in 2,000 s: kept that long
	slow.reserve("a", now)
	slow.reserve("b", now.Add(limiterIdle+sweepEvery))
	require.Equal(t, 2, slow.size(), "an empty bucket is not forgotten before it refilled")
	slow.reserve("b", now.Add(2001*time.Second+sweepEvery))
	require.Equal(t, 1, slow.size())
}

func TestLimitersEmptyAndTake(t *testing.T) {
	t.Parallel()
	l := newLimiters(1, 2)
	now := time.Now()
	empty, _ := l.empty("ip", now)
	require.False(t, empty, "an unknown key has a full bucket")
	l.take("ip", now)
	l.take("ip", now)
	empty, wait := l.empty("ip", now)
	require.True(t, empty)
	require.InDelta(t, time.Second, wait, float64(10*time.Millisecond))
	empty, _ = newLimiters(0, 0).empty("ip", now)
	require.False(t, empty, "unlimited")
}

func TestLimitersGiveSomeKeysARateOfTheirOwn(t *testing.T) {
	l := newLimiters(1000, 2000)
	own := map[string]float64{"slow": 2}
	l.own = func(key string) (float64, int, bool) { r, ok := own[key]; return r, int(2 * r), ok }
	now := time.Now()
	for range 4 {
		r, wait := l.reserve("slow", now)
		require.NotNil(t, r)
		require.Zero(t, wait)
	}
	r, wait := l.reserve("slow", now)
	require.Nil(t, r, "a burst of twice its rate, then nothing")
	require.InDelta(t, 500*time.Millisecond, wait, float64(10*time.Millisecond))
	for range 100 {
		r, _ := l.reserve("fast", now)
		require.NotNil(t, r, "the others keep the platform's rate")
	}

	// Raising its rate takes effect at once.
	own["slow"] = 100
	_, wait = l.reserve("slow", now.Add(50*time.Millisecond)) // the new rate holds from here
	require.Less(t, wait, 10*time.Millisecond, "refilling at 100/s")
	r, _ = l.reserve("slow", now.Add(100*time.Millisecond))
	require.NotNil(t, r)

	// takeN takes all or nothing.
	own["batch"] = 5
	require.Zero(t, l.takeN("batch", now, 10))
	require.Positive(t, l.takeN("batch", now, 1), "the burst is spent")
	require.Positive(t, l.takeN("batch", now.Add(time.Second), 11), "more than a whole burst is never possible at once")
	require.Zero(t, l.takeN("batch", now.Add(time.Second), 5), "and took nothing")
	require.Zero(t, newLimiters(0, 0).takeN("any", now, 1000), "unlimited")

	// With the platform's rate unlimited, a key's own rate still holds.
	u := newLimiters(-1, 0)
	u.own = l.own
	require.Positive(t, u.idle())
	require.Zero(t, u.takeN("batch", now, 10))
	require.Positive(t, u.takeN("batch", now, 1))
	r, wait = u.reserve("anyone", now)
	require.Nil(t, r)
	require.Zero(t, wait, "unlimited for the others")
}
