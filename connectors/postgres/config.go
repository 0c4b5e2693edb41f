package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/vrsky/vrsky/connectors/pgident"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Write modes.
const (
	// ModeInsert inserts every message as a new row; with IDColumn or Key a
	// row that is already there is left alone (ON CONFLICT DO NOTHING).
	ModeInsert = "insert"
	// ModeUpsert inserts a row or, when a row with the same Key exists,
	// updates its other mapped columns (ON CONFLICT DO UPDATE).
	ModeUpsert = "upsert"
)

// pathPattern is one segment of a dotted JSON field path.
var pathPattern = regexp.MustCompile(`^[^.\x00]{1,256}$`)

// Config is the PostgreSQL producer's configuration.
type Config struct {
	// URL is the connection string (postgres://… or key=value), given as a
	// secret reference because it usually holds a password.
	URL sdk.Secret `json:"url" doc:"Connection string, as {\"env\": NAME} or {\"secret\": NAME}."`
	// Table is the target table, "table" (found on the search_path) or
	// "schema.table". Names are case-sensitive, as stored in the catalog.
	Table string `json:"table" doc:"Target table: table or schema.table (case-sensitive)."`
	// Mode is insert (the default) or upsert.
	Mode string `json:"mode,omitempty" enum:"insert,upsert" doc:"insert (default) or upsert."`
	// Key names the conflict columns: required for upsert; for insert it
	// makes a redelivered message a no-op. The columns must carry a
	// unique index or constraint.
	Key []string `json:"key,omitempty" doc:"Conflict columns (unique); required for upsert."`
	// Columns maps a column to the dotted JSON path of its value in the
	// message body ("customer.id"). When empty, every top-level field whose
	// name is a column of the table goes to that column.
	Columns map[string]string `json:"columns,omitempty" doc:"column → dotted JSON path; default: top-level fields named like columns."`
	// IDColumn, when set, receives the message ID. With a unique index on
	// it, a redelivered message is not inserted twice.
	IDColumn string `json:"idColumn,omitempty" doc:"Column that receives the message ID (make it unique for idempotent inserts)."`
}

// settings is a validated Config with its defaults applied.
type settings struct {
	target   pgident.Table
	mode     string
	key      []string
	columns  map[string][]string // column → path segments; nil means by name
	idColumn string
}

// Validate checks the config on its own; Build also checks it against the
// database's catalog.
func (c *Config) Validate() error {
	_, err := c.settings()
	return err
}

func (c *Config) settings() (settings, error) {
	s := settings{mode: c.Mode, idColumn: c.IDColumn}
	var errs []error
	if err := c.URL.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	t, err := parseTable(c.Table)
	if err != nil {
		errs = append(errs, err)
	}
	s.target = t
	switch s.mode {
	case "":
		s.mode = ModeInsert
	case ModeInsert, ModeUpsert:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want insert or upsert", c.Mode))
	}
	if s.mode == ModeUpsert && len(c.Key) == 0 {
		errs = append(errs, errors.New("key: upsert needs the conflict columns"))
	}
	for _, k := range c.Key {
		if err := pgident.Check("key column", k); err != nil {
			errs = append(errs, err)
		}
		if slices.Contains(s.key, k) {
			errs = append(errs, fmt.Errorf("key column %q: named twice", k))
			continue
		}
		s.key = append(s.key, k)
	}
	if c.IDColumn != "" {
		if err := pgident.Check("idColumn", c.IDColumn); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.Columns) > 0 {
		s.columns = make(map[string][]string, len(c.Columns))
		for _, col := range sortedKeys(c.Columns) {
			path := c.Columns[col]
			if err := pgident.Check("column", col); err != nil {
				errs = append(errs, err)
				continue
			}
			if col == c.IDColumn {
				errs = append(errs, fmt.Errorf("column %q: is the idColumn, which receives the message ID", col))
				continue
			}
			segs := strings.Split(path, ".")
			for _, seg := range segs {
				if !pathPattern.MatchString(seg) {
					errs = append(errs, fmt.Errorf("column %q: path %q: want dot-separated field names, none empty", col, path))
					break
				}
			}
			s.columns[col] = segs
		}
		for _, k := range s.key {
			if _, ok := s.columns[k]; !ok && k != c.IDColumn {
				errs = append(errs, fmt.Errorf("key column %q: not in columns, so it would never get a value", k))
			}
		}
	}
	return s, errors.Join(errs...)
}

// parseTable checks the table option: required, table or schema.table.
func parseTable(name string) (pgident.Table, error) {
	if name == "" {
		return pgident.Table{}, errors.New("table: required")
	}
	return pgident.ParseTable(name)
}

// quote quotes an identifier that passed the allow-list or came from the
// catalog; it is the only way a name enters SQL text.
func quote(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
