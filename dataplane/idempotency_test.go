package dataplane

import (
	"context"
	"crypto/sha256"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestKeyedDeliveriesAreStoredOnce: a key is stored once with its body's
// digest, in its pipeline's stream; a repeat with the same body stores
// nothing and is seen, one with another body is refused; each integration
// has its own keys; the record carries the TTL and no stage sees it.
func TestKeyedDeliveriesAreStoredOnce(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	pub := &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}
	idem := &Idempotency{Publisher: pub, TTL: 48 * time.Hour}
	p, other := Pipeline{Tenant: "acme", Integration: "orders"}, Pipeline{Tenant: "acme", Integration: "refunds"}
	stream := ensureStreams(t, js, p)
	ensureStreams(t, js, other)
	a, b := Digest(sha256.Sum256([]byte("a"))), Digest(sha256.Sum256([]byte("b")))
	msg := func(id, body string) []sdk.Message {
		return []sdk.Message{{ID: id, Body: []byte(body), Received: time.Now()}}
	}

	const key = "key with spaces/and*wildcards>"
	seen, err := idem.Store(ctx, p, key, a, msg(key, "a"))
	require.NoError(t, err)
	require.False(t, seen, "a new key is stored")
	require.EqualValues(t, 1, waiting(t, stream, p))
	rec := waitRecord(t, stream, p.KeySubject(key))
	require.Equal(t, "172800", rec.Header.Get(jetstream.MsgTTLHeader), "the record expires after the TTL")

	seen, err = idem.Store(ctx, p, key, a, msg(key, "a"))
	require.NoError(t, err)
	require.True(t, seen, "a recorded key with the same body is seen")
	_, err = idem.Store(ctx, p, key, b, msg(key, "b"))
	require.ErrorIs(t, err, ErrKeyReused)
	require.EqualValues(t, 1, waiting(t, stream, p), "neither repeat stored anything")

	seen, err = idem.Store(ctx, other, key, b, msg(key, "b"))
	require.NoError(t, err)
	require.False(t, seen, "each integration has its own keys")

	_, err = idem.Store(ctx, p, "empty", a, nil)
	require.Error(t, err)
}

// TestAKeyStoredButNotRecordedIsStoredAgain: a delivery whose first message
// is stored but whose key is not recorded yet (a racing request, or one
// that failed before recording it) is completed: what is stored is dropped
// as a duplicate, the rest is stored, and the key is recorded.
func TestAKeyStoredButNotRecordedIsStoredAgain(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	pub := &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}
	idem := &Idempotency{Publisher: pub}
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	stream := ensureStreams(t, js, p)
	sum := Digest(sha256.Sum256([]byte("batch")))
	batch := make([]sdk.Message, 3)
	for i := range batch {
		batch[i] = sdk.Message{ID: "batch-1-" + strconv.Itoa(i), Body: []byte{byte('0' + i)}, Received: time.Now()}
	}
	require.NoError(t, pub.Publish(ctx, p, batch[:1]), "the first request stored its first message only")

	seen, err := idem.Store(ctx, p, "batch-1", sum, batch)
	require.NoError(t, err)
	require.False(t, seen)
	require.EqualValues(t, 3, waiting(t, stream, p), "the first message once, the rest stored")
	waitRecord(t, stream, p.KeySubject("batch-1"))
	seen, err = idem.Store(ctx, p, "batch-1", sum, batch)
	require.NoError(t, err)
	require.True(t, seen)
	require.EqualValues(t, 3, waiting(t, stream, p))
}

// TestStoreFailsClearlyWithoutItsStream: a pipeline without a stream is
// unavailable, not seen or stored.
func TestStoreFailsClearlyWithoutItsStream(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}}
	p := Pipeline{Tenant: "acme", Integration: "gone"}
	_, err := idem.Store(context.Background(), p, "k", Digest{}, []sdk.Message{{ID: "k", Body: []byte("x")}})
	require.ErrorIs(t, err, ErrUnavailable)
	_, err = idem.compare(context.Background(), p, p.KeySubject("k"), Digest{})
	require.ErrorIs(t, err, ErrUnavailable)
}

func ensureStreams(t *testing.T, js jetstream.JetStream, p Pipeline) jetstream.Stream {
	t.Helper()
	stream, err := EnsureStreams(context.Background(), js, p)
	require.NoError(t, err)
	return stream
}

// waiting is how many messages p's stream holds for its stages.
func waiting(t *testing.T, stream jetstream.Stream, p Pipeline) uint64 {
	t.Helper()
	bySubject, err := WaitingBySubject(context.Background(), stream, p)
	require.NoError(t, err)
	var n uint64
	for _, count := range bySubject {
		n += count
	}
	return n
}

// waitRecord waits for the record on subject, which Store does not wait
// for, and returns it.
func waitRecord(t *testing.T, stream jetstream.Stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	var rec *jetstream.RawStreamMsg
	require.Eventually(t, func() bool {
		var err error
		rec, err = stream.GetLastMsgForSubject(context.Background(), subject)
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	return rec
}

// TestARecordThatCannotBeWrittenSaysSo: the delivery is stored, so the
// error is ErrKeyNotRecorded, not one that would make the sender retry.
func TestARecordThatCannotBeWrittenSaysSo(t *testing.T) {
	t.Parallel()
	nc, js := testenv.JetStream(t)
	idem := &Idempotency{Publisher: &Publisher{Accounts: SharedAccount{JS: js}, Claims: &ClaimCheck{}}}
	p := Pipeline{Tenant: "acme", Integration: "orders"}
	nc.Close()
	err := idem.record(context.Background(), p, p.KeySubject("k"), Digest{}, time.Hour)
	require.ErrorIs(t, err, ErrKeyNotRecorded)
	require.NotErrorIs(t, err, ErrUnavailable)
}
