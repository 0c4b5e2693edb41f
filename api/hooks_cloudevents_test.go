package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/cloudevents"
	"github.com/vrsky/vrsky/internal/testenv"
)

// TestIngressServesCloudEvents: a second ingress connector, served on the
// same route with nothing of its own in the API: binary, structured and
// batched events are stored one message each, an event sent twice is
// stored once, and malformed, oversize and hostile requests store nothing.
func TestIngressServesCloudEvents(t *testing.T) {
	t.Parallel()
	_, js := testenv.JetStream(t)
	e := newHookEnv(t, js)
	p := e.deployConfig(t, "acme", "events", cloudevents.Name, `{"maxBytes":4096}`, 1, 0)
	const path = "/v1/hooks/acme/events"
	binary := []string{"Ce-Specversion", "1.0", "Ce-Id", "order-1", "Ce-Source", "/shop", "Ce-Type", "com.example.order.created", "Content-Type", "application/json"}

	resp, out := e.post(t, path, strings.NewReader(`{"order":1}`), binary...)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	id, _ := out["id"].(string)
	require.NotEmpty(t, id)
	resp, again := e.post(t, path, strings.NewReader(`{"order":1}`), binary...)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, id, again["id"])
	require.EqualValues(t, 1, e.streamMsgs(t, p), "the same event twice is one message")
	resp, _ = e.post(t, path, strings.NewReader(`{"order":2}`), binary...)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "the same event ID with another body")

	resp, _ = e.post(t, path, strings.NewReader(`{"specversion":"1.0","id":"order-1","source":"/other-shop","type":"t","data":{"order":1}}`),
		"Content-Type", "application/cloudevents+json")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 2, e.streamMsgs(t, p), "the same id from another source is another event")

	batch := `[{"specversion":"1.0","id":"b1","source":"/shop","type":"t","data":{"n":1}},{"specversion":"1.0","id":"b2","source":"/shop","type":"t","datacontenttype":"text/plain","data":"two"}]`
	resp, out = e.post(t, path, strings.NewReader(batch), "Content-Type", "application/cloudevents-batch+json")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 2, out["count"])
	require.EqualValues(t, 4, e.streamMsgs(t, p))

	s, err := js.Stream(context.Background(), p.Stream())
	require.NoError(t, err)
	raw, err := s.GetLastMsgForSubject(context.Background(), p.InSubject()) // key records take sequences too
	require.NoError(t, err)
	require.Equal(t, "two", string(raw.Data))
	require.Equal(t, "text/plain", raw.Header.Get("Vrsky-Content-Type"))
	var headers map[string]string
	require.NoError(t, json.Unmarshal([]byte(raw.Header.Get("Vrsky-Headers")), &headers))
	require.Equal(t, "b2", headers["ce-id"])

	for _, tt := range []struct {
		name    string
		body    string
		headers []string
		want    int
	}{
		{"no attributes", `{}`, []string{"Content-Type", "application/json"}, http.StatusBadRequest},
		{"wrong specversion", `{"specversion":"0.3","id":"x","source":"/s","type":"t"}`, []string{"Content-Type", "application/cloudevents+json"}, http.StatusBadRequest},
		{"header injection", `{}`, []string{"Ce-Specversion", "1.0", "Ce-Id", "x%0D%0ANats-Msg-Id:%20order-1", "Ce-Source", "/s", "Ce-Type", "t"}, http.StatusBadRequest},
		{"huge attribute", `{}`, []string{"Ce-Specversion", "1.0", "Ce-Id", strings.Repeat("i", 5000), "Ce-Source", "/s", "Ce-Type", "t"}, http.StatusBadRequest},
		{"other format", `x`, []string{"Content-Type", "application/cloudevents+xml"}, http.StatusUnsupportedMediaType},
		{"over the config's limit", `{"pad":"` + strings.Repeat("x", 5000) + `"}`, binary, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := e.post(t, path, strings.NewReader(tt.body), tt.headers...)
			require.Equal(t, tt.want, resp.StatusCode)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			require.EqualValues(t, tt.want, out["status"])
		})
	}
	require.EqualValues(t, 4, e.streamMsgs(t, p), "refused requests store nothing")
}
