package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
)

// rateLimitedServer answers 429 with retryAfter to the first limited
// requests, then 201, recording each request's body.
func rateLimitedServer(t *testing.T, limited int32, retryAfter string) (*httptest.Server, *[]string) {
	var n atomic.Int32
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		w.Header().Set("Content-Type", "application/problem+json")
		if n.Add(1) <= limited {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"title":"Too Many Requests","status":429}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"acme"}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &bodies
}

func TestRateLimitedRequestsAreSentAgainAfterRetryAfter(t *testing.T) {
	srv, bodies := rateLimitedServer(t, 2, "0")
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	r, err := c.CreateTenantWithResponse(context.Background(), client.CreateTenantInputBody{Id: "acme"})
	require.NoError(t, client.Check("create", r, err, http.StatusCreated))
	require.Len(t, *bodies, 3)
	require.Equal(t, (*bodies)[0], (*bodies)[2], "the body is sent whole every time")
	require.Contains(t, (*bodies)[2], `"acme"`)
}

func TestRateLimitingThatDoesNotEndIsTheAnswer(t *testing.T) {
	tests := map[string]struct {
		retryAfter string
		sends      int
	}{
		"retried until the retries run out":  {"0", client.RateLimitRetries + 1},
		"a wait longer than MaxRetryAfter":   {"3600", 1},
		"no Retry-After":                     {"", 1},
		"hostile: a date instead of seconds": {"Wed, 21 Oct 2015 07:28:00 GMT", 1},
		"hostile: negative":                  {"-5", 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv, bodies := rateLimitedServer(t, 1000, tt.retryAfter)
			c, err := client.New(srv.URL, "k")
			require.NoError(t, err)
			r, err := c.CreateTenantWithResponse(context.Background(), client.CreateTenantInputBody{Id: "acme"})
			require.NoError(t, err)
			require.Equal(t, http.StatusTooManyRequests, r.StatusCode())
			require.Len(t, *bodies, tt.sends)
		})
	}
}

func TestRateLimitWaitEndsWithTheContext(t *testing.T) {
	srv, bodies := rateLimitedServer(t, 1000, "5")
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.CreateTenantWithResponse(ctx, client.CreateTenantInputBody{Id: "acme"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Len(t, *bodies, 1)
}
