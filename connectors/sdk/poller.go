package sdk

import "context"

// PollResult is what one Poll took in.
type PollResult struct {
	// Messages counts the messages handed to the sink and acknowledged by
	// it (sink.Publish returned nil).
	Messages int
}

// Poller is implemented by a Consumer that can also take its source in one
// pass, for integrations that run on a schedule instead of continuously.
//
// Poll reads what the source holds right now, hands it to sink, and
// returns: it never waits for new data. It acknowledges the source as Run
// does — only after sink.Publish returned nil — and leaves what it could
// not take (data not yet complete, a failed publish) for the next pass,
// which resumes where this one stopped. It returns what it took in, also
// when it returns an error; an error is retryable unless it is permanent,
// and the next scheduled pass is the retry. It must honour ctx: when ctx
// ends it stops promptly, returning what it took in so far and ctx's error.
//
// The runtime never calls Poll and Run of one source at the same time, nor
// two Polls at once.
type Poller interface {
	Poll(ctx context.Context, sink Sink) (PollResult, error)
}
