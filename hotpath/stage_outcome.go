package hotpath

import (
	"errors"
	"time"
)

// An outcome is what a stage decided for one message. Stage code never
// acks: it returns exactly one outcome per message, and the settler
// (settle.go) turns it into the JetStream call. The zero outcome means
// "not decided yet": the message goes on to the stage's next part.
type outcome struct {
	kind outcomeKind
	// err is why the message failed (outcomeFailed).
	err error
	// delay is when the message comes back (outcomeRetry).
	delay time.Duration
	// filtered marks a done message that a filter dropped.
	filtered bool
}

type outcomeKind uint8

const (
	outcomeNone outcomeKind = iota
	// outcomeDone: the message is finished (its outputs are durable, or it
	// was filtered out); it is acked.
	outcomeDone
	// outcomeRetry: the message comes back after delay, without counting
	// an attempt.
	outcomeRetry
	// outcomeFailed: the message failed with err; the failure policy
	// (failure.go) decides between a redelivery and the DLQ by err's kind.
	outcomeFailed
)

// done is the outcome of a finished message.
func done() outcome { return outcome{kind: outcomeDone} }

// filteredOut is the outcome of a message a filter dropped.
func filteredOut() outcome { return outcome{kind: outcomeDone, filtered: true} }

// retryAfter brings the message back after d, counting no attempt.
func retryAfter(d time.Duration) outcome { return outcome{kind: outcomeRetry, delay: d} }

// failed is the outcome of a message that failed with err. Its kind decides
// what follows: sdk.IsPermanent goes to the DLQ at once, an infrastructure
// failure (infraFailure) comes back without counting an attempt, any other
// error counts an attempt and is retried with backoff, then dead-lettered.
func failed(err error) outcome { return outcome{kind: outcomeFailed, err: err} }

// decided reports whether the outcome is set.
func (o outcome) decided() bool { return o.kind != outcomeNone }

// infraError marks a failure of VRSky's own infrastructure (the blob store,
// a NATS publish, the attempt counter): not the message's fault, so it does
// not burn the message's retries.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

// infraFailure marks err as a failure of VRSky's own infrastructure.
func infraFailure(err error) error { return infraError{err: err} }

// isInfra reports whether err is a failure of VRSky's own infrastructure.
func isInfra(err error) bool {
	var e infraError
	return errors.As(err, &e)
}
