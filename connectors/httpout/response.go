package httpout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// MaxErrorBody is how many bytes of a failed response's body an error
// quotes.
const MaxErrorBody = 512

// MaxRetryAfter caps the delay a target may ask for with Retry-After.
const MaxRetryAfter = 24 * time.Hour

// StatusError is a response whose status is not 2xx.
type StatusError struct {
	StatusCode int
	// Status is the status line's text, as "404 Not Found".
	Status string
	// Body is the start of the response body, at most MaxErrorBody bytes.
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return "status " + e.Status
	}
	return fmt.Sprintf("status %s: %s", e.Status, e.Body)
}

// ResponseError returns nil for a 2xx response, and otherwise a
// *StatusError marked retryable (408, 429 and 5xx, after the delay
// Retry-After asks for) or permanent (every other status: the same request
// would fail again). It reads at most MaxErrorBody bytes of a failed
// response's body; the caller still closes it.
func ResponseError(resp *http.Response, now time.Time) error {
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	se := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Body: readSnippet(resp.Body)}
	if se.Status == "" {
		se.Status = strconv.Itoa(resp.StatusCode)
	}
	if Transient(resp.StatusCode) {
		return sdk.RetryableError(se, RetryAfter(resp.Header.Get("Retry-After"), now))
	}
	return sdk.PermanentError(se)
}

// Transient reports whether a request that got status code may succeed
// later: 408 Request Timeout, 429 Too Many Requests and every 5xx.
func Transient(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// readSnippet reads the start of a body for an error message, as valid
// UTF-8 with spaces collapsed.
func readSnippet(r io.Reader) string {
	if r == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(r, MaxErrorBody))
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "\uFFFD")), " ")
}

// RetryAfter parses a Retry-After header value, delay-seconds or an HTTP
// date, into a delay from now; it returns 0 when the value is missing,
// malformed or in the past, and at most MaxRetryAfter.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// RequestError classifies an error from http.Client.Do. A refusal by the
// SSRF guard, a refused redirect or a malformed request is permanent; a
// network failure, a timeout or a cancelled ctx is retryable. The URL the
// client puts in its errors is dropped: it may hold a secret.
func RequestError(ctx context.Context, err error) error {
	var ue *url.Error
	timeout := false
	if errors.As(err, &ue) {
		timeout = ue.Timeout()
		err = ue.Err
	}
	switch {
	case sdk.IsPermanent(err):
		return err
	case ctx.Err() != nil:
		return sdk.RetryableError(fmt.Errorf("%w (%v)", ctx.Err(), err), 0)
	case timeout:
		return sdk.RetryableError(fmt.Errorf("timed out: %w", err), 0)
	}
	return sdk.RetryableError(err, 0)
}

// drain reads what is left of a body, up to a bound, and closes it so the
// connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
