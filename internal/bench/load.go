package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	// Workers is the number of concurrent requests (and kept-alive
	// connections).
	Workers int
	// Client sends the requests; nil means NewClient(Workers).
	Client *http.Client
}

// NewClient returns an HTTP client that keeps a connection per worker alive.
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
	client := l.Client
	if client == nil {
		client = NewClient(l.Workers)
		defer client.CloseIdleConnections()
	}
	jobs := make(chan int64, min(sched.Total(), maxQueuedJobs))
	var wg sync.WaitGroup
	for range max(l.Workers, 1) {
		wg.Go(func() {
			for seq := range jobs {
				status := l.send(ctx, client, seq)
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

// send POSTs message seq and returns the HTTP status, or 0 when there was
// no answer.
func (l *Load) send(ctx context.Context, client *http.Client, seq int64) int {
	body, err := AppendBody(make([]byte, 0, l.Size), seq, l.Size)
	if err != nil {
		return 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", l.KeyPrefix+strconv.FormatInt(seq, 10))
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	// Reading the answer to its end lets the connection be reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
