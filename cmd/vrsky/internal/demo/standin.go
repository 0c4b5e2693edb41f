package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// standIn is what every local stand-in for an outside HTTP service shares: a
// loopback server that answers its first failFirst requests with 503 (an
// outage), records the requests it accepts and prints a line for each.
type standIn[T any] struct {
	name      string
	srv       *http.Server
	ln        net.Listener
	out       io.Writer
	mu        sync.Mutex
	failLeft  int
	failed    int
	records   []T
	closeOnce sync.Once
}

// listen starts serving h on addr (host:port; port 0 picks one).
func (s *standIn[T]) listen(addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("start the %s on %s: %w", s.name, addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr is the host:port the stand-in listens on.
func (s *standIn[T]) Addr() string { return s.ln.Addr().String() }

// admit records rec and returns true, or — while the outage lasts — answers
// 503 with Retry-After and returns false.
func (s *standIn[T]) admit(w http.ResponseWriter, rec T, what string) bool {
	s.mu.Lock()
	if s.failLeft > 0 {
		s.failLeft--
		s.failed++
		s.mu.Unlock()
		s.printf("answered 503 (simulated outage) to %s", what)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "service_unavailable", http.StatusServiceUnavailable)
		return false
	}
	s.records = append(s.records, rec)
	s.mu.Unlock()
	return true
}

func (s *standIn[T]) printf(format string, args ...any) {
	if s.out != nil {
		fmt.Fprintf(s.out, "  %s: %s\n", s.name, fmt.Sprintf(format, args...))
	}
}

// accepted returns the accepted requests in arrival order.
func (s *standIn[T]) accepted() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]T(nil), s.records...)
}

// matching returns the accepted requests whose text contains sub.
func (s *standIn[T]) matching(text func(T) string, sub string) []T {
	var got []T
	for _, r := range s.accepted() {
		if strings.Contains(text(r), sub) {
			got = append(got, r)
		}
	}
	return got
}

// Failed is how many requests were refused with 503.
func (s *standIn[T]) Failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// Close stops the stand-in.
func (s *standIn[T]) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			// A connection its client opened and never used counts as
			// busy for its first 5 s: close what is left outright.
			err = s.srv.Close()
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
	})
	return err
}
