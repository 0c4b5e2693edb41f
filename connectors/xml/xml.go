// Package xml is the xml converter: it turns XML bodies into JSON and JSON
// object bodies into XML, with a predictable mapping (attributes as
// prefixed keys, text under a text key, repeated or configured elements as
// arrays, the root element as the top-level key).
//
// It must never process a DTD: any <!DOCTYPE …> or other declaration fails
// the message, so entity expansion ("billion laughs") and external entities
// (file:// or network reads) cannot happen; only the five predefined
// entities and character references are decoded. Bodies and nesting are
// bounded. Malformed input fails permanently with its line and column, so
// the message goes to the DLQ with a reason a person can act on. It never
// logs, retries, acks or keeps a message after Convert returns.
package xml

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vrsky/vrsky/connectors/formatconv"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// ContentTypeXML is the content type of a message converted to XML; one
// converted to JSON is formatconv.ContentTypeJSON.
const ContentTypeXML = "application/xml"

var format = formatconv.Format{Name: "xml", Direction: ToXML, ContentType: ContentTypeXML}

// Connector registers the xml converter.
var Connector = func() sdk.Connector {
	c := formatconv.Connector(format,
		"Convert XML to JSON or JSON to XML; DTDs are refused, size and depth are bounded.",
		New)
	c.Example = json.RawMessage(`{"direction": "toJson", "arrays": ["order/item"]}`)
	return c
}()

// Converter is the built xml converter. It is safe for concurrent use. Its
// Convert fails permanently on input it cannot convert (malformed, a DTD,
// too large or too deep, JSON keys that are not XML names), but not on a
// cancelled ctx.
type Converter = formatconv.Converter

// New validates cfg and returns the xml converter it configures.
func New(cfg Config) (*Converter, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	return formatconv.New(format, s.direction, s.maxBytes, s.toJSON, s.toXML), nil
}

// object is a JSON object that keeps its keys in document order.
type object struct {
	keys   []string
	values map[string]any
}

func newObject() *object { return &object{values: map[string]any{}} }

func (o *object) set(k string, v any) {
	if _, ok := o.values[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.values[k] = v
}

// writeJSON writes v (string, json.Number, bool, nil, *object or []any) as
// compact JSON without HTML escaping.
func writeJSON(buf *bytes.Buffer, enc *json.Encoder, v any) error {
	switch x := v.(type) {
	case *object:
		buf.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, enc, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeJSON(buf, enc, x.values[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, enc, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default:
		if err := enc.Encode(x); err != nil {
			return fmt.Errorf("encode JSON: %w", err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	return nil
}
