package api

import (
	"strconv"
	"sync"
	"sync/atomic"
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

// Forgetting idle buckets.
const (
	// limiterIdle is the least time a bucket is kept after its last use.
	// A bucket idle for longer than burst/rate is full again, so forgetting
	// it then changes no answer; the longer of the two applies.
	limiterIdle = 10 * time.Minute
	// sweepEvery is how often idle buckets are looked for.
	sweepEvery = time.Minute
)

// limiters is a token bucket per key (an API key, a tenant, a client
// address…), created on first use and forgotten once idle, so revoked keys,
// deleted tenants and passing addresses do not accumulate. A rate of zero or
// less means unlimited; a burst of zero or less means the rate rounded down,
// at least 1.
type limiters struct {
	rate      float64
	burst     int
	m         sync.Map // key → *bucket
	nextSweep atomic.Int64
}

// bucket is one key's limiter and when it was last used (Unix nanoseconds).
type bucket struct {
	lim  *rate.Limiter
	last atomic.Int64
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
	r := l.get(key, now).ReserveN(now, 1)
	if !r.OK() {
		return nil, time.Second
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return nil, wait
	}
	return r, 0
}

// empty reports whether key's bucket has no token at now, and how long
// until it has one, without taking any.
func (l *limiters) empty(key string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rate <= 0 {
		return false, 0
	}
	v, ok := l.m.Load(key)
	if !ok {
		return false, 0
	}
	tokens := v.(*bucket).lim.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) / l.rate * float64(time.Second))
}

// take takes a token from key's bucket at now if there is one.
func (l *limiters) take(key string, now time.Time) {
	if l == nil || l.rate <= 0 {
		return
	}
	l.get(key, now).AllowN(now, 1)
}

func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	v, ok := l.m.Load(key)
	if !ok {
		v, _ = l.m.LoadOrStore(key, &bucket{lim: rate.NewLimiter(rate.Limit(l.rate), l.burst)})
	}
	b := v.(*bucket)
	b.last.Store(now.UnixNano())
	l.sweep(now)
	return b.lim
}

// sweep forgets the buckets idle for longer than idle(), at most once per
// sweepEvery; the caller that wins the turn pays for the walk.
func (l *limiters) sweep(now time.Time) {
	next := l.nextSweep.Load()
	if now.UnixNano() < next || !l.nextSweep.CompareAndSwap(next, now.Add(sweepEvery).UnixNano()) {
		return
	}
	cutoff := now.Add(-l.idle()).UnixNano()
	l.m.Range(func(k, v any) bool {
		if v.(*bucket).last.Load() < cutoff {
			l.m.CompareAndDelete(k, v)
		}
		return true
	})
}

// idle is how long an unused bucket is kept: at least limiterIdle, and
// long enough to have refilled.
func (l *limiters) idle() time.Duration {
	refill := time.Duration(float64(l.burst) / l.rate * float64(time.Second))
	return max(limiterIdle, refill)
}

// size is the number of buckets held.
func (l *limiters) size() int {
	n := 0
	l.m.Range(func(any, any) bool { n++; return true })
	return n
}

// retryAfterSeconds is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}
