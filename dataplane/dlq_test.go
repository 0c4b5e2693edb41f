package dataplane

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

// attempts is how often the runtime tries a message before it dead-letters
// it (hotpath.MaxAttempts).
const attempts = 4

// putDeadLetter stores a message in the tenant's DLQ as the runtime does
// and returns its DLQ sequence.
func putDeadLetter(t *testing.T, js jetstream.JetStream, p Pipeline, id, stage, reason string, at time.Time, env Envelope) uint64 {
	t.Helper()
	ctx := context.Background()
	_, err := EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	env.Msg.ID = id
	nm := Encode(p.DLQSubject(), id+"/"+stage, env)
	nm.Header.Set(HeaderDLQReason, reason)
	nm.Header.Set(HeaderDLQStage, stage)
	nm.Header.Set(HeaderDLQAttempts, strconv.Itoa(attempts))
	subject := p.StageSubject(stage)
	// The stage it failed on exists, as in a running integration.
	stream, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	_, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: stage, FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	nm.Header.Set(HeaderDLQSubject, subject)
	nm.Header.Set(HeaderDLQAt, at.UTC().Format(time.RFC3339Nano))
	ack, err := js.PublishMsg(ctx, nm)
	require.NoError(t, err)
	return ack.Sequence
}

func seqsOf(letters []DeadLetter) []uint64 {
	out := make([]uint64, 0, len(letters))
	for _, d := range letters {
		out = append(out, d.Seq)
	}
	return out
}

func TestListDLQFiltersAndPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	orders := Pipeline{Tenant: tenant, Integration: "orders"}
	invoices := Pipeline{Tenant: tenant, Integration: "invoices"}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	body := func(s string) Envelope {
		return Envelope{Msg: sdk.Message{Body: []byte(s), ContentType: "application/json", Headers: map[string]string{"X-Order": s}}}
	}
	s1 := putDeadLetter(t, js, orders, "m1", DeliverStage("archive"), "disk full", base, body(`{"n":1}`))
	s2 := putDeadLetter(t, js, orders, "m2", StageProcess, "bad JSON", base.Add(time.Hour), body(`{"n":2}`))
	s3 := putDeadLetter(t, js, invoices, "m3", DeliverStage("archive"), "HTTP 500 from upstream", base.Add(2*time.Hour), body(`{"n":3}`))
	s4 := putDeadLetter(t, js, orders, "m4", DeliverStage("mail"), "Disk full again", base.Add(3*time.Hour), body(`{"n":4}`))

	for _, tc := range []struct {
		name string
		f    DLQFilter
		want []uint64
	}{
		{"all", DLQFilter{}, []uint64{s1, s2, s3, s4}},
		{"integration", DLQFilter{Integration: "orders"}, []uint64{s1, s2, s4}},
		{"producer", DLQFilter{Producer: "archive"}, []uint64{s1, s3}},
		{"integration and producer", DLQFilter{Integration: "invoices", Producer: "archive"}, []uint64{s3}},
		{"time range", DLQFilter{Since: base.Add(time.Hour), Until: base.Add(3 * time.Hour)}, []uint64{s2, s3}},
		{"error, any case", DLQFilter{ErrorContains: "DISK FULL"}, []uint64{s1, s4}},
		{"nothing", DLQFilter{Integration: "nothing"}, []uint64{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := ListDLQ(ctx, js, tenant, tc.f, 0, 100)
			require.NoError(t, err)
			require.Zero(t, next)
			require.Equal(t, tc.want, seqsOf(got))
		})
	}

	// Pages of two.
	page, next, err := ListDLQ(ctx, js, tenant, DLQFilter{}, 0, 2)
	require.NoError(t, err)
	require.Equal(t, []uint64{s1, s2}, seqsOf(page))
	require.Equal(t, s2, next)
	page, next, err = ListDLQ(ctx, js, tenant, DLQFilter{}, next, 2)
	require.NoError(t, err)
	require.Equal(t, []uint64{s3, s4}, seqsOf(page))
	require.Zero(t, next, "no further match: no next page")

	// What a dead letter says about itself.
	d := page[0]
	require.Equal(t, "m3", d.MessageID)
	require.Equal(t, "invoices", d.Integration)
	require.Equal(t, DeliverStage("archive"), d.Stage)
	require.Equal(t, "HTTP 500 from upstream", d.Reason)
	require.Equal(t, attempts, d.Attempts)
	require.Equal(t, invoices.OutSubject("archive"), d.Subject)
	require.True(t, base.Add(2*time.Hour).Equal(d.At))
	require.Equal(t, "application/json", d.ContentType)
	require.Equal(t, map[string]string{"X-Order": `{"n":3}`}, d.Headers)
	require.EqualValues(t, len(`{"n":3}`), d.BodySize)

	// Another tenant sees none of it; bad names are refused.
	other, _, err := ListDLQ(ctx, js, "t"+testenv.RandomID(6), DLQFilter{}, 0, 10)
	require.NoError(t, err)
	require.Empty(t, other)
	_, _, err = ListDLQ(ctx, js, tenant, DLQFilter{Producer: "Bad Name"}, 0, 10)
	require.Error(t, err)
	_, _, err = ListDLQ(ctx, js, "Bad Tenant", DLQFilter{}, 0, 10)
	require.Error(t, err)
}

