package dataplane

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestPlacementValidateAndConsume(t *testing.T) {
	inst := &Instance{URLs: []string{"nats://10.0.0.1:4222"}, User: "vrsky", Password: "pw"}
	for name, tc := range map[string]struct {
		p       Placement
		wantErr string
		consume []Location
	}{
		"shared":           {p: SharedPlacement("acme"), consume: []Location{Shared}},
		"dedicated":        {p: Placement{Tenant: "acme", Write: Dedicated, Dedicated: inst}, consume: []Location{Dedicated}},
		"moving":           {p: Placement{Tenant: "acme", Write: Dedicated, Draining: Shared, Dedicated: inst}, consume: []Location{Dedicated, Shared}},
		"draining to self": {p: Placement{Tenant: "acme", Write: Shared, Draining: Shared}, consume: []Location{Shared}},
		"no instance":      {p: Placement{Tenant: "acme", Write: Dedicated}, wantErr: "does not have"},
		"draining a ghost": {p: Placement{Tenant: "acme", Write: Shared, Draining: Dedicated}, wantErr: "does not have"},
		"unknown location": {p: Placement{Tenant: "acme", Write: "moon"}, wantErr: "unknown location"},
		"hostile tenant":   {p: Placement{Tenant: "../etc", Write: Shared}, wantErr: "invalid tenant"},
		"no URL":           {p: Placement{Tenant: "acme", Write: Dedicated, Dedicated: &Instance{User: "u", Password: "p"}}, wantErr: "URL"},
		"empty URL":        {p: Placement{Tenant: "acme", Write: Dedicated, Dedicated: &Instance{URLs: []string{""}, User: "u", Password: "p"}}, wantErr: "URL"},
		"no password":      {p: Placement{Tenant: "acme", Write: Dedicated, Dedicated: &Instance{URLs: []string{"nats://x"}, User: "u"}}, wantErr: "password"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.consume, tc.p.Consume())
		})
	}
}

// dedicatedInstance starts a password-protected JetStream server.
func dedicatedInstance(t *testing.T) Instance {
	t.Helper()
	url, _ := testenv.DedicatedNATS(t, "vrsky", "s3cret")
	return Instance{URLs: []string{url}, User: "vrsky", Password: "s3cret"}
}

// PlacedAccounts follows the bucket: a tenant written to its dedicated
// instance gets a connection there, other tenants stay shared, a
// malformed or foreign entry is shared, and leaving the instance closes
// the connection.
func TestPlacedAccountsFollowThePlacementsBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := testenv.JetStream(t)
	kv, err := OpenPlacements(ctx, js)
	require.NoError(t, err)
	inst := dedicatedInstance(t)
	moved := Placement{Tenant: "big", Write: Dedicated, Dedicated: &inst}
	require.NoError(t, PutPlacement(ctx, kv, moved))
	_, err = kv.Put(ctx, "liar", []byte(`{"tenant":"other","write":"dedicated"}`))
	require.NoError(t, err)
	_, err = kv.Put(ctx, "junk", []byte(`{not json`))
	require.NoError(t, err)

	placed, err := NewPlacedAccounts(ctx, kv, SharedAccount{JS: js}, "test")
	require.NoError(t, err)
	defer placed.Close()
	require.Equal(t, Dedicated, placed.Placement("big").Write, "loaded before it returns")
	require.Equal(t, SharedPlacement("liar"), placed.Placement("liar"), "an entry naming another tenant is ignored")
	require.Equal(t, SharedPlacement("junk"), placed.Placement("junk"))
	require.Equal(t, SharedPlacement("small"), placed.Placement("small"))

	small, err := placed.JetStream(ctx, "small")
	require.NoError(t, err)
	require.Same(t, js, small)
	big, err := placed.JetStream(ctx, "big")
	require.NoError(t, err)
	require.Equal(t, inst.URLs[0], "nats://"+big.Conn().ConnectedAddr())
	again, err := placed.JetStream(ctx, "big")
	require.NoError(t, err)
	require.Same(t, big, again, "one connection per instance")
	_, err = placed.At(ctx, SharedPlacement("small"), Dedicated)
	require.ErrorContains(t, err, "no dedicated instance")
	_, err = placed.At(ctx, moved, "moon")
	require.ErrorContains(t, err, "unknown location")

	// Moving back closes the connection to the instance.
	require.NoError(t, PutPlacement(ctx, kv, SharedPlacement("big")))
	require.Eventually(t, func() bool { return placed.Placement("big").Write == Shared }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, big.Conn().IsClosed, 5*time.Second, 10*time.Millisecond)
	_, err = kv.Get(ctx, "big")
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound, "a shared placement is no entry at all")

	require.ErrorContains(t, PutPlacement(ctx, kv, Placement{Tenant: "big", Write: Dedicated}), "does not have")
	require.ErrorContains(t, DeletePlacement(ctx, kv, "a.b"), "invalid tenant")
	placed.Close()
	_, err = placed.At(ctx, moved, Dedicated)
	require.ErrorContains(t, err, "closed")
}

