package cloudevents

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// FuzzDecode: whatever the body and the attribute header, decoding never
// panics, and every event it takes has the required attributes, specversion
// 1.0, and nothing that could break a header: values and content types
// without control characters, a valid message ID.
func FuzzDecode(f *testing.F) {
	f.Add(StructuredType, "", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}`)
	f.Add(BatchType, "", `[{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"AA=="}]`)
	f.Add("application/json", "a%0D%0Ab", `{}`)
	f.Add("text/plain", "Euro%20%E2%82%AC", `x`)
	f.Add(StructuredType, "", `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"\u0085"}`)
	f.Fuzz(func(t *testing.T, contentType, subject, body string) {
		h := http.Header{"Content-Type": {contentType}}
		if contentType != StructuredType && contentType != BatchType {
			h["Ce-Specversion"] = []string{"1.0"}
			h["Ce-Id"] = []string{"1"}
			h["Ce-Source"] = []string{"/s"}
			h["Ce-Type"] = []string{"t"}
			h["Ce-Subject"] = []string{subject}
		}
		events, _, err := decode(h, []byte(body))
		if err != nil {
			var r *sdk.Refusal
			require.ErrorAs(t, err, &r)
			return
		}
		for _, e := range events {
			for _, name := range required {
				require.NotEmpty(t, e.attrs[name])
			}
			require.Equal(t, SpecVersion, e.attrs["specversion"])
			for _, v := range e.attrs {
				require.NoError(t, checkValue(v))
			}
			require.NoError(t, checkValue(e.contentType))
			require.True(t, sdk.ValidMessageID(e.message(sdk.Request{}).ID))
		}
	})
}