func TestReplayDeadLetterPublishesOnceThenRemovesIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := Pipeline{Tenant: tenant, Integration: "orders"}
	received := time.Unix(1700000000, 0)
	seq := putDeadLetter(t, js, p, "m1", DeliverStage("archive"), "disk full", time.Now(),
		Envelope{Msg: sdk.Message{Body: []byte("hello"), Received: received, Headers: map[string]string{"k": "v"}}})

	d, body, err := GetDeadLetter(ctx, js, nil, tenant, seq, 0)
	require.NoError(t, err)
	require.Equal(t, "hello", string(body))
	require.Equal(t, "m1", d.MessageID)

	require.NoError(t, ReplayDeadLetter(ctx, js, nil, nil, tenant, seq))
	_, _, err = GetDeadLetter(ctx, js, nil, tenant, seq, 0)
	require.ErrorIs(t, err, ErrDeadLetterNotFound, "gone from the DLQ")
	require.ErrorIs(t, ReplayDeadLetter(ctx, js, nil, nil, tenant, seq), ErrDeadLetterNotFound, "a second replay finds nothing")

	stream, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	raw, err := stream.GetLastMsgForSubject(ctx, p.OutSubject("archive"))
	require.NoError(t, err)
	env, err := DecodeEnvelope(p, raw.Header, raw.Data)
	require.NoError(t, err)
	require.Equal(t, "m1", env.Msg.ID)
	require.Equal(t, "hello", string(env.Msg.Body))
	require.True(t, received.Equal(env.Msg.Received))
	require.Equal(t, map[string]string{"k": "v"}, env.Msg.Headers)
	require.Equal(t, "m1/replay/"+strconv.FormatUint(seq, 10), raw.Header.Get("Nats-Msg-Id"))
	for _, h := range []string{HeaderDLQReason, HeaderDLQStage, HeaderDLQAttempts, HeaderDLQSubject, HeaderDLQAt} {
		require.Empty(t, raw.Header.Get(h), "DLQ headers stay behind")
	}
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs)
}

func TestReplayRepeatedAfterACrashIsDeduplicated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := Pipeline{Tenant: tenant, Integration: "orders"}
	seq := putDeadLetter(t, js, p, "m1", StageProcess, "bad", time.Now(), Envelope{Msg: sdk.Message{Body: []byte("x")}})

	// A first replay published, then crashed before deleting the dead
	// letter: the second replay publishes the same Nats-Msg-Id.
	first := Encode(p.InSubject(), "m1/replay/"+strconv.FormatUint(seq, 10), Envelope{Msg: sdk.Message{ID: "m1", Body: []byte("x")}})
	_, err := js.PublishMsg(ctx, first)
	require.NoError(t, err)
	require.NoError(t, ReplayDeadLetter(ctx, js, nil, nil, tenant, seq))

	work, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	info, err := work.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, info.State.Msgs, "the repeated publish was dropped by JetStream")
}

