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
	rate  float64
	burst int
	// own, when set, gives keys with a rate and burst of their own.
	own       func(key string) (rate float64, burst int, ok bool)
	m         sync.Map // key → *bucket
	nextSweep atomic.Int64
}

// bucket is one key's limiter and when it was last used (Unix nanoseconds).
type bucket struct {
	lim  *rate.Limiter
	last atomic.Int64
}

// rateOf returns key's rate and burst.
func (l *limiters) rateOf(key string) (float64, int) {
	if l.own != nil {
		if r, b, ok := l.own(key); ok && r > 0 {
			return r, max(1, b)
		}
	}
	return l.rate, l.burst
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
	if l == nil || (l.rate <= 0 && l.own == nil) {
		return nil, 0
	}
	lim := l.get(key, now)
	if lim == nil {
		return nil, 0
	}
	r := lim.ReserveN(now, 1)
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
	if l == nil || (l.rate <= 0 && l.own == nil) {
		return
	}
	if lim := l.get(key, now); lim != nil {
		lim.AllowN(now, 1)
	}
}

// get returns key's limiter, following a change of its rate; nil means
// key is unlimited.
func (l *limiters) get(key string, now time.Time) *rate.Limiter {
	r, burst := l.rateOf(key)
	if r <= 0 {
		return nil
	}
	v, ok := l.m.Load(key)
	if !ok {
		v, _ = l.m.LoadOrStore(key, &bucket{lim: rate.NewLimiter(rate.Limit(r), burst)})
	}
	b := v.(*bucket)
	if b.lim.Limit() != rate.Limit(r) || b.lim.Burst() != burst {
		b.lim.SetLimitAt(now, rate.Limit(r))
		b.lim.SetBurstAt(now, burst)
	}
	b.last.Store(now.UnixNano())
	l.sweep(now)
	return b.lim
}

// takeN takes n tokens from key's bucket at now, all or none; when it
// cannot, it returns how long until it could.
func (l *limiters) takeN(key string, now time.Time, n int) time.Duration {
	if l == nil || n <= 0 || (l.rate <= 0 && l.own == nil) {
		return 0
	}
	lim := l.get(key, now)
	if lim == nil {
		return 0
	}
	r := lim.ReserveN(now, n)
	if !r.OK() { // more than a whole burst
		return time.Duration(float64(n) / float64(lim.Limit()) * float64(time.Second))
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait
	}
	return 0
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
	if l.rate <= 0 {
		return limiterIdle
	}
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
