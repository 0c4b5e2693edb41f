package jsontransform_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/jsonexpr"
	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, jsontransform.Connector, sdk.Env{Tenant: "t1", Integration: "orders"},
		json.RawMessage(`{"set":{"total":"price * qty"},"remove":["secret"]}`),
		map[string]json.RawMessage{
			"bad expression":   json.RawMessage(`{"set":{"total":"price *"}}`),
			"empty expression": json.RawMessage(`{"set":{"total":" "}}`),
			"bad coerce type":  json.RawMessage(`{"coerce":{"n":"decimal"}}`),
			"empty path":       json.RawMessage(`{"remove":[""]}`),
			"empty segment":    json.RawMessage(`{"rename":{"a..b":"c"}}`),
			"dotted keep":      json.RawMessage(`{"keep":["a.b"]}`),
			"empty keep":       json.RawMessage(`{"keep":[""]}`),
			"bad default path": json.RawMessage(`{"defaults":{".a":1}}`),
			"wrong type":       json.RawMessage(`{"set":"x"}`),
			"malformed":        json.RawMessage(`{"set":`),
		})
}

func build(t *testing.T, cfg string) sdk.Converter {
	t.Helper()
	inst, err := jsontransform.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(cfg))
	require.NoError(t, err)
	return inst.(sdk.Converter)
}

func convert(t *testing.T, c sdk.Converter, body string) (map[string]any, error) {
	t.Helper()
	out, err := c.Convert(t.Context(), sdk.Message{ID: "m1", Body: []byte(body), Headers: map[string]string{"k": "v"}})
	if err != nil {
		return nil, err
	}
	require.Equal(t, "application/json", out.ContentType)
	require.Equal(t, "m1", out.ID)
	require.Equal(t, "v", out.Header("k"))
	m, err := jsonbody.Decode(out.Body)
	require.NoError(t, err, "output %s", out.Body)
	return m, nil
}

