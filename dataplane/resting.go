package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A parked stage's consumer rests (ADR 0032): the NATS server removes it
// once no runner has pulled from it for a while, and the stage creates it
// again, with the same name and settings, when a message wakes it. The
// stream is a work queue, so its messages wait there meanwhile. What the
// removed consumer counted would be lost with it, and the stage would look
// gone: so, as a stage parks, its runner records what the consumer had
// finished, in one record per pipeline in the counts bucket
// (Pipeline.CountKey(RestsCount)). A consumer is told from the one created
// again after it by its creation time.

// StageRest is what one stage's consumers finished, as its runner last
// recorded when the stage parked.
type StageRest struct {
	// Created is when the consumer last recorded was created.
	Created time.Time `json:"created"`
	// Acked is what that consumer had finished (its ack floor's consumer
	// sequence) when the stage parked.
	Acked uint64 `json:"acked"`
	// Before is what the stage's earlier consumers finished.
	Before uint64 `json:"before"`
}

// finishedBefore is what the stage's consumers created before the one
// created at created finished.
func (r StageRest) finishedBefore(created time.Time) uint64 {
	if r.Created.Equal(created) {
		return r.Before
	}
	return r.Before + r.Acked
}

// Rests is the rest record of a pipeline's stages, by stage.
type Rests map[string]StageRest

// maxRestsValue bounds the record a reader accepts: a pipeline has at most
// a few dozen stages.
const maxRestsValue = 64 << 10

// RecordRest records that the consumer info describes, of one of p's
// stages, has finished what it acked so far: its stage parks now.
func RecordRest(ctx context.Context, counts jetstream.KeyValue, p Pipeline, info *jetstream.ConsumerInfo) error {
	err := UpdateValue(ctx, counts, p.CountKey(RestsCount), func(old []byte) []byte {
		rests := parseRests(old)
		was, acked := rests[info.Name], info.AckFloor.Consumer
		if was.Created.Equal(info.Created) {
			// Another runner of the stage may have recorded the same
			// consumer later: its ack floor only grows.
			acked = max(acked, was.Acked)
		}
		rests[info.Name] = StageRest{Created: info.Created, Acked: acked, Before: was.finishedBefore(info.Created)}
		value, _ := json.Marshal(rests)
		return value
	})
	if err != nil {
		return fmt.Errorf("record the rest of %s %s: %w", p, info.Name, err)
	}
	return nil
}

// ForgetRests drops from p's rest record every stage keep does not keep.
func ForgetRests(ctx context.Context, counts jetstream.KeyValue, p Pipeline, keep func(stage string) bool) error {
	rests, err := ReadRests(ctx, counts, p)
	if err != nil {
		return err
	}
	stale := false
	for stage := range rests {
		stale = stale || !keep(stage)
	}
	if !stale {
		return nil
	}
	err = UpdateValue(ctx, counts, p.CountKey(RestsCount), func(old []byte) []byte {
		rests := parseRests(old)
		for stage := range rests {
			if !keep(stage) {
				delete(rests, stage)
			}
		}
		value, _ := json.Marshal(rests)
		return value
	})
	if err != nil {
		return fmt.Errorf("forget stale stages of %s: %w", p, err)
	}
	return nil
}

// ReadRests returns p's rest record, empty when none was recorded.
func ReadRests(ctx context.Context, counts jetstream.KeyValue, p Pipeline) (Rests, error) {
	key := p.CountKey(RestsCount)
	entry, err := counts.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Rests{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if len(entry.Value()) > maxRestsValue {
		return nil, fmt.Errorf("rest record %s: %d bytes, more than %d", key, len(entry.Value()), maxRestsValue)
	}
	rests := Rests{}
	if err := json.Unmarshal(entry.Value(), &rests); err != nil {
		return nil, fmt.Errorf("rest record %s: %w", key, err)
	}
	return rests, nil
}

// parseRests reads a stored record for a change; one that does not parse
// (written by another version) is started again rather than blocking the
// record for good.
func parseRests(value []byte) Rests {
	rests := Rests{}
	if len(value) > 0 && len(value) <= maxRestsValue {
		_ = json.Unmarshal(value, &rests)
	}
	return rests
}
