// Package jsontransform is the json-transform converter: it reshapes a JSON
// object body by setting defaults, renaming, computing fields with expr
// expressions, coercing types, removing fields and keeping a chosen few.
// It also holds field-map, the expression-free converter for plain field
// mapping (extract nested fields, drop, set constants).
//
// Expressions are compiled once, when the converter is built; the per-message
// path never compiles, never uses regular expressions and never keeps a
// reference to a message after Convert returns. A message it cannot transform
// fails permanently with the reason; it never logs, retries or acks.
package jsontransform

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/jsonexpr"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// ContentType is the content type of every converted message.
const ContentType = "application/json"

// Connector registers the json-transform converter.
var Connector = sdk.Connector{
	Name:      "json-transform",
	Kind:      sdk.KindConverter,
	Summary:   "Reshape a JSON object: defaults, rename, computed fields (expr), type coercion, remove, keep.",
	Example:   json.RawMessage(`{"defaults": {"currency": "EUR"}, "rename": {"cust": "customer"}, "set": {"total": "sum(map(items, #.qty * #.price))"}, "remove": ["internal"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		var cfg Config
		if err := config.Decode(raw, &cfg); err != nil {
			return nil, fmt.Errorf("json-transform: %w", err)
		}
		t, err := New(cfg)
		if err != nil {
			return nil, fmt.Errorf("json-transform: %w", err)
		}
		return t, nil
	},
}

// Transformer is the built json-transform converter. It is safe for
// concurrent use.
type Transformer struct {
	defaults []defaultStep
	renames  []renameStep
	sets     []setStep
	coerces  []coerceStep
	removes  []path
	keep     map[string]struct{}
}

type defaultStep struct {
	path  path
	value any
}

type renameStep struct{ from, to path }

type setStep struct {
	path    path
	program *jsonexpr.Program
}

type coerceStep struct {
	path path
	to   string
}

var _ sdk.Converter = (*Transformer)(nil)

// New validates cfg and compiles its expressions. A bad expression is an
// error naming its field.
func New(cfg Config) (*Transformer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Transformer{}
	// Map order is random: sort so every run applies steps the same way.
	for _, p := range slices.Sorted(maps.Keys(cfg.Defaults)) {
		v, err := normalizeDefault(cfg.Defaults[p])
		if err != nil {
			return nil, fmt.Errorf("defaults %q: %w", p, err)
		}
		t.defaults = append(t.defaults, defaultStep{path: parsePath(p), value: v})
	}
	for _, from := range slices.Sorted(maps.Keys(cfg.Rename)) {
		if from == cfg.Rename[from] {
			continue
		}
		t.renames = append(t.renames, renameStep{from: parsePath(from), to: parsePath(cfg.Rename[from])})
	}
	for _, p := range slices.Sorted(maps.Keys(cfg.Set)) {
		prog, err := jsonexpr.Compile(cfg.Set[p])
		if err != nil {
			return nil, fmt.Errorf("set %q: %w", p, err)
		}
		t.sets = append(t.sets, setStep{path: parsePath(p), program: prog})
	}
	for _, p := range slices.Sorted(maps.Keys(cfg.Coerce)) {
		t.coerces = append(t.coerces, coerceStep{path: parsePath(p), to: cfg.Coerce[p]})
	}
	for _, p := range cfg.Remove {
		t.removes = append(t.removes, parsePath(p))
	}
	if len(cfg.Keep) > 0 {
		t.keep = make(map[string]struct{}, len(cfg.Keep))
		for _, k := range cfg.Keep {
			t.keep[k] = struct{}{}
		}
	}
	return t, nil
}

// normalizeDefault gives a configured default the same number types a
// decoded body has, so expressions and coercions treat both alike.
func normalizeDefault(v any) (any, error) {
	b, err := json.Marshal(map[string]any{"v": v})
	if err != nil {
		return nil, err
	}
	m, err := jsonbody.Decode(b)
	if err != nil {
		return nil, err
	}
	return m["v"], nil
}

// Convert transforms msg's JSON object body. Malformed or non-object bodies,
// expression errors and impossible coercions are permanent errors.
func (t *Transformer) Convert(ctx context.Context, msg sdk.Message) (sdk.Message, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Message{}, fmt.Errorf("json-transform: %w", err)
	}
	doc, err := jsonbody.ObjectCopy(msg)
	if err != nil {
		return sdk.Message{}, fmt.Errorf("json-transform: %w", err)
	}
	doc, err = t.Apply(doc)
	if err != nil {
		return sdk.Message{}, fmt.Errorf("json-transform: %w", err)
	}
	out := msg
	if err := jsonbody.SetObject(&out, doc); err != nil {
		return sdk.Message{}, sdk.PermanentError(fmt.Errorf("json-transform: %w", err))
	}
	out.ContentType = ContentType
	return out, nil
}

// Apply runs the configured steps on doc, which it may modify, and returns
// the result. Errors are permanent and name the field.
func (t *Transformer) Apply(doc map[string]any) (map[string]any, error) {
	for _, d := range t.defaults {
		if v, ok := d.path.get(doc); ok && v != nil {
			continue
		}
		if err := d.path.set(doc, deepCopy(d.value)); err != nil {
			return nil, sdk.Permanentf("default %q: %w", d.path.raw, err)
		}
	}
	for _, r := range t.renames {
		v, ok := r.from.remove(doc)
		if !ok {
			continue
		}
		if err := r.to.set(doc, v); err != nil {
			return nil, sdk.Permanentf("rename %q to %q: %w", r.from.raw, r.to.raw, err)
		}
	}
	if len(t.sets) > 0 {
		// Evaluate every expression before assigning any result, so each
		// sees the same input whatever the order of the paths.
		results := make([]any, len(t.sets))
		for i, s := range t.sets {
			v, err := s.program.Run(doc)
			if err != nil {
				return nil, sdk.Permanentf("set %q: %w", s.path.raw, err)
			}
			if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
				return nil, sdk.Permanentf("set %q: expression gave %v, which JSON cannot hold", s.path.raw, f)
			}
			// The result may share maps with doc; copy so later
			// assignments through one path do not show up in another.
			results[i] = deepCopy(v)
		}
		for i, s := range t.sets {
			if err := s.path.set(doc, results[i]); err != nil {
				return nil, sdk.Permanentf("set %q: %w", s.path.raw, err)
			}
		}
	}
	for _, c := range t.coerces {
		m, ok, err := c.path.parent(doc, false)
		if err != nil || !ok {
			continue
		}
		v, found := m[c.path.last()]
		if !found || v == nil {
			continue
		}
		nv, err := coerce(v, c.to)
		if err != nil {
			return nil, sdk.Permanentf("coerce %q to %s: %w", c.path.raw, c.to, err)
		}
		m[c.path.last()] = nv
	}
	for _, p := range t.removes {
		p.remove(doc)
	}
	if t.keep != nil {
		for k := range doc {
			if _, ok := t.keep[k]; !ok {
				delete(doc, k)
			}
		}
	}
	return doc, nil
}

func coerce(v any, to string) (any, error) {
	switch to {
	case CoerceString:
		if text, ok := jsonbody.ScalarText(v, 'f'); ok {
			return text, nil
		}
	case CoerceInt:
		switch x := v.(type) {
		case int:
			return x, nil
		case bool:
			if x {
				return 1, nil
			}
			return 0, nil
		case float64:
			return floatToInt(x)
		case json.Number:
			return stringToInt(string(x))
		case string:
			return stringToInt(x)
		}
	case CoerceFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int:
			return float64(x), nil
		case bool:
			if x {
				return 1.0, nil
			}
			return 0.0, nil
		case json.Number:
			return stringToFloat(string(x))
		case string:
			return stringToFloat(x)
		}
	case CoerceBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int:
			return x != 0, nil
		case float64:
			return x != 0, nil
		case string:
			b, err := strconv.ParseBool(strings.TrimSpace(x))
			if err != nil {
				return nil, fmt.Errorf("%q is not a boolean", x)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("cannot convert %s", jsonbody.TypeName(v))
}

func floatToInt(f float64) (any, error) {
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return nil, fmt.Errorf("%v is not a whole number in range", f)
	}
	return int(f), nil
}

func stringToInt(s string) (any, error) {
	s = strings.TrimSpace(s)
	if i, err := strconv.Atoi(s); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	return floatToInt(f)
}

func stringToFloat(s string) (any, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%q is not a finite number", s)
	}
	return f, nil
}

// deepCopy copies JSON objects and arrays so no two fields share one.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}
