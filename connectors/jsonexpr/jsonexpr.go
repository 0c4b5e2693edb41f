// Package jsonexpr compiles and runs expr expressions whose variables are the
// top-level fields of a JSON object.
//
// A field that shares a builtin's name (type, first, len, ...) is read as the
// field wherever the expression uses it as a value, so "type == 'order'"
// works; calling that builtin in the same expression is then not possible.
// Missing fields are nil. Programs are compiled once and are safe to run from
// many goroutines; this package must never compile per message, log, keep
// a reference to the object it evaluated, or change that object: a chain's
// steps share one decoded object (see jsonbody.Object).
package jsonexpr

import (
	"fmt"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Program is a compiled expression.
type Program struct {
	source  string
	program *vm.Program
}

// Compile compiles source with the object's fields as variables; extra
// options (expr.AsBool()) constrain the result.
func Compile(source string, opts ...expr.Option) (*Program, error) {
	if len(source) > MaxSourceLen {
		return nil, fmt.Errorf("compile: expression of %d bytes is longer than %d", len(source), MaxSourceLen)
	}
	tree, err := parser.Parse(source)
	if err != nil {
		return nil, fmt.Errorf("compile %q: %w", source, err)
	}
	// A name the expression reads as a value is a field, even when a
	// builtin has that name: switch such builtins off.
	ids := identifiers{}
	ast.Walk(&tree.Node, ids)
	all := []expr.Option{expr.Env(map[string]any{}), expr.AllowUndefinedVariables()}
	for name := range ids {
		if _, ok := builtin.Index[name]; ok {
			all = append(all, expr.DisableBuiltin(name))
		}
	}
	all = append(all, budgetOptions(ids)...)
	all = append(all, opts...)
	p, err := expr.Compile(source, all...)
	if err != nil {
		return nil, fmt.Errorf("compile %q: %w", source, err)
	}
	return &Program{source: source, program: p}, nil
}

// identifiers collects the names an expression reads as values.
type identifiers map[string]struct{}

func (ids identifiers) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		ids[id.Value] = struct{}{}
	}
}

// String returns the expression's source.
func (p *Program) String() string { return p.source }

// machines reuses expression VMs across runs and goroutines.
// Each VM holds an evaluation to Budget.
var machines = sync.Pool{New: func() any { return &vm.VM{MemoryBudget: Budget} }}

// Run evaluates the program against fields.
func (p *Program) Run(fields map[string]any) (any, error) {
	m := machines.Get().(*vm.VM)
	v, err := m.Run(p.program, fields)
	machines.Put(m)
	if err != nil {
		if strings.Contains(err.Error(), "memory budget exceeded") {
			return nil, fmt.Errorf("evaluate %q: over the memory budget of %d allocated elements: %w", p.source, Budget, ErrLimit)
		}
		return nil, fmt.Errorf("evaluate %q: %w", p.source, err)
	}
	return v, nil
}

// RunBool evaluates a program that must give a boolean.
func (p *Program) RunBool(fields map[string]any) (bool, error) {
	v, err := p.Run(fields)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("evaluate %q: got %T, want a boolean", p.source, v)
	}
	return b, nil
}
