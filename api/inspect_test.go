package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/dataplane"
)

const twoProducers = `{"name":"orders","consumer":{"connector":"http-webhook"},` +
	`"producers":{"archive":{"connector":"file","config":{"dir":"a"}},"copy":{"connector":"file","config":{"dir":"b"}}}}`

// openInspect starts an inspection stream and returns its lines once the
// API has said it is watching.
func openInspect(t *testing.T, srv *httptest.Server, key, query string) (*http.Response, *bufio.Scanner) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/integrations/orders/inspect?"+query, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	lines := bufio.NewScanner(res.Body)
	require.True(t, lines.Scan())
	require.True(t, strings.HasPrefix(lines.Text(), ": watching "), lines.Text())
	return res, lines
}

// events reads the stream to its end and returns its message events and
// its comment lines.
func events(t *testing.T, lines *bufio.Scanner) (msgs []map[string]any, comments []string) {
	t.Helper()
	event := ""
	for lines.Scan() {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, ":"):
			comments = append(comments, line)
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			require.Equal(t, "message", event)
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m))
			msgs = append(msgs, m)
		}
	}
	return msgs, comments
}

func TestInspectStreamsMessagesPassingAStage(t *testing.T) {
	e := newConsoleEnv(t, false, nil)
	key, _ := e.createTenant(t, "acme")
	reader, _ := e.createKey(t, key, `["read"]`)
	other, _ := e.createTenant(t, "other")
	res := call(t, e.h, http.MethodPost, "/v1/integrations", key, twoProducers)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	p := dataplane.Pipeline{Tenant: "acme", Integration: "orders"}
	ctx := context.Background()
	_, err := dataplane.EnsureStreams(ctx, e.js, p)
	require.NoError(t, err)
	pub := &dataplane.Publisher{Accounts: dataplane.SharedAccount{JS: e.js}}
	send := func(tenant string, ids ...string) {
		var msgs []sdk.Message
		for _, id := range ids {
			msgs = append(msgs, sdk.Message{ID: id, Body: []byte(`{"id":"` + id + `"}`), ContentType: "application/json",
				Headers: map[string]string{"x-trace": id}})
		}
		require.NoError(t, pub.Publish(ctx, dataplane.Pipeline{Tenant: tenant, Integration: "orders"}, msgs))
	}

	// With reveal, bodies; the stream ends after limit messages.
	_, lines := openInspect(t, srv, key, "stage=in&limit=2&reveal=true")
	// One at a time: Publish stores a batch's messages concurrently.
	send("acme", "m1")
	send("acme", "m2")
	send("acme", "m3")
	msgs, _ := events(t, lines)
	require.Len(t, msgs, 2)
	require.Equal(t, "m1", msgs[0]["id"])
	require.Equal(t, "in", msgs[0]["stage"])
	require.Equal(t, map[string]any{"x-trace": "m1"}, msgs[0]["headers"])
	require.EqualValues(t, len(`{"id":"m1"}`), msgs[0]["size"])
	require.Equal(t, `{"id":"m1"}`, msgs[0]["body"])
	require.Equal(t, "m2", msgs[1]["id"])

	// Without reveal, no body; another tenant's messages on its own
	// integration of the same name never show.
	_, lines = openInspect(t, srv, reader, "stage=in&limit=1")
	_, err = dataplane.EnsureStreams(ctx, e.js, dataplane.Pipeline{Tenant: "other", Integration: "orders"})
	require.NoError(t, err)
	send("other", "theirs")
	send("acme", "m4")
	msgs, _ = events(t, lines)
	require.Len(t, msgs, 1)
	require.Equal(t, "m4", msgs[0]["id"])
	require.NotContains(t, msgs[0], "body")

	// A producer's hop.
	_, lines = openInspect(t, srv, key, "stage=out.copy&limit=1&reveal=true")
	m := nats.NewMsg(p.OutSubject("copy"))
	m.Header.Set("Vrsky-Msg-Id", "m5") // as the process stage writes it
	m.Data = []byte("five")
	_, err = e.js.PublishMsg(ctx, m)
	require.NoError(t, err)
	msgs, _ = events(t, lines)
	require.Len(t, msgs, 1)
	require.Equal(t, "m5", msgs[0]["id"])
	require.Equal(t, "out.copy", msgs[0]["stage"])
	require.Equal(t, "five", msgs[0]["body"])

	for _, tc := range []struct {
		key, query string
		code       int
	}{
		{reader, "stage=in&reveal=true", http.StatusForbidden},
		{other, "stage=in", http.StatusNotFound},
		{key, "stage=process", http.StatusUnprocessableEntity},
		{key, "stage=out.nope", http.StatusUnprocessableEntity},
		{key, "stage=out.", http.StatusUnprocessableEntity},
		{key, "stage=out.ARCHIVE", http.StatusUnprocessableEntity},
		{key, "", http.StatusUnprocessableEntity},
		{key, "stage=in&limit=0", http.StatusUnprocessableEntity},
		{key, "stage=in&limit=101", http.StatusUnprocessableEntity},
		{"", "stage=in", http.StatusUnauthorized},
	} {
		requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/orders/inspect?"+tc.query, tc.key, ""), tc.code)
	}
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/nope/inspect?stage=in", key, ""), http.StatusNotFound)
}

func TestInspectIsBoundedInTimeStreamsAndKeepsAlive(t *testing.T) {
	e := newConsoleEnv(t, false, nil)
	key, _ := e.createTenant(t, "acme")
	res := call(t, e.h, http.MethodPost, "/v1/integrations", key, twoProducers)
	require.Equal(t, http.StatusCreated, res.code, res.raw)
	srv := httptest.NewServer(e.h)
	t.Cleanup(srv.Close)
	defer func(d, k time.Duration) { inspectMaxDuration, inspectKeepAlive = d, k }(inspectMaxDuration, inspectKeepAlive)
	inspectMaxDuration, inspectKeepAlive = 700*time.Millisecond, 200*time.Millisecond

	began := time.Now()
	_, lines := openInspect(t, srv, key, "stage=in")
	msgs, comments := events(t, lines)
	require.Empty(t, msgs)
	require.GreaterOrEqual(t, len(comments), 2, "keep-alive comments while quiet")
	require.Contains(t, comments[len(comments)-1], "time limit")
	require.Less(t, time.Since(began), 5*time.Second)

	// At most four streams per tenant at once.
	inspectMaxDuration = time.Minute
	var open []*http.Response
	for range maxInspectStreamsPerTenant {
		r, _ := openInspect(t, srv, key, "stage=in")
		open = append(open, r)
	}
	requireProblem(t, call(t, e.h, http.MethodGet, "/v1/integrations/orders/inspect?stage=in", key, ""), http.StatusTooManyRequests)
	_ = open[0].Body.Close()
	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/integrations/orders/inspect?stage=in", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		r, err := srv.Client().Do(req)
		if err != nil {
			return false
		}
		defer r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "a closed stream frees its place")
}
