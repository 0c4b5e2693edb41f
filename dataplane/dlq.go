package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// ErrDeadLetterNotFound is returned for a sequence that is not (or no longer)
// in the tenant's DLQ stream, and for a tenant without a DLQ stream.
var ErrDeadLetterNotFound = errors.New("dead letter not found")

// ErrNoReplayTarget is returned when a dead letter's stage no longer exists
// (its integration was deleted, or its producer removed from the spec):
// published there, it would wait for ever for a consumer. The dead letter
// stays in the DLQ.
var ErrNoReplayTarget = errors.New("nothing consumes the dead letter's subject any more")

// DLQ reading bounds.
const (
	// MaxDLQPage is the largest page ListDLQ returns.
	MaxDLQPage = 1000
	// dlqScanLimit bounds how many stored dead letters one ListDLQ call
	// reads while looking for matches; a sparse filter over a large DLQ then
	// returns a short page with a cursor to continue from.
	dlqScanLimit = 10000
)

// DLQFilter selects dead letters; every set field must match.
type DLQFilter struct {
	// Integration keeps dead letters of that integration only.
	Integration string
	// Producer keeps dead letters that failed delivering to that producer
	// (stage DeliverStage(Producer)).
	Producer string
	// Since and Until bound when the message was dead-lettered (Since
	// inclusive, Until exclusive); zero means unbounded.
	Since time.Time
	Until time.Time
	// ErrorContains keeps dead letters whose reason contains it, ignoring
	// case.
	ErrorContains string
}

// Validate checks the names in f.
func (f DLQFilter) Validate() error {
	if f.Integration != "" && !spec.ValidName(f.Integration) {
		return fmt.Errorf("invalid integration name %q", f.Integration)
	}
	if f.Producer != "" && !spec.ValidName(f.Producer) {
		return fmt.Errorf("invalid producer name %q", f.Producer)
	}
	return nil
}

// Match reports whether d is selected by f.
func (f DLQFilter) Match(d DeadLetter) bool {
	switch {
	case f.Integration != "" && d.Integration != f.Integration:
		return false
	case f.Producer != "" && d.Stage != DeliverStage(f.Producer):
		return false
	case !f.Since.IsZero() && d.At.Before(f.Since):
		return false
	case !f.Until.IsZero() && !d.At.Before(f.Until):
		return false
	case f.ErrorContains != "" && !strings.Contains(strings.ToLower(d.Reason), strings.ToLower(f.ErrorContains)):
		return false
	}
	return true
}

// DeadLetter is one message in a tenant's DLQ stream, without its body.
type DeadLetter struct {
	// Seq is the message's sequence in the tenant's DLQ stream: its ID
	// there.
	Seq         uint64
	MessageID   string
	Integration string
	// Stage is where it failed: StageProcess or DeliverStage(producer).
	Stage    string
	Reason   string
	Attempts int
	// Subject is the pipeline subject the message was taken from; a replay
	// publishes it there again.
	Subject string
	// At is when it was dead-lettered.
	At          time.Time
	ContentType string
	// Headers are the message's own headers.
	Headers map[string]string
	// BodySize is the body's size in bytes, also when it is claim-checked.
	BodySize int64
	// BodyRef is the blob-store key of a claim-checked body; empty when the
	// body is stored in the DLQ stream.
	BodyRef string
}

// dlqStream returns the tenant's DLQ stream, or ErrDeadLetterNotFound when
// the tenant has none yet.
func dlqStream(ctx context.Context, js jetstream.JetStream, tenant string) (jetstream.Stream, error) {
	if !spec.ValidName(tenant) {
		return nil, fmt.Errorf("invalid tenant name %q", tenant)
	}
	s, err := js.Stream(ctx, DLQStream(tenant))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrDeadLetterNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", DLQStream(tenant), err)
	}
	return s, nil
}

// ListDLQ returns up to limit of the tenant's dead letters matching f, in
// stream order, starting after sequence afterSeq. next is the afterSeq of
// the following page, 0 when there is none. A page may hold fewer than
// limit dead letters and still have a next one when a sparse filter had to
// skip many messages.
func ListDLQ(ctx context.Context, js jetstream.JetStream, tenant string, f DLQFilter, afterSeq uint64, limit int) (letters []DeadLetter, next uint64, err error) {
	if err := f.Validate(); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || limit > MaxDLQPage {
		limit = MaxDLQPage
	}
	stream, err := dlqStream(ctx, js, tenant)
	if errors.Is(err, ErrDeadLetterNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	subject := DLQSubjects(tenant)
	if f.Integration != "" {
		subject = Pipeline{Tenant: tenant, Integration: f.Integration}.DLQSubject()
	}
	seq := afterSeq + 1
	for scanned := 0; ; scanned++ {
		if scanned == dlqScanLimit {
			return letters, seq - 1, nil
		}
		raw, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return letters, 0, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read %s from sequence %d: %w", DLQStream(tenant), seq, err)
		}
		seq = raw.Sequence + 1
		d := DeadLetterOf(tenant, raw)
		if !f.Match(d) {
			continue
		}
		if len(letters) == limit {
			// One more match exists: the page is full and has a next one.
			return letters, letters[len(letters)-1].Seq, nil
		}
		letters = append(letters, d)
	}
}

