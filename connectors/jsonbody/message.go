package jsonbody

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// A chain of JSON steps decodes a message's body once: a converter that
// writes the body with SetObject records the object next to the bytes
// (sdk.Message.SetJSON), and the next step's Object or ObjectCopy takes it
// from there instead of decoding the bytes again. The recorded object is
// always exactly what Decode would return for those bytes, so whether a step
// decodes or reuses never changes what it sees.

// Object returns msg's body as a JSON object, as Decode does, reusing the
// object an earlier step recorded with SetObject when the body is unchanged.
// The object may be shared with copies of msg: the caller must not modify
// it, nor keep it after the step returns.
func Object(msg sdk.Message) (map[string]any, error) {
	if v, ok := msg.JSON(); ok {
		if obj, ok := v.(map[string]any); ok {
			return obj, nil
		}
	}
	return Decode(msg.Body)
}

// ObjectCopy is Object for a caller that modifies the object: the result is
// the caller's own.
func ObjectCopy(msg sdk.Message) (map[string]any, error) {
	if v, ok := msg.JSON(); ok {
		if obj, ok := v.(map[string]any); ok {
			return deepCopy(obj).(map[string]any), nil
		}
	}
	return Decode(msg.Body)
}

// SetObject encodes obj as msg's body, as Encode does, and records obj as
// the body's decoded form for the next step. obj becomes msg's: SetObject
// may rewrite values in it (an integral float64 becomes the int that
// decoding the body gives), and the caller must not change it afterwards.
func SetObject(msg *sdk.Message, obj map[string]any) error {
	if body, ok := writeSettled(obj); ok {
		msg.SetJSON(body, obj)
		return nil
	}
	body, err := encodeStandard(obj)
	if err != nil {
		return err
	}
	if settleObject(obj) {
		msg.SetJSON(body, obj)
	} else {
		msg.Body = body
	}
	return nil
}

// settleObject rewrites, in place, every value of m that decoding its
// encoding would give as another value or type, so m equals what Decode
// returns for Encode(m). It reports false when m holds something it cannot
// settle (a Go type Decode never produces, invalid UTF-8); m must then not
// be recorded, and the next step decodes the bytes.
func settleObject(m map[string]any) bool {
	for k, v := range m {
		if !utf8.ValidString(k) {
			return false // keys may merge once invalid bytes are replaced
		}
		nv, changed, ok := settle(v)
		if !ok {
			return false
		}
		if changed {
			m[k] = nv
		}
	}
	return true
}

func settle(v any) (nv any, changed, ok bool) {
	switch x := v.(type) {
	case nil, bool, int:
		return v, false, true
	case string:
		return v, false, utf8.ValidString(x)
	case float64:
		// Only whole numbers below 1e21 are written without a fraction
		// or exponent, and so read back as int or json.Number.
		if x != math.Trunc(x) || math.Abs(x) >= 1e21 {
			return v, false, true
		}
		return number(json.Number(strconv.FormatFloat(x, 'f', -1, 64))), true, true
	case json.Number:
		if !validNumber(string(x)) {
			return v, false, false
		}
		n := number(x)
		_, same := n.(json.Number)
		return n, !same, true
	case map[string]any:
		if x == nil {
			return nil, true, true // written as null
		}
		return v, false, settleObject(x)
	case []any:
		if x == nil {
			return nil, true, true // written as null
		}
		for i, e := range x {
			ne, changed, ok := settle(e)
			if !ok {
				return v, false, false
			}
			if changed {
				x[i] = ne
			}
		}
		return v, false, true
	}
	return v, false, false
}

// deepCopy copies objects and arrays so the copy shares nothing mutable
// with v.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if x == nil {
			return x
		}
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		if x == nil {
			return x
		}
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}
