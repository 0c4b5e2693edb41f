package formatconv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/formatconv"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

var upper = formatconv.Format{Name: "upper", Direction: "toUpper", ContentType: "text/upper"}

// upperConfig configures a converter between JSON strings and upper-case
// text.
type upperConfig struct {
	Direction string `json:"direction,omitempty" enum:"toJson,toUpper" doc:"toJson (default) or toUpper."`
	MaxBytes  int64  `json:"maxBytes,omitempty" doc:"Largest body accepted in bytes."`
}

func newUpper(cfg upperConfig) (*formatconv.Converter, error) {
	direction, dirErr := upper.CheckDirection(cfg.Direction)
	maxBytes, maxErr := formatconv.CheckMaxBytes(cfg.MaxBytes)
	if err := errors.Join(dirErr, maxErr); err != nil {
		return nil, err
	}
	toJSON := func(data []byte) ([]byte, error) {
		return json.Marshal(string(bytes.ToLower(data)))
	}
	fromJSON := func(data []byte) ([]byte, error) {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, sdk.Permanentf("want a JSON string: %v", err)
		}
		return bytes.ToUpper([]byte(s)), nil
	}
	return formatconv.New(upper, direction, maxBytes, toJSON, fromJSON), nil
}

var connector = formatconv.Connector(upper, "Convert upper-case text to JSON strings and back.", newUpper)

func TestConformance(t *testing.T) {
	require.Equal(t, "upper", connector.Name)
	require.Equal(t, sdk.KindConverter, connector.Kind)
	sdktest.Conformance(t, connector, sdk.Env{Tenant: "t1", Integration: "orders"},
		json.RawMessage(`{"direction":"toUpper","maxBytes":10}`),
		map[string]json.RawMessage{
			"bad direction":         json.RawMessage(`{"direction":"toXml"}`),
			"maxBytes negative":     json.RawMessage(`{"maxBytes":-1}`),
			"maxBytes out of range": json.RawMessage(`{"maxBytes":1073741824}`),
			"unknown field":         json.RawMessage(`{"mode":"row"}`),
		})
}

func build(t *testing.T, cfg string) sdk.Converter {
	t.Helper()
	inst, err := connector.Build(t.Context(), sdk.Env{}, json.RawMessage(cfg))
	require.NoError(t, err)
	return inst.(sdk.Converter)
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name, cfg, in, want, contentType string
	}{
		{"default is toJson", `{}`, "HELLO", `"hello"`, formatconv.ContentTypeJSON},
		{"toJson", `{"direction":"toJson"}`, "A B", `"a b"`, formatconv.ContentTypeJSON},
		{"to the format", `{"direction":"toUpper"}`, `"hi there"`, "HI THERE", "text/upper"},
		{"at the limit", `{"maxBytes":3}`, "ABC", `"abc"`, formatconv.ContentTypeJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sdk.Message{ID: "m1", Body: []byte(tt.in), ContentType: "text/plain", Headers: map[string]string{"k": "v"}}
			out, err := build(t, tt.cfg).Convert(t.Context(), in)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(out.Body))
			require.Equal(t, tt.contentType, out.ContentType)
			require.Equal(t, "m1", out.ID)
			require.Equal(t, "v", out.Header("k"))
			require.Equal(t, "text/plain", in.ContentType, "the input message is left alone")
		})
	}
}

func TestConvertErrors(t *testing.T) {
	_, err := build(t, `{"maxBytes":3}`).Convert(t.Context(), sdk.Message{Body: []byte("ABCD")})
	require.True(t, sdk.IsPermanent(err))
	require.EqualError(t, err, "upper: body is 4 bytes, over the 3-byte limit")

	_, err = build(t, `{"direction":"toUpper"}`).Convert(t.Context(), sdk.Message{Body: []byte("1")})
	require.True(t, sdk.IsPermanent(err), "the conversion's error stays permanent")
	require.ErrorContains(t, err, "upper: want a JSON string")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = build(t, `{}`).Convert(ctx, sdk.Message{Body: []byte("A")})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, sdk.IsPermanent(err), "a cancelled context is not permanent")
	require.ErrorContains(t, err, "upper: ")
}

func TestBuildErrorsNameTheConnector(t *testing.T) {
	_, err := connector.Build(t.Context(), sdk.Env{}, json.RawMessage(`{"direction":"toXml"}`))
	require.EqualError(t, err, `upper: direction: "toXml" is not toJson or toUpper`)
	_, err = connector.Build(t.Context(), sdk.Env{}, json.RawMessage(`{"maxBytes":`))
	require.ErrorContains(t, err, "upper: decode config")
}

func TestCheckMaxBytes(t *testing.T) {
	for in, want := range map[int64]int64{0: formatconv.DefaultMaxBytes, 1: 1, formatconv.MaxMaxBytes: formatconv.MaxMaxBytes} {
		got, err := formatconv.CheckMaxBytes(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, in := range []int64{-1, formatconv.MaxMaxBytes + 1} {
		_, err := formatconv.CheckMaxBytes(in)
		require.ErrorContains(t, err, "maxBytes: ")
		require.ErrorContains(t, err, "is out of range (1 to 67108864)")
	}
}

func TestCheckDirection(t *testing.T) {
	for in, want := range map[string]string{"": formatconv.ToJSON, "toJson": formatconv.ToJSON, "toUpper": "toUpper"} {
		got, err := upper.CheckDirection(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	_, err := upper.CheckDirection("toJSON")
	require.EqualError(t, err, `direction: "toJSON" is not toJson or toUpper`)
}
