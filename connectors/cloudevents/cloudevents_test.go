package cloudevents_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/cloudevents"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

func env(values map[string]string) sdk.Env {
	return sdk.Env{LookupEnv: os.LookupEnv, Tenant: "t1", Integration: "events", Secrets: func(_ context.Context, name string) (string, error) {
		v, ok := values[name]
		if !ok {
			return "", errors.New("no such secret")
		}
		return v, nil
	}}
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, cloudevents.Connector, env(map[string]string{"tok": "0123456789abcdef-token"}),
		json.RawMessage(`{"token":{"secret":"tok"},"maxBytes":1048576,"types":["com.example.a"]}`),
		map[string]json.RawMessage{
			"negative maxBytes":  json.RawMessage(`{"maxBytes":-1}`),
			"maxBytes too large": json.RawMessage(`{"maxBytes":67108865}`),
			"inline token":       json.RawMessage(`{"token":"0123456789abcdef-token"}`),
			"unknown secret":     json.RawMessage(`{"token":{"secret":"nope"}}`),
			"short token":        json.RawMessage(`{"token":{"secret":"short"}}`),
			"empty type":         json.RawMessage(`{"types":[""]}`),
			"too many types":     json.RawMessage(`{"types":[` + strings.TrimSuffix(strings.Repeat(`"t",`, 101), ",") + `]}`),
			"malformed":          json.RawMessage(`{"types":`),
			"unknown key memory": json.RawMessage(`{"keyMemory":"forever"}`),
		})
}

func TestConfigSchema(t *testing.T) {
	schema, err := sdk.ConfigSchema(cloudevents.Connector)
	require.NoError(t, err)
	for _, field := range []string{"maxBytes", "token", "types", "keyMemory"} {
		require.Contains(t, string(schema), `"`+field+`"`)
	}
}

// recordSink keeps what it was handed, or fails with err.
type recordSink struct {
	got   []sdk.Delivery
	err   error
	calls int
}

func (s *recordSink) Publish(_ context.Context, d sdk.Delivery) (sdk.PubAck, error) {
	s.calls++
	if s.err != nil {
		return sdk.PubAck{}, s.err
	}
	s.got = append(s.got, d)
	return sdk.PubAck{}, nil
}

func build(t *testing.T, cfg string) *cloudevents.Ingress {
	t.Helper()
	in, err := cloudevents.Build(t.Context(), env(map[string]string{"tok": "0123456789abcdef-token"}), json.RawMessage(cfg))
	require.NoError(t, err)
	return in
}

func request(body string, h ...string) sdk.Request {
	header := http.Header{}
	for i := 0; i+1 < len(h); i += 2 {
		header.Add(h[i], h[i+1])
	}
	return sdk.Request{Header: header, URL: &url.URL{Path: "/"}, Body: []byte(body), Received: time.Now()}
}

// binary is a binary-mode request of an event with those id and source.
func binary(id, source, body string, more ...string) sdk.Request {
	h := append([]string{"Ce-Specversion", "1.0", "Ce-Id", id, "Ce-Source", source, "Ce-Type", "com.example.order.created",
		"Content-Type", "application/json; charset=utf-8"}, more...)
	return request(body, h...)
}

func receive(t *testing.T, in *cloudevents.Ingress, req sdk.Request) (sdk.Answer, *recordSink, error) {
	t.Helper()
	sink := &recordSink{}
	a, err := in.Receive(t.Context(), req, sink)
	if err != nil {
		require.Zero(t, len(sink.got), "a refused request stores nothing")
	}
	return a, sink, err
}

func refusal(t *testing.T, err error) *sdk.Refusal {
	t.Helper()
	var r *sdk.Refusal
	require.ErrorAs(t, err, &r)
	return r
}

