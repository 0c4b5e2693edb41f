package jsontransform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// FieldMap registers the field-map converter: plain field mapping without
// expressions, for the common case of renaming, flattening and trimming.
var FieldMap = sdk.Connector{
	Name:      "field-map",
	Kind:      sdk.KindConverter,
	Summary:   "Map JSON fields: copy or extract nested fields to new names, drop fields, set constants, keep or drop the rest.",
	Example:   json.RawMessage(`{"fields": {"customerName": "customer.name"}, "constants": {"source": "shop"}, "keepUnmapped": false}`),
	NewConfig: func() any { return new(FieldMapConfig) },
	Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		var cfg FieldMapConfig
		if err := config.Decode(raw, &cfg); err != nil {
			return nil, fmt.Errorf("field-map: %w", err)
		}
		m, err := NewFieldMap(cfg)
		if err != nil {
			return nil, fmt.Errorf("field-map: %w", err)
		}
		return m, nil
	},
}

// FieldMapConfig is the field-map converter's configuration. Steps apply in
// this order: fields, drop, constants.
type FieldMapConfig struct {
	// Fields maps a target path to a source path (dotted), e.g.
	// {"customerName": "customer.name"}. A missing source leaves the
	// target unset.
	Fields map[string]string `json:"fields,omitempty" doc:"Target field path to source field path (dotted); extracts nested fields."`
	// Drop lists paths removed from the output.
	Drop []string `json:"drop,omitempty" doc:"Field paths to remove from the output."`
	// Constants sets fixed values.
	Constants map[string]any `json:"constants,omitempty" doc:"Field path to a constant JSON value."`
	// KeepUnmapped copies every input field to the output before mapping
	// (default true); false outputs only the mapped fields and constants.
	KeepUnmapped *bool `json:"keepUnmapped,omitempty" doc:"Start from a copy of the input (default true); false keeps only mapped fields and constants."`
}

// FieldMapper is a built field-map converter; safe for concurrent use.
type FieldMapper struct {
	fields    []renameStep // from source to target
	drop      []path
	constants []defaultStep
	keepAll   bool
}

// NewFieldMap validates cfg and returns its converter.
func NewFieldMap(cfg FieldMapConfig) (*FieldMapper, error) {
	var errs []error
	m := &FieldMapper{keepAll: cfg.KeepUnmapped == nil || *cfg.KeepUnmapped}
	for _, to := range slices.Sorted(maps.Keys(cfg.Fields)) {
		if err := errors.Join(checkPath("fields", to), checkPath("fields", cfg.Fields[to])); err != nil {
			errs = append(errs, err)
			continue
		}
		m.fields = append(m.fields, renameStep{from: parsePath(cfg.Fields[to]), to: parsePath(to)})
	}
	for _, p := range cfg.Drop {
		if err := checkPath("drop", p); err != nil {
			errs = append(errs, err)
			continue
		}
		m.drop = append(m.drop, parsePath(p))
	}
	for _, p := range slices.Sorted(maps.Keys(cfg.Constants)) {
		v, err := normalizeDefault(cfg.Constants[p])
		if err == nil {
			err = checkPath("constants", p)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("constants %q: %w", p, err))
			continue
		}
		m.constants = append(m.constants, defaultStep{path: parsePath(p), value: v})
	}
	if len(m.fields)+len(m.drop)+len(m.constants) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("nothing to do: set fields, drop or constants"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Convert maps the message's JSON object. A body that is not a JSON object,
// or a target path that runs through a non-object, is a permanent error.
func (m *FieldMapper) Convert(ctx context.Context, msg sdk.Message) (sdk.Message, error) {
	if err := ctx.Err(); err != nil {
		return msg, err
	}
	// doc is only read: out starts as a copy, and mapped values are copied.
	doc, err := jsonbody.Object(msg)
	if err != nil {
		return msg, fmt.Errorf("field-map: %w", err)
	}
	out := map[string]any{}
	if m.keepAll {
		out = deepCopy(doc).(map[string]any)
	}
	for _, f := range m.fields {
		if v, ok := f.from.get(doc); ok {
			if err := f.to.set(out, deepCopy(v)); err != nil {
				return msg, sdk.Permanentf("field-map: fields %q: %v", f.to.raw, err)
			}
		}
	}
	for _, p := range m.drop {
		p.remove(out)
	}
	for _, c := range m.constants {
		if err := c.path.set(out, deepCopy(c.value)); err != nil {
			return msg, sdk.Permanentf("field-map: constants %q: %v", c.path.raw, err)
		}
	}
	if err := jsonbody.SetObject(&msg, out); err != nil {
		return msg, sdk.Permanentf("field-map: encode: %v", err)
	}
	msg.ContentType = ContentType
	return msg, nil
}
