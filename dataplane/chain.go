package dataplane

import (
	"context"
	"fmt"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/internal/spec"
)

// step is one converter or filter of the chain.
type step struct {
	name      string
	converter sdk.Converter
	filter    sdk.Filter
}

// Chain is an integration's converters and filters, built, in order: what
// the process stage runs on every message. It is safe for concurrent use.
type Chain struct {
	steps []step
}

// Len is the number of steps.
func (c Chain) Len() int { return len(c.steps) }

// BuildChain builds the steps of a spec from catalog, each with the Env
// env returns for its name (steps[i]). It builds converters and filters
// only, which connect nowhere: the API's dry run uses it as the runner
// does.
func BuildChain(ctx context.Context, catalog *sdk.Catalog, steps []spec.Step, env func(name string) sdk.Env) (Chain, error) {
	c := Chain{steps: make([]step, 0, len(steps))}
	for i, s := range steps {
		name := fmt.Sprintf("steps[%d]", i)
		conn, ok := catalog.Lookup(s.Connector, sdk.KindConverter, sdk.KindFilter)
		if !ok {
			return Chain{}, fmt.Errorf("%s: unknown converter or filter %q", name, s.Connector)
		}
		built, err := conn.Build(ctx, env(name), s.Config)
		if err != nil {
			return Chain{}, fmt.Errorf("%s (%s): %w", name, s.Connector, err)
		}
		st := step{name: name + ":" + s.Connector}
		switch v := built.(type) {
		case sdk.Converter:
			st.converter = v
		case sdk.Filter:
			st.filter = v
		default:
			return Chain{}, fmt.Errorf("%s: connector %q is neither a converter nor a filter", name, s.Connector)
		}
		c.steps = append(c.steps, st)
	}
	return c, nil
}

// Run applies the chain to msg as the process stage does. routes is nil
// when no filter chose producers (every producer gets out); drop means the
// message is filtered out (a filter dropped it or routed it nowhere). An
// error names the step that failed.
func (c Chain) Run(ctx context.Context, msg sdk.Message) (out sdk.Message, routes []string, drop bool, err error) {
	for _, s := range c.steps {
		if s.converter != nil {
			if msg, err = s.converter.Convert(ctx, msg); err != nil {
				return msg, nil, false, fmt.Errorf("step %s: %w", s.name, err)
			}
			continue
		}
		d, err := s.filter.Filter(ctx, msg)
		if err != nil {
			return msg, nil, false, fmt.Errorf("step %s: %w", s.name, err)
		}
		if d.Drop {
			return msg, nil, true, nil
		}
		if d.Routes != nil {
			routes = d.Routes
		}
	}
	if routes != nil && len(routes) == 0 {
		return msg, nil, true, nil
	}
	return msg, routes, false, nil
}
