package blobstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/testenv"
)

func TestPutGetStatDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := testenv.S3(t)
	require.NoError(t, store.Ping(ctx))

	body := make([]byte, 3<<20)
	_, _ = rand.Read(body)
	key := "tenant-a/integration-1/msg-1"
	require.NoError(t, store.Put(ctx, key, bytes.NewReader(body), int64(len(body)), "application/octet-stream"))

	size, err := store.Stat(ctx, key)
	require.NoError(t, err)
	require.EqualValues(t, len(body), size)

	r, err := store.Get(ctx, key)
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Equal(t, body, got)

	require.NoError(t, store.Delete(ctx, key))
	require.NoError(t, store.Delete(ctx, key), "deleting twice is fine")
	_, err = store.Get(ctx, key)
	require.ErrorIs(t, err, blobstore.ErrNotFound)
}

func TestEnsureBucketIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, cfg := testenv.S3(t)
	require.NoError(t, store.EnsureBucket(ctx))

	cfg.Bucket = "missing-" + testenv.RandomID(4)
	other, err := blobstore.New(cfg)
	require.NoError(t, err)
	require.ErrorContains(t, other.Ping(ctx), "does not exist")
}

func TestUnreachableStore(t *testing.T) {
	t.Parallel()
	store, err := blobstore.New(blobstore.Config{Endpoint: "127.0.0.1:1", Bucket: "b"})
	require.NoError(t, err)
	require.Error(t, store.Ping(context.Background()))
	require.Error(t, store.EnsureBucket(context.Background()))
	require.Error(t, store.Put(context.Background(), "a/b", bytes.NewReader(nil), 0, ""))
	_, err = store.Stat(context.Background(), "a/b")
	require.Error(t, err)
}

func TestNewRequiresEndpointAndBucket(t *testing.T) {
	_, err := blobstore.New(blobstore.Config{Endpoint: "x:1"})
	require.Error(t, err)
	_, err = blobstore.New(blobstore.Config{Bucket: "b"})
	require.Error(t, err)
}

func TestValidateKeyRejectsHostileKeys(t *testing.T) {
	for _, key := range []string{"", "../etc/passwd", "a/../b", "a//b", "/abs", "a/./b", "a/b/", "a b", "a/\x00", string(make([]byte, 2000))} {
		t.Run(key, func(t *testing.T) {
			require.Error(t, blobstore.ValidateKey(key))
		})
	}
	for _, key := range []string{"t1/i1/m1", "tenant_1/2026-11-26/msg.bin", "a=b"} {
		require.NoError(t, blobstore.ValidateKey(key), key)
	}
	store, _ := testenv.S3(t)
	require.Error(t, store.Put(context.Background(), "../x", bytes.NewReader(nil), 0, ""))
	_, err := store.Get(context.Background(), "../x")
	require.Error(t, err)
	require.Error(t, store.Delete(context.Background(), "../x"))
}

func TestDeleteOlderThanKeepsNewAndOtherPrefixes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, _ := testenv.S3(t)
	for _, key := range []string{"claims/t1/a", "claims/t1/b", "dlq/t1/c"} {
		require.NoError(t, store.Put(ctx, key, bytes.NewReader([]byte("x")), 1, ""))
	}
	n, err := store.DeleteOlderThan(ctx, "claims/", time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "fresh objects stay")
	count, err := store.Count(ctx, "claims/")
	require.NoError(t, err)
	require.Equal(t, 2, count)

	n, err = store.DeleteOlderThan(ctx, "claims/", time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, 2, n)
	_, err = store.Stat(ctx, "claims/t1/a")
	require.ErrorIs(t, err, blobstore.ErrNotFound)
	_, err = store.Stat(ctx, "dlq/t1/c")
	require.NoError(t, err, "other prefixes untouched")
	count, err = store.Count(ctx, "claims/")
	require.NoError(t, err)
	require.Zero(t, count)
}
