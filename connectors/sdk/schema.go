package sdk

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/danielgtaylor/huma/v2"
)

// ConfigSchema returns the JSON Schema (draft 2020-12) of a connector's
// config, generated from the struct NewConfig returns: field names from the
// `json` tags, descriptions from `doc`, allowed values from `enum`, and
// nested types under `$defs`. The API serves it and the UI renders its forms
// from it.
func ConfigSchema(c Connector) (json.RawMessage, error) {
	if c.NewConfig == nil {
		return json.RawMessage(`{"type":"object","additionalProperties":false}`), nil
	}
	t := reflect.TypeOf(c.NewConfig())
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("connector %s: NewConfig must return a pointer to a struct, got %v", c.Name, t)
	}
	registry := huma.NewMapRegistry("#/$defs/", huma.DefaultSchemaNamer)
	schema := huma.SchemaFromType(registry, t.Elem())
	b, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("connector %s: marshal schema: %w", c.Name, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	doc["title"] = c.Name
	if c.Summary != "" {
		doc["description"] = c.Summary
	}
	if defs := registry.Map(); len(defs) > 0 {
		delete(defs, t.Elem().Name()) // the root is the document itself
		if len(defs) > 0 {
			doc["$defs"] = defs
		}
	}
	return json.Marshal(doc)
}
