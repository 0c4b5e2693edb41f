package testenv

import (
	"bytes"
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func TestJetStreamIsPrivatePerTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, js1 := JetStream(t)
	_, js2 := JetStream(t)
	_, err := js1.CreateStream(ctx, jetstream.StreamConfig{Name: "ONLY_HERE", Subjects: []string{"x"}})
	require.NoError(t, err)
	_, err = js2.Stream(ctx, "ONLY_HERE")
	require.ErrorIs(t, err, jetstream.ErrStreamNotFound, "each test gets its own server")
}

func TestS3GivesAWorkingPrivateBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, cfg := S3(t)
	require.NotEmpty(t, cfg.Endpoint)
	require.NoError(t, store.Put(ctx, "k/1", bytes.NewReader([]byte("v")), 1, ""))
	size, err := store.Stat(ctx, "k/1")
	require.NoError(t, err)
	require.EqualValues(t, 1, size)

	_, other := S3(t)
	require.NotEqual(t, cfg.Bucket, other.Bucket)
}

func TestRandomID(t *testing.T) {
	a, b := RandomID(8), RandomID(8)
	require.Len(t, a, 16)
	require.NotEqual(t, a, b)
}

func TestNATSWithAccountsNeedsTheKeys(t *testing.T) {
	t.Parallel()
	url, keys := NATSWithAccounts(t)
	_, err := nats.Connect(url)
	require.Error(t, err, "no anonymous connections in operator mode")
	creds, err := keys.PlatformUser("test")
	require.NoError(t, err)
	nc := Connect(t, url, creds)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "platform"})
	require.NoError(t, err)
}
