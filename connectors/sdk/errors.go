package sdk

import (
	"errors"
	"fmt"
	"time"
)

// ErrorKind decides what the hot path does with a failed message.
type ErrorKind int

const (
	// Retryable failures are redelivered with backoff until attempts run out.
	Retryable ErrorKind = iota
	// Permanent failures go to the DLQ at once: retrying cannot help.
	Permanent
)

// Error is a classified failure.
type Error struct {
	Kind ErrorKind
	// RetryAfter, when set, is the delay the outside system asked for
	// (HTTP Retry-After).
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// PermanentError marks err as permanent.
func PermanentError(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: Permanent, Err: err}
}

// Permanentf formats a permanent error.
func Permanentf(format string, args ...any) error {
	return &Error{Kind: Permanent, Err: fmt.Errorf(format, args...)}
}

// RetryableError marks err as retryable, optionally after a delay.
func RetryableError(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: Retryable, RetryAfter: after, Err: err}
}

// IsPermanent reports whether err is marked permanent. Unmarked errors are
// retryable: a connector that is unsure lets the message retry.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == Permanent
}

// RetryAfterOf returns the delay asked for by err, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// BatchError reports a partial batch failure: the messages at the indexes in
// Failed failed with those errors; all others were written.
type BatchError struct {
	Failed map[int]error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%d messages of the batch failed", len(e.Failed))
}
