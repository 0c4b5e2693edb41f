// Package config decodes connector configuration strictly: unknown fields
// are errors, so a misspelt option never silently falls back to its
// default.
//
// It must never depend on a particular connector or apply defaults: each
// connector's config struct owns its defaults and Validate.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vrsky/vrsky/connectors/jsonbody"
)

// Decode decodes raw JSON config into dst (a pointer to a struct), rejecting
// unknown fields and trailing data. Empty raw, or JSON null, decodes as {}.
// Errors name the line and column of the problem.
func Decode(raw json.RawMessage, dst any) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		trimmed = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("decode config: %w", jsonbody.Locate(trimmed, err))
	}
	if rest := bytes.TrimSpace(trimmed[dec.InputOffset():]); len(rest) > 0 {
		return errors.New("decode config: data after the top-level value")
	}
	return nil
}
