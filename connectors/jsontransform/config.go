package jsontransform

import (
	"errors"
	"fmt"
	"strings"
)

// Config is the json-transform converter's configuration. Steps run in the
// order of the fields below: Defaults, Rename, Set, Coerce, Remove, Keep.
//
// Field paths are dotted (customer.name addresses the name field of the
// customer object); a key that itself contains a dot cannot be addressed.
type Config struct {
	// Defaults sets a field to a value when it is missing or null.
	Defaults map[string]any `json:"defaults,omitempty" doc:"Field path to the value it takes when missing or null."`
	// Rename moves a field (old path to new path), replacing what the new
	// path held; a missing old field is skipped.
	Rename map[string]string `json:"rename,omitempty" doc:"Old field path to new field path."`
	// Set assigns the result of an expr expression to a field path, creating
	// intermediate objects. Every expression sees the message after Defaults
	// and Rename (not the results of other Set entries); fields are its
	// variables (a field named like a builtin, such as type, shadows it), and
	// $env["odd-key"] reaches keys that are not identifiers. A missing field
	// is nil: use ?? for a fallback (price ?? 0).
	Set map[string]string `json:"set,omitempty" doc:"Field path to an expr expression over the message's fields."`
	// Coerce converts a field to string, int, float or bool. Missing and
	// null fields are left alone; a value that cannot convert fails the
	// message.
	Coerce map[string]string `json:"coerce,omitempty" doc:"Field path to string, int, float or bool."`
	// Remove deletes fields; missing ones are skipped.
	Remove []string `json:"remove,omitempty" doc:"Field paths to delete."`
	// Keep, when not empty, keeps only these top-level fields.
	Keep []string `json:"keep,omitempty" doc:"Top-level fields to keep; all others are dropped."`
}

// Coercion targets.
const (
	CoerceString = "string"
	CoerceInt    = "int"
	CoerceFloat  = "float"
	CoerceBool   = "bool"
)

// Validate checks paths and coercion targets; expressions are checked when
// they are compiled by Build.
func (c *Config) Validate() error {
	var errs []error
	for p := range c.Defaults {
		errs = append(errs, checkPath("defaults", p))
	}
	for from, to := range c.Rename {
		errs = append(errs, checkPath("rename", from), checkPath("rename "+from+" to", to))
	}
	for p, code := range c.Set {
		errs = append(errs, checkPath("set", p))
		if strings.TrimSpace(code) == "" {
			errs = append(errs, fmt.Errorf("set %q: empty expression", p))
		}
	}
	for p, typ := range c.Coerce {
		errs = append(errs, checkPath("coerce", p))
		switch typ {
		case CoerceString, CoerceInt, CoerceFloat, CoerceBool:
		default:
			errs = append(errs, fmt.Errorf("coerce %q: unknown type %q, want string, int, float or bool", p, typ))
		}
	}
	for _, p := range c.Remove {
		errs = append(errs, checkPath("remove", p))
	}
	for _, k := range c.Keep {
		switch {
		case k == "":
			errs = append(errs, errors.New("keep: empty field name"))
		case strings.Contains(k, "."):
			errs = append(errs, fmt.Errorf("keep %q: keep lists top-level fields, not dotted paths", k))
		}
	}
	return errors.Join(errs...)
}

func checkPath(step, p string) error {
	if p == "" {
		return fmt.Errorf("%s: empty field path", step)
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return fmt.Errorf("%s %q: empty segment in field path", step, p)
		}
	}
	return nil
}
