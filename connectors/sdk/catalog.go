package sdk

import "sort"

// Catalog is a set of connectors, looked up by kind and name (a consumer and
// a producer may share a name, like "file").
type Catalog struct {
	byKey map[string]Connector
}

// NewCatalog returns a catalog of the given connectors; a later connector
// with the same kind and name replaces an earlier one.
func NewCatalog(connectors ...Connector) *Catalog {
	c := &Catalog{byKey: make(map[string]Connector, len(connectors))}
	for _, conn := range connectors {
		c.byKey[string(conn.Kind)+":"+conn.Name] = conn
	}
	return c
}

// Lookup finds a connector of one of the given kinds, trying them in order.
func (c *Catalog) Lookup(name string, kinds ...Kind) (Connector, bool) {
	for _, k := range kinds {
		if conn, ok := c.byKey[string(k)+":"+name]; ok {
			return conn, true
		}
	}
	return Connector{}, false
}

// All returns every connector, sorted by name then kind.
func (c *Catalog) All() []Connector {
	out := make([]Connector, 0, len(c.byKey))
	for _, conn := range c.byKey {
		out = append(out, conn)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}
