package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vrsky/vrsky/internal/spec"
)

// A tenant moves between locations (docs/nats.md): its pipelines' streams
// are created at the new location, new messages are written there while
// runners drain the old one, its dead letters are copied over, and the old
// streams are deleted. This file holds the data-plane side of those steps.

// UndrainedMessages returns how many messages the tenant's pipeline
// streams at js still hold for their stages. They are work queues: a
// message leaves its stream when its last stage acknowledges it, so 0
// means every message written there has been delivered, dead-lettered or
// dropped by a filter. The DLQ stream and the records of delivery keys do
// not count.
func UndrainedMessages(ctx context.Context, js jetstream.JetStream, tenant string) (uint64, error) {
	if !spec.ValidName(tenant) {
		return 0, fmt.Errorf("invalid tenant name %q", tenant)
	}
	var pipelines []Pipeline
	streams := js.ListStreams(ctx)
	for info := range streams.Info() {
		if p, ok := tenantPipeline(tenant, info.Config.Name); ok {
			pipelines = append(pipelines, p)
		}
	}
	if err := streams.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return 0, fmt.Errorf("list streams of %s: %w", tenant, err)
	}
	var held uint64
	for _, p := range pipelines {
		stream, err := js.Stream(ctx, p.Stream())
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("open stream %s: %w", p.Stream(), err)
		}
		waiting, err := WaitingBySubject(ctx, stream, p)
		if err != nil {
			return 0, err
		}
		for _, n := range waiting {
			held += n
		}
	}
	return held, nil
}

// tenantPipeline is the pipeline of tenant whose stream is named name,
// if it is one: not the DLQ, not another tenant's.
func tenantPipeline(tenant, name string) (Pipeline, bool) {
	integration, ok := strings.CutPrefix(name, "VRSKY_"+tenant+"_")
	p := Pipeline{Tenant: tenant, Integration: integration}
	return p, ok && name != DLQStream(tenant) && p.Validate() == nil
}

// CopyDLQ copies the tenant's dead letters from one location's DLQ stream
// to another's (created with maxBytes when missing), headers and bodies as
// they are, and returns how many it copied. A copy repeated within the
// streams' duplicate window stores nothing twice. Claim-checked bodies stay
// where they are: the copies refer to the same objects.
func CopyDLQ(ctx context.Context, from, to jetstream.JetStream, tenant string, maxBytes int64) (int, error) {
	src, err := dlqStream(ctx, from, tenant)
	if errors.Is(err, ErrDeadLetterNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if err := EnsureDLQStream(ctx, to, tenant, maxBytes); err != nil {
		return 0, err
	}
	info, err := src.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read stream %s: %w", DLQStream(tenant), err)
	}
	// The ID names the source stream (by its creation) and the sequence:
	// a retried copy is dropped as a duplicate, a later move's is not.
	idPrefix := "moved-dlq-" + strconv.FormatInt(info.Created.UnixNano(), 36) + "-"
	copied := 0
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		raw, err := src.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // expired or discarded meanwhile
		}
		if err != nil {
			return copied, fmt.Errorf("read dead letter %d of %s: %w", seq, tenant, err)
		}
		msg := &nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data}
		if msg.Header == nil {
			msg.Header = nats.Header{}
		}
		msg.Header.Set(jetstream.MsgIDHeader, idPrefix+strconv.FormatUint(seq, 10))
		if _, err := to.PublishMsg(ctx, msg, jetstream.WithExpectStream(DLQStream(tenant))); err != nil {
			return copied, fmt.Errorf("copy dead letter %d of %s: %w", seq, tenant, err)
		}
		copied++
	}
	return copied, nil
}