func TestTransform(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		in   string
		want string
	}{
		{"defaults fill missing and null", `{"defaults":{"status":"new","n":1,"tags":["a"],"c.region":"eu"}}`,
			`{"status":null,"n":5}`, `{"status":"new","n":5,"tags":["a"],"c":{"region":"eu"}}`},
		{"rename moves fields, nested too", `{"rename":{"cust":"customer.id","gone":"x"}}`,
			`{"cust":7,"customer":{"name":"Ann"}}`, `{"customer":{"id":7,"name":"Ann"}}`},
		{"set sees defaults and renames", `{"defaults":{"qty":1},"rename":{"p":"price"},"set":{"total":"price * qty","customer.name":"upper(given)"}}`,
			`{"p":2.5,"given":"ann"}`, `{"price":2.5,"qty":1,"total":2.5,"given":"ann","customer":{"name":"ANN"}}`},
		{"fields named like builtins", `{"set":{"f":"first","t":"$env.type","l":"len + 1"}}`,
			`{"first":"ann","type":"order","len":2}`, `{"first":"ann","type":"order","len":2,"f":"ann","t":"order","l":3}`},
		{"set expressions see the input, not each other", `{"set":{"a":"b","b":"a"}}`,
			`{"a":1,"b":2}`, `{"a":2,"b":1}`},
		{"set copies objects", `{"set":{"copy":"orig","copy.x":"1"}}`,
			`{"orig":{"y":2}}`, `{"orig":{"y":2},"copy":{"x":1,"y":2}}`},
		{"undefined variable is null", `{"set":{"m":"missing ?? 'none'","n":"missing"}}`,
			`{}`, `{"m":"none","n":null}`},
		{"odd keys through $env", `{"set":{"id":"$env[\"order-id\"]"}}`,
			`{"order-id":"o1"}`, `{"order-id":"o1","id":"o1"}`},
		{"coerce", `{"coerce":{"s":"string","f2s":"float","i":"int","fi":"int","b":"bool","bs":"string","n":"int","missing":"int","nul":"string","deep.v":"float"}}`,
			`{"s":12,"f2s":"1.25","i":"42","fi":3.0,"b":"true","bs":false,"n":null,"nul":null,"deep":{"v":"2"}}`,
			`{"s":"12","f2s":1.25,"i":42,"fi":3,"b":true,"bs":"false","n":null,"nul":null,"deep":{"v":2}}`},
		{"remove then keep", `{"remove":["a.secret","nope.x"],"keep":["a","b"]}`,
			`{"a":{"secret":1,"ok":2},"b":3,"c":4}`, `{"a":{"ok":2},"b":3}`},
		{"huge numbers pass unchanged", `{"set":{"x":"1"}}`,
			`{"big":123456789012345678901234567890,"huge":1e400}`, `{"big":123456789012345678901234567890,"huge":1e400,"x":1}`},
		{"no steps is identity", `{}`, `{"a":[1,{"b":null}]}`, `{"a":[1,{"b":null}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(t, build(t, tt.cfg), tt.in)
			require.NoError(t, err)
			want, err := jsonbody.Decode([]byte(tt.want))
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestTransformHugeNumberStaysExact(t *testing.T) {
	c := build(t, `{"rename":{"id":"order.id"}}`)
	out, err := c.Convert(t.Context(), sdk.Message{Body: []byte(`{"id":9007199254740993,"big":123456789012345678901234567890}`)})
	require.NoError(t, err)
	require.Equal(t, `{"big":123456789012345678901234567890,"order":{"id":9007199254740993}}`, string(out.Body))
}

func TestTransformErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		in   string
		want []string
	}{
		{"malformed JSON", `{}`, "{\n  \"a\": 1,\n  \"b\": }", []string{"malformed JSON", "line 3, column 8"}},
		{"not an object", `{}`, `[1,2]`, []string{"array, want an object"}},
		{"empty body", `{}`, ``, []string{"line 1, column 1"}},
		{"too deep", `{}`, `{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, []string{"exceeded max depth"}},
		{"expression type error", `{"set":{"total":"price * qty"}}`, `{"price":"x","qty":2}`, []string{`set "total"`, "evaluate"}},
		{"expression on missing field", `{"set":{"total":"price * 2"}}`, `{}`, []string{`set "total"`}},
		{"expression gives NaN", `{"set":{"r":"x / y"}}`, `{"x":0.0,"y":0.0}`, []string{`set "r"`, "JSON cannot hold"}},
		{"set through a non-object", `{"set":{"customer.name":"'x'"}}`, `{"customer":"bob"}`, []string{`set "customer.name"`, "customer is a string, not an object"}},
		{"default through a non-object", `{"defaults":{"a.b":1}}`, `{"a":[1]}`, []string{`default "a.b"`, "a is an array"}},
		{"rename into a non-object", `{"rename":{"x":"a.b"}}`, `{"x":1,"a":true}`, []string{`rename "x" to "a.b"`}},
		{"coerce bad int", `{"coerce":{"n":"int"}}`, `{"n":"twelve"}`, []string{`coerce "n" to int`, `"twelve" is not a number`}},
		{"coerce fraction to int", `{"coerce":{"n":"int"}}`, `{"n":3.7}`, []string{"not a whole number"}},
		{"coerce big to int", `{"coerce":{"n":"int"}}`, `{"n":123456789012345678901234567890}`, []string{`coerce "n" to int`}},
		{"coerce object to string", `{"coerce":{"n":"string"}}`, `{"n":{}}`, []string{"cannot convert an object"}},
		{"coerce bad bool", `{"coerce":{"n":"bool"}}`, `{"n":"maybe"}`, []string{"not a boolean"}},
		{"coerce bad float", `{"coerce":{"n":"float"}}`, `{"n":"NaN"}`, []string{"not a finite number"}},
		{"coerce array to bool", `{"coerce":{"n":"bool"}}`, `{"n":[]}`, []string{"cannot convert an array"}},
		{"unencodable result", `{"set":{"f":"[x / y]"}}`, `{"x":0.0,"y":0.0}`, []string{"json-transform", "encode JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := build(t, tt.cfg).Convert(t.Context(), sdk.Message{Body: []byte(tt.in)})
			require.Error(t, err)
			require.True(t, sdk.IsPermanent(err), "must be permanent: %v", err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestCoerceTable(t *testing.T) {
	tests := []struct {
		to, in, want string
	}{
		{"string", `1.5`, `"1.5"`},
		{"string", `true`, `"true"`},
		{"string", `123456789012345678901234567890`, `"123456789012345678901234567890"`},
		{"int", `true`, `1`},
		{"int", `false`, `0`},
		{"int", `" 7 "`, `7`},
		{"int", `"2.0"`, `2`},
		{"float", `3`, `3`},
		{"float", `true`, `1`},
		{"float", `false`, `0`},
		{"float", `1e400`, ``},
		{"float", `123456789012345678901234567890`, `123456789012345680000000000000`},
		{"bool", `0`, `false`},
		{"bool", `0.5`, `true`},
		{"bool", `" FALSE "`, `false`},
	}
	for _, tt := range tests {
		t.Run(tt.to+" "+tt.in, func(t *testing.T) {
			c := build(t, `{"coerce":{"v":"`+tt.to+`"}}`)
			out, err := c.Convert(t.Context(), sdk.Message{Body: []byte(`{"v":` + tt.in + `}`)})
			if tt.want == "" {
				require.Error(t, err)
				require.True(t, sdk.IsPermanent(err))
				return
			}
			require.NoError(t, err)
			require.JSONEq(t, `{"v":`+tt.want+`}`, string(out.Body))
		})
	}
}

func TestBuildNamesTheBadExpression(t *testing.T) {
	_, err := jsontransform.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(`{"set":{"ok":"1","customer.total":"price +* 2"}}`))
	require.ErrorContains(t, err, `set "customer.total"`)
	require.ErrorContains(t, err, "compile")
}

func TestConvertDoesNotTouchInput(t *testing.T) {
	c := build(t, `{"set":{"a":"2"}}`)
	body := []byte(`{"a":1}`)
	in := sdk.Message{Body: body}
	out, err := c.Convert(t.Context(), in)
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(body))
	require.Equal(t, `{"a":2}`, string(out.Body))
}

func TestConvertConcurrently(t *testing.T) {
	c := build(t, `{"set":{"total":"price * qty"},"coerce":{"id":"string"}}`)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for i := range 200 {
				out, err := c.Convert(context.Background(), sdk.Message{Body: []byte(`{"id":` + string(rune('0'+i%10)) + `,"price":2,"qty":3}`)})
				if err == nil && !strings.Contains(string(out.Body), `"total":6`) {
					err = &json.UnsupportedValueError{Str: string(out.Body)}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		require.NoError(t, <-errs)
	}
}

func FuzzTransform(f *testing.F) {
	for _, seed := range []string{
		`{"price":2,"qty":3,"given":"ann","c":{"region":"eu"}}`,
		`{"price":"x","qty":null}`,
		`{"c":"not an object","n":"12"}`,
		`{"n":1e400,"big":123456789012345678901234567890}`,
		"{\n\"a\": tru}", `[]`, ``,
	} {
		f.Add([]byte(seed))
	}
	tr, err := jsontransform.New(jsontransform.Config{
		Defaults: map[string]any{"qty": 1, "c.region": "us"},
		Rename:   map[string]string{"given": "customer.given"},
		Set:      map[string]string{"total": "price * qty", "customer.name": "upper(customer.given ?? '')"},
		Coerce:   map[string]string{"n": "int", "price": "float"},
		Remove:   []string{"secret"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := tr.Convert(context.Background(), sdk.Message{Body: body})
		if err != nil {
			if !sdk.IsPermanent(err) {
				t.Fatalf("non-permanent error for a bad message: %v", err)
			}
			return
		}
		if _, err := jsonbody.Decode(out.Body); err != nil {
			t.Fatalf("output is not a JSON object: %q: %v", out.Body, err)
		}
	})
}

// TestHostileExpressionFailsOnlyItsMessage: an expression that doubles a
// string forty times fails that message permanently with the limit as the
// reason; other messages convert.
func TestHostileExpressionFailsOnlyItsMessage(t *testing.T) {
	tr, err := jsontransform.New(jsontransform.Config{Set: map[string]string{"x": "reduce(1..40, #acc + #acc, name)"}})
	require.NoError(t, err)
	_, err = tr.Convert(t.Context(), sdk.Message{ID: "bomb", Body: []byte(`{"name":"` + strings.Repeat("x", 1000) + `"}`)})
	require.True(t, sdk.IsPermanent(err))
	require.ErrorIs(t, err, jsonexpr.ErrLimit)
	require.ErrorContains(t, err, `set "x"`)

	tr, err = jsontransform.New(jsontransform.Config{Set: map[string]string{"x": "reduce(1..3, #acc + #acc, name)"}})
	require.NoError(t, err)
	out, err := tr.Convert(t.Context(), sdk.Message{ID: "fine", Body: []byte(`{"name":"ab"}`)})
	require.NoError(t, err)
	require.JSONEq(t, `{"name":"ab","x":"abababababababab"}`, string(out.Body))
}
