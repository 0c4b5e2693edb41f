package hotpath

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// TestIdempotencyRemembersEachIDWithItsBody: an ID is unseen until it is
// remembered, then seen with the same body and refused with another, per
// pipeline; the bucket keeps IDs for the configured TTL.
func TestIdempotencyRemembersEachIDWithItsBody(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	idem := &Idempotency{Accounts: SharedAccount{JS: js}, TTL: 48 * time.Hour}
	p, other := Pipeline{Tenant: "acme", Integration: "orders"}, Pipeline{Tenant: "acme", Integration: "refunds"}
	a, b := Digest(sha256.Sum256([]byte("a"))), Digest(sha256.Sum256([]byte("b")))

	seen, err := idem.Seen(ctx, p, "key with spaces/and*wildcards>", a)
	require.NoError(t, err)
	require.False(t, seen)
	require.NoError(t, idem.Remember(ctx, p, "key with spaces/and*wildcards>", a))
	require.NoError(t, idem.Remember(ctx, p, "key with spaces/and*wildcards>", a), "remembering twice is harmless")
	seen, err = idem.Seen(ctx, p, "key with spaces/and*wildcards>", a)
	require.NoError(t, err)
	require.True(t, seen)
	_, err = idem.Seen(ctx, p, "key with spaces/and*wildcards>", b)
	require.ErrorIs(t, err, ErrKeyReused)
	require.ErrorIs(t, idem.Remember(ctx, p, "key with spaces/and*wildcards>", b), ErrKeyReused, "a racing other body")

	seen, err = idem.Seen(ctx, other, "key with spaces/and*wildcards>", b)
	require.NoError(t, err)
	require.False(t, seen, "each integration has its own IDs")

	kv, err := js.KeyValue(ctx, IdempotencyBucket)
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, st.TTL())
}
