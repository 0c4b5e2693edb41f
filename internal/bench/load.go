package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Load-generator limits.
const (
	// maxQueuedJobs bounds the dispatcher's queue; past it the dispatcher
	// waits for a worker, which still shows up in the latencies because
	// they are measured from the intended send times.
	maxQueuedJobs  = 1 << 22
	requestTimeout = 30 * time.Second
)

// Load is an open-loop load generator: a dispatcher releases message seq at
// its intended send time to a pool of HTTP workers, never waiting for
// answers, so a slow server makes messages late instead of making the
// generator slow down.
type Load struct {
	// URL is the webhook URL every message is POSTed to.
	URL string
	// KeyPrefix starts each message's Idempotency-Key (KeyPrefix + seq).
	KeyPrefix string
	// Size is each body's exact size in bytes.
	Size int
	// Workers is the number of concurrent requests, each on its own
	// kept-alive connection.
	Workers int
}

// NewClient returns an HTTP client that keeps a connection per worker alive
// (for the bench's probes; the load itself goes through postConn).
func NewClient(workers int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        workers,
			MaxIdleConnsPerHost: workers,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// Run sends every message of sched and records each answer in sink. It
// returns once every message has been answered (or failed), or ctx ended.
func (l *Load) Run(ctx context.Context, sched Schedule, sink *Collector) error {
	if _, err := AppendBody(nil, sched.Total(), l.Size); err != nil {
		return err
	}
	if sched.Rate <= 0 {
		return fmt.Errorf("offered rate %v: must be positive", sched.Rate)
	}
	if _, err := newPostConn(l.URL, requestTimeout); err != nil {
		return err
	}
	jobs := make(chan int64, min(sched.Total(), maxQueuedJobs))
	var wg sync.WaitGroup
	for range max(l.Workers, 1) {
		wg.Go(func() {
			conn, _ := newPostConn(l.URL, requestTimeout)
			defer conn.Close()
			body := make([]byte, 0, l.Size)
			for seq := range jobs {
				var status int
				var err error
				if body, err = AppendBody(body[:0], seq, l.Size); err == nil {
					status, _ = conn.post(ctx, l.KeyPrefix+strconv.FormatInt(seq, 10), body)
				}
				sink.SetStatus(seq, status, time.Now())
			}
		})
	}
	dispatch(ctx, sched, jobs)
	wg.Wait()
	return ctx.Err()
}

// dispatch releases each seq to jobs at its intended send time and closes
// jobs. When it wakes up late it releases every seq already due at once.
func dispatch(ctx context.Context, sched Schedule, jobs chan<- int64) {
	defer close(jobs)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	total := sched.Total()
	for next := int64(0); next < total; {
		elapsed := time.Since(sched.T0)
		due := min(int64(elapsed.Seconds()*sched.Rate)+1, total)
		if elapsed < 0 {
			due = 0
		}
		for ; next < due; next++ {
			select {
			case jobs <- next:
			case <-ctx.Done():
				return
			}
		}
		if next >= total {
			return
		}
		if wait := time.Until(sched.Intended(next)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}
	}
}
