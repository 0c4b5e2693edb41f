package jsontransform

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

func TestFieldMapConformance(t *testing.T) {
	sdktest.Conformance(t, FieldMap, sdk.Env{}, json.RawMessage(`{"fields":{"name":"customer.name"}}`), map[string]json.RawMessage{
		"nothing to do":    json.RawMessage(`{}`),
		"empty path":       json.RawMessage(`{"fields":{"":"a"}}`),
		"bad drop path":    json.RawMessage(`{"drop":["a..b"]}`),
		"bad constant":     json.RawMessage(`{"constants":{"..":1}}`),
		"wrong type":       json.RawMessage(`{"fields":["a"]}`),
		"keepUnmapped str": json.RawMessage(`{"fields":{"a":"b"},"keepUnmapped":"no"}`),
	})
}

func TestFieldMapMapsDropsAndSets(t *testing.T) {
	keepNone := false
	tests := []struct {
		name string
		cfg  FieldMapConfig
		in   string
		want string
	}{
		{"extract nested and keep the rest",
			FieldMapConfig{Fields: map[string]string{"customerName": "customer.name"}, Drop: []string{"customer"}},
			`{"id":1,"customer":{"name":"Ada","vip":true}}`, `{"customerName":"Ada","id":1}`},
		{"only mapped fields",
			FieldMapConfig{Fields: map[string]string{"order.id": "id", "who": "customer.name"}, KeepUnmapped: &keepNone},
			`{"id":7,"customer":{"name":"Bo"},"secret":"x"}`, `{"order":{"id":7},"who":"Bo"}`},
		{"constants override and nest",
			FieldMapConfig{Constants: map[string]any{"source": "shop", "meta.version": 2}},
			`{"source":"old"}`, `{"meta":{"version":2},"source":"shop"}`},
		{"missing source leaves the target unset",
			FieldMapConfig{Fields: map[string]string{"x": "nope.deeper"}},
			`{"a":1}`, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewFieldMap(tt.cfg)
			require.NoError(t, err)
			out, err := m.Convert(context.Background(), sdk.Message{Body: []byte(tt.in)})
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(out.Body))
			require.Equal(t, ContentType, out.ContentType)
		})
	}
}

func TestFieldMapRejectsBadBodies(t *testing.T) {
	m, err := NewFieldMap(FieldMapConfig{Fields: map[string]string{"a.b": "x"}})
	require.NoError(t, err)
	for name, body := range map[string]string{
		"malformed":         `{"x":`,
		"not an object":     `[1,2]`,
		"target not object": `{"x":1,"a":"string"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := m.Convert(context.Background(), sdk.Message{Body: []byte(body)})
			require.True(t, sdk.IsPermanent(err), "%v", err)
		})
	}
	c, err := NewFieldMap(FieldMapConfig{Constants: map[string]any{"a.b": 1}})
	require.NoError(t, err)
	_, err = c.Convert(context.Background(), sdk.Message{Body: []byte(`{"a":3}`)})
	require.True(t, sdk.IsPermanent(err))
}
