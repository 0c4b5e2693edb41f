package s3dev

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/internal/blobstore"
)

func TestObjectsSurviveRestartOnSameDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()

	srv, err := Start(ctx, Options{Dir: dir})
	require.NoError(t, err)
	cfg := blobstore.Config{Endpoint: srv.Endpoint(), AccessKey: "k", SecretKey: "s", Bucket: "keep"}
	store, err := blobstore.New(cfg)
	require.NoError(t, err)
	require.NoError(t, store.EnsureBucket(ctx))
	require.NoError(t, store.Put(ctx, "t/obj", bytes.NewReader([]byte("payload")), 7, "text/plain"))
	require.NoError(t, srv.Shutdown(ctx))
	require.NoError(t, srv.Shutdown(ctx), "idempotent")

	_, err = os.Stat(filepath.Join(dir, "buckets", "keep"))
	require.NoError(t, err, "objects live in the directory")

	srv, err = Start(ctx, Options{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	cfg.Endpoint = srv.Endpoint()
	store, err = blobstore.New(cfg)
	require.NoError(t, err)
	r, err := store.Get(ctx, "t/obj")
	require.NoError(t, err)
	got, _ := io.ReadAll(r)
	require.Equal(t, "payload", string(got))

	resp, err := http.Get(srv.URL() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestStartErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Start(ctx, Options{})
	require.Error(t, err)

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	_, err = Start(ctx, Options{Dir: filepath.Join(file, "sub")})
	require.Error(t, err)

	_, err = Start(ctx, Options{Dir: t.TempDir(), Addr: "256.0.0.1:0"})
	require.Error(t, err)
}

// TestUploadsDoNotWaitForEachOther: an upload whose body is still arriving
// does not hold up the others.
func TestUploadsDoNotWaitForEachOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	srv, err := Start(ctx, Options{Dir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	store, err := blobstore.New(blobstore.Config{Endpoint: srv.Endpoint(), AccessKey: "k", SecretKey: "s", Bucket: "uploading"})
	require.NoError(t, err)
	require.NoError(t, store.EnsureBucket(ctx))

	body, feed := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL()+"/uploading/slow", body)
	require.NoError(t, err)
	req.ContentLength = 8
	slow := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = errors.New(resp.Status)
			}
		}
		slow <- err
	}()
	_, err = feed.Write([]byte("half"))
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond) // the server is reading the body now

	quick, stop := context.WithTimeout(ctx, 5*time.Second)
	defer stop()
	require.NoError(t, store.Put(quick, "fast", bytes.NewReader([]byte("quick")), 5, "text/plain"), "not held up by the slow upload")

	_, err = feed.Write([]byte("done"))
	require.NoError(t, err)
	require.NoError(t, feed.Close())
	require.NoError(t, <-slow)
	for key, want := range map[string]string{"slow": "halfdone", "fast": "quick"} {
		r, err := store.Get(ctx, key)
		require.NoError(t, err)
		got, _ := io.ReadAll(r)
		r.Close()
		require.Equal(t, want, string(got))
	}
	entries, err := os.ReadDir(filepath.Join(dir, uploadsDir))
	require.NoError(t, err)
	require.Empty(t, entries, "spooled bodies are removed")
}
