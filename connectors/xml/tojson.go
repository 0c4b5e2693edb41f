package xml

import (
	"bytes"
	"encoding/json"
	encxml "encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// node is a parsed element.
type node struct {
	name     string
	attrs    []encxml.Attr
	children []*node
	text     strings.Builder
	// start is the offset of the element's start tag, for errors.
	start int64
}

// toJSON converts an XML document to JSON. Errors are permanent and name
// the line and column of the problem.
func (s *settings) toJSON(data []byte) ([]byte, error) {
	root, err := s.parse(data)
	if err != nil {
		return nil, err
	}
	doc := newObject()
	doc.set(root.name, s.value(root, root.name))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := writeJSON(&buf, enc, doc); err != nil {
		return nil, sdk.PermanentError(err)
	}
	return buf.Bytes(), nil
}

// at formats a permanent error at byte offset off (the offset of the
// problem's first byte) of data.
func at(data []byte, off int64, format string, args ...any) error {
	line, col := jsonbody.Position(data, off+1)
	args = append([]any{line, col}, args...)
	return sdk.Permanentf("malformed XML at line %d, column %d: "+format, args...)
}

// parse reads the whole document into a tree, refusing DTDs and
// enforcing the depth limit.
func (s *settings) parse(data []byte) (*node, error) {
	dec := encxml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	// No entity map: only the predefined entities and character references
	// decode, and no CharsetReader: only UTF-8 documents are accepted.
	var (
		root  *node
		stack []*node
	)
	for {
		start := dec.InputOffset()
		// RawToken keeps namespace prefixes as written (x:item) so the JSON
		// keys round-trip; start and end tags are matched here.
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			msg := err.Error()
			var syn *encxml.SyntaxError
			if errors.As(err, &syn) {
				msg = syn.Msg
			}
			// The decoder stops just past the byte it could not accept.
			end := dec.InputOffset() - 1
			if end < start {
				end = start
			}
			return nil, at(data, end, "%s", msg)
		}
		switch t := tok.(type) {
		case encxml.StartElement:
			if root != nil && len(stack) == 0 {
				return nil, at(data, start, "more than one root element")
			}
			if len(stack) >= s.maxDepth {
				return nil, at(data, start, "elements nested deeper than %d", s.maxDepth)
			}
			n := &node{name: qualified(t.Name), attrs: t.Attr, start: start}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case encxml.EndElement:
			if len(stack) == 0 {
				return nil, at(data, start, "end tag </%s> without a start tag", qualified(t.Name))
			}
			open := stack[len(stack)-1]
			if name := qualified(t.Name); name != open.name {
				return nil, at(data, start, "end tag </%s> does not match <%s>", name, open.name)
			}
			stack = stack[:len(stack)-1]
		case encxml.CharData:
			if len(stack) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, at(data, start, "text outside the root element")
				}
				continue
			}
			stack[len(stack)-1].text.Write(t)
		case encxml.Directive:
			return nil, at(data, start, "DTDs are not allowed")
		case encxml.Comment, encxml.ProcInst:
			// Comments and the XML declaration carry no data.
		}
	}
	if len(stack) > 0 {
		open := stack[len(stack)-1]
		return nil, at(data, int64(len(data)), "element <%s> is not closed", open.name)
	}
	if root == nil {
		return nil, at(data, int64(len(data)), "no root element")
	}
	return root, nil
}

func qualified(n encxml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// value maps an element to JSON: a plain string when it has neither
// attributes nor children, otherwise an object of attributes, children
// and text.
func (s *settings) value(n *node, path string) any {
	if len(n.attrs) == 0 && len(n.children) == 0 {
		return n.text.String()
	}
	obj := newObject()
	for _, a := range n.attrs {
		obj.set(s.attrPrefix+qualified(a.Name), a.Value)
	}
	if text := strings.TrimSpace(n.text.String()); text != "" {
		if len(n.children) == 0 {
			text = n.text.String()
		}
		obj.set(s.textKey, text)
	}
	// Group children by name, in order of first appearance.
	var names []string
	groups := map[string][]*node{}
	for _, child := range n.children {
		if _, ok := groups[child.name]; !ok {
			names = append(names, child.name)
		}
		groups[child.name] = append(groups[child.name], child)
	}
	for _, name := range names {
		childPath := path + "/" + name
		group := groups[name]
		if len(group) == 1 && !s.arrays[childPath] {
			obj.set(name, s.value(group[0], childPath))
			continue
		}
		arr := make([]any, len(group))
		for i, child := range group {
			arr[i] = s.value(child, childPath)
		}
		obj.set(name, arr)
	}
	return obj
}
