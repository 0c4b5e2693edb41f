package xml

import (
	"bytes"
	"encoding/json"
	encxml "encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// toXML converts a JSON object to an XML document. Errors are permanent:
// malformed JSON names its line and column, keys that cannot be XML names
// and values XML cannot hold name their path.
func (s *settings) toXML(data []byte) ([]byte, error) {
	doc, err := s.decodeJSON(data)
	if err != nil {
		return nil, err
	}
	root, name := doc, s.root
	// A single key holding an object or a plain value is the root element;
	// otherwise (several keys, or an array that would make several roots)
	// everything goes under the configured root.
	if len(doc.keys) == 1 {
		k := doc.keys[0]
		if _, isArray := doc.values[k].([]any); !isArray && !strings.HasPrefix(k, s.attrPrefix) && k != s.textKey {
			name = k
			root = nil
		}
	}
	var buf bytes.Buffer
	buf.WriteString(encxml.Header)
	if root == nil {
		err = s.writeElement(&buf, name, doc.values[name], name)
	} else {
		err = s.writeElement(&buf, name, root, name)
	}
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *settings) decodeJSON(data []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := s.decodeValue(dec, data, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		line, col := jsonbody.Position(data, dec.InputOffset()+1)
		return nil, sdk.Permanentf("malformed JSON at line %d, column %d: data after the top-level value", line, col)
	}
	obj, ok := v.(*object)
	if !ok {
		return nil, sdk.Permanentf("JSON body is %s, want an object", jsonbody.TypeName(v))
	}
	return obj, nil
}

func malformedJSON(data []byte, err error) error {
	if errors.Is(err, io.EOF) {
		return sdk.Permanentf("malformed JSON at line 1, column 1: empty body")
	}
	return sdk.PermanentError(fmt.Errorf("malformed JSON: %w", jsonbody.Locate(data, err)))
}

// decodeValue decodes the next JSON value keeping object keys in order.
func (s *settings) decodeValue(dec *json.Decoder, data []byte, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, malformedJSON(data, err)
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= s.maxDepth {
		line, col := jsonbody.Position(data, dec.InputOffset())
		return nil, sdk.Permanentf("JSON at line %d, column %d: nested deeper than %d", line, col, s.maxDepth)
	}
	switch delim {
	case '{':
		obj := newObject()
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, malformedJSON(data, err)
			}
			k, _ := kt.(string) // the decoder only gives strings as keys
			v, err := s.decodeValue(dec, data, depth+1)
			if err != nil {
				return nil, err
			}
			obj.set(k, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, malformedJSON(data, err)
		}
		return obj, nil
	default: // '['; the decoder never starts a value with '}' or ']'
		arr := []any{}
		for dec.More() {
			v, err := s.decodeValue(dec, data, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, malformedJSON(data, err)
		}
		return arr, nil
	}
}

// writeElement writes <name>…</name> for v; path names it in errors.
func (s *settings) writeElement(buf *bytes.Buffer, name string, v any, path string) error {
	if !validName(name) {
		return sdk.Permanentf("JSON key %q at %s is not an XML element name", name, path)
	}
	buf.WriteByte('<')
	buf.WriteString(name)
	obj, isObject := v.(*object)
	if isObject {
		for _, k := range obj.keys {
			attr, ok := strings.CutPrefix(k, s.attrPrefix)
			if !ok || k == s.textKey {
				continue
			}
			if !validName(attr) {
				return sdk.Permanentf("JSON key %q at %s is not an XML attribute name", k, path)
			}
			text, err := scalarText(obj.values[k])
			if err != nil {
				return sdk.Permanentf("attribute %q at %s: %w", k, path, err)
			}
			buf.WriteByte(' ')
			buf.WriteString(attr)
			buf.WriteString(`="`)
			escape(buf, text)
			buf.WriteByte('"')
		}
	}
	buf.WriteByte('>')
	switch x := v.(type) {
	case *object:
		if t, ok := x.values[s.textKey]; ok {
			text, err := scalarText(t)
			if err != nil {
				return sdk.Permanentf("%q at %s: %w", s.textKey, path, err)
			}
			escape(buf, text)
		}
		for _, k := range x.keys {
			if k == s.textKey || strings.HasPrefix(k, s.attrPrefix) {
				continue
			}
			if err := s.writeChild(buf, k, x.values[k], path+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		return sdk.Permanentf("%s is an array inside an array, which XML cannot hold", path)
	default:
		text, err := scalarText(x)
		if err != nil {
			return sdk.Permanentf("%s: %w", path, err)
		}
		escape(buf, text)
	}
	buf.WriteString("</")
	buf.WriteString(name)
	buf.WriteByte('>')
	return nil
}

// writeChild writes an array as repeated elements, anything else as one.
func (s *settings) writeChild(buf *bytes.Buffer, name string, v any, path string) error {
	arr, ok := v.([]any)
	if !ok {
		return s.writeElement(buf, name, v, path)
	}
	for _, e := range arr {
		if err := s.writeElement(buf, name, e, path); err != nil {
			return err
		}
	}
	return nil
}

// scalarText is the text of a JSON string, number, boolean or null.
func scalarText(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	case *object:
		return "", errors.New("an object cannot be text")
	}
	return "", fmt.Errorf("%s cannot be text", jsonbody.TypeName(v))
}

// escape writes s as XML character data; characters XML cannot hold
// become U+FFFD.
func escape(buf *bytes.Buffer, s string) {
	_ = encxml.EscapeText(buf, []byte(s)) // writing to a bytes.Buffer cannot fail
}
