package api

import (
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Default rates of the authenticated API, used when the api role is wired
// up: each key may make DefaultKeyRate requests per second with bursts of
// DefaultKeyBurst, and all keys of a tenant together DefaultTenantRate with
// bursts of DefaultTenantBurst.
const (
	// DefaultKeyRate is the sustained requests per second of one API key.
	DefaultKeyRate = 50
	// DefaultKeyBurst is how many requests one API key may make at once.
	DefaultKeyBurst = 100
	// DefaultTenantRate is the sustained requests per second of all of a
	// tenant's keys together.
	DefaultTenantRate = 200
	// DefaultTenantBurst is how many requests a tenant's keys may make at
	// once.
	DefaultTenantBurst = 400
)

// limiters is a token bucket per key (an API key, a tenant, …), created on
// first use. A rate of zero or less means unlimited; a burst of zero or less
// means the rate rounded down, at least 1.
type limiters struct {
	rate  float64
	burst int
	m     sync.Map // key → *rate.Limiter
}

func newLimiters(r float64, burst int) *limiters {
	if burst <= 0 {
		burst = max(1, int(r))
	}
	return &limiters{rate: r, burst: burst}
}

// allow takes a token from key's bucket; when there is none it takes
// nothing and returns how long until there is one.
func (l *limiters) allow(key string) (ok bool, retryAfter time.Duration) {
	r, wait := l.reserve(key, time.Now())
	return r != nil || wait == 0, wait
}

// reserve takes a token from key's bucket at now and returns it so that it
// can be given back; when the bucket is empty it returns nil and the wait.
// Unlimited buckets return nil and no wait.
func (l *limiters) reserve(key string, now time.Time) (*rate.Reservation, time.Duration) {
	if l == nil || l.rate <= 0 {
		return nil, 0
	}
	lim, ok := l.m.Load(key)
	if !ok {
		lim, _ = l.m.LoadOrStore(key, rate.NewLimiter(rate.Limit(l.rate), l.burst))
	}
	r := lim.(*rate.Limiter).ReserveN(now, 1)
	if !r.OK() {
		return nil, time.Second
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, wait
	}
	return r, 0
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
