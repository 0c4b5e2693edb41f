package dataplane

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

func webhookDesired(p Pipeline, version int, status string) Desired {
	return Desired{Tenant: p.Tenant, Integration: p.Integration, Version: version, Status: status,
		Spec: spec.Integration{Name: p.Integration, Consumer: spec.Step{Connector: WebhookConnector},
			Producers: map[string]spec.Step{"out": {Connector: "file"}}}}
}

// TestDesiredStateAndStatusRoundTrip: what the control plane writes is what
// a runner and the API read back; bad names and statuses are refused.
func TestDesiredStateAndStatusRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := OpenState(ctx, js)
	require.NoError(t, err)
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}

	_, ok, err := state.GetDesired(ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	want := webhookDesired(p, 3, DesiredRunning)
	require.NoError(t, state.PutDesired(ctx, want))
	got, ok, err := state.GetDesired(ctx, p)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, want, got)
	require.Equal(t, p, got.Pipeline())

	bad := want
	bad.Status = "paused"
	require.ErrorContains(t, state.PutDesired(ctx, bad), "desired status")
	bad = want
	bad.Tenant = "Not Valid"
	require.Error(t, state.PutDesired(ctx, bad))
	_, _, err = state.GetDesired(ctx, Pipeline{Tenant: "x", Integration: "Not Valid"})
	require.Error(t, err)
	_, err = state.Desired.Put(ctx, Pipeline{Tenant: p.Tenant, Integration: "broken"}.Key(), []byte("{"))
	require.NoError(t, err)
	_, _, err = state.GetDesired(ctx, Pipeline{Tenant: p.Tenant, Integration: "broken"})
	require.ErrorContains(t, err, "decode desired state")

	_, ok, err = state.GetStatus(ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	st := Status{Tenant: p.Tenant, Integration: p.Integration, Version: 3, Status: StatusDegraded, LastError: "boom", Runner: "r1",
		UpdatedAt: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	require.NoError(t, state.PutStatus(ctx, st))
	gotSt, ok, err := state.GetStatus(ctx, p)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, st, gotSt)
	_, err = state.Status.Put(ctx, p.Key(), []byte("not json"))
	require.NoError(t, err)
	_, _, err = state.GetStatus(ctx, p)
	require.ErrorContains(t, err, "decode status")

	require.NoError(t, state.DeleteDesired(ctx, p))
	_, ok, err = state.GetDesired(ctx, p)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, state.DeleteDesired(ctx, p), "deleting twice succeeds")
	require.Error(t, state.DeleteDesired(ctx, Pipeline{Tenant: "Bad"}))
}

// TestDesiredCacheFollowsTheBucket: the ingress's cache sees what was
// there when it started and every change after.
func TestDesiredCacheFollowsTheBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := OpenState(ctx, js)
	require.NoError(t, err)
	tenant := "t" + testenv.RandomID(6)
	before, after := Pipeline{Tenant: tenant, Integration: "before"}, Pipeline{Tenant: tenant, Integration: "after"}
	require.NoError(t, state.PutDesired(ctx, webhookDesired(before, 1, DesiredRunning)))

	cache, err := WatchDesired(ctx, state)
	require.NoError(t, err)
	t.Cleanup(cache.Stop)
	d, ok := cache.Lookup(before)
	require.True(t, ok, "loaded before WatchDesired returns")
	require.Equal(t, 1, d.Version)

	require.NoError(t, state.PutDesired(ctx, webhookDesired(after, 2, DesiredStopped)))
	require.Eventually(t, func() bool { d, ok := cache.Lookup(after); return ok && d.Status == DesiredStopped }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, state.DeleteDesired(ctx, before))
	require.Eventually(t, func() bool { _, ok := cache.Lookup(before); return !ok }, 5*time.Second, 10*time.Millisecond)

	// A malformed value is not a pipeline.
	_, err = state.Desired.Put(ctx, after.Key(), []byte("{"))
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, ok := cache.Lookup(after); return !ok }, 5*time.Second, 10*time.Millisecond)

	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = WatchDesired(done, state)
	if err != nil {
		require.ErrorIs(t, err, context.Canceled)
	}
}