// LastDLQSeq returns the sequence of the newest message in the tenant's DLQ
// stream, 0 when it is empty or missing. Messages dead-lettered later have
// higher sequences.
func LastDLQSeq(ctx context.Context, js jetstream.JetStream, tenant string) (uint64, error) {
	stream, err := dlqStream(ctx, js, tenant)
	if errors.Is(err, ErrDeadLetterNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", DLQStream(tenant), err)
	}
	return info.State.LastSeq, nil
}

// GetDeadLetter returns one of the tenant's dead letters with its body,
// fetched from the blob store when it is claim-checked. A body over maxBody
// bytes is not returned (nil; see DeadLetter.BodySize); maxBody <= 0 means no
// bound.
func GetDeadLetter(ctx context.Context, js jetstream.JetStream, claims *ClaimCheck, tenant string, seq uint64, maxBody int64) (DeadLetter, []byte, error) {
	raw, err := getDeadLetter(ctx, js, tenant, seq)
	if err != nil {
		return DeadLetter{}, nil, err
	}
	d := DeadLetterOf(tenant, raw)
	if maxBody > 0 && d.BodySize > maxBody {
		return d, nil, nil
	}
	if d.BodyRef == "" {
		return d, raw.Data, nil
	}
	if claims == nil || claims.Store == nil {
		return d, nil, fmt.Errorf("dead letter %d has a claim-checked body and no blob store is configured", seq)
	}
	r, err := claims.Store.Get(ctx, d.BodyRef)
	if err != nil {
		return d, nil, fmt.Errorf("fetch body of dead letter %d: %w", seq, err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(r, d.BodySize)); err != nil {
		return d, nil, fmt.Errorf("read body of dead letter %d: %w", seq, err)
	}
	return d, buf.Bytes(), nil
}

// ReplayDeadLetter publishes one of the tenant's dead letters to the
// pipeline subject it failed on, then removes it from the DLQ. The publish
// carries Nats-Msg-Id "<message ID>/replay/<seq>", so a replay repeated
// within the stream's duplicate window (after a crash between the publish and
// the delete) is dropped by JetStream. A claim-checked body is copied to a
// fresh claim key first, so the replayed message owns its body the way any
// message taken in does. The pipeline's stream must exist: replaying into a
// deleted integration fails and keeps the dead letter. counts, the
// platform's counts bucket, tells a stage whose consumer rests from one
// that is gone (nil: only consumers are looked at).
func ReplayDeadLetter(ctx context.Context, js jetstream.JetStream, claims *ClaimCheck, counts jetstream.KeyValue, tenant string, seq uint64) error {
	raw, err := getDeadLetter(ctx, js, tenant, seq)
	if err != nil {
		return err
	}
	d := DeadLetterOf(tenant, raw)
	p := Pipeline{Tenant: tenant, Integration: d.Integration}
	if p.Validate() != nil || !strings.HasPrefix(d.Subject, "vrsky."+tenant+"."+d.Integration+".") {
		return fmt.Errorf("dead letter %d has no pipeline subject to replay to (%q)", seq, d.Subject)
	}
	if err := checkReplayTarget(ctx, js, counts, p, d.Subject); err != nil {
		return fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	dedupID := d.MessageID + "/replay/" + strconv.FormatUint(seq, 10)
	m := nats.NewMsg(d.Subject)
	for k, v := range raw.Header {
		if strings.HasPrefix(k, "Vrsky-Dlq-") || k == nats.MsgIdHdr {
			continue
		}
		m.Header[k] = v
	}
	m.Header.Set(nats.MsgIdHdr, dedupID)
	m.Data = raw.Data
	if d.BodyRef != "" {
		if claims == nil || claims.Store == nil {
			return fmt.Errorf("dead letter %d has a claim-checked body and no blob store is configured", seq)
		}
		key := p.ClaimKey(dedupID)
		if err := claims.Store.Copy(ctx, d.BodyRef, key); err != nil {
			return fmt.Errorf("copy body of dead letter %d for its replay: %w", seq, err)
		}
		m.Header.Set(HeaderBodyRef, key)
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w", seq, d.Subject, err)
	}
	// Only now that the replay is stored may the dead letter go.
	return DiscardDeadLetter(ctx, js, tenant, seq)
}

// checkReplayTarget checks that the stage the dead letter failed on still
// exists in p's stream: its consumer is there, or it rests (its stage
// parked and recorded it in counts, resting.go). A stream without any
// consumer or rest record belongs to an integration no runner has started
// yet: its stages will be created, and will read what waits for them. A
// stream whose stages exist but not this one lost it to a spec change
// (deleteStaleConsumers): nothing would ever read the replay.
func checkReplayTarget(ctx context.Context, js jetstream.JetStream, counts jetstream.KeyValue, p Pipeline, subject string) error {
	stage := StageProcess
	if producer, ok := strings.CutPrefix(subject, p.OutSubject("")); ok {
		stage = DeliverStage(producer)
	}
	stream, err := js.Stream(ctx, p.Stream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("%w: integration %q no longer exists", ErrNoReplayTarget, p.Integration)
	}
	if err != nil {
		return fmt.Errorf("open stream %s: %w", p.Stream(), err)
	}
	rests := Rests{}
	if counts != nil {
		if rests, err = ReadRests(ctx, counts, p); err != nil {
			return err
		}
	}
	if _, ok := rests[stage]; ok {
		return nil
	}
	names := stream.ConsumerNames(ctx)
	stages := len(rests)
	for name := range names.Name() {
		if name == stage {
			return nil
		}
		stages++
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return fmt.Errorf("list consumers of %s: %w", p.Stream(), err)
	}
	if stages == 0 {
		return nil // not started yet
	}
	return fmt.Errorf("%w: integration %q has no stage %q any more (its producer was removed)", ErrNoReplayTarget, p.Integration, stage)
}

// DiscardDeadLetter removes one of the tenant's dead letters. Its
// claim-checked body, if any, expires with the DLQ retention.
func DiscardDeadLetter(ctx context.Context, js jetstream.JetStream, tenant string, seq uint64) error {
	stream, err := dlqStream(ctx, js, tenant)
	if err != nil {
		return err
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		// The server reports a missing message as a failed deletion.
		if _, getErr := stream.GetMsg(ctx, seq); errors.Is(getErr, jetstream.ErrMsgNotFound) {
			return ErrDeadLetterNotFound
		}
		return fmt.Errorf("delete dead letter %d from %s: %w", seq, DLQStream(tenant), err)
	}
	return nil
}

func getDeadLetter(ctx context.Context, js jetstream.JetStream, tenant string, seq uint64) (*jetstream.RawStreamMsg, error) {
	stream, err := dlqStream(ctx, js, tenant)
	if err != nil {
		return nil, err
	}
	if seq == 0 {
		return nil, ErrDeadLetterNotFound
	}
	raw, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, ErrDeadLetterNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read dead letter %d from %s: %w", seq, DLQStream(tenant), err)
	}
	return raw, nil
}

// DeadLetterOf reads a DLQ stream message's headers. It is lenient: a
// header that does not parse leaves its field zero.
func DeadLetterOf(tenant string, raw *jetstream.RawStreamMsg) DeadLetter {
	h := raw.Header
	d := DeadLetter{
		Seq:         raw.Sequence,
		MessageID:   h.Get(HeaderMsgID),
		Integration: strings.TrimPrefix(raw.Subject, "vrsky."+tenant+".dlq."),
		Stage:       h.Get(HeaderDLQStage),
		Reason:      h.Get(HeaderDLQReason),
		Subject:     h.Get(HeaderDLQSubject),
		ContentType: h.Get(hdrContentType),
		BodyRef:     h.Get(HeaderBodyRef),
		BodySize:    int64(len(raw.Data)),
		At:          raw.Time,
	}
	if d.MessageID == "" {
		d.MessageID, _, _ = strings.Cut(h.Get(nats.MsgIdHdr), "/")
	}
	d.Attempts, _ = strconv.Atoi(h.Get(HeaderDLQAttempts))
	if at, err := time.Parse(time.RFC3339Nano, h.Get(HeaderDLQAt)); err == nil {
		d.At = at
	}
	if d.BodyRef != "" {
		d.BodySize, _ = strconv.ParseInt(h.Get(hdrBodySize), 10, 64)
	}
	if raw := h.Get(hdrHeaders); raw != "" {
		_ = json.Unmarshal([]byte(raw), &d.Headers)
	}
	return d
}