// An instance that refuses the platform's credentials stores nothing, and
// the publisher says it is unavailable.
func TestPlacedAccountsReportAnInstanceThatRefuses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, js := testenv.JetStream(t)
	kv, err := OpenPlacements(ctx, js)
	require.NoError(t, err)
	inst := dedicatedInstance(t)
	inst.Password = "wrong"
	placed, err := NewPlacedAccounts(ctx, kv, SharedAccount{JS: js}, "test")
	require.NoError(t, err)
	defer placed.Close()
	require.NoError(t, PutPlacement(ctx, kv, Placement{Tenant: "big", Write: Dedicated, Dedicated: &inst}))
	require.Eventually(t, func() bool { return placed.Placement("big").Write == Dedicated }, 5*time.Second, 10*time.Millisecond)
	// The connection keeps trying (an instance restarting comes back), and
	// meanwhile every store is refused as unavailable: the webhook's 503.
	pub := &Publisher{Accounts: placed, Claims: &ClaimCheck{}}
	err = pub.Publish(ctx, Pipeline{Tenant: "big", Integration: "orders"}, []sdk.Message{{ID: "a", Body: []byte("1")}})
	require.ErrorIs(t, err, ErrUnavailable)
}

// A move's data-plane steps: the old location reports what it holds, and
// its dead letters are copied once, even when the copy runs twice.
func TestUndrainedMessagesAndCopyDLQ(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, from := testenv.JetStream(t)
	_, to := testenv.JetStream(t)
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	held, err := UndrainedMessages(ctx, from, "acme")
	require.NoError(t, err)
	require.Zero(t, held)
	_, err = EnsureStreams(ctx, from, p)
	require.NoError(t, err)
	pub := &Publisher{Accounts: SharedAccount{JS: from}, Claims: &ClaimCheck{}}
	require.NoError(t, pub.Publish(ctx, p, []sdk.Message{{ID: "a", Body: []byte("1"), Received: time.Now()}, {ID: "b", Body: []byte("2"), Received: time.Now()}}))
	idem := &Idempotency{Publisher: pub}
	_, err = idem.Store(ctx, p, "k", Digest{1}, []sdk.Message{{ID: "k", Body: []byte("3"), Received: time.Now()}})
	require.NoError(t, err)
	for i, id := range []string{"x", "y", "z"} {
		putDeadLetter(t, from, p, id, StageProcess, "boom "+id, time.Now(), Envelope{Msg: sdk.Message{Body: []byte{byte('0' + i)}}})
	}
	held, err = UndrainedMessages(ctx, from, "acme")
	require.NoError(t, err)
	require.EqualValues(t, 3, held, "dead letters and key records do not count")
	_, err = UndrainedMessages(ctx, from, "../x")
	require.Error(t, err)

	n, err := CopyDLQ(ctx, from, to, "acme", 0)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = CopyDLQ(ctx, from, to, "acme", 0)
	require.NoError(t, err)
	require.Equal(t, 3, n, "copied again…")
	letters, _, err := ListDLQ(ctx, to, "acme", DLQFilter{}, 0, 10)
	require.NoError(t, err)
	require.Len(t, letters, 3, "…but stored once")
	require.Equal(t, "boom x", letters[0].Reason)
	n, err = CopyDLQ(ctx, to, from, "nobody", 0)
	require.NoError(t, err)
	require.Zero(t, n, "a tenant without dead letters copies nothing")
}