func TestBinaryModeStoresTheDataWithItsAttributes(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	answer, sink, err := receive(t, in, binary("A234-1234-1234", "/mycontext", `{"order":1}`,
		"Ce-Time", "2018-04-05T17:31:00Z", "Ce-Subject", "Euro%20%E2%82%AC%20%F0%9F%98%80", "Ce-Comexampleextension1", `"quoted value"`,
		"Authorization", "Bearer secret"))
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, answer.Status)
	require.Len(t, sink.got, 1)
	d := sink.got[0]
	require.Len(t, d.Messages, 1)
	m := d.Messages[0]
	require.Equal(t, d.Key, m.ID, "a single event's key is its message ID")
	require.Equal(t, `{"order":1}`, string(m.Body))
	require.Equal(t, "application/json; charset=utf-8", m.ContentType)
	require.Equal(t, map[string]string{
		"ce-specversion": "1.0", "ce-id": "A234-1234-1234", "ce-source": "/mycontext", "ce-type": "com.example.order.created",
		"ce-time": "2018-04-05T17:31:00Z", "ce-subject": "Euro € 😀", "ce-comexampleextension1": "quoted value",
	}, m.Headers, "attributes decoded, nothing else kept (no Authorization)")
	var out cloudevents.Accepted
	require.NoError(t, json.Unmarshal(answer.Body, &out))
	require.Equal(t, m.ID, out.ID)
	require.True(t, sdk.ValidMessageID(m.ID))
}

// TestAnEventIsNamedBySourceAndID: the same event twice gets one ID (so the
// platform stores it once); the same id from another source is another
// event; the ID does not depend on the content mode.
func TestAnEventIsNamedBySourceAndID(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	id := func(req sdk.Request) string {
		_, sink, err := receive(t, in, req)
		require.NoError(t, err)
		return sink.got[0].Messages[0].ID
	}
	first := id(binary("1", "/a", `{}`))
	require.Equal(t, first, id(binary("1", "/a", `{"other":"body"}`)), "the same event: the same ID")
	require.NotEqual(t, first, id(binary("1", "/b", `{}`)), "another source")
	require.NotEqual(t, first, id(binary("2", "/a", `{}`)), "another id")
	require.NotEqual(t, id(binary("1", "/a:b", `{}`)), id(binary("1:/a", "b", `{}`)), "source and id cannot be shifted into each other")
	structured := request(`{"specversion":"1.0","id":"1","source":"/a","type":"t"}`, "Content-Type", "application/cloudevents+json")
	require.Equal(t, first, id(structured), "the same event in structured mode")
}

// TestKeyMemoryWindowNamesOnlyTheMessages: with keyMemory window an event
// keeps its ID (JetStream's duplicate window drops a repeat) and the
// answer names it, but the delivery is not named, so the platform keeps no
// ID memory for it.
func TestKeyMemoryWindowNamesOnlyTheMessages(t *testing.T) {
	t.Parallel()
	remembered, window := build(t, `{}`), build(t, `{"keyMemory":"window"}`)
	_, kept, err := receive(t, remembered, binary("1", "/a", `{}`))
	require.NoError(t, err)
	answer, sink, err := receive(t, window, binary("1", "/a", `{}`))
	require.NoError(t, err)
	require.NotEmpty(t, kept.got[0].Key)
	require.Empty(t, sink.got[0].Key)
	require.Equal(t, kept.got[0].Messages[0].ID, sink.got[0].Messages[0].ID, "the same ID either way")
	var out cloudevents.Accepted
	require.NoError(t, json.Unmarshal(answer.Body, &out))
	require.Equal(t, sink.got[0].Messages[0].ID, out.ID)
}

