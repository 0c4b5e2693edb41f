package activities

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/testenv"
)

// deadLetter stores a message in the tenant's DLQ with the headers the hot
// path writes when a stage gives up on it, and returns its DLQ sequence.
func deadLetter(t *testing.T, js jetstream.JetStream, p dataplane.Pipeline, id, reason string) uint64 {
	t.Helper()
	ctx := context.Background()
	_, err := dataplane.EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	m := nats.NewMsg(p.DLQSubject())
	m.Header.Set(nats.MsgIdHdr, id+"/"+dataplane.StageProcess)
	m.Header.Set("Vrsky-Msg-Id", id)
	m.Header.Set(dataplane.HeaderDLQReason, reason)
	m.Header.Set(dataplane.HeaderDLQStage, dataplane.StageProcess)
	m.Header.Set(dataplane.HeaderDLQAttempts, "4")
	m.Header.Set(dataplane.HeaderDLQSubject, p.InSubject())
	m.Header.Set(dataplane.HeaderDLQAt, time.Now().UTC().Format(time.RFC3339Nano))
	m.Data = []byte("body of " + id)
	ack, err := js.PublishMsg(ctx, m)
	require.NoError(t, err)
	return ack.Sequence
}

// streamMsgs counts the messages in a stream.
func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	require.NoError(t, err)
	info, err := s.Info(context.Background())
	require.NoError(t, err)
	return info.State.Msgs
}

func replayPage(t *testing.T, d *DLQ, in ReplayPageInput, heartbeat any) (ReplayPageResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(d)
	if heartbeat != nil {
		env.SetHeartbeatDetails(heartbeat)
	}
	val, err := env.ExecuteActivity(d.ReplayPage, in)
	if err != nil {
		return ReplayPageResult{}, err
	}
	var out ReplayPageResult
	require.NoError(t, val.Get(&out))
	return out, nil
}

func TestReplayPageReplaysMatchingDeadLettersPageByPage(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	orders := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	invoices := dataplane.Pipeline{Tenant: tenant, Integration: "invoices"}
	deadLetter(t, js, orders, "m1", "disk full")
	deadLetter(t, js, invoices, "m2", "disk full")
	s3 := deadLetter(t, js, orders, "m3", "disk full")
	deadLetter(t, js, orders, "m4", "bad JSON")
	s5 := deadLetter(t, js, orders, "m5", "disk full")
	d := &DLQ{Accounts: dataplane.SharedAccount{JS: js}}
	filter := dataplane.DLQFilter{Integration: "orders", ErrorContains: "disk"}

	first, err := replayPage(t, d, ReplayPageInput{Tenant: tenant, Filter: filter, Limit: 2}, nil)
	require.NoError(t, err)
	require.Equal(t, ReplayPageResult{Done: 2, LastSeq: s3, UpToSeq: s5, More: true}, first)

	// Dead-lettered after the replay began: left for the next replay.
	late := deadLetter(t, js, orders, "m6", "disk full")
	second, err := replayPage(t, d, ReplayPageInput{Tenant: tenant, Filter: filter, Limit: 2, AfterSeq: first.LastSeq, UpToSeq: first.UpToSeq}, nil)
	require.NoError(t, err)
	require.Equal(t, ReplayPageResult{Done: 1, LastSeq: s5, UpToSeq: s5}, second)

	require.EqualValues(t, 3, streamMsgs(t, js, orders.Stream()), "m1, m3 and m5 are back in their pipeline")
	left, _, err := dataplane.ListDLQ(context.Background(), js, tenant, dataplane.DLQFilter{}, 0, 10)
	require.NoError(t, err)
	var ids []string
	for _, l := range left {
		ids = append(ids, l.MessageID)
	}
	require.Equal(t, []string{"m2", "m4", "m6"}, ids)
	require.Equal(t, late, left[2].Seq)
}

func TestReplayPageResumesFromItsHeartbeat(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	s1 := deadLetter(t, js, p, "m1", "x")
	s2 := deadLetter(t, js, p, "m2", "x")
	s3 := deadLetter(t, js, p, "m3", "x")
	d := &DLQ{Accounts: dataplane.SharedAccount{JS: js}}

	// The crashed attempt replayed m1 (and heartbeat it) but did not get to
	// delete it: m1 is still in the DLQ, yet the retry starts after it.
	out, err := replayPage(t, d, ReplayPageInput{Tenant: tenant, Limit: 10}, replayProgress{LastSeq: s1, Done: 1})
	require.NoError(t, err)
	require.Equal(t, ReplayPageResult{Done: 3, LastSeq: s3, UpToSeq: s3}, out)
	require.EqualValues(t, 2, streamMsgs(t, js, p.Stream()), "m2 and m3 replayed, m1 not again")
	_, _, err = dataplane.GetDeadLetter(context.Background(), js, nil, tenant, s2, 0)
	require.ErrorIs(t, err, dataplane.ErrDeadLetterNotFound)
}

func TestReplayPageDiscardsExplicitSequences(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	tenant := "t" + testenv.RandomID(6)
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	s1 := deadLetter(t, js, p, "m1", "x")
	s2 := deadLetter(t, js, p, "m2", "x")
	s3 := deadLetter(t, js, p, "m3", "y")
	d := &DLQ{Accounts: dataplane.SharedAccount{JS: js}}

	out, err := replayPage(t, d, ReplayPageInput{Tenant: tenant, Seqs: []uint64{s3, s1, s1, 999}, Discard: true, Limit: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, ReplayPageResult{Done: 1, LastSeq: s1, UpToSeq: s3, More: true}, out)
	out, err = replayPage(t, d, ReplayPageInput{Tenant: tenant, Seqs: []uint64{s3, s1, s1, 999}, Discard: true, Limit: 1,
		AfterSeq: out.LastSeq, UpToSeq: out.UpToSeq, Filter: dataplane.DLQFilter{ErrorContains: "y"}}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, out.Done)
	require.False(t, out.More)

	left, _, err := dataplane.ListDLQ(context.Background(), js, tenant, dataplane.DLQFilter{}, 0, 10)
	require.NoError(t, err)
	require.Len(t, left, 1)
	require.Equal(t, s2, left[0].Seq)
	require.EqualValues(t, 0, streamMsgs(t, js, p.Stream()), "discarding replays nothing")
}

func TestReplayPageEdgeCases(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	d := &DLQ{Accounts: dataplane.SharedAccount{JS: js}}

	out, err := replayPage(t, d, ReplayPageInput{Tenant: "t" + testenv.RandomID(6)}, nil)
	require.NoError(t, err)
	require.Equal(t, ReplayPageResult{}, out, "a tenant without dead letters")

	_, err = replayPage(t, d, ReplayPageInput{Tenant: "acme", Filter: dataplane.DLQFilter{Integration: "Not Valid"}}, nil)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.Equal(t, ErrInvalidFilter, appErr.Type())
	require.True(t, appErr.NonRetryable())

	// The integration was deleted: replaying fails and keeps the dead letter.
	tenant := "t" + testenv.RandomID(6)
	p := dataplane.Pipeline{Tenant: tenant, Integration: "orders"}
	seq := deadLetter(t, js, p, "m1", "x")
	require.NoError(t, js.DeleteStream(context.Background(), p.Stream()))
	_, err = replayPage(t, d, ReplayPageInput{Tenant: tenant}, nil)
	require.Error(t, err)
	_, _, err = dataplane.GetDeadLetter(context.Background(), js, nil, tenant, seq, 0)
	require.NoError(t, err)
}
