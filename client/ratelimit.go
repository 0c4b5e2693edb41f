package client

import (
	"io"
	"net/http"
	"strconv"
	"time"
)

// Answers 429 Too Many Requests carry Retry-After; the client waits that
// long and sends the request again, so a script that creates a thousand
// tenants is slowed to the API's rate instead of failing half-way.
const (
	// RateLimitRetries is how often one request is sent again after 429.
	RateLimitRetries = 8
	// MaxRetryAfter is the longest Retry-After the client waits for; a
	// longer one (or none) is returned to the caller as the answer.
	MaxRetryAfter = 10 * time.Second
)

// rateLimitedDoer sends a request again after an answer 429 with a
// Retry-After it can honour, when the request's body can be read again.
type rateLimitedDoer struct{ next HttpRequestDoer }

func (d rateLimitedDoer) Do(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		resp, err := d.next.Do(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || attempt == RateLimitRetries {
			return resp, err
		}
		wait, ok := retryAfter(resp.Header.Get("Retry-After"))
		if !ok || (req.Body != nil && req.GetBody == nil) {
			return resp, nil
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req.Body = body
		}
	}
}

// retryAfter reads a Retry-After of whole seconds (the form the API sends)
// that is at most MaxRetryAfter.
func retryAfter(v string) (time.Duration, bool) {
	s, err := strconv.Atoi(v)
	if err != nil || s < 0 {
		return 0, false
	}
	d := time.Duration(s) * time.Second
	return d, d <= MaxRetryAfter
}
