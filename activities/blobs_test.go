package activities

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestSweepExpiredBlobsHonoursEachPrefixTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := testenv.S3(t)
	for _, key := range []string{"claims/t1/i1/m1", "dlq/t1/i1/m2", "other/keep"} {
		require.NoError(t, store.Put(ctx, key, bytes.NewReader([]byte("x")), 1, ""))
	}

	// A day later both are kept: a claim-checked body may still belong to
	// a message waiting in a stopped integration or retrying.
	later := &Blobs{Store: store, Now: func() time.Time { return time.Now().Add(24 * time.Hour) }}
	res, err := later.SweepExpiredBlobs(ctx, SweepInput{})
	require.NoError(t, err)
	require.Zero(t, res.Removed)
	_, err = store.Stat(ctx, "claims/t1/i1/m1")
	require.NoError(t, err)

	// A shorter claim TTL, when asked for, is honoured per prefix.
	res, err = later.SweepExpiredBlobs(ctx, SweepInput{ClaimTTL: time.Hour})
	require.NoError(t, err)
	require.Equal(t, 1, res.Removed)
	_, err = store.Stat(ctx, "claims/t1/i1/m1")
	require.ErrorIs(t, err, blobstore.ErrNotFound)
	_, err = store.Stat(ctx, "dlq/t1/i1/m2")
	require.NoError(t, err)

	// Eight days later the DLQ'd payload goes too; unrelated keys never do.
	muchLater := &Blobs{Store: store, Now: func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }}
	res, err = muchLater.SweepExpiredBlobs(ctx, SweepInput{})
	require.NoError(t, err)
	require.Equal(t, 1, res.Removed)
	_, err = store.Stat(ctx, "other/keep")
	require.NoError(t, err)

	// Repeating is harmless.
	res, err = muchLater.SweepExpiredBlobs(ctx, SweepInput{ClaimTTL: time.Minute, DLQTTL: time.Minute})
	require.NoError(t, err)
	require.Zero(t, res.Removed)
}

func TestSweepReportsStoreErrors(t *testing.T) {
	store, err := blobstore.New(blobstore.Config{Endpoint: "127.0.0.1:1", Bucket: "b"})
	require.NoError(t, err)
	_, err = (&Blobs{Store: store}).SweepExpiredBlobs(context.Background(), SweepInput{})
	require.Error(t, err)
}