func TestStructuredModeData(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	base := `"specversion":"1.0","id":"e1","source":"https://example.com/orders","type":"com.example.order.created","time":"2026-12-06T10:00:00.123+01:00","seq":7,"sampled":true`
	tests := []struct {
		name, event, contentType, body string
	}{
		{"json data", `{` + base + `,"data":{"order":1}}`, "application/json", `{"order":1}`},
		{"json data with its type", `{` + base + `,"datacontenttype":"application/vnd.order+json","data":"text in json"}`, "application/vnd.order+json", `"text in json"`},
		{"text data", `{` + base + `,"datacontenttype":"text/plain","data":"hello"}`, "text/plain", "hello"},
		{"xml data", `{` + base + `,"datacontenttype":"application/xml","data":"<a/>"}`, "application/xml", "<a/>"},
		{"binary data", `{` + base + `,"data_base64":"AAEC/w=="}`, "application/octet-stream", "\x00\x01\x02\xff"},
		{"no data", `{` + base + `}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sink, err := receive(t, in, request(tt.event, "Content-Type", "application/cloudevents+json; charset=UTF-8"))
			require.NoError(t, err)
			m := sink.got[0].Messages[0]
			require.Equal(t, tt.contentType, m.ContentType)
			require.Equal(t, tt.body, string(m.Body))
			require.Equal(t, "7", m.Headers["ce-seq"], "a number's literal")
			require.Equal(t, "true", m.Headers["ce-sampled"])
			require.NotContains(t, m.Headers, "ce-datacontenttype", "the content type is the message's")
			require.NotContains(t, m.Headers, "ce-data")
		})
	}
}

func TestBatchedMode(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	batch := `[{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"n":1}},
		{"specversion":"1.0","id":"2","source":"/s","type":"t","datacontenttype":"text/plain","data":"two"}]`
	answer, sink, err := receive(t, in, request(batch, "Content-Type", "application/cloudevents-batch+json"))
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, answer.Status)
	d := sink.got[0]
	require.Len(t, d.Messages, 2)
	require.Equal(t, `{"n":1}`, string(d.Messages[0].Body))
	require.Equal(t, "two", string(d.Messages[1].Body))
	var out cloudevents.Accepted
	require.NoError(t, json.Unmarshal(answer.Body, &out))
	require.Equal(t, 2, out.Count)
	require.Equal(t, d.Key, out.ID)
	require.True(t, sdk.ValidMessageID(d.Key))

	_, again, err := receive(t, in, request(batch, "Content-Type", "application/cloudevents-batch+json"))
	require.NoError(t, err)
	require.Equal(t, d.Key, again.got[0].Key, "the same batch: the same key")

	answer, sink, err = receive(t, in, request(`[]`, "Content-Type", "application/cloudevents-batch+json"))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, answer.Status, "an empty batch stores nothing")
	require.Zero(t, sink.calls)
}

func TestTypesNotListedAreAcknowledgedAndNotStored(t *testing.T) {
	t.Parallel()
	in := build(t, `{"types":["com.example.order.created"]}`)
	answer, sink, err := receive(t, in, request(`[{"specversion":"1.0","id":"1","source":"/s","type":"com.example.order.created"},
		{"specversion":"1.0","id":"2","source":"/s","type":"com.example.other"}]`, "Content-Type", "application/cloudevents-batch+json"))
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, answer.Status)
	require.Len(t, sink.got[0].Messages, 1)
	require.Equal(t, "1", sink.got[0].Messages[0].Headers["ce-id"])

	answer, sink, err = receive(t, in, binary("3", "/s", "{}", "Ce-Type", "x"))
	require.Error(t, err, "ce-type twice")
	require.Zero(t, sink.calls)
	req := binary("3", "/s", "{}")
	req.Header.Set("Ce-Type", "com.example.other")
	answer, sink, err = receive(t, in, req)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, answer.Status)
	require.Zero(t, sink.calls)
}

// TestMalformedAndHostileEventsAreRefused: each is a clear 400 (415 for a
// format not taken, 413 for a batch too large) and stores nothing.
func TestMalformedAndHostileEventsAreRefused(t *testing.T) {
	t.Parallel()
	in := build(t, `{}`)
	structured := func(event string) sdk.Request {
		return request(event, "Content-Type", "application/cloudevents+json")
	}
	many := make([]string, 0, cloudevents.MaxAttributes+1)
	for i := range cloudevents.MaxAttributes + 1 {
		many = append(many, `"x`+strings.Repeat("a", i%10)+string(rune('a'+i%26))+string(rune('a'+i/26))+`":"v"`)
	}
	tests := []struct {
		name   string
		req    sdk.Request
		kind   sdk.RefusalKind
		detail string
	}{
		{"not a CloudEvent", request(`{}`, "Content-Type", "application/json"), sdk.RefuseMalformed, "not a CloudEvent"},
		{"no id", request(`{}`, "Ce-Specversion", "1.0", "Ce-Source", "/s", "Ce-Type", "t"), sdk.RefuseMalformed, "id: required"},
		{"no source", structured(`{"specversion":"1.0","id":"1","type":"t"}`), sdk.RefuseMalformed, "source: required"},
		{"no type", structured(`{"specversion":"1.0","id":"1","source":"/s"}`), sdk.RefuseMalformed, "type: required"},
		{"empty id", structured(`{"specversion":"1.0","id":"","source":"/s","type":"t"}`), sdk.RefuseMalformed, "id: required"},
		{"wrong specversion", binary("1", "/s", "{}", "Ce-Specversion", "0.3"), sdk.RefuseMalformed, "given 2 times"},
		{"specversion 0.3", structured(`{"specversion":"0.3","id":"1","source":"/s","type":"t"}`), sdk.RefuseMalformed, "only 1.0"},
		{"specversion as a number", structured(`{"specversion":1.0,"id":"1","source":"/s","type":"t"}`), sdk.RefuseMalformed, "a JSON string"},
		{"ce-datacontenttype in binary mode", binary("1", "/s", "{}", "Ce-Datacontenttype", "text/plain"), sdk.RefuseMalformed, "ce-datacontenttype"},
		{"bad time", binary("1", "/s", "{}", "Ce-Time", "yesterday"), sdk.RefuseMalformed, "RFC 3339"},
		{"not JSON", structured(`{"specversion":`), sdk.RefuseMalformed, "not a JSON object"},
		{"JSON array in structured mode", structured(`[]`), sdk.RefuseMalformed, "not a JSON object"},
		{"data and data_base64", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}`), sdk.RefuseMalformed, "give one"},
		{"bad base64", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"***"}`), sdk.RefuseMalformed, "not base64"},
		{"data_base64 not a string", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":1}`), sdk.RefuseMalformed, "not a string"},
		{"object attribute", structured(`{"specversion":"1.0","id":{"a":1},"source":"/s","type":"t"}`), sdk.RefuseMalformed, "not an object"},
		{"null attribute", structured(`{"specversion":"1.0","id":"1","source":null,"type":"t"}`), sdk.RefuseMalformed, "null"},
		{"upper-case attribute name", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","Ext":"x"}`), sdk.RefuseMalformed, "lower-case"},
		{"attribute name with a dash", binary("1", "/s", "{}", "Ce-My-Ext", "x"), sdk.RefuseMalformed, "lower-case"},
		{"other event format", request(`x`, "Content-Type", "application/cloudevents+xml"), sdk.RefuseUnsupported, "not taken"},
		{"batch not an array", request(`{}`, "Content-Type", "application/cloudevents-batch+json"), sdk.RefuseMalformed, "not a JSON array"},
		{"batch with a bad event", request(`[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0"}]`, "Content-Type", "application/cloudevents-batch+json"), sdk.RefuseMalformed, "batch event 1"},
		{"batch too large", request("["+strings.TrimSuffix(strings.Repeat(`{"specversion":"1.0","id":"1","source":"/s","type":"t"},`, cloudevents.MaxEvents+1), ",")+"]", "Content-Type", "application/cloudevents-batch+json"), sdk.RefuseTooLarge, "more than 1000 events"},
		// Hostile: header injection through a decoded value, broken UTF-8,
		// attributes that are huge or too many.
		{"CRLF in a percent-encoded id", binary("a%0D%0ANats-Msg-Id:%20x", "/s", "{}"), sdk.RefuseMalformed, "control character"},
		{"CRLF in a JSON source", structured(`{"specversion":"1.0","id":"1","source":"/s\r\nNats-Msg-Id: x","type":"t"}`), sdk.RefuseMalformed, "control character"},
		{"CRLF in a JSON datacontenttype", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain\r\nX: y"}`), sdk.RefuseMalformed, "control character"},
		{"C1 control character", binary("1", "/s", "{}", "Ce-Subject", "%C2%85"), sdk.RefuseMalformed, "control character"},
		{"overlong UTF-8", binary("1", "/s", "{}", "Ce-Subject", "%C0%A0"), sdk.RefuseMalformed, "UTF-8"},
		{"broken percent", binary("1", "/s", "{}", "Ce-Subject", "50%"), sdk.RefuseMalformed, "two hex digits"},
		{"bad hex", binary("1", "/s", "{}", "Ce-Subject", "%zz"), sdk.RefuseMalformed, "two hex digits"},
		{"huge attribute value", binary("1", "/s", "{}", "Ce-Subject", strings.Repeat("s", cloudevents.MaxAttributeValue+1)), sdk.RefuseMalformed, "longer than 4096"},
		{"huge percent-encoded value", binary("1", "/s", "{}", "Ce-Subject", strings.Repeat("%41", 3*cloudevents.MaxAttributeValue)), sdk.RefuseMalformed, "longer than 4096"},
		{"huge JSON attribute", structured(`{"specversion":"1.0","id":"` + strings.Repeat("i", cloudevents.MaxAttributeValue+1) + `","source":"/s","type":"t"}`), sdk.RefuseMalformed, "longer than 4096"},
		{"huge attribute name", binary("1", "/s", "{}", "Ce-"+strings.Repeat("n", cloudevents.MaxAttributeName+1), "x"), sdk.RefuseMalformed, "1 to 64 characters"},
		{"huge number attribute", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","n":` + strings.Repeat("9", 100) + `}`), sdk.RefuseMalformed, "too long"},
		{"too many attributes", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t",` + strings.Join(many, ",") + `}`), sdk.RefuseMalformed, "more than 64 attributes"},
		{"deeply nested data", structured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`), sdk.RefuseMalformed, "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, sink, err := receive(t, in, tt.req)
			r := refusal(t, err)
			require.Equal(t, tt.kind, r.Kind, r.Detail)
			require.Contains(t, r.Detail, tt.detail)
			require.Zero(t, sink.calls, "nothing handed to the sink")
		})
	}

	hdr := http.Header{}
	for i := range cloudevents.MaxAttributes + 1 {
		hdr.Set("Ce-X"+strconv.Itoa(i), "v")
	}
	_, sink, err := receive(t, in, sdk.Request{Header: hdr, URL: &url.URL{}, Body: []byte("{}")})
	require.Contains(t, refusal(t, err).Detail, "more than 64 attributes")
	require.Zero(t, sink.calls)
}

func TestTokenAndFailedPublish(t *testing.T) {
	t.Parallel()
	in := build(t, `{"token":{"secret":"tok"}}`)
	for name, req := range map[string]sdk.Request{
		"none":       binary("1", "/s", "{}"),
		"wrong":      binary("1", "/s", "{}", "Authorization", "Bearer 0123456789abcdef-tokeN"),
		"not bearer": binary("1", "/s", "{}", "Authorization", "Basic 0123456789abcdef-token"),
	} {
		r := refusal(t, in.Admit(req))
		require.Equal(t, sdk.RefuseUnauthenticated, r.Kind, name)
		require.NotContains(t, r.Detail, "0123456789abcdef", name)
	}
	require.NoError(t, in.Admit(binary("1", "/s", "{}", "Authorization", "bearer 0123456789abcdef-token")))
	q := binary("1", "/s", "{}")
	q.URL = &url.URL{Path: "/", RawQuery: "token=0123456789abcdef-token"}
	require.NoError(t, in.Admit(q))
	require.NoError(t, build(t, `{}`).Admit(binary("1", "/s", "{}")), "no token configured")
	require.Equal(t, int64(0), build(t, `{}`).BodyLimit())
	require.Equal(t, int64(2048), build(t, `{"maxBytes":2048}`).BodyLimit())

	down := errors.New("store down")
	_, err := in.Receive(t.Context(), binary("1", "/s", "{}"), &recordSink{err: down})
	require.ErrorIs(t, err, down, "a failed publish is never answered 2xx")
}