// TestCountersAddTheCountsBucketAndTheDLQ: a pipeline's counters are its
// consumers' plus what the counts bucket holds, and its dead letters.
func TestCountersAddTheCountsBucketAndTheDLQ(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	state, err := OpenState(ctx, js)
	require.NoError(t, err)
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}

	stages, dead, err := Counters(ctx, js, state.Counts, p)
	require.NoError(t, err)
	require.Empty(t, stages, "never deployed")
	require.Zero(t, dead)
	_, _, err = Counters(ctx, js, state.Counts, Pipeline{Tenant: "Bad", Integration: "x"})
	require.Error(t, err)

	stream, err := EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	for _, stage := range []string{StageProcess, DeliverStage("crm")} {
		_, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: stage, FilterSubject: p.StageSubject(stage), AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
	}
	for i := range 3 {
		_, err := js.Publish(ctx, p.InSubject(), []byte(strconv.Itoa(i)))
		require.NoError(t, err)
	}
	_, err = state.Counts.Put(ctx, p.CountKey(DeliverStage("crm")), []byte("7"))
	require.NoError(t, err)
	_, err = state.Counts.Put(ctx, p.CountKey(FailuresCount), []byte("2"))
	require.NoError(t, err)
	putDeadLetter(t, js, p, "m1", StageProcess, "bad", time.Now(), Envelope{})

	stages, dead, err = Counters(ctx, js, state.Counts, p)
	require.NoError(t, err)
	require.Equal(t, []StageCount{{Stage: DeliverStage("crm"), Acked: 7}, {Stage: StageProcess, Pending: 3}}, stages)
	require.EqualValues(t, 1, dead)
	without, _, err := Counters(ctx, js, nil, p)
	require.NoError(t, err)
	require.Zero(t, without[0].Acked, "without the counts bucket only the consumers count")
	failed, err := ReadFailures(ctx, state.Counts, p)
	require.NoError(t, err)
	require.EqualValues(t, 2, failed)

	_, err = state.Counts.Put(ctx, p.CountKey(StageProcess), []byte("many"))
	require.NoError(t, err)
	_, _, err = Counters(ctx, js, state.Counts, p)
	require.ErrorContains(t, err, "not a number")

	// Deleting the pipeline forgets its counts.
	require.NoError(t, state.DeleteDesired(ctx, p))
	n, err := ReadCount(ctx, state.Counts, p.CountKey(DeliverStage("crm")))
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestStreamsAreIdempotentAndStayWithinTheTenant: ensuring twice changes
// nothing, and deleting a tenant's streams leaves other tenants' alone.
func TestStreamsAreIdempotentAndStayWithinTheTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	mine, theirs := "t"+testenv.RandomID(6), "u"+testenv.RandomID(6)
	for _, p := range []Pipeline{{mine, "a"}, {mine, "b"}, {theirs, "a"}} {
		for range 2 {
			_, err := EnsureStreams(ctx, js, p)
			require.NoError(t, err)
		}
	}
	require.NoError(t, EnsureDLQStream(ctx, js, mine, 1<<20))
	dlq, err := js.Stream(ctx, DLQStream(mine))
	require.NoError(t, err)
	require.Equal(t, int64(1<<20), dlq.CachedInfo().Config.MaxBytes)
	require.Equal(t, DLQRetention, dlq.CachedInfo().Config.MaxAge)

	_, err = EnsureStreams(ctx, js, Pipeline{Tenant: mine, Integration: "Bad Name"})
	require.Error(t, err)
	require.NoError(t, DeleteStream(ctx, js, Pipeline{Tenant: mine, Integration: "b"}))
	require.NoError(t, DeleteStream(ctx, js, Pipeline{Tenant: mine, Integration: "b"}), "a missing stream is fine")

	n, err := DeleteTenantStreams(ctx, js, mine)
	require.NoError(t, err)
	require.Equal(t, 2, n, "its pipeline's stream and its DLQ")
	n, err = DeleteTenantStreams(ctx, js, mine)
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = js.Stream(ctx, Pipeline{Tenant: theirs, Integration: "a"}.Stream())
	require.NoError(t, err, "another tenant's stream stays")
	_, err = DeleteTenantStreams(ctx, js, "Not Valid")
	require.Error(t, err)

	kv, err := OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: "vrsky_test_" + testenv.RandomID(6), History: 1})
	require.NoError(t, err)
	require.NotNil(t, kv)
	_, err = OpenBucket(ctx, js, jetstream.KeyValueConfig{Bucket: "not valid"})
	require.ErrorContains(t, err, "open bucket")
	_, err = CreateOrUpdateStream(ctx, js, jetstream.StreamConfig{Name: "not valid"})
	require.ErrorContains(t, err, "create stream")
}
