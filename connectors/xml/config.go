package xml

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vrsky/vrsky/connectors/formatconv"
)

// Directions.
const (
	ToJSON = formatconv.ToJSON
	ToXML  = "toXml"
)

// Defaults and limits.
const (
	DefaultAttributePrefix = "@"
	DefaultTextKey         = "#text"
	DefaultRoot            = "root"
	DefaultMaxDepth        = 100
	DefaultMaxBytes        = formatconv.DefaultMaxBytes
	// MaxMaxDepth and MaxMaxBytes bound what a config may set.
	MaxMaxDepth = 1000
	MaxMaxBytes = formatconv.MaxMaxBytes
)

// Config is the xml converter's configuration.
type Config struct {
	// Direction is toJson (the default: the body is XML) or toXml (the body
	// is a JSON object).
	Direction string `json:"direction,omitempty" enum:"toJson,toXml" doc:"toJson (default) or toXml."`
	// AttributePrefix starts the JSON key of an attribute (default "@").
	// It must not start like an XML name, so it never collides with one.
	AttributePrefix string `json:"attributePrefix,omitempty" doc:"Prefix of attribute keys in JSON; default @."`
	// TextKey is the JSON key of an element's text when the element also
	// has attributes or children (default "#text").
	TextKey string `json:"textKey,omitempty" doc:"Key of an element's text when it also has attributes or children; default #text."`
	// Arrays lists element paths, root first and separated by slashes
	// (order/item), whose elements are always JSON arrays, even when one
	// occurs: the output's shape then does not depend on the data.
	Arrays []string `json:"arrays,omitempty" doc:"Element paths (order/item) that are always arrays in JSON."`
	// Root names the root element written when the JSON object does not
	// have exactly one key holding an object or a value (default "root").
	Root string `json:"root,omitempty" doc:"toXml: root element when the JSON has several top-level keys; default root."`
	// MaxDepth bounds element (or JSON) nesting (default 100, at most 1000).
	MaxDepth int `json:"maxDepth,omitempty" doc:"Deepest nesting accepted; default 100."`
	// MaxBytes bounds the body (default 16 MiB, at most 64 MiB).
	MaxBytes int64 `json:"maxBytes,omitempty" doc:"Largest body accepted in bytes; default 16 MiB."`
}

// settings is a validated Config with its defaults applied.
type settings struct {
	direction  string
	attrPrefix string
	textKey    string
	arrays     map[string]bool
	root       string
	maxDepth   int
	maxBytes   int64
}

// Validate checks the config.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c *Config) settings() (settings, error) {
	s := settings{
		attrPrefix: cmp.Or(c.AttributePrefix, DefaultAttributePrefix),
		textKey:    cmp.Or(c.TextKey, DefaultTextKey),
		root:       cmp.Or(c.Root, DefaultRoot),
		maxDepth:   c.MaxDepth,
	}
	var errs []error
	direction, err := format.CheckDirection(c.Direction)
	if err != nil {
		errs = append(errs, err)
	}
	s.direction = direction
	if startsLikeName(s.attrPrefix) {
		errs = append(errs, fmt.Errorf("attributePrefix: %q starts like an XML name; use a character such as @", s.attrPrefix))
	}
	if startsLikeName(s.textKey) {
		errs = append(errs, fmt.Errorf("textKey: %q starts like an XML name; use a character such as #", s.textKey))
	}
	if strings.HasPrefix(s.textKey, s.attrPrefix) {
		errs = append(errs, fmt.Errorf("textKey: %q starts with the attribute prefix %q", s.textKey, s.attrPrefix))
	}
	if !validName(s.root) {
		errs = append(errs, fmt.Errorf("root: %q is not an XML element name", s.root))
	}
	if len(c.Arrays) > 0 {
		s.arrays = make(map[string]bool, len(c.Arrays))
	}
	for _, p := range c.Arrays {
		clean := strings.TrimPrefix(p, "/")
		parts := strings.Split(clean, "/")
		ok := len(parts) >= 2
		for _, part := range parts {
			ok = ok && validName(part)
		}
		if !ok {
			errs = append(errs, fmt.Errorf("arrays: %q is not an element path below the root (root/child)", p))
		}
		s.arrays[clean] = true
	}
	switch {
	case s.maxDepth == 0:
		s.maxDepth = DefaultMaxDepth
	case s.maxDepth < 1 || s.maxDepth > MaxMaxDepth:
		errs = append(errs, fmt.Errorf("maxDepth: %d is out of range (1 to %d)", c.MaxDepth, MaxMaxDepth))
	}
	maxBytes, err := formatconv.CheckMaxBytes(c.MaxBytes)
	if err != nil {
		errs = append(errs, err)
	}
	s.maxBytes = maxBytes
	return s, errors.Join(errs...)
}

func isNameStart(r rune) bool {
	return unicode.IsLetter(r) || r == '_' || r == ':'
}

func isNameChar(r rune) bool {
	return isNameStart(r) || unicode.IsDigit(r) || r == '-' || r == '.' ||
		unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || r == '\u00B7'
}

func startsLikeName(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return isNameStart(r)
}

// validName reports whether s can be written as an XML element or
// attribute name (letters, digits, _ - . : and combining marks, not
// starting with a digit, - or .).
func validName(s string) bool {
	if s == "" || len(s) > 1000 {
		return false
	}
	for i, r := range s {
		if r == utf8.RuneError || (i == 0 && !isNameStart(r)) || !isNameChar(r) {
			return false
		}
	}
	return true
}
