package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/client"
)

func TestNewNeedsAnAddress(t *testing.T) {
	_, err := client.New(" ", "k")
	require.ErrorContains(t, err, "no API address")
	c, err := client.New("http://127.0.0.1:1/", "k")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:1", c.Server())
}

func TestTheKeyIsSentAsABearerToken(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	c, err := client.New(srv.URL, " k1\n")
	require.NoError(t, err)
	r, err := c.GetHealthWithResponse(ctx)
	require.NoError(t, client.Check("health", r, err, http.StatusOK))
	_, err = c.WithKey("k2").GetHealthWithResponse(ctx)
	require.NoError(t, err)
	noKey, err := client.New(srv.URL, "")
	require.NoError(t, err)
	_, err = noKey.GetHealthWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"GET /healthz Bearer k1", "GET /healthz Bearer k2", "GET /healthz "}, got)
}

func TestErrorsReadAsOneLine(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"problem with located errors", `{"title":"Unprocessable Entity","status":422,"detail":"validation failed","errors":[{"location":"body.name","message":"expected string"},{"location":"query.limit","message":"too big"}]}`,
			422, "422 Unprocessable Entity: validation failed; body.name: expected string; query.limit: too big"},
		{"title only", `{"title":"Conflict"}`, 409, "409 Conflict"},
		{"not a problem", "upstream exploded\n", 502, "502 upstream exploded"},
		{"empty body", "", 404, "404 Not Found"},
		{"malformed JSON", `{"title":`, 500, `500 {"title":`},
		{"hostile: a problem of the wrong shape", `{"title":["a"],"errors":"x"}`, 400, `400 {"title":["a"],"errors":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, client.ErrorOf(tt.status, []byte(tt.body)).Error())
		})
	}
}

func TestCheckTurnsAnswersIntoErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"title":"Not Found","status":404,"detail":"no integration orders"}`)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	r, err := c.GetIntegrationWithResponse(context.Background(), "orders")
	err = client.Check("get integration orders", r, err, http.StatusOK)
	require.EqualError(t, err, "get integration orders: 404 Not Found: no integration orders")
	require.True(t, client.IsNotFound(err))
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	var e *client.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "no integration orders", *e.Problem.Detail)
	require.NoError(t, client.Check("get", r, nil, http.StatusOK, http.StatusNotFound))

	// No answer at all: the transport's error, and no status.
	down, err := client.New("http://127.0.0.1:1", "k")
	require.NoError(t, err)
	r, err = down.GetIntegrationWithResponse(context.Background(), "orders")
	err = client.Check("get integration orders", r, err, http.StatusOK)
	require.ErrorContains(t, err, "get integration orders: ")
	require.Zero(t, client.StatusOf(err))
	require.False(t, client.IsNotFound(err))
}

func TestAnOversizeAnswerIsCut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := client.MaxAnswerBytes
		if r.URL.Path == "/readyz" {
			n++ // one byte over
		}
		w.Header().Set("Content-Type", "application/json")
		const doc = `{"status":"ok"}`
		_, _ = io.WriteString(w, doc)
		_, _ = io.Copy(w, io.LimitReader(infinite{}, int64(n-len(doc)))) // JSON may end in spaces
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	_, err = c.GetReadinessWithResponse(context.Background())
	require.ErrorIs(t, err, client.ErrAnswerTooLarge)
	r, err := c.GetHealthWithResponse(context.Background())
	require.NoError(t, err, "exactly the limit is read")
	require.Len(t, r.Body, client.MaxAnswerBytes)
}

// infinite reads as endless spaces.
type infinite struct{}

func (infinite) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// TestPagesAreFollowed reads a collection of 250 integrations in pages of
// at most 100, and the newest log entries up to a limit.
func TestPagesAreFollowed(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		total := 250
		if strings.HasSuffix(r.URL.Path, "/logs") {
			total = 7
		}
		var items []string
		for i := from; i < min(from+limit, total); i++ {
			if strings.HasSuffix(r.URL.Path, "/logs") {
				items = append(items, fmt.Sprintf(`{"id":%d,"action":"deploy","actor":"a","at":"2026-01-01T00:00:00Z"}`, 100-i))
			} else {
				items = append(items, fmt.Sprintf(`{"id":"it-%03d","name":"it-%03d","status":"running"}`, i, i))
			}
		}
		next := ""
		if from+limit < total {
			next = fmt.Sprintf(`,"next":"%d"`, from+limit)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"items":[%s]%s}`, strings.Join(items, ","), next)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	ctx := context.Background()

	all, err := c.AllIntegrations(ctx, "running")
	require.NoError(t, err)
	require.Len(t, all, 250)
	require.Equal(t, "it-249", all[249].Id)
	require.Equal(t, []string{
		"/v1/integrations?limit=100&status=running",
		"/v1/integrations?cursor=100&limit=100&status=running",
		"/v1/integrations?cursor=200&limit=100&status=running",
	}, queries)

	queries = nil
	events, err := c.RecentLogs(ctx, "orders", 5)
	require.NoError(t, err)
	require.Len(t, events, 5)
	require.Equal(t, int64(100), events[0].Id)
	require.Equal(t, []string{"/v1/integrations/orders/logs?limit=5"}, queries)
	_, err = c.RecentLogs(ctx, "orders", 0)
	require.ErrorContains(t, err, "not positive")
}

func TestWaitsEndWithTheContext(t *testing.T) {
	// An API that never finishes anything.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1/tenants/"):
			_, _ = io.WriteString(w, `{"id":"acme","status":"provisioning"}`)
		case strings.HasSuffix(r.URL.Path, "/logs"):
			_, _ = io.WriteString(w, `{"items":[]}`)
		default:
			_, _ = io.WriteString(w, `{"id":"orders"}`)
		}
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, "k")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*client.PollInterval/100)
	defer cancel()
	require.ErrorContains(t, c.AwaitTenant(ctx, "acme"), "still provisioning")
	ctx, cancel = context.WithTimeout(context.Background(), 300*client.PollInterval/100)
	defer cancel()
	require.ErrorContains(t, c.AwaitChange(ctx, "orders", client.Change{ChangeAccepted: client.ChangeAccepted{Action: client.Stop}}), "stop not carried out in time")
	ctx, cancel = context.WithTimeout(context.Background(), 300*client.PollInterval/100)
	defer cancel()
	require.ErrorContains(t, c.AwaitChange(ctx, "orders", client.Change{ChangeAccepted: client.ChangeAccepted{Action: client.Delete}}), "not deleted in time")
	require.ErrorContains(t, c.AwaitChange(ctx, "orders", client.Change{ChangeAccepted: client.ChangeAccepted{Action: "explode"}}), "cannot wait")
	_, err = c.ChangeIntegration(ctx, "orders", "explode", "")
	require.EqualError(t, err, "explode integration orders: unknown action")
}
