package file

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/vrsky/vrsky/connectors/sdk"
)

var _ sdk.Poller = (*Consumer)(nil)

// Poll reads every complete file of the directory once and returns without
// waiting for more: a file is complete when its modification time is at
// least the settle time old, and files still being written are left for
// the next poll. Everything else is as in Run: records are published in
// batches with a checkpoint after each, a file moves to done once all its
// records are durable and to failed when it cannot be parsed, so a poll
// that fails or is interrupted resumes, next time, after its last durable
// batch.
//
// It returns how many records it published. A publish or disk failure
// stops the poll with an error; when ctx ends it stops after the batch in
// flight and returns ctx's error.
func (c *Consumer) Poll(ctx context.Context, sink sdk.Sink) (sdk.PollResult, error) {
	counted := &countingSink{sink: sink}
	if err := ctx.Err(); err != nil {
		return sdk.PollResult{}, err
	}
	root, err := os.OpenRoot(c.fileRoot)
	if err != nil {
		return sdk.PollResult{}, fmt.Errorf("file: open file root: %w", err)
	}
	defer root.Close()
	_, err = c.scan(ctx, root, counted, map[string]seen{})
	if err == nil {
		err = ctx.Err()
	}
	return sdk.PollResult{Messages: int(counted.n.Load())}, err
}

// countingSink counts the messages its sink acknowledged.
type countingSink struct {
	sink sdk.Sink
	n    atomic.Int64
}

func (s *countingSink) Publish(ctx context.Context, msgs []sdk.Message) error {
	if err := s.sink.Publish(ctx, msgs); err != nil {
		return err
	}
	s.n.Add(int64(len(msgs)))
	return nil
}
