package dataplane

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/testenv"
)

// TestIdempotencyRemembersEachIDWithItsBody: an ID is claimed pending,
// seen once confirmed with the same body, refused with another, per
// pipeline; the bucket keeps IDs for the configured TTL.
func TestIdempotencyRemembersEachIDWithItsBody(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	ctx := context.Background()
	idem := &Idempotency{Accounts: SharedAccount{JS: js}, TTL: 48 * time.Hour}
	p, other := Pipeline{Tenant: "acme", Integration: "orders"}, Pipeline{Tenant: "acme", Integration: "refunds"}
	a, b := Digest(sha256.Sum256([]byte("a"))), Digest(sha256.Sum256([]byte("b")))

	const id = "key with spaces/and*wildcards>"
	seen, err := idem.Claim(ctx, p, id, a)
	require.NoError(t, err)
	require.False(t, seen, "a new ID is claimed")
	seen, err = idem.Claim(ctx, p, id, a)
	require.NoError(t, err)
	require.False(t, seen, "a pending ID with the same body is stored again (JetStream drops the duplicate)")
	_, err = idem.Claim(ctx, p, id, b)
	require.ErrorIs(t, err, ErrKeyReused, "a racing other body")

	require.NoError(t, idem.Confirm(ctx, p, id, a))
	require.Eventually(t, func() bool { // Confirm does not wait
		seen, err := idem.Claim(ctx, p, id, a)
		return err == nil && seen
	}, 5*time.Second, 10*time.Millisecond, "a confirmed ID with the same body is seen")
	_, err = idem.Claim(ctx, p, id, b)
	require.ErrorIs(t, err, ErrKeyReused)

	seen, err = idem.Claim(ctx, other, id, b)
	require.NoError(t, err)
	require.False(t, seen, "each integration has its own IDs")

	kv, err := js.KeyValue(ctx, IdempotencyBucket)
	require.NoError(t, err)
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 48*time.Hour, st.TTL())
}
