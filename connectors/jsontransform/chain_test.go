package jsontransform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// chainStep is a converter or a filter.
type chainStep struct {
	conv   sdk.Converter
	filter sdk.Filter
}

// chainResult is everything a chain's caller sees.
type chainResult struct {
	body     string
	decision sdk.Decision
	err      string
}

// runChain runs msg through steps as the hot path does. With fresh, every
// step gets a copy of the body bytes, so none can reuse the object the step
// before recorded: each decodes afresh, as before steps shared objects.
func runChain(t *testing.T, steps []chainStep, msg sdk.Message, fresh bool) chainResult {
	t.Helper()
	var res chainResult
	for _, s := range steps {
		if fresh {
			msg.Body = bytes.Clone(msg.Body)
		}
		var err error
		if s.conv != nil {
			msg, err = s.conv.Convert(t.Context(), msg)
		} else {
			var d sdk.Decision
			d, err = s.filter.Filter(t.Context(), msg)
			if d.Drop || d.Routes != nil {
				res.decision = d
			}
		}
		if err != nil {
			res.err = err.Error()
			return res
		}
		if res.decision.Drop {
			break
		}
	}
	res.body = string(msg.Body)
	return res
}

func buildChain(t *testing.T) []chainStep {
	t.Helper()
	build := func(c sdk.Connector, cfg string) any {
		inst, err := c.Build(t.Context(), sdk.Env{}, json.RawMessage(cfg))
		require.NoError(t, err, cfg)
		return inst
	}
	return []chainStep{
		{conv: build(jsontransform.Connector, `{
			"defaults": {"missing": 1.0, "list": [1.0, 2.5]},
			"rename": {"old": "renamed"},
			"set": {
				"total": "sum(map(items ?? [], #.qty * #.price))",
				"half": "(n ?? 0) / 2",
				"mixed": "[1, 2.0, 3.5, nil, 'ü']",
				"parsed": "fromJSON(raw ?? 'null')",
				"echo": "big ?? 0",
				"obj": "{'a': 4 / 2, 'b': [1e2]}"
			},
			"coerce": {"f": "float", "s": "string"}
		}`).(sdk.Converter)},
		// % fails on a float: a float where a fresh decode has an int
		// shows up as an error.
		{filter: build(router.FilterConnector, `{"keep": "total % 2 == 0 || total % 2 == 1 || true"}`).(sdk.Filter)},
		{conv: build(jsontransform.Connector, `{
			"set": {"kinds": "map([total, half, f, missing, parsed, mixed, obj, echo, list], type(#))",
			        "half_mod": "half % 1", "missing_mod": "missing % 1", "obj_mod": "obj.a % 1"}
		}`).(sdk.Converter)},
		{conv: build(jsontransform.FieldMap, `{"fields": {"copy.kinds": "kinds", "first": "mixed"}, "constants": {"c": 2.0}}`).(sdk.Converter)},
		{filter: build(router.Connector, `{"routes": [
			{"when": "string(echo) == '123456789012345678901234567890'", "to": ["big"]},
			{"when": "(f ?? 0) % 2 == 1", "to": ["odd"]}], "default": ["rest"]}`).(sdk.Filter)},
	}
}

// TestChainSharesDecodedObjectsExactly: a chain whose steps reuse each
// other's decoded objects gives byte for byte what it gives when every
// step decodes the bytes afresh, errors included.
func TestChainSharesDecodedObjectsExactly(t *testing.T) {
	steps := buildChain(t)
	bodies := []string{
		`{"items":[{"qty":2,"price":2.5},{"qty":1,"price":1}],"n":4,"f":"3","s":4.0,"raw":"{\"x\":1.0,\"y\":[2.0,3]}","big":123456789012345678901234567890}`,
		`{"items":[{"qty":3,"price":0.1}],"n":3,"f":"3.5","raw":"[1,2.5e0,-0.0]","old":{"deep":[[1.0],[{"a":null}]]}}`,
		`{"a":1.0,"b":-0,"c":1e2,"d":1e400,"e":1e21,"g":1e20,"h":9223372036854775807,"i":-9223372036854775809,"f":1.0}`,
		`{"ü":"\u00fc","emoji":"\ud83d\ude00","seps":"\u2028\u2029","html":"<a>&</a>","ctl":"\u0001\t","lone":"\ud800","f":7}`,
		`{"nulls":null,"arr":[null,[],{},[[[]]]],"n":null,"items":[],"f":null}`,
		"{\"dup\":1,\"dup\":2.0,\"raw\":\"\\\"text\\\"\",\"bad\":\"\xff\"}",
		`{"items":"not a list"}`,
		`{"n":"text"}`,
		`[1,2]`, `"just a string"`, `null`, ``, `{"a":`, "{\n\"a\": tru}", `{"a":1} {"b":2}`,
		`{"raw":"{not json"}`, `{"raw":"[1e400]"}`,
	}
	for _, body := range bodies {
		t.Run(body, func(t *testing.T) {
			msg := sdk.Message{ID: "m1", Body: []byte(body)}
			shared := runChain(t, steps, msg, false)
			fresh := runChain(t, steps, msg, true)
			require.Equal(t, fresh, shared)
		})
	}
}

