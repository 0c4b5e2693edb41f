package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestPublisherStoresOnceAndClaimChecksLargeBodies: what the ingress
// publishes is in the pipeline's `in` subject when Publish returns, a
// repeated ID is stored once, and a large body travels by reference.
func TestPublisherStoresOnceAndClaimChecksLargeBodies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js := testenv.JetStream(t)
	store, _ := testenv.S3(t)
	errs := &countingErrors{}
	pub := &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{Store: store, Threshold: 100, Errors: errs}}
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}
	stream, err := EnsureStreams(ctx, js, p)
	require.NoError(t, err)

	big := bytes.Repeat([]byte("b"), 1000)
	msgs := []sdk.Message{
		{ID: "small", Body: []byte("hello"), ContentType: "text/plain", Received: time.Now()},
		{ID: "big", Body: big},
	}
	require.NoError(t, pub.Publish(ctx, p, msgs))
	require.NoError(t, pub.Publish(ctx, p, msgs), "the same IDs again")
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, info.State.Msgs, "each ID stored once")
	require.Less(t, info.State.Bytes, uint64(1000), "the large body is not in NATS")
	left, err := store.Count(ctx, ClaimPrefix+p.Tenant+"/")
	require.NoError(t, err)
	require.Equal(t, 1, left, "the duplicate's body was deleted again")

	raw, err := stream.GetMsg(ctx, 2)
	require.NoError(t, err)
	env, err := DecodeEnvelope(p, raw.Header, raw.Data)
	require.NoError(t, err)
	require.Equal(t, "big", env.Msg.ID)
	require.NotEmpty(t, env.BodyRef)
	require.EqualValues(t, len(big), env.Size)
	require.NoError(t, pub.Claims.Resolve(ctx, &env))
	require.Equal(t, big, env.Msg.Body)
	require.Zero(t, errs.n)

	require.Error(t, pub.Publish(ctx, Pipeline{Tenant: "Bad", Integration: "x"}, msgs))
	missing := Pipeline{Tenant: p.Tenant, Integration: "nostream"}
	err = pub.Publish(ctx, missing, msgs[:1])
	require.ErrorIs(t, err, ErrUnavailable, "no stream to store in")

	noStore := &Publisher{Accounts: SharedAccount{JS: js}}
	require.ErrorIs(t, noStore.Publish(ctx, p, []sdk.Message{{ID: "huge", Body: bytes.Repeat([]byte("x"), DefaultClaimThreshold+1)}}), ErrUnavailable)
}

// TestPublisherRefusesWhenNATSIsGone: a closed connection is
// ErrUnavailable, so the ingress answers 503 instead of acknowledging.
func TestPublisherRefusesWhenNATSIsGone(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nc, js := testenv.JetStream(t)
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}
	_, err := EnsureStreams(ctx, js, p)
	require.NoError(t, err)
	nc.Close()
	pub := &Publisher{Accounts: SharedAccount{JS: js}}
	require.ErrorIs(t, pub.Publish(ctx, p, []sdk.Message{{ID: "m1", Body: []byte("x")}}), ErrUnavailable)
	failing := &Publisher{Accounts: failingAccounts{}}
	require.ErrorIs(t, failing.Publish(ctx, p, nil), ErrUnavailable)
}

type failingAccounts struct{}

func (failingAccounts) JetStream(context.Context, string) (jetstream.JetStream, error) {
	return nil, errors.New("account unknown")
}

type countingErrors struct{ n int }

func (c *countingErrors) Inc(string) { c.n++ }

