package dataplane

import (
	"fmt"
	"slices"
	"time"

	"github.com/vrsky/vrsky/internal/spec"
)

// Location is where a tenant's streams (its pipelines' and its DLQ) live.
type Location string

const (
	// Shared is the tenant's account on the platform's NATS cluster.
	Shared Location = "shared"
	// Dedicated is the tenant's own NATS server or cluster.
	Dedicated Location = "dedicated"
)

// Valid reports whether l is a known location.
func (l Location) Valid() bool { return l == Shared || l == Dedicated }

// Instance is how the platform reaches a tenant's dedicated NATS: its
// client URLs, the credentials of the platform's user there, and where its
// monitoring endpoint answers. Only the platform's roles ever read it.
type Instance struct {
	// URLs are the instance's client URLs (one server, or a cluster's).
	URLs []string `json:"urls"`
	// User and Password authenticate the platform on the instance.
	User     string `json:"user"`
	Password string `json:"password"` //nolint:gosec // the platform's own credential, kept in the platform account
	// Monitor is the base URL of the instance's HTTP monitoring endpoint
	// (for /healthz?js-enabled-only=true), "" when it has none.
	Monitor string `json:"monitor,omitempty"`
}

// Validate reports a missing URL or credential.
func (i Instance) Validate() error {
	if len(i.URLs) == 0 || slices.Contains(i.URLs, "") {
		return fmt.Errorf("a dedicated instance needs at least one URL")
	}
	if i.User == "" || i.Password == "" {
		return fmt.Errorf("a dedicated instance needs a user and a password")
	}
	return nil
}

// Placement says where a tenant's messages are stored. Ingress writes to
// Write; runners consume Write and, while a move drains it, Draining. A
// tenant without a placement is Shared.
type Placement struct {
	Tenant string   `json:"tenant"`
	Write  Location `json:"write"`
	// Draining is, during a move, the location the tenant's messages are
	// leaving: nothing new is written there, and runners keep consuming it
	// until its streams are empty.
	Draining Location `json:"draining,omitempty"`
	// Dedicated is the tenant's own instance, while it has one.
	Dedicated *Instance `json:"dedicated,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SharedPlacement is the placement of a tenant that never moved.
func SharedPlacement(tenant string) Placement {
	return Placement{Tenant: tenant, Write: Shared}
}

// AllShared reports whether the tenant lives on the shared cluster alone,
// as a tenant that never moved does.
func (p Placement) AllShared() bool { return p.Write == Shared && p.Draining == "" }

// Consume returns the locations runners consume the tenant's pipelines at:
// Write, then Draining during a move.
func (p Placement) Consume() []Location {
	if p.Draining != "" && p.Draining != p.Write {
		return []Location{p.Write, p.Draining}
	}
	return []Location{p.Write}
}

// Validate reports an unknown location, or a dedicated location without
// its instance.
func (p Placement) Validate() error {
	if !spec.ValidName(p.Tenant) {
		return fmt.Errorf("invalid tenant name %q", p.Tenant)
	}
	for _, l := range p.Consume() {
		if !l.Valid() {
			return fmt.Errorf("unknown location %q", l)
		}
		if l == Dedicated {
			if p.Dedicated == nil {
				return fmt.Errorf("tenant %s is placed on a dedicated instance it does not have", p.Tenant)
			}
			if err := p.Dedicated.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}
