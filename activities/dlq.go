package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/control/wire"
)

// DLQ holds the activities that act on tenants' dead letters.
type DLQ struct {
	// Accounts gives each tenant's JetStream, where its DLQ lives.
	Accounts dataplane.Accounts
	Claims   *dataplane.ClaimCheck
	// Counts is the platform's counts bucket: a replay looks there for a
	// stage whose consumer rests (nil: only at consumers).
	Counts jetstream.KeyValue
}

// ErrInvalidFilter is the error type of a replay whose filter cannot be
// used; retrying does not help.
const ErrInvalidFilter = "InvalidFilter"

// ReplayPageInput selects one page of a tenant's dead letters to replay (or,
// with Discard, to remove): those matching Filter, or only the sequences in
// Seqs when it is set, after sequence AfterSeq and at most up to UpToSeq.
type ReplayPageInput struct {
	Tenant string
	Filter dataplane.DLQFilter
	// Seqs, when set, names the dead letters (by DLQ sequence); Filter
	// still applies to them.
	Seqs     []uint64
	AfterSeq uint64
	// UpToSeq bounds the replay to what was in the DLQ when it began, so a
	// replayed message that fails again is not replayed again by the same
	// run; 0 means the DLQ's newest message now (returned in the result).
	UpToSeq uint64
	// Limit is the page size; 0 means 100.
	Limit   int
	Discard bool
}

// ReplayPageResult says how many dead letters the page replayed or
// discarded, where the next page starts and whether there may be one.
type ReplayPageResult = wire.ReplayPageResult

// replayProgress is what ReplayPage heartbeats: after a worker crash the
// retried attempt resumes after LastSeq instead of replaying again.
type replayProgress = wire.ReplayProgress

// ReplayPage replays (or discards) one page of dead letters, heartbeating
// after each so a retried attempt resumes where the last one stopped. A dead
// letter that a crash left replayed but not yet removed is replayed again
// under the same Nats-Msg-Id, which JetStream drops within its duplicate
// window. Dead letters removed meanwhile by someone else are skipped.
func (d *DLQ) ReplayPage(ctx context.Context, in ReplayPageInput) (ReplayPageResult, error) {
	if err := in.Filter.Validate(); err != nil {
		return ReplayPageResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidFilter, err)
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 100
	}
	progress := replayProgress{LastSeq: in.AfterSeq}
	if activity.HasHeartbeatDetails(ctx) {
		var hb replayProgress
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil && hb.LastSeq > progress.LastSeq {
			progress = hb
		}
	}
	js, err := d.Accounts.JetStream(ctx, in.Tenant)
	if err != nil {
		return ReplayPageResult{}, err
	}
	upTo := in.UpToSeq
	if upTo == 0 {
		last, err := dataplane.LastDLQSeq(ctx, js, in.Tenant)
		if err != nil {
			return ReplayPageResult{}, err
		}
		if last == 0 {
			return ReplayPageResult{}, nil
		}
		upTo = last
	}

	seqs, scanned, more, err := page(ctx, js, d.Claims, in, progress.LastSeq, upTo, limit)
	if err != nil {
		return ReplayPageResult{}, err
	}
	for _, seq := range seqs {
		if in.Discard {
			err = dataplane.DiscardDeadLetter(ctx, js, in.Tenant, seq)
		} else {
			err = dataplane.ReplayDeadLetter(ctx, js, d.Claims, d.Counts, in.Tenant, seq)
		}
		switch {
		case errors.Is(err, dataplane.ErrDeadLetterNotFound):
		case err != nil:
			return ReplayPageResult{}, err
		default:
			progress.Done++
		}
		progress.LastSeq = seq
		activity.RecordHeartbeat(ctx, progress)
	}
	// A sparse filter may have skipped past the last match.
	progress.LastSeq = max(progress.LastSeq, scanned)
	return ReplayPageResult{Done: progress.Done, LastSeq: progress.LastSeq, UpToSeq: upTo, More: more}, nil
}

// page returns the sequences of the next page after afterSeq, up to upTo,
// the last sequence it looked at, and whether more may follow; js is the
// tenant's JetStream.
func page(ctx context.Context, js jetstream.JetStream, claims *dataplane.ClaimCheck, in ReplayPageInput, afterSeq, upTo uint64, limit int) (seqs []uint64, scanned uint64, more bool, err error) {
	if len(in.Seqs) > 0 {
		wanted := slices.Sorted(slices.Values(in.Seqs))
		for i, seq := range wanted {
			if seq <= afterSeq || seq > upTo || (i > 0 && seq == wanted[i-1]) {
				continue
			}
			if len(seqs) == limit {
				return seqs, 0, true, nil
			}
			dl, _, err := dataplane.GetDeadLetter(ctx, js, claims, in.Tenant, seq, 1)
			if errors.Is(err, dataplane.ErrDeadLetterNotFound) {
				continue
			}
			if err != nil {
				return nil, 0, false, err
			}
			if in.Filter.Match(dl) {
				seqs = append(seqs, seq)
			}
		}
		return seqs, 0, false, nil
	}
	letters, next, err := dataplane.ListDLQ(ctx, js, in.Tenant, in.Filter, afterSeq, limit)
	if err != nil {
		return nil, 0, false, fmt.Errorf("list dead letters of %s: %w", in.Tenant, err)
	}
	for _, l := range letters {
		if l.Seq > upTo {
			return seqs, 0, false, nil
		}
		seqs = append(seqs, l.Seq)
	}
	return seqs, min(next, upTo), next != 0 && next < upTo, nil
}
