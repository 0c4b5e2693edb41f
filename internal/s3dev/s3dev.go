// Package s3dev runs an embedded S3-compatible object store serving a local
// directory, for `vrsky dev` and tests.
//
// Clients reach it through minio-go exactly as they reach MinIO or AWS S3. It
// does not check request signatures, so it listens on loopback only and must
// never be used in production roles.
package s3dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"

	"github.com/vrsky/vrsky/internal/logging"
)

// Options configure the embedded store.
type Options struct {
	// Dir is where buckets and object metadata are kept; it survives restarts.
	Dir string
	// Addr is host:port to listen on; port 0 picks a free port. Default 127.0.0.1:0.
	Addr string
	// Logger receives start/stop lines and server errors.
	Logger *slog.Logger
}

// Server is a running embedded S3 store.
type Server struct {
	http *http.Server
	ln   net.Listener
	done chan struct{}
	log  *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// Start opens the directory and starts serving S3 on Addr.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("start s3: Dir is required")
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("start s3: create %s: %w", opts.Dir, err)
	}
	multi, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), opts.Dir))
	if err != nil {
		return nil, fmt.Errorf("start s3 on %s: %w", opts.Dir, err)
	}
	uploads := filepath.Join(opts.Dir, uploadsDir)
	if err := os.RemoveAll(uploads); err != nil { // what a stopped server left
		return nil, fmt.Errorf("start s3: clear %s: %w", uploads, err)
	}
	if err := os.Mkdir(uploads, 0o700); err != nil {
		return nil, fmt.Errorf("start s3: create %s: %w", uploads, err)
	}
	backend := spooledUploads{Backend: multi, dir: uploads}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start s3: listen on %s: %w", addr, err)
	}
	log := logging.Component(opts.Logger, "s3")
	faker := gofakes3.New(backend, gofakes3.WithAutoBucket(false), gofakes3.WithLogger(gofakes3.DiscardLog()))
	s := &Server{
		http: &http.Server{Handler: faker.Server(), ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
		log:  log,
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("s3 server stopped", "error", err)
		}
	}()
	return s, nil
}

// uploadsDir, under Options.Dir, holds bodies being uploaded.
const uploadsDir = "uploads"

// spooledUploads receives each upload's body into a file of its own before
// storing it. The backend holds one lock over every operation, and storing
// straight from the request would hold it while the body crosses the
// network (and is hashed): one upload at a time, whatever its size.
type spooledUploads struct {
	gofakes3.Backend
	dir string
}

func (b spooledUploads) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	f, err := os.CreateTemp(b.dir, "upload-*")
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := io.Copy(f, input); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	return b.Backend.PutObject(bucket, key, meta, f, size, conditions)
}

// Endpoint is host:port as minio-go expects it.
func (s *Server) Endpoint() string { return s.ln.Addr().String() }

// URL is the store's http:// base URL.
func (s *Server) URL() string { return "http://" + s.Endpoint() }

// Shutdown stops accepting requests and waits for in-flight ones until ctx
// ends; it is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		err := s.http.Shutdown(ctx)
		<-s.done
		if err != nil {
			s.stopErr = fmt.Errorf("stop s3: %w", err)
		}
	})
	return s.stopErr
}