// TestClaimCheckKeepsBodiesWithinTheirTenant: bodies are stored before a
// reference exists, a reference outside the tenant is refused, a body gone
// is a permanent failure, and the sweep removes only what expired.
func TestClaimCheckKeepsBodiesWithinTheirTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := testenv.S3(t)
	errs := &countingErrors{}
	claims := &ClaimCheck{Store: store, Threshold: 10, Errors: errs}
	p := Pipeline{Tenant: "t" + testenv.RandomID(6), Integration: "orders"}

	small := Envelope{Msg: sdk.Message{ID: "s", Body: []byte("tiny")}}
	require.NoError(t, claims.Offload(ctx, p.ClaimKey("s"), &small))
	require.Empty(t, small.BodyRef, "under the threshold: stays inline")
	env := Envelope{Msg: sdk.Message{ID: "m1", Body: []byte("a body over ten bytes")}}
	require.NoError(t, claims.Offload(ctx, p.ClaimKey("m1"), &env))
	require.Equal(t, p.ClaimKey("m1"), env.BodyRef)

	nm := Encode(p.InSubject(), "m1", env)
	require.Empty(t, nm.Data)
	got, err := DecodeEnvelope(p, nm.Header, nm.Data)
	require.NoError(t, err)
	r, err := claims.Open(ctx, got)
	require.NoError(t, err)
	b, _ := io.ReadAll(r)
	_ = r.Close()
	require.Equal(t, "a body over ten bytes", string(b))
	msg, ref, size, err := Decode(p, nm.Header, nm.Data)
	require.NoError(t, err)
	require.Equal(t, env.BodyRef, ref)
	require.EqualValues(t, len("a body over ten bytes"), size)
	require.Nil(t, msg.Body)

	other := Pipeline{Tenant: "u" + testenv.RandomID(6), Integration: "orders"}
	_, err = DecodeEnvelope(other, nm.Header, nm.Data)
	require.ErrorIs(t, err, ErrForeignRef, "another tenant's pipeline cannot reach the body")
	require.True(t, sdk.IsPermanent(err))

	dlqRef, err := claims.KeepForDLQ(ctx, env.BodyRef, p.DLQClaimKey("m1"))
	require.NoError(t, err)
	require.Equal(t, p.DLQClaimKey("m1"), dlqRef)
	claims.Release(ctx, env.BodyRef)
	claims.Release(ctx, "")
	err = claims.Resolve(ctx, &got)
	require.ErrorIs(t, err, ErrBodyGone)
	require.True(t, sdk.IsPermanent(err))
	_, err = claims.KeepForDLQ(ctx, env.BodyRef, p.DLQClaimKey("m2"))
	require.ErrorIs(t, err, ErrBodyGone)
	require.Equal(t, 2, errs.n, "a failed get and a failed copy")

	n, err := SweepExpired(ctx, store, time.Now(), 0, 0)
	require.NoError(t, err)
	require.Zero(t, n, "nothing expired yet")
	n, err = SweepExpired(ctx, store, time.Now().Add(DLQRetention+time.Hour), 0, 0)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the DLQ copy expired; the released body was gone already")
	left, err := store.Count(ctx, DLQClaimPrefix+p.Tenant+"/")
	require.NoError(t, err)
	require.Zero(t, left)

	var none *ClaimCheck
	require.Equal(t, DefaultClaimThreshold, none.ThresholdOrDefault())
	require.Error(t, none.Offload(ctx, "k", &Envelope{Msg: sdk.Message{Body: make([]byte, DefaultClaimThreshold+1)}}))
	_, err = none.Open(ctx, got)
	require.Error(t, err)
}

// TestChainRunsConvertersAndFiltersInOrder: what the process stage and the
// API's dry run both run.
func TestChainRunsConvertersAndFiltersInOrder(t *testing.T) {
	ctx := context.Background()
	upper := sdk.Connector{Name: "upper", Kind: sdk.KindConverter, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) {
		return converterFunc(func(m sdk.Message) (sdk.Message, error) { m.Body = bytes.ToUpper(m.Body); return m, nil }), nil
	}}
	route := sdk.Connector{Name: "route", Kind: sdk.KindFilter, Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		var to []string
		if err := json.Unmarshal(raw, &to); err != nil {
			return nil, err
		}
		return filterFunc(func(m sdk.Message) (sdk.Decision, error) {
			if string(m.Body) == "DROP" {
				return sdk.Decision{Drop: true}, nil
			}
			if string(m.Body) == "FAIL" {
				return sdk.Decision{}, errors.New("refused")
			}
			return sdk.Decision{Routes: to}, nil
		}), nil
	}}
	producer := sdk.Connector{Name: "sink", Kind: sdk.KindProducer, Build: func(context.Context, sdk.Env, json.RawMessage) (any, error) { return struct{}{}, nil }}
	catalog := sdk.NewCatalog(upper, route, producer)
	env := func(string) sdk.Env { return sdk.Env{} }

	chain, err := BuildChain(ctx, catalog, []spec.Step{{Connector: "upper"}, {Connector: "route", Config: json.RawMessage(`["crm"]`)}}, env)
	require.NoError(t, err)
	require.Equal(t, 2, chain.Len())
	out, routes, drop, err := chain.Run(ctx, sdk.Message{Body: []byte("hi")})
	require.NoError(t, err)
	require.False(t, drop)
	require.Equal(t, "HI", string(out.Body))
	require.Equal(t, []string{"crm"}, routes)
	_, _, drop, err = chain.Run(ctx, sdk.Message{Body: []byte("drop")})
	require.NoError(t, err)
	require.True(t, drop)
	_, _, _, err = chain.Run(ctx, sdk.Message{Body: []byte("fail")})
	require.ErrorContains(t, err, "steps[1]:route")

	nowhere, err := BuildChain(ctx, catalog, []spec.Step{{Connector: "route", Config: json.RawMessage(`[]`)}}, env)
	require.NoError(t, err)
	_, _, drop, err = nowhere.Run(ctx, sdk.Message{Body: []byte("x")})
	require.NoError(t, err)
	require.True(t, drop, "routed nowhere is filtered out")

	for _, bad := range [][]spec.Step{
		{{Connector: "missing"}},
		{{Connector: "sink"}},
		{{Connector: "route", Config: json.RawMessage(`{`)}},
	} {
		_, err := BuildChain(ctx, catalog, bad, env)
		require.Error(t, err)
	}
}

type converterFunc func(sdk.Message) (sdk.Message, error)

func (f converterFunc) Convert(_ context.Context, m sdk.Message) (sdk.Message, error) { return f(m) }

type filterFunc func(sdk.Message) (sdk.Decision, error)

func (f filterFunc) Filter(_ context.Context, m sdk.Message) (sdk.Decision, error) { return f(m) }
