package jsontransform

import (
	"fmt"
	"strings"

	"github.com/vrsky/vrsky/connectors/jsonbody"
)

// path is a parsed dotted field path.
type path struct {
	raw  string
	segs []string
}

func parsePath(p string) path { return path{raw: p, segs: strings.Split(p, ".")} }

// parent walks to the object holding the path's last segment. With create,
// missing intermediate objects are made; ok is false when an intermediate is
// missing (and not created), and err is set when one is not an object.
func (p path) parent(doc map[string]any, create bool) (m map[string]any, ok bool, err error) {
	m = doc
	for i, seg := range p.segs[:len(p.segs)-1] {
		next, found := m[seg]
		if !found || next == nil {
			if !create {
				return nil, false, nil
			}
			child := make(map[string]any)
			m[seg] = child
			m = child
			continue
		}
		child, isObj := next.(map[string]any)
		if !isObj {
			return nil, false, fmt.Errorf("%s is %s, not an object", strings.Join(p.segs[:i+1], "."), jsonbody.TypeName(next))
		}
		m = child
	}
	return m, true, nil
}

func (p path) last() string { return p.segs[len(p.segs)-1] }

// get returns the value at the path and whether it is present.
func (p path) get(doc map[string]any) (any, bool) {
	m, ok, err := p.parent(doc, false)
	if !ok || err != nil {
		return nil, false
	}
	v, found := m[p.last()]
	return v, found
}

// set stores v at the path, creating intermediate objects.
func (p path) set(doc map[string]any, v any) error {
	m, _, err := p.parent(doc, true)
	if err != nil {
		return err
	}
	m[p.last()] = v
	return nil
}

// remove deletes the path and returns what it held.
func (p path) remove(doc map[string]any) (any, bool) {
	m, ok, err := p.parent(doc, false)
	if !ok || err != nil {
		return nil, false
	}
	v, found := m[p.last()]
	delete(m, p.last())
	return v, found
}
