package router

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Routing modes.
const (
	// ModeFirst sends a message to the first matching route's producers.
	ModeFirst = "first"
	// ModeAll sends a message to the union of every matching route's
	// producers.
	ModeAll = "all"
)

// producerName is what a producer may be called in an integration.
var producerName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Route sends messages for which When holds to the producers in To.
type Route struct {
	// When is an expr boolean expression over the JSON body's top-level
	// fields. Missing fields are nil, and comparing nil fails the message:
	// write (total ?? 0) > 100 and customer?.vip ?? false for optional
	// fields.
	When string `json:"when" doc:"expr boolean expression over the message's JSON fields."`
	// To names the producers the message goes to.
	To []string `json:"to" doc:"Producer names."`
}

// Config is the router filter's configuration.
type Config struct {
	// Routes are tried in order.
	Routes []Route `json:"routes" doc:"Routes, tried in order."`
	// Default receives messages no route matches; when empty they are
	// dropped.
	Default []string `json:"default,omitempty" doc:"Producers for messages no route matches; empty drops them."`
	// Mode is "first" (the default: the first matching route wins) or
	// "all" (every matching route's producers).
	Mode string `json:"mode,omitempty" enum:"first,all" doc:"first (default) or all."`
}

// Validate checks the routes, the producer names and the mode. Expressions
// are checked when Build compiles them.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Routes) == 0 {
		errs = append(errs, errors.New("routes: at least one route is needed"))
	}
	for i, r := range c.Routes {
		if strings.TrimSpace(r.When) == "" {
			errs = append(errs, fmt.Errorf("routes[%d]: when is empty", i))
		}
		if len(r.To) == 0 {
			errs = append(errs, fmt.Errorf("routes[%d]: to names no producer", i))
		}
		errs = append(errs, checkNames(fmt.Sprintf("routes[%d].to", i), r.To))
	}
	errs = append(errs, checkNames("default", c.Default))
	switch c.Mode {
	case "", ModeFirst, ModeAll:
	default:
		errs = append(errs, fmt.Errorf("mode %q: want %q or %q", c.Mode, ModeFirst, ModeAll))
	}
	return errors.Join(errs...)
}

func checkNames(field string, names []string) error {
	for _, n := range names {
		if !producerName.MatchString(n) {
			return fmt.Errorf("%s: %q is not a producer name (lower-case letters, digits and '-', at most 63)", field, n)
		}
	}
	return nil
}

// FilterConfig is the filter connector's configuration.
type FilterConfig struct {
	// Keep is an expr boolean expression over the JSON body's fields;
	// messages for which it is false are dropped.
	Keep string `json:"keep" doc:"expr boolean expression; false drops the message."`
}

// Validate checks that Keep is set.
func (c *FilterConfig) Validate() error {
	if strings.TrimSpace(c.Keep) == "" {
		return errors.New("keep: expression is empty")
	}
	return nil
}
