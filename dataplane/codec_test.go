package dataplane

import (
	"encoding/json"
	"net/textproto"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	p := Pipeline{Tenant: "t1", Integration: "orders"}
	received := time.Unix(0, 1_700_000_000_123_456_789)
	tests := []struct {
		name string
		env  Envelope
	}{
		{"minimal", Envelope{Msg: sdk.Message{ID: "m1", Body: []byte(`{}`)}}},
		{"everything", Envelope{Msg: sdk.Message{
			ID: "m2", ContentType: "application/json", Received: received, Body: []byte(`{"a":1}`),
			Headers: map[string]string{"user-agent": "Go-http-client/1.1", "x-empty": "", "x-odd": "quote \" <&> é \u2028 \x01 \xff"},
		}}},
		{"claim-checked", Envelope{Msg: sdk.Message{ID: "m3", ContentType: "text/csv"}, BodyRef: "claims/t1/orders/abc", Size: 1 << 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Encode(p.InSubject(), tt.env.Msg.ID+"/in", tt.env)
			require.Equal(t, p.InSubject(), m.Subject)
			// Keys go in without nats.Header.Set, so they must already be
			// in the form Get looks up.
			for k := range m.Header {
				require.Equal(t, textproto.CanonicalMIMEHeaderKey(k), k)
			}
			require.Equal(t, tt.env.Msg.ID+"/in", m.Header.Get(nats.MsgIdHdr))

			got, err := DecodeEnvelope(p, m.Header, m.Data)
			require.NoError(t, err)
			want := tt.env
			want.Msg.Tenant, want.Msg.Integration = p.Tenant, p.Integration
			if want.Msg.Headers != nil {
				// Invalid UTF-8 reads back as U+FFFD, as with encoding/json.
				b, _ := json.Marshal(want.Msg.Headers)
				want.Msg.Headers = nil
				require.NoError(t, json.Unmarshal(b, &want.Msg.Headers))
			}
			require.Equal(t, want, got)

			// Headers added later (the DLQ does) do not disturb the rest.
			m.Header.Set(HeaderDLQReason, "why")
			m.Header.Add(nats.MsgIdHdr, "second")
			require.Equal(t, tt.env.Msg.ID, m.Header.Get(HeaderMsgID))
		})
	}
}

func TestDecodeRejectsBadHeaders(t *testing.T) {
	p := Pipeline{Tenant: "t1", Integration: "orders"}
	for name, h := range map[string]nats.Header{
		"no id":        {},
		"bad received": {HeaderMsgID: {"m"}, hdrReceived: {"yesterday"}},
		"bad headers":  {HeaderMsgID: {"m"}, hdrHeaders: {`{"a":`}},
		"not strings":  {HeaderMsgID: {"m"}, hdrHeaders: {`{"a":1}`}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeEnvelope(p, h, nil)
			require.Error(t, err)
		})
	}
	env, err := DecodeEnvelope(p, nats.Header{nats.MsgIdHdr: {"legacy"}}, []byte("x"))
	require.NoError(t, err)
	require.Equal(t, "legacy", env.Msg.ID, "the dedup ID stands in for a missing message ID")
}

// userHeaderSamples are header sets the fast writer and reader must treat
// exactly as encoding/json does.
var userHeaderSamples = []map[string]string{
	{"user-agent": "Go-http-client/1.1"},
	{"b": "2", "a": "1", "c": "", "": "empty key"},
	{"x-quote": `say "hi"`, "x-backslash": `C:\dir`},
	{"x-html": "<b>&amp;</b>", "x-ctl": "tab\there\n", "x-seps": "\u2028\u2029"},
	{"x-utf8": "grüße 😀", "x-bad": "\xff\xfe", "bad\xffkey": "v"},
	{"x-colon": `a":"b`, "x-brace": "}{", "x-comma": `","`},
}

func TestUserHeadersMatchEncodingJSON(t *testing.T) {
	for _, h := range userHeaderSamples {
		want, err := json.Marshal(h)
		require.NoError(t, err)
		got := encodeUserHeaders(h)
		require.Equal(t, string(want), got)

		back, err := decodeUserHeaders(got)
		require.NoError(t, err)
		var wantBack map[string]string
		require.NoError(t, json.Unmarshal(want, &wantBack))
		require.Equal(t, wantBack, back)
	}
}

func TestDecodeUserHeadersMatchesEncodingJSON(t *testing.T) {
	for _, raw := range []string{
		`{}`, `{"a":"1"}`, `{"a":"1","b":"2"}`, `{"a":"1","a":"2"}`, `{ "a" : "1" }`, `{"a":"\u0041"}`,
		`{"a":"1",}`, `{"a":"1"`, `{"a":1}`, `{"a":null}`, `{"a"}`, `{"a":"1"}x`, `{,"a":"1"}`, `{"a":"1",,"b":"2"}`,
		`null`, `[]`, `{"a":"` + "\x01" + `"}`, `{"a":"` + "\xff" + `"}`, `{"a":"<"}`, `{"a":"é"}`, `{"":""}`, `{"a":""}`,
	} {
		requireSameUserHeaders(t, raw)
	}
}

func requireSameUserHeaders(t *testing.T, raw string) {
	t.Helper()
	var want map[string]string
	wantErr := json.Unmarshal([]byte(raw), &want)
	got, err := decodeUserHeaders(raw)
	if wantErr != nil {
		require.Error(t, err, "%q", raw)
		require.Equal(t, wantErr.Error(), err.Error(), "%q", raw)
		return
	}
	require.NoError(t, err, "%q", raw)
	require.Equal(t, want, got, "%q", raw)
}

func FuzzDecodeUserHeaders(f *testing.F) {
	for _, h := range userHeaderSamples {
		b, _ := json.Marshal(h)
		f.Add(string(b))
	}
	f.Add(`{"a":"1",}`)
	f.Add(`{ "a" : "1" }`)
	f.Fuzz(func(t *testing.T, raw string) {
		requireSameUserHeaders(t, raw)
	})
}