func TestReplayClaimCheckedBodyAndDiscard(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	store, _ := testenv.S3(t)
	claims := &ClaimCheck{Store: store}
	tenant := "t" + testenv.RandomID(6)
	p := Pipeline{Tenant: tenant, Integration: "orders"}
	big := bytes.Repeat([]byte("b"), 1000)
	ref := p.DLQClaimKey("m1/process")
	require.NoError(t, store.Put(ctx, ref, bytes.NewReader(big), int64(len(big)), ""))
	seq := putDeadLetter(t, js, p, "m1", StageProcess, "bad", time.Now(), Envelope{BodyRef: ref, Size: int64(len(big))})
	other := putDeadLetter(t, js, p, "m2", StageProcess, "bad", time.Now(), Envelope{Msg: sdk.Message{Body: []byte("x")}})

	d, body, err := GetDeadLetter(ctx, js, claims, tenant, seq, 0)
	require.NoError(t, err)
	require.Equal(t, ref, d.BodyRef)
	require.EqualValues(t, len(big), d.BodySize)
	require.Equal(t, big, body)
	_, body, err = GetDeadLetter(ctx, js, claims, tenant, seq, 10)
	require.NoError(t, err)
	require.Nil(t, body, "over the bound: not fetched")
	_, _, err = GetDeadLetter(ctx, js, nil, tenant, seq, 0)
	require.Error(t, err, "claim-checked without a store")
	require.Error(t, ReplayDeadLetter(ctx, js, nil, nil, tenant, seq))

	require.NoError(t, ReplayDeadLetter(ctx, js, claims, nil, tenant, seq))
	stream, err := js.Stream(ctx, p.Stream())
	require.NoError(t, err)
	raw, err := stream.GetLastMsgForSubject(ctx, p.InSubject())
	require.NoError(t, err)
	env, err := DecodeEnvelope(p, raw.Header, raw.Data)
	require.NoError(t, err)
	require.NotEqual(t, ref, env.BodyRef, "the replay owns a copy of the body")
	require.NoError(t, claims.Resolve(ctx, &env))
	require.Equal(t, big, env.Msg.Body)

	require.NoError(t, DiscardDeadLetter(ctx, js, tenant, other))
	require.ErrorIs(t, DiscardDeadLetter(ctx, js, tenant, other), ErrDeadLetterNotFound)
	left, _, err := ListDLQ(ctx, js, tenant, DLQFilter{}, 0, 10)
	require.NoError(t, err)
	require.Empty(t, left)
	require.ErrorIs(t, DiscardDeadLetter(ctx, js, "t"+testenv.RandomID(6), 1), ErrDeadLetterNotFound)
	_, _, err = GetDeadLetter(ctx, js, nil, tenant, 0, 0)
	require.ErrorIs(t, err, ErrDeadLetterNotFound)
}

func TestReplayIntoADeletedIntegrationKeepsTheDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := Pipeline{Tenant: tenant, Integration: "orders"}
	seq := putDeadLetter(t, js, p, "m1", StageProcess, "bad", time.Now(), Envelope{Msg: sdk.Message{Body: []byte("x")}})
	require.NoError(t, DeleteStream(ctx, js, p))

	err := ReplayDeadLetter(ctx, js, nil, nil, tenant, seq)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrDeadLetterNotFound))
	_, body, err := GetDeadLetter(ctx, js, nil, tenant, seq, 0)
	require.NoError(t, err)
	require.Equal(t, "x", string(body))
}

func TestDLQEdgeCases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := Pipeline{Tenant: tenant, Integration: "orders"}

	last, err := LastDLQSeq(ctx, js, tenant)
	require.NoError(t, err)
	require.Zero(t, last, "no DLQ stream yet")
	_, err = LastDLQSeq(ctx, js, "Bad Tenant")
	require.Error(t, err)
	require.Error(t, DLQFilter{Integration: "Bad Name"}.Validate())

	putDeadLetter(t, js, p, "m1", StageProcess, "bad", time.Now(), Envelope{Msg: sdk.Message{Body: []byte("x")}})
	// A message stored without the hot path's headers, pointing outside its
	// pipeline, is listed but never replayed anywhere.
	m := Encode(p.DLQSubject(), "m2/process", Envelope{Msg: sdk.Message{Body: []byte("y")}})
	m.Header.Del(HeaderMsgID)
	m.Header.Set(HeaderDLQSubject, "vrsky.other.orders.in")
	ack, err := js.PublishMsg(ctx, m)
	require.NoError(t, err)

	last, err = LastDLQSeq(ctx, js, tenant)
	require.NoError(t, err)
	require.Equal(t, ack.Sequence, last)
	d, _, err := GetDeadLetter(ctx, js, nil, tenant, ack.Sequence, 0)
	require.NoError(t, err)
	require.Equal(t, "m2", d.MessageID, "from Nats-Msg-Id")
	require.Error(t, ReplayDeadLetter(ctx, js, nil, nil, tenant, ack.Sequence))
	_, _, err = GetDeadLetter(ctx, js, nil, tenant, ack.Sequence, 0)
	require.NoError(t, err, "still in the DLQ")

	got, _, err := ListDLQ(ctx, js, tenant, DLQFilter{Until: time.Now().Add(-time.Hour)}, 0, 0)
	require.NoError(t, err)
	require.Empty(t, got)
}
