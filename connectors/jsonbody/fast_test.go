package jsonbody

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// trickyBodies are bodies where a decoder or an encoder can go wrong.
var trickyBodies = []string{
	// Shapes.
	`{}`, `{"a":[]}`, `{"a":{}}`, `{"a":[[1,[2,[3.5,[]]]],{"b":[null,true,false]}]}`,
	" \n\t{ \"a\" : [ 1 , { } ] } \r\n",
	// Integers at and beyond the edges of int.
	`{"a":123456789012345678,"b":-123456789012345678,"c":1234567890123456789}`,
	`{"max":9223372036854775807,"min":-9223372036854775808}`,
	`{"over":9223372036854775808,"under":-9223372036854775809,"huge":123456789012345678901234567890}`,
	// Floats, and numbers that read back as another type once re-encoded.
	`{"a":1.0,"b":-0,"c":-0.0,"d":0.0,"e":1e2,"f":1E2,"g":1e-7,"h":1.5e300}`,
	`{"a":1e400,"b":-1e400,"c":1e-400,"d":0.1,"e":5e-324,"f":1.7976931348623157e308}`,
	`{"a":100000000000000000000.0,"b":1e20,"c":1e21,"d":123456789.0,"e":2.5,"f":-7.25e-3}`,
	// Strings and Unicode.
	`{"ü":"\u00fc","emoji":"😀","pair":"\ud83d\ude00","seps":"\u2028\u2029","html":"<a href='x'>&amp;</a>"}`,
	`{"esc":"\b\f\n\r\t\"\\\/","nul":"\u0000","ctl":"\u001f\u007f","mix":"aé\u00e9😀\\"}`,
	`{"long":"` + strings.Repeat("abcdefgh", 100) + `é` + strings.Repeat("x", 13) + `"}`,
	// encoding/json replaces what is not valid Unicode.
	`{"lone":"\ud800","low":"\udc00x","raw":"` + "\xff\xfe" + `","surrogate":"` + "\xed\xa0\x80" + `"}`,
	"{\"bad key \xff\":1}",
	// Duplicate names, also once unescaped.
	`{"a":1,"a":2}`, `{"a":{"b":1},"a":{"c":2}}`, `{"\u0041":1,"A":2}`,
	// Not objects.
	`null`, `[1,2]`, `"x"`, `12`, `true`, `[]`,
	// Empty and blank.
	``, "  \n ",
	// Trailing data.
	`{} {}`, `{}x`, `{}}`, "{\"a\":1}\n{\"b\":2}",
	// Malformed.
	`{"a":}`, `{"a" 1}`, `{"a":1,}`, `{,}`, `{"a":[1,]}`, `{"a":01}`, `{"a":1.}`, `{"a":-}`,
	`{"a":tru}`, `{"a":"\x"}`, "{\"a\":\"a\x01b\"}", `{"a":"x`, `{"a":[1,2`, `{1:2}`, "\xef\xbb\xbf{}",
	"{\n  \"a\": 1,\n  \"b\": tru\n}", "{\"ä\": é}",
	// Nesting at and beyond what encoding/json allows.
	`{"a":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`,
	`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, body := range trickyBodies {
		t.Run(name(body), func(t *testing.T) {
			requireSameDecode(t, []byte(body))
		})
	}
}

func TestFastReaderTakesPlainBodies(t *testing.T) {
	if !fastPaths {
		t.Skip("built without encoding/json/jsontext")
	}
	for _, body := range trickyBodies[:12] {
		_, ok := readObject([]byte(body))
		require.True(t, ok, "the fast reader gave up on %s", name(body))
	}
}

func requireSameDecode(t *testing.T, body []byte) {
	t.Helper()
	got, gotErr := Decode(body)
	want, wantErr := decodeStandard(body)
	if wantErr != nil {
		require.Error(t, gotErr)
		require.Equal(t, wantErr.Error(), gotErr.Error())
		require.Equal(t, sdk.IsPermanent(wantErr), sdk.IsPermanent(gotErr))
		return
	}
	require.NoError(t, gotErr)
	require.Equal(t, want, got)
}

func TestEncodeMatchesEncodingJSON(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	deep := any(1)
	for range 1500 {
		deep = []any{deep}
	}
	values := []any{
		nil, true, "x", 42, -0.0, math.Copysign(0, -1), 1.5, 1e21, 1e20, 1e-7, 123456789.0,
		map[string]any(nil), []any(nil), []any{}, map[string]any{},
		map[string]any{"n": nil, "m": map[string]any(nil), "s": []any(nil)},
		map[string]any{"z": 1, "Z": 2, "é": 3, "a": 4, "": 5, "a\u2028": "\u2029"},
		map[string]any{"big": json.Number("123456789012345678901234567890"), "e": json.Number("1E+2"), "f": json.Number("-0.50")},
		map[string]any{"empty number": json.Number("")},
		map[string]any{"bad number": json.Number("01")},
		map[string]any{"nan": math.NaN()}, map[string]any{"inf": math.Inf(-1)},
		map[string]any{"func": func() {}}, map[string]any{"cycle": cyclic}, deep,
		map[string]any{"time": time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), "ints": []int{1, 2}, "int64": int64(7)},
		map[string]any{"bad\xffkey": 1, "bad\xfekey": 2, "v": "x\xffy"},
		struct{ A int }{1}, []string{"<&>"},
	}
	for _, body := range trickyBodies {
		if v, err := decodeStandard([]byte(body)); err == nil {
			values = append(values, v)
		}
	}
	// Every byte and a few characters alone, and in the middle of a run
	// the writer skips eight bytes at a time.
	for c := range 256 {
		s := string(rune(c))
		if c >= 0x80 {
			s = string([]byte{byte(c)})
		}
		values = append(values, s, "abcdefghij"+s+"klmnopqrstuvwxyz")
	}
	for _, s := range []string{"é", "😀", "\u2028", "\u2029", "\ufffd", "\U0010ffff", "\xed\xa0\x80"} {
		values = append(values, s, "abcdefghij"+s+"klmnopqrstuvwxyz")
	}
	for i, v := range values {
		requireSameEncode(t, i, v)
	}
}

func TestEncodeMatchesEncodingJSONForRandomFloats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		var f float64
		switch i % 4 {
		case 0:
			f = math.Float64frombits(rng.Uint64())
		case 1:
			f = float64(rng.Int64N(1<<53)) * math.Pow(10, float64(rng.IntN(30)-5))
		case 2:
			f = math.Trunc(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(25))))
		default:
			f = rng.Float64() * 1e-5
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		requireSameEncode(t, i, f)
		requireSettled(t, map[string]any{"f": f, "a": []any{f}})
	}
}

func requireSameEncode(t *testing.T, i int, v any) {
	t.Helper()
	got, gotErr := Encode(v)
	want, wantErr := encodeStandard(v)
	if wantErr != nil {
		require.Error(t, gotErr, "value %d", i)
		require.Equal(t, wantErr.Error(), gotErr.Error(), "value %d", i)
		return
	}
	require.NoError(t, gotErr, "value %d", i)
	require.Equal(t, string(want), string(got), "value %d: %#v", i, v)
}

// requireSettled checks that once settled, by settleObject or while being
// written, obj is what decoding its encoding gives, or that settling
// refused it.
func requireSettled(t *testing.T, obj map[string]any) {
	t.Helper()
	body, err := Encode(obj)
	if err != nil {
		return
	}
	fresh, err := Decode(body)
	require.NoError(t, err)
	written := deepCopy(obj).(map[string]any)
	if got, ok := writeSettled(written); ok {
		require.Equal(t, string(body), string(got))
		require.Equal(t, fresh, written, "settled while writing %s", body)
	}
	if settleObject(obj) {
		require.Equal(t, fresh, obj, "settled %s", body)
	}
}

func TestWriteSettledLeavesAnObjectItCannotWriteAlone(t *testing.T) {
	for _, bad := range []any{math.NaN(), time.Now(), "\xff", json.Number("01")} {
		obj := map[string]any{"a": 3.0, "list": []any{2.0}, "n": json.Number("1.0"), "z": bad}
		_, ok := writeSettled(obj)
		require.False(t, ok)
		delete(obj, "z") // NaN is not equal to itself
		require.Equal(t, map[string]any{"a": 3.0, "list": []any{2.0}, "n": json.Number("1.0")}, obj)
	}
}

func TestSettleMatchesAFreshDecode(t *testing.T) {
	objects := []map[string]any{
		{"whole float": 3.0, "neg zero": math.Copysign(0, -1), "big whole": 1e20, "huge whole": 1e21, "frac": 0.5},
		{"numbers": []any{json.Number("1.0"), json.Number("7"), json.Number("123456789012345678901234567890"), json.Number("1e400")}},
		{"nil map": map[string]any(nil), "nil slice": []any(nil), "nested": map[string]any{"a": []any{2.0, map[string]any{"b": 4.0}}}},
		{"plain": "x", "int": 1, "bool": true, "null": nil},
	}
	for _, body := range trickyBodies {
		if obj, err := decodeStandard([]byte(body)); err == nil {
			objects = append(objects, obj)
		}
	}
	for _, obj := range objects {
		require.True(t, settleObject(deepCopy(obj).(map[string]any)), "%#v", obj)
		requireSettled(t, obj)
	}
	// What settling cannot vouch for is refused, so the next step decodes.
	for _, obj := range []map[string]any{
		{"time": time.Now()}, {"ints": []int{1}}, {"int64": int64(1)},
		{"bad utf-8": "\xff"}, {"bad\xffkey": 1}, {"bad number": json.Number("01")},
		{"deeper": []any{map[string]any{"x": []string{"a"}}}},
	} {
		require.False(t, settleObject(obj), "%#v", obj)
	}
}

// FuzzFastPathsMatchEncodingJSON: for any body, the fast reader and writer
// agree with encoding/json, and a settled object is what a fresh decode of
// its encoding gives.
func FuzzFastPathsMatchEncodingJSON(f *testing.F) {
	for _, body := range trickyBodies {
		if len(body) < 1000 {
			f.Add([]byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		requireSameDecode(t, body)
		obj, err := decodeStandard(body)
		if err != nil {
			return
		}
		requireSameEncode(t, 0, obj)
		requireSettled(t, obj)
	})
}

func name(body string) string {
	if len(body) > 40 {
		return body[:40] + "…"
	}
	return body
}
