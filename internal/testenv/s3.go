package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/vrsky/vrsky/internal/blobstore"
	"github.com/vrsky/vrsky/internal/s3dev"
)

// S3 starts a private S3-compatible server on a temporary directory and
// returns a Store on a fresh bucket of its own; everything is removed when the
// test ends.
func S3(t testing.TB) (*blobstore.Store, blobstore.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := s3dev.Start(ctx, s3dev.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start s3: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	cfg := blobstore.Config{Endpoint: srv.Endpoint(), AccessKey: "test", SecretKey: "test-secret", Bucket: "test-" + RandomID(8)}
	store, err := blobstore.New(cfg)
	if err != nil {
		t.Fatalf("blob store: %v", err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return store, cfg
}

// RandomID returns n random bytes as lowercase hex, for tenant, integration
// and bucket names that keep parallel tests apart.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
