package jsonbody_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestSetObjectRecordsTheObjectForTheNextStep(t *testing.T) {
	var msg sdk.Message
	obj := map[string]any{"whole": 3.0, "list": []any{1.0, 2.5}, "s": "<&>"}
	require.NoError(t, jsonbody.SetObject(&msg, obj))
	require.Equal(t, `{"list":[1,2.5],"s":"<&>","whole":3}`, string(msg.Body))

	// The object is settled to what decoding the body gives.
	want := map[string]any{"whole": 3, "list": []any{1, 2.5}, "s": "<&>"}
	got, err := jsonbody.Object(msg)
	require.NoError(t, err)
	require.Equal(t, want, got)
	rec, ok := msg.JSON()
	require.True(t, ok)
	require.Equal(t, want, rec)

	// ObjectCopy hands out a copy: changing it leaves the record alone.
	own, err := jsonbody.ObjectCopy(msg)
	require.NoError(t, err)
	own["whole"] = "changed"
	own["list"].([]any)[0] = "changed"
	again, err := jsonbody.Object(msg)
	require.NoError(t, err)
	require.Equal(t, want, again)
}

func TestObjectDecodesWithoutARecord(t *testing.T) {
	msg := sdk.Message{Body: []byte(`{"a":1.0}`)}
	for _, get := range []func(sdk.Message) (map[string]any, error){jsonbody.Object, jsonbody.ObjectCopy} {
		obj, err := get(msg)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"a": 1.0}, obj)

		_, err = get(sdk.Message{Body: []byte(`[1]`)})
		require.ErrorContains(t, err, "is an array, want an object")
		require.True(t, sdk.IsPermanent(err))
	}

	// A record that is not an object (recorded by some other step) is
	// not used by the object readers.
	var other sdk.Message
	other.SetJSON([]byte(`{"b":2}`), []any{1})
	obj, err := jsonbody.Object(other)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"b": 2}, obj)
	obj, err = jsonbody.ObjectCopy(other)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"b": 2}, obj)
}

func TestSetObjectWithoutARecord(t *testing.T) {
	var msg sdk.Message
	require.ErrorContains(t, jsonbody.SetObject(&msg, map[string]any{"f": func() {}}), "encode JSON")
	require.Nil(t, msg.Body, "a failed encode leaves the message alone")

	// Values settling cannot vouch for are written, but not recorded.
	require.NoError(t, jsonbody.SetObject(&msg, map[string]any{"n": int64(7)}))
	require.Equal(t, `{"n":7}`, string(msg.Body))
	_, ok := msg.JSON()
	require.False(t, ok)
	obj, err := jsonbody.Object(msg)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": 7}, obj)
}
