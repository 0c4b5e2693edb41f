// Package pgident checks the PostgreSQL identifiers a connector config
// names (tables, schemas, columns, publications) against an allow-list, so
// they are safe to quote into SQL with pgx.Identifier.Sanitize, and parses
// table names with an optional schema.
//
// It never talks to a database: whether a name exists is the connector's
// business.
package pgident

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// pattern is the allow-list: a letter or '_', then letters, digits or '_',
// at most 63 bytes (PostgreSQL's NAMEDATALEN less one).
var pattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Check returns an error naming what (such as "table" or "key column") when
// name is not on the allow-list.
func Check(what, name string) error {
	if !pattern.MatchString(name) {
		return fmt.Errorf("%s %q: want a letter or '_' then letters, digits or '_' (at most 63)", what, name)
	}
	return nil
}

// Table is a table's name, checked against the allow-list. Schema is ""
// when the table is to be found on the search_path.
type Table struct {
	Schema string
	Name   string
}

// String is the name as written: table or schema.table.
func (t Table) String() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// ParseTable splits "schema.table" (or takes a bare "table") and checks
// both names.
func ParseTable(name string) (Table, error) {
	parts := strings.Split(name, ".")
	switch len(parts) {
	case 1:
		return Table{Name: parts[0]}, Check("table", parts[0])
	case 2:
		return Table{Schema: parts[0], Name: parts[1]}, errors.Join(Check("table schema", parts[0]), Check("table", parts[1]))
	default:
		return Table{}, fmt.Errorf("table %q: want table or schema.table", name)
	}
}
