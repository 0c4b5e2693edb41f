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
	// KeyPrefix starts each message's Idempotency-Key (KeyPrefix + seq);
	// empty sends no key.
	KeyPrefix string
	// Size is each body's exact size in bytes.
	Size int
	// Workers is the number of concurrent requests, each on its own
	// kept-alive connection.
	Workers int
	// Batch, when above 1, lets a worker send up to Batch messages already
	// due in one NDJSON request (one message per line); 0 or 1 sends one
	// JSON message per request.
	Batch int
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
		wg.Go(func() { l.post(ctx, jobs, sink) })
	}
	dispatch(ctx, sched, jobs)
	wg.Wait()
	return ctx.Err()
}

// post is one HTTP worker: it POSTs the messages released to jobs on a
// kept-alive connection of its own, batching those already due.
func (l *Load) post(ctx context.Context, jobs <-chan int64, sink *Collector) {
	conn, _ := newPostConn(l.URL, requestTimeout)
	defer conn.Close()
	var body []byte
	seqs := make([]int64, 0, max(l.Batch, 1))
	for seq := range jobs {
		seqs = append(seqs[:0], seq)
		seqs = takeDue(jobs, seqs, l.Batch)
		status := l.send(ctx, conn, &body, seqs)
		now := time.Now()
		for _, s := range seqs {
			sink.SetStatus(s, status, now)
		}
	}
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

// takeDue appends to seqs the messages already released, up to batch in
// all, without waiting for more.
func takeDue(jobs <-chan int64, seqs []int64, batch int) []int64 {
	for len(seqs) < batch {
		select {
		case seq, ok := <-jobs:
			if !ok {
				return seqs
			}
			seqs = append(seqs, seq)
		default:
			return seqs
		}
	}
	return seqs
}

// send POSTs the messages seqs — one JSON body, or an NDJSON batch of
// several — reusing *body, and returns the answer's status (0: none).
func (l *Load) send(ctx context.Context, conn *postConn, body *[]byte, seqs []int64) int {
	b := (*body)[:0]
	for i, seq := range seqs {
		if i > 0 {
			b = append(b, '\n')
		}
		var err error
		if b, err = AppendBody(b, seq, l.Size); err != nil {
			return 0
		}
	}
	*body = b
	contentType := "application/json"
	if len(seqs) > 1 {
		contentType = "application/x-ndjson"
	}
	key := ""
	if l.KeyPrefix != "" {
		key = l.KeyPrefix + strconv.FormatInt(seqs[0], 10)
	}
	status, _ := conn.post(ctx, contentType, key, b)
	return status
}
