package xml_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/xml"
)

// FuzzXMLToJSON: converting never panics, failures are permanent, and what
// converts is valid JSON that converts back to XML giving the same JSON.
func FuzzXMLToJSON(f *testing.F) {
	for _, seed := range []string{
		`<a/>`,
		`<?xml version="1.0"?><o id="1"><i>a</i><i>b</i><x:n xmlns:x="u">t</x:n></o>`,
		`<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><a>&e;</a>`,
		`<a>&lt;&#233;<![CDATA[<x>]]><!-- c --></a>`,
		"<a>\n <b>x</c>\n</a>",
		`<a b="1" c='2'>text<d/>more</a>`,
		``,
	} {
		f.Add([]byte(seed))
	}
	toJSON, err := xml.New(xml.Config{MaxDepth: 20, Arrays: []string{"o/i"}})
	require.NoError(f, err)
	toXML, err := xml.New(xml.Config{Direction: xml.ToXML, MaxDepth: 25})
	require.NoError(f, err)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := toJSON.Convert(ctx, sdk.Message{Body: body})
		if err != nil {
			require.True(t, sdk.IsPermanent(err), "bad input is permanent: %v", err)
			return
		}
		require.True(t, json.Valid(out.Body), "invalid JSON %q from %q", out.Body, body)
		back, err := toXML.Convert(ctx, out)
		require.NoError(t, err, "JSON %s from %q", out.Body, body)
		again, err := toJSON.Convert(ctx, back)
		require.NoError(t, err, "XML %q", back.Body)
		require.Equal(t, string(out.Body), string(again.Body), "from %q", body)
	})
}
