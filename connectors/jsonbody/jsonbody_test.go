package jsonbody_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"empty", "", "line 1, column 1"},
		{"only spaces", "  \n ", "line 1, column 1"},
		{"bad token on line 3", "{\n  \"a\": 1,\n  \"b\": tru\n}", "line 3, column 11"},
		{"missing comma", "{\"a\": 1 \"b\": 2}", "line 1, column 9"},
		{"unterminated", "{\"a\": [1, 2", "malformed JSON"},
		{"trailing value", "{\"a\":1}\n{\"b\":2}", "line 2, column 1: data after the top-level value"},
		{"trailing garbage", "{\"a\":1} x", "line 1, column 9"},
		{"multibyte column", "{\"ä\": é}", "line 1, column 7"},
		{"array", "[1,2]", "is an array, want an object"},
		{"string", `"x"`, "is a string, want an object"},
		{"null", "null", "is null, want an object"},
		{"number", "12", "is a number, want an object"},
		{"too deep", strings.Repeat("[", 20000) + strings.Repeat("]", 20000), "exceeded max depth"},
		{"number beyond float64", `{"n": 1e400}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := jsonbody.Decode([]byte(tt.body))
			if tt.want == "" {
				require.NoError(t, err)
				require.NotNil(t, m)
				return
			}
			require.Error(t, err)
			require.True(t, sdk.IsPermanent(err), "error must be permanent: %v", err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeKeepsNumbersExact(t *testing.T) {
	body := `{"i": 42, "neg": -7, "f": 1.5, "big": 123456789012345678901234567890, "huge": 1e400, "nested": {"a": [1, 2.5, {"b": 3}]}}`
	m, err := jsonbody.Decode([]byte(body))
	require.NoError(t, err)
	require.Equal(t, 42, m["i"])
	require.Equal(t, -7, m["neg"])
	require.Equal(t, 1.5, m["f"])
	require.Equal(t, json.Number("123456789012345678901234567890"), m["big"])
	require.Equal(t, json.Number("1e400"), m["huge"])
	require.Equal(t, []any{1, 2.5, map[string]any{"b": 3}}, m["nested"].(map[string]any)["a"])

	out, err := jsonbody.Encode(m)
	require.NoError(t, err)
	require.Contains(t, string(out), `"big":123456789012345678901234567890`)
	require.Contains(t, string(out), `"huge":1e400`)
}

func TestEncode(t *testing.T) {
	out, err := jsonbody.Encode(map[string]any{"html": "<a&b>", "b": 1})
	require.NoError(t, err)
	require.Equal(t, `{"b":1,"html":"<a&b>"}`, string(out))

	_, err = jsonbody.Encode(map[string]any{"f": func() {}})
	require.ErrorContains(t, err, "encode JSON")
}

func TestLocate(t *testing.T) {
	data := []byte("{\n\"a\": \"x\"}")
	var dst struct{ A int }
	err := json.Unmarshal(data, &dst)
	located := jsonbody.Locate(data, err)
	require.ErrorContains(t, located, "line 2, column")
	var typ *json.UnmarshalTypeError
	require.True(t, errors.As(located, &typ), "Locate keeps the original error")

	other := errors.New("other")
	require.Equal(t, other, jsonbody.Locate(data, other))
}

func TestPosition(t *testing.T) {
	tests := []struct {
		data      string
		offset    int64
		line, col int
	}{
		{"abc", 1, 1, 1},
		{"abc", 3, 1, 3},
		{"a\nbc", 4, 2, 2},
		{"a\nbc", 0, 1, 1},
		{"a\nbc", 99, 2, 3},
	}
	for _, tt := range tests {
		line, col := jsonbody.Position([]byte(tt.data), tt.offset)
		require.Equal(t, []int{tt.line, tt.col}, []int{line, col}, "%q at %d", tt.data, tt.offset)
	}
}

func TestTypeName(t *testing.T) {
	require.Equal(t, "a boolean", jsonbody.TypeName(true))
	require.Equal(t, "a number", jsonbody.TypeName(json.Number("1")))
	require.Equal(t, "an object", jsonbody.TypeName(map[string]any{}))
	require.Equal(t, "a struct {}", jsonbody.TypeName(struct{}{}))
}

func TestScalarText(t *testing.T) {
	big := json.Number("123456789012345678901234567890")
	for v, want := range map[any]string{"a b": "a b", true: "true", false: "false", -42: "-42", 1.5: "1.5", 1.5e-7: "0.00000015", big: string(big)} {
		got, ok := jsonbody.ScalarText(v, 'f')
		require.True(t, ok, "%#v", v)
		require.Equal(t, want, got)
	}
	got, ok := jsonbody.ScalarText(1.5e-7, 'g')
	require.True(t, ok)
	require.Equal(t, "1.5e-07", got, "the float format is the caller's")
	for _, v := range []any{nil, map[string]any{}, []any{1}, int64(1)} {
		_, ok := jsonbody.ScalarText(v, 'f')
		require.False(t, ok, "%#v is not a scalar it renders", v)
	}
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`, `{"a":{"b":[1,2.5,"x",null,true]}}`, `{"big":123456789012345678901234567890}`,
		"{\n\"a\": tru\n}", `[1]`, ``, `{"a":1} {}`, `{"ü":"\u00fc"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := jsonbody.Decode(body)
		if err != nil {
			if !sdk.IsPermanent(err) {
				t.Fatalf("decode error is not permanent: %v", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		out, err := jsonbody.Encode(m)
		if err != nil {
			t.Fatalf("encode a decoded object: %v", err)
		}
		again, err := jsonbody.Decode(out)
		if err != nil {
			t.Fatalf("decode re-encoded %q: %v", out, err)
		}
		out2, err := jsonbody.Encode(again)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("round trip changed %q to %q (%v)", out, out2, err)
		}
	})
}