func TestConvertRecordsWhatADecodeGives(t *testing.T) {
	tr, err := jsontransform.New(jsontransform.Config{
		Set:    map[string]string{"whole": "2.5 * 2", "list": "[1.0, 'x']", "when": "date('2024-01-02')"},
		Coerce: map[string]string{"n": "float"},
	})
	require.NoError(t, err)
	out, err := tr.Convert(t.Context(), sdk.Message{Body: []byte(`{"n":"12","x":1.0}`)})
	require.NoError(t, err)
	// A time cannot be settled: nothing is recorded and the next step
	// decodes the bytes.
	_, recorded := out.JSON()
	require.False(t, recorded)

	tr, err = jsontransform.New(jsontransform.Config{
		Set:    map[string]string{"whole": "2.5 * 2", "list": "[1.0, 'x']"},
		Coerce: map[string]string{"n": "float"},
	})
	require.NoError(t, err)
	out, err = tr.Convert(t.Context(), sdk.Message{Body: []byte(`{"n":"12","x":1.0}`)})
	require.NoError(t, err)
	v, recorded := out.JSON()
	require.True(t, recorded)
	fresh, err := jsonbody.Decode(out.Body)
	require.NoError(t, err)
	require.Equal(t, fresh, v)
	require.Equal(t, map[string]any{"n": 12, "x": 1, "whole": 5, "list": []any{1, "x"}}, v)
}

// TestConvertLeavesTheInputAlone: a converter that reuses the object a step
// before recorded works on its own copy, so the input message (which the
// hot path keeps for the DLQ) still decodes to what its body says.
func TestConvertLeavesTheInputAlone(t *testing.T) {
	first, err := jsontransform.New(jsontransform.Config{Set: map[string]string{"a": "1"}})
	require.NoError(t, err)
	second, err := jsontransform.New(jsontransform.Config{Set: map[string]string{"a": "a + 1", "b.c": "'x'"}, Remove: []string{"keep"}})
	require.NoError(t, err)
	in, err := first.Convert(context.Background(), sdk.Message{Body: []byte(`{"keep":{"k":[1]}}`)})
	require.NoError(t, err)
	before, _ := in.JSON()
	snapshot, err := jsonbody.Decode(in.Body)
	require.NoError(t, err)

	out, err := second.Convert(context.Background(), in)
	require.NoError(t, err)
	require.JSONEq(t, `{"a":2,"b":{"c":"x"}}`, string(out.Body))
	after, ok := in.JSON()
	require.True(t, ok)
	require.Equal(t, snapshot, after)
	require.Equal(t, snapshot, before)
}

// TestAStepThatReplacesTheBodyDropsTheObject: a converter that is not a JSON
// step replaces Body, and the next JSON step decodes the new bytes.
func TestAStepThatReplacesTheBodyDropsTheObject(t *testing.T) {
	tr, err := jsontransform.New(jsontransform.Config{Set: map[string]string{"a": "1"}})
	require.NoError(t, err)
	out, err := tr.Convert(t.Context(), sdk.Message{Body: []byte(`{}`)})
	require.NoError(t, err)
	out.Body = []byte(strings.Replace(string(out.Body), "1", "2", 1))
	obj, err := jsonbody.Object(out)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": 2}, obj)

	clone := out.Clone()
	_, ok := clone.JSON()
	require.False(t, ok, "a clone's body may be edited in place: it carries no object")
}
