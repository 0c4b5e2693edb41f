// Package router holds two filters over JSON object bodies: router, which
// chooses the producers a message goes to from expr conditions, and filter,
// which drops the messages a condition rejects.
//
// Conditions are compiled once, when the filter is built, and see the body's
// top-level fields as variables. Neither filter changes a message, keeps a
// reference to it, logs, retries or acks; a body that is not a JSON object
// or a condition that fails is a permanent error.
package router

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/expr-lang/expr"

	"github.com/vrsky/vrsky/connectors/config"
	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/jsonexpr"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// Connector registers the router filter.
var Connector = sdk.Connector{
	Name:      "router",
	Kind:      sdk.KindFilter,
	Summary:   "Route JSON messages to producers by expr conditions, first match or all matches, with a default.",
	Example:   json.RawMessage(`{"routes": [{"when": "total > 1000", "to": ["orders-db", "sales-slack"]}], "default": ["orders-db"]}`),
	NewConfig: func() any { return new(Config) },
	Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		var cfg Config
		if err := config.Decode(raw, &cfg); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		r, err := NewRouter(cfg)
		if err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		return r, nil
	},
}

// FilterConnector registers the filter filter: keep a message when an expr
// condition holds, drop it otherwise.
var FilterConnector = sdk.Connector{
	Name:      "filter",
	Kind:      sdk.KindFilter,
	Summary:   "Keep JSON messages for which an expr condition holds; drop the rest.",
	Example:   json.RawMessage(`{"keep": "status == \"paid\" && total > 0"}`),
	NewConfig: func() any { return new(FilterConfig) },
	Build: func(_ context.Context, _ sdk.Env, raw json.RawMessage) (any, error) {
		var cfg FilterConfig
		if err := config.Decode(raw, &cfg); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		f, err := NewKeep(cfg)
		if err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
		return f, nil
	},
}

func compile(source string) (*jsonexpr.Program, error) {
	return jsonexpr.Compile(source, expr.AsBool())
}

// decode checks ctx and decodes the body, or takes the object an earlier
// step recorded; errors are already wrapped with the connector's name. The
// object may be shared: conditions only read it.
func decode(ctx context.Context, name string, msg sdk.Message) (map[string]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	doc, err := jsonbody.Object(msg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return doc, nil
}

// RouteFilter is the built router. It is safe for concurrent use.
type RouteFilter struct {
	routes []compiledRoute
	def    []string
	all    bool
}

type compiledRoute struct {
	when *jsonexpr.Program
	to   []string
}

var _ sdk.Filter = (*RouteFilter)(nil)

// NewRouter validates cfg and compiles its conditions.
func NewRouter(cfg Config) (*RouteFilter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &RouteFilter{def: slices.Clone(cfg.Default), all: cfg.Mode == ModeAll}
	for i, rt := range cfg.Routes {
		c, err := compile(rt.When)
		if err != nil {
			return nil, fmt.Errorf("routes[%d].when: %w", i, err)
		}
		r.routes = append(r.routes, compiledRoute{when: c, to: slices.Clone(rt.To)})
	}
	return r, nil
}

// Filter returns the producers msg goes to, or Drop when no route matches
// and there is no default. The returned slice is the caller's to keep.
func (r *RouteFilter) Filter(ctx context.Context, msg sdk.Message) (sdk.Decision, error) {
	doc, err := decode(ctx, "router", msg)
	if err != nil {
		return sdk.Decision{}, err
	}
	var to []string
	for i, rt := range r.routes {
		ok, err := rt.when.RunBool(doc)
		if err != nil {
			return sdk.Decision{}, sdk.PermanentError(fmt.Errorf("router: routes[%d]: %w", i, err))
		}
		if !ok {
			continue
		}
		if !r.all {
			return sdk.Decision{Routes: slices.Clone(rt.to)}, nil
		}
		for _, p := range rt.to {
			if !slices.Contains(to, p) {
				to = append(to, p)
			}
		}
	}
	switch {
	case len(to) > 0:
		return sdk.Decision{Routes: to}, nil
	case len(r.def) > 0:
		return sdk.Decision{Routes: slices.Clone(r.def)}, nil
	default:
		return sdk.Decision{Drop: true}, nil
	}
}

// KeepFilter is the built filter connector. It is safe for concurrent use.
type KeepFilter struct {
	keep *jsonexpr.Program
}

var _ sdk.Filter = (*KeepFilter)(nil)

// NewKeep validates cfg and compiles its condition.
func NewKeep(cfg FilterConfig) (*KeepFilter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := compile(cfg.Keep)
	if err != nil {
		return nil, fmt.Errorf("keep: %w", err)
	}
	return &KeepFilter{keep: c}, nil
}

// Filter drops msg when the condition is false and leaves its routing
// unchanged otherwise.
func (f *KeepFilter) Filter(ctx context.Context, msg sdk.Message) (sdk.Decision, error) {
	doc, err := decode(ctx, "filter", msg)
	if err != nil {
		return sdk.Decision{}, err
	}
	ok, err := f.keep.RunBool(doc)
	if err != nil {
		return sdk.Decision{}, sdk.PermanentError(fmt.Errorf("filter: keep: %w", err))
	}
	return sdk.Decision{Drop: !ok}, nil
}
