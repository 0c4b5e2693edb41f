package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rawServer answers each request on a connection with the next of answers
// (raw HTTP), then closes the connection; it counts the requests it read.
func rawServer(t *testing.T, answers ...string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var requests atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for _, answer := range answers {
					req, err := http.ReadRequest(r)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					requests.Add(1)
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/v1/hooks/t/i", &requests
}

func TestPostConnReadsEveryKindOfAnswer(t *testing.T) {
	url, requests := rawServer(t,
		"HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\n\r\n{\"id\":1}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nTrailer: v\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
		"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
	)
	c, err := newPostConn(url, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	ctx := context.Background()
	for _, want := range []int{202, 200, 503, 202} {
		status, err := c.post(ctx, "application/json", "k", []byte(`{"seq":1}`))
		require.NoError(t, err)
		require.Equal(t, want, status)
	}
	require.Nil(t, c.conn, "Connection: close closes it")
	require.EqualValues(t, 4, requests.Load(), "all on one connection")
}

// TestPostConnRetriesOnceOnAStaleConnection: the server closed the kept-
// alive connection; the request goes again on a new one.
func TestPostConnRetriesOnceOnAStaleConnection(t *testing.T) {
	url, requests := rawServer(t, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
	c, err := newPostConn(url, 5*time.Second)
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		status, err := c.post(context.Background(), "application/json", "k", []byte("{}"))
		require.NoError(t, err)
		require.Equal(t, 202, status)
	}
	require.EqualValues(t, 3, requests.Load())
}

func TestPostConnFailsOnBrokenAnswers(t *testing.T) {
	for name, answer := range map[string]string{
		"not http":       "SMTP ready\r\n",
		"bad status":     "HTTP/1.1 2x2 Accepted\r\n\r\n",
		"bad header":     "HTTP/1.1 202 Accepted\r\nno colon\r\n\r\n",
		"bad length":     "HTTP/1.1 202 Accepted\r\nContent-Length: -3\r\n\r\n",
		"bad chunk":      "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"short body":     "HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc",
		"cut in headers": "HTTP/1.1 202 Accepted\r\nContent-",
	} {
		t.Run(name, func(t *testing.T) {
			url, _ := rawServer(t, answer)
			c, err := newPostConn(url, 2*time.Second)
			require.NoError(t, err)
			defer c.Close()
			_, err = c.post(context.Background(), "application/json", "k", []byte("{}"))
			require.Error(t, err)
			require.Nil(t, c.conn, "a broken connection is dropped")
		})
	}
}

func TestPostConnAnswerToTheEndOfTheConnection(t *testing.T) {
	url, _ := rawServer(t, "HTTP/1.1 202 Accepted\r\n\r\nall of it")
	c, err := newPostConn(url, 2*time.Second)
	require.NoError(t, err)
	status, err := c.post(context.Background(), "application/json", "k", []byte("{}"))
	require.NoError(t, err)
	require.Equal(t, 202, status)
	require.Nil(t, c.conn)
}

func TestPostConnAgainstNetHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Idempotency-Key") != "key-7" || r.Header.Get("Content-Type") != "application/json" || string(b) != `{"a":1}` ||
			r.URL.Path != "/v1/hooks/t/i" || r.URL.RawQuery != "x=1" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, strings.Repeat("x", 5000)) // chunked by net/http
	}))
	t.Cleanup(srv.Close)
	c, err := newPostConn(srv.URL+"/v1/hooks/t/i?x=1", 2*time.Second)
	require.NoError(t, err)
	defer c.Close()
	for range 3 {
		status, err := c.post(context.Background(), "application/json", "key-7", []byte(`{"a":1}`))
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, status)
	}
	_, err = newPostConn("https://example.com/x", time.Second)
	require.Error(t, err)
	_, err = newPostConn("::", time.Second)
	require.Error(t, err)
}
