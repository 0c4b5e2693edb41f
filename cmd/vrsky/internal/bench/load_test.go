package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLoadSendsEveryMessageOnSchedule runs the load generator against a
// server that checks each request and fails a few on purpose.
func TestLoadSendsEveryMessageOnSchedule(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || len(body) != 700 || !json.Valid(body) || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		seq, ok := ParseSeq(body)
		if !ok || key != "run-"+strconv.FormatInt(seq, 10) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		keys[key] = true
		mu.Unlock()
		if seq == 150 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"`+key+`"}`)
	}))
	t.Cleanup(srv.Close)

	s := Schedule{T0: time.Now().Add(10 * time.Millisecond), Rate: 1000, Warmup: 100, Measured: 200}
	c := NewCollector(s, nil)
	l := &Load{URL: srv.URL, KeyPrefix: "run-", Size: 700, Workers: 8}
	began := time.Now()
	require.NoError(t, l.Run(context.Background(), s, c))
	took := time.Since(began)
	require.GreaterOrEqual(t, took, 290*time.Millisecond, "open loop: the last message is due at 0.3 s")
	require.Len(t, keys, 300)

	n := c.Counts()
	require.Equal(t, int64(199), n.Sent)
	require.Equal(t, int64(1), n.Errors)
	require.Equal(t, map[string]int64{"503": 1}, n.ErrorsByStatus)
	require.Equal(t, int64(199), c.AckLatencies().Count)
}

// TestLoadWithoutAKeyPrefixSendsNoKey: with no key prefix the requests
// carry no Idempotency-Key header at all.
func TestLoadWithoutAKeyPrefixSendsNoKey(t *testing.T) {
	var keyed, sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		if _, ok := r.Header["Idempotency-Key"]; ok {
			keyed.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	s := Schedule{T0: time.Now(), Rate: 2000, Measured: 50}
	c := NewCollector(s, nil)
	require.NoError(t, (&Load{URL: srv.URL, Size: 600, Workers: 4}).Run(context.Background(), s, c))
	require.Equal(t, int64(50), sent.Load())
	require.Zero(t, keyed.Load())
	require.Equal(t, int64(50), c.Counts().Sent)
	cdc := Config{Scenario: ScenarioCDC, Binary: "vrsky", NoIdempotencyKey: true}
	require.ErrorContains(t, cdc.applyDefaults(), "sends no webhook requests")
	require.Equal(t, "", keyPrefix(Config{NoIdempotencyKey: true}, "x-"))
	require.Equal(t, "x-", keyPrefix(Config{}, "x-"))
}

func TestLoadRecordsFailedRequestsAsNoAnswer(t *testing.T) {
	s := Schedule{T0: time.Now(), Rate: 1000, Measured: 5}
	c := NewCollector(s, nil)
	l := &Load{URL: "http://127.0.0.1:1/nowhere", Size: 512, Workers: 2}
	require.NoError(t, l.Run(context.Background(), s, c))
	require.Equal(t, map[string]int64{"no answer": 5}, c.Counts().ErrorsByStatus)
}

func TestLoadRejectsBadSettings(t *testing.T) {
	c := NewCollector(Schedule{Rate: 1, Measured: 1}, nil)
	require.ErrorContains(t, (&Load{Size: 10}).Run(context.Background(), Schedule{Rate: 1, Measured: 1}, c), "too small")
	require.ErrorContains(t, (&Load{Size: 1024}).Run(context.Background(), Schedule{Measured: 1}, c), "must be positive")
}

func TestLoadStopsWithItsContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s := Schedule{T0: time.Now(), Rate: 10, Measured: 1000} // 100 s of load
	err := (&Load{URL: srv.URL, Size: 512, Workers: 2}).Run(ctx, s, NewCollector(s, nil))
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestNewClientKeepsAConnectionPerWorker(t *testing.T) {
	tr := NewClient(64).Transport.(*http.Transport)
	require.Equal(t, 64, tr.MaxIdleConnsPerHost)
	require.True(t, strings.HasPrefix(NewClient(1).Timeout.String(), "30s"))
}

// TestLoadBatchesMessagesAlreadyDue: with Batch, a worker sends the messages
// already due together, one per NDJSON line, and each is answered.
func TestLoadBatchesMessagesAlreadyDue(t *testing.T) {
	var requests, lines atomic.Int64
	var mu sync.Mutex
	seen := map[int64]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		requests.Add(1)
		records := strings.Split(string(body), "\n")
		if len(records) > 1 && r.Header.Get("Content-Type") != "application/x-ndjson" || len(records) > 10 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for i, rec := range records {
			seq, ok := ParseSeq([]byte(rec))
			if !ok || len(rec) != 600 || !json.Valid([]byte(rec)) || i == 0 && r.Header.Get("Idempotency-Key") != "b-"+strconv.FormatInt(seq, 10) {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			seen[seq] = true
			mu.Unlock()
			lines.Add(1)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)

	s := Schedule{T0: time.Now().Add(10 * time.Millisecond), Rate: 20000, Measured: 400}
	c := NewCollector(s, nil)
	require.NoError(t, (&Load{URL: srv.URL, KeyPrefix: "b-", Size: 600, Workers: 2, Batch: 10}).Run(context.Background(), s, c))
	require.EqualValues(t, 400, lines.Load())
	require.Len(t, seen, 400)
	require.Less(t, requests.Load(), int64(400), "messages due together went together")
	require.Equal(t, int64(400), c.Counts().Sent)
}
