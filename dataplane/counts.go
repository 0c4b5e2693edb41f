package dataplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ReadFailures returns how many attempts of p's messages failed so far (a
// count that only grows while p exists).
func ReadFailures(ctx context.Context, counts jetstream.KeyValue, p Pipeline) (uint64, error) {
	return ReadCount(ctx, counts, p.CountKey(FailuresCount))
}

func openCounts(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	return OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: CountsBucket, History: 1})
}

// ReadCount returns the count under key, 0 when there is none.
func ReadCount(ctx context.Context, kv jetstream.KeyValue, key string) (uint64, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read count %s: %w", key, err)
	}
	n, err := strconv.ParseUint(string(entry.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("count %s is not a number: %w", key, err)
	}
	return n, nil
}

// ForgetCounts removes every count of p.
func (s *State) ForgetCounts(ctx context.Context, p Pipeline) error {
	keys, err := s.Counts.ListKeysFiltered(ctx, p.CountKey("*"))
	if err != nil {
		return fmt.Errorf("list the counts of %s: %w", p, err)
	}
	for key := range keys.Keys() {
		if err := s.Counts.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("forget the counts of %s: %w", p, err)
		}
	}
	return nil
}

// StageCount is one stage's counters, read from its JetStream consumer, the
// stage's rest record (resting.go) and the counts bucket.
type StageCount struct {
	Stage string `json:"stage" doc:"process, or deliver-<producer>."`
	// Acked counts messages the stage finished (acknowledged or dead-lettered).
	Acked uint64 `json:"acked"`
	// Pending counts messages waiting for the stage.
	Pending uint64 `json:"pending"`
	// InFlight counts messages the stage holds and has not finished.
	InFlight int `json:"in_flight"`
	// Redelivered counts messages being delivered again (retries).
	Redelivered int `json:"redelivered"`
}

// Counters reads each stage's counters and the number of the pipeline's
// messages in the tenant's DLQ, through js, the tenant's JetStream. With
// counts, the platform's counts bucket (nil: neither is added), a stage's
// Acked adds what its earlier consumers finished and what it finished
// without a consumer (delivered straight from the process stage), and a
// stage whose consumer rests is counted from its rest record, with the
// messages waiting on its subject. A pipeline whose stream does not exist
// (never deployed) has none.
func Counters(ctx context.Context, js jetstream.JetStream, counts jetstream.KeyValue, p Pipeline) (stages []StageCount, deadLetters uint64, err error) {
	if err := p.Validate(); err != nil {
		return nil, 0, err
	}
	stream, err := js.Stream(ctx, p.Stream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read stream of %s: %w", p, err)
	}
	rests := Rests{}
	if counts != nil {
		if rests, err = ReadRests(ctx, counts, p); err != nil {
			return nil, 0, err
		}
	}
	listed := make(map[string]bool, len(rests))
	consumers := stream.ListConsumers(ctx)
	for info := range consumers.Info() {
		listed[info.Name] = true
		stages = append(stages, StageCount{
			Stage: info.Name, Acked: rests[info.Name].finishedBefore(info.Created) + info.AckFloor.Consumer,
			Pending: info.NumPending, InFlight: info.NumAckPending, Redelivered: info.NumRedelivered,
		})
	}
	if err := consumers.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return nil, 0, fmt.Errorf("list consumers of %s: %w", p, err)
	}
	if stages, err = addResting(ctx, stream, p, rests, listed, stages); err != nil {
		return nil, 0, err
	}
	slices.SortFunc(stages, func(a, b StageCount) int { return strings.Compare(a.Stage, b.Stage) })
	for i := range stages {
		if counts == nil {
			break
		}
		direct, err := ReadCount(ctx, counts, p.CountKey(stages[i].Stage))
		if err != nil {
			return nil, 0, err
		}
		stages[i].Acked += direct
	}
	dlq, err := js.Stream(ctx, DLQStream(p.Tenant))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return stages, 0, nil
	}
	if err != nil {
		return stages, 0, fmt.Errorf("read the DLQ of %s: %w", p.Tenant, err)
	}
	info, err := dlq.Info(ctx, jetstream.WithSubjectFilter(p.DLQSubject()))
	if err != nil {
		return stages, 0, fmt.Errorf("read the DLQ of %s: %w", p.Tenant, err)
	}
	return stages, info.State.Subjects[p.DLQSubject()], nil
}

// addResting adds to stages the stages of rests whose consumer is not
// listed: it rests.
func addResting(ctx context.Context, stream jetstream.Stream, p Pipeline, rests Rests, listed map[string]bool, stages []StageCount) ([]StageCount, error) {
	var waiting map[string]uint64
	for stage, r := range rests {
		if listed[stage] {
			continue
		}
		if waiting == nil {
			var err error
			if waiting, err = WaitingBySubject(ctx, stream, p); err != nil {
				return nil, err
			}
		}
		stages = append(stages, StageCount{Stage: stage, Acked: r.Before + r.Acked, Pending: waiting[p.StageSubject(stage)]})
	}
	return stages, nil
}

// WaitingBySubject returns how many messages wait in p's stream, by
// subject: a work queue holds only what its stages did not finish.
func WaitingBySubject(ctx context.Context, stream jetstream.Stream, p Pipeline) (map[string]uint64, error) {
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(p.AllSubjects()))
	if err != nil {
		return nil, fmt.Errorf("read the subjects of %s: %w", p.Stream(), err)
	}
	if info.State.Subjects == nil {
		return map[string]uint64{}, nil
	}
	return info.State.Subjects, nil
}
