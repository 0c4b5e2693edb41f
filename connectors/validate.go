package connectors

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// FieldError is one problem of a spec, at a location such as
// "steps[1].config" or "producers.orders-db.connector".
type FieldError struct {
	Location string
	Err      error
}

func (e *FieldError) Error() string { return e.Location + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// ValidateSpec checks a spec without building anything: its shape and names
// (spec.Validate), then, for the consumer, each step and each producer, that
// the connector exists for that role and that its config decodes strictly
// and passes the config's own Validate. Router steps must route only to
// producers the spec has. A schedule needs a consumer that polls
// (sdk.Connector.Polls). It reports every problem: the result joins one
// *FieldError per problem, or one located error of spec.Validate.
//
// It never opens a connection or resolves a secret, so a spec that passes
// can still fail to start (an unreachable database, a missing secret).
func ValidateSpec(in spec.Integration) error {
	errs := []error{in.Validate()}
	cat := Catalog()
	check := func(loc string, step spec.Step, what string, kinds ...sdk.Kind) {
		if step.Connector == "" {
			return // reported by spec.Validate
		}
		conn, ok := cat.Lookup(step.Connector, kinds...)
		if !ok {
			errs = append(errs, &FieldError{loc + ".connector", fmt.Errorf("unknown %s %q", what, step.Connector)})
			return
		}
		cfg := conn.NewConfig()
		if err := config.Decode(step.Config, cfg); err != nil {
			errs = append(errs, &FieldError{loc + ".config", err})
			return
		}
		if v, ok := cfg.(interface{ Validate() error }); ok {
			for _, err := range flatten(v.Validate()) {
				errs = append(errs, &FieldError{loc + ".config", err})
			}
		}
		if r, ok := cfg.(*router.Config); ok {
			errs = append(errs, checkRoutes(loc+".config", r, in.Producers)...)
		}
	}

	check("consumer", in.Consumer, "consumer", sdk.KindConsumer)
	if conn, ok := cat.Lookup(in.Consumer.Connector, sdk.KindConsumer); ok && in.Schedule != "" && !conn.Polls {
		errs = append(errs, &FieldError{"schedule", fmt.Errorf(
			"consumer %q does not support schedules: it takes data in continuously; remove schedule or use a consumer that polls (%s)",
			in.Consumer.Connector, strings.Join(pollingConsumers(cat), ", "))})
	}
	for i, step := range in.Steps {
		check(fmt.Sprintf("steps[%d]", i), step, "converter or filter", sdk.KindConverter, sdk.KindFilter)
	}
	for _, name := range in.ProducerNames() {
		check("producers."+name, in.Producers[name], "producer", sdk.KindProducer)
	}
	return errors.Join(errs...)
}

// pollingConsumers lists the consumers that can run on a schedule.
func pollingConsumers(cat *sdk.Catalog) []string {
	var names []string
	for _, conn := range cat.All() {
		if conn.Kind == sdk.KindConsumer && conn.Polls {
			names = append(names, conn.Name)
		}
	}
	return names
}

// checkRoutes reports router targets that are not producers of the spec.
func checkRoutes(loc string, r *router.Config, producers map[string]spec.Step) []error {
	var errs []error
	unknown := func(field string, names []string) {
		for _, n := range names {
			if _, ok := producers[n]; !ok {
				errs = append(errs, &FieldError{loc + "." + field, fmt.Errorf("unknown producer %q", n)})
			}
		}
	}
	for i, route := range r.Routes {
		unknown(fmt.Sprintf("routes[%d].to", i), route.To)
	}
	unknown("default", r.Default)
	return errs
}

// flatten lists the errors err joins (recursively); nil gives none.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, flatten(e)...)
	}
	return out
}
