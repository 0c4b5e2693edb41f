package dataplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// updateTries bounds how often UpdateValue tries before it reports
// contention.
const updateTries = 20

// UpdateValue sets the value under key to change(the value it holds, nil
// when there is none), as a compare-and-set: many writers may change the
// same key. A value that change leaves as it was is not written again.
// Writers that collide try again after a short random pause, so they do
// not collide in step.
func UpdateValue(ctx context.Context, kv jetstream.KeyValue, key string, change func(old []byte) []byte) error {
	for try := range updateTries {
		if try > 0 {
			pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(try, 5)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pause):
			}
		}
		entry, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err = kv.Create(ctx, key, change(nil)); err == nil {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		value := change(entry.Value())
		if bytes.Equal(value, entry.Value()) {
			return nil // nothing to write
		}
		if _, err = kv.Update(ctx, key, value, entry.Revision()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("update %s: too much contention", key)
}
