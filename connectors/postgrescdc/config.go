package postgrescdc

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vrsky/vrsky/connectors/pgident"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Defaults and limits.
const (
	DefaultStatusInterval = 10 * time.Second
	// ChunkSize is the most changes handed to the sink in one Publish; a
	// larger transaction goes in several, and is confirmed only at its
	// commit.
	ChunkSize = 500
)

// slotPattern is what PostgreSQL accepts as a replication slot name.
var slotPattern = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Config is the PostgreSQL change-data-capture consumer's configuration.
type Config struct {
	// URL is the connection string of the source database, as a secret
	// reference; the consumer adds replication=database itself. Its user
	// needs the REPLICATION attribute (or superuser) and must own the
	// tables to create the publication.
	URL sdk.Secret `json:"url" doc:"Connection string, as {\"env\": NAME} or {\"secret\": NAME}."`
	// Tables are the tables to capture, "table" (found on the search_path)
	// or "schema.table"; names are case-sensitive.
	Tables []string `json:"tables" doc:"Tables to capture: table or schema.table (case-sensitive)."`
	// Publication is the publication to create or reuse; the default is
	// vrsky_<integration> with '-' turned into '_'.
	Publication string `json:"publication,omitempty" doc:"Publication name; default vrsky_<integration>."`
	// Slot is the logical replication slot to create or reuse; the default
	// is the same name as the publication, lower-cased.
	Slot string `json:"slot,omitempty" doc:"Replication slot name; default vrsky_<integration>."`
	// Snapshot emits every row already in the tables, as op "snapshot",
	// when the slot is created, before any change.
	Snapshot bool `json:"snapshot,omitempty" doc:"Emit the existing rows (op snapshot) when the slot is created."`
	// StatusInterval is how often the confirmed position is reported to
	// the server when nothing else happens (a Go duration, default 10s).
	StatusInterval string `json:"statusInterval,omitempty" doc:"How often to report the confirmed position (Go duration); default 10s."`
}

// settings is a validated Config with its defaults applied.
type settings struct {
	tables      []pgident.Table
	publication string
	// ownPublication: the publication has the default name, so the
	// consumer created it and drops it when retired.
	ownPublication bool
	slot           string
	snapshot       bool
	statusInterval time.Duration
}

// Validate checks the config on its own; Build also checks it against the
// database.
func (c *Config) Validate() error {
	_, err := c.settings(sdk.Env{Integration: "integration"})
	return err
}

func (c *Config) settings(env sdk.Env) (settings, error) {
	s := settings{
		publication:    c.Publication,
		slot:           c.Slot,
		snapshot:       c.Snapshot,
		statusInterval: DefaultStatusInterval,
	}
	var errs []error
	if err := c.URL.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("url: %w", err))
	}
	if len(c.Tables) == 0 {
		errs = append(errs, errors.New("tables: name at least one table"))
	}
	seen := map[string]bool{}
	for _, name := range c.Tables {
		t, err := pgident.ParseTable(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[name] {
			errs = append(errs, fmt.Errorf("table %q: named twice", name))
			continue
		}
		seen[name] = true
		s.tables = append(s.tables, t)
	}
	def := env.Integration
	if def == "" {
		def = env.Name
	}
	def = "vrsky_" + strings.ReplaceAll(def, "-", "_")
	if s.publication == "" {
		s.publication, s.ownPublication = def, true
	}
	if err := pgident.Check("publication", s.publication); err != nil {
		errs = append(errs, err)
	}
	if s.slot == "" {
		s.slot = strings.ToLower(def)
	}
	if !slotPattern.MatchString(s.slot) {
		errs = append(errs, fmt.Errorf("slot %q: want lower-case letters, digits or '_' (at most 63)", s.slot))
	}
	if c.StatusInterval != "" {
		d, err := time.ParseDuration(c.StatusInterval)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("statusInterval: %w", err))
		case d < 100*time.Millisecond:
			errs = append(errs, fmt.Errorf("statusInterval %q: must be at least 100ms", c.StatusInterval))
		default:
			s.statusInterval = d
		}
	}
	return s, errors.Join(errs...)
}
