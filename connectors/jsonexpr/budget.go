package jsonexpr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// Limits every expression compiles and runs under. A tenant's expression
// runs in a shared runner, so one that would loop or allocate without
// bound must fail its own message instead (see
// docs/adr/0015-expression-and-template-budgets.md).
const (
	// MaxSourceLen bounds an expression's source, in bytes.
	MaxSourceLen = 4096
	// MaxNodes bounds an expression's syntax tree.
	MaxNodes = 1000
	// Budget is what one evaluation may spend: every element of every
	// array or map it builds and every iteration of every loop
	// (map, filter, all, reduce, ...) costs one unit. A billion-iteration
	// loop stops after about a million, in tens of milliseconds.
	Budget = 1_000_000
	// MaxStringLen bounds every string an evaluation builds, in bytes.
	// Operations whose result can be much larger than their inputs
	// (repeat, replace, join, toJSON, string) are refused before they
	// allocate; + is checked after, so no string passes twice this.
	MaxStringLen = 1 << 20
)

// ErrLimit is the error an evaluation that exceeds MaxStringLen wraps.
var ErrLimit = errors.New("expression limit")

// addFunc is the function every + calls instead of the + instruction.
const addFunc = "vrskyAdd"

// budgetOptions are the options that hold an expression to the limits;
// fields are the names the expression reads as values, which no function
// may shadow.
func budgetOptions(fields identifiers) []expr.Option {
	opts := []expr.Option{
		expr.MaxNodes(MaxNodes),
		expr.Patch(loopCharge{}),
		expr.Patch(checkedAdd{}),
		guardedFunction(addFunc, nil, func(args []any) int { return -1 }),
	}
	for name, size := range growing {
		if _, shadowed := fields[name]; shadowed {
			continue
		}
		opts = append(opts, guardedFunction(name, builtin.Builtins[builtin.Index[name]], size))
	}
	return opts
}

// loopCharge makes every loop iteration cost a unit of the VM's memory
// budget. expr counts what each array literal allocates against that
// budget but cannot be interrupted, and a loop that allocates nothing
// (sum(r, sum(r, #))) would otherwise run for as long as it likes. The
// predicate p of every map, filter, all, reduce, ... becomes [p, #][0]:
// the same value, built through a two-element array the VM charges for.
// (# keeps the array from being folded into a constant.)
type loopCharge struct{}

func (loopCharge) Visit(node *ast.Node) {
	p, ok := (*node).(*ast.PredicateNode)
	if !ok {
		return
	}
	p.Node = &ast.MemberNode{
		Node:     &ast.ArrayNode{Nodes: []ast.Node{p.Node, &ast.PointerNode{}}},
		Property: &ast.IntegerNode{Value: 0},
	}
}

// checkedAdd turns a + b into vrskyAdd(a, b), which refuses a string
// longer than MaxStringLen: a + a doubles, and let chains or reduce
// (reduce(1..40, #acc + #acc, s)) would otherwise build gigabytes in a few
// instructions.
type checkedAdd struct{}

func (checkedAdd) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || b.Operator != "+" || (isLiteral(b.Left) && isLiteral(b.Right)) {
		return
	}
	call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: addFunc}, Arguments: []ast.Node{b.Left, b.Right}}
	ast.Patch(node, call)
}

func isLiteral(n ast.Node) bool {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.StringNode:
		return true
	}
	return false
}

// guardedFunction replaces the builtin orig (nil: +) by a function that
// first asks size how long its result would be, refuses one longer than
// MaxStringLen, and otherwise does what orig does. A size of -1 means
// "check the result instead".
func guardedFunction(name string, orig *builtin.Function, size func(args []any) int) expr.Option {
	call := func(args ...any) (any, error) {
		if orig == nil {
			return runtime.Add(args[0], args[1]), nil
		}
		switch {
		case orig.Fast != nil:
			return orig.Fast(args[0]), nil
		case orig.Safe != nil:
			v, _, err := orig.Safe(args...)
			return v, err
		}
		return orig.Func(args...)
	}
	fn := &builtin.Function{Name: name, Func: func(args ...any) (any, error) {
		if n := size(args); n > MaxStringLen {
			return nil, tooLong(name, n)
		}
		v, err := call(args...)
		if s, ok := v.(string); ok && len(s) > MaxStringLen {
			return nil, tooLong(name, len(s))
		}
		return v, err
	}}
	if orig != nil {
		fn.Types, fn.Validate, fn.Deref = orig.Types, orig.Validate, orig.Deref
	}
	return func(c *conf.Config) { c.Functions[name] = fn }
}

func tooLong(name string, n int) error {
	return fmt.Errorf("%s: result of at least %d bytes is longer than %d: %w", name, n, MaxStringLen, ErrLimit)
}

// growing are the builtins whose result can be much longer than their
// arguments, with what bounds that length from above.
var growing = map[string]func(args []any) int{
	"repeat": func(args []any) int {
		s, _ := args[0].(string)
		n := runtime.ToInt(args[1])
		if n > 0 && len(s) > 0 && n > (MaxStringLen+1)/len(s) {
			return MaxStringLen + 1
		}
		return len(s) * max(n, 0)
	},
	"replace": func(args []any) int {
		s, _ := args[0].(string)
		old, _ := args[1].(string)
		repl, _ := args[2].(string)
		var count int
		if old == "" {
			count = utf8.RuneCountInString(s) + 1
		} else {
			count = strings.Count(s, old)
		}
		if len(args) == 4 {
			if n := runtime.ToInt(args[3]); n >= 0 && n < count {
				count = n
			}
		}
		return len(s) + count*max(len(repl)-len(old), 0)
	},
	"join": func(args []any) int {
		glue := 0
		if len(args) == 2 {
			s, _ := args[1].(string)
			glue = len(s)
		}
		v := reflect.ValueOf(args[0])
		if v.Kind() != reflect.Slice {
			return 0
		}
		n := 0
		for i := 0; i < v.Len() && n <= MaxStringLen; i++ {
			n += glue + printedLen(v.Index(i).Interface(), 0, MaxStringLen-n)
		}
		return n
	},
	"toJSON": func(args []any) int { return printedLen(args[0], 0, MaxStringLen) },
	"string": func(args []any) int { return printedLen(args[0], 0, MaxStringLen) },
}

// printedLen estimates from above how long v prints (as JSON, indented, or
// with fmt), stopping once it passes limit: a string counts its length,
// other scalars 24 bytes, every element of an array or map its indentation
// at depth and punctuation. Shared references count each time they print.
func printedLen(v any, depth, limit int) int {
	switch x := v.(type) {
	case string:
		return len(x) + 2
	case nil, bool, int, float64:
		return 24
	case []any:
		n := 2
		for _, e := range x {
			if n > limit {
				break
			}
			n += 4 + 2*depth + printedLen(e, depth+1, limit-n)
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			if n > limit {
				break
			}
			n += 6 + 2*depth + len(k) + printedLen(e, depth+1, limit-n)
		}
		return n
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Slice, reflect.Array:
		n := 2
		for i := 0; i < r.Len() && n <= limit; i++ {
			n += 4 + 2*depth + printedLen(r.Index(i).Interface(), depth+1, limit-n)
		}
		return n
	case reflect.Map:
		n := 2
		for it := r.MapRange(); it.Next() && n <= limit; {
			n += 6 + 2*depth + printedLen(it.Key().Interface(), depth+1, limit-n) + printedLen(it.Value().Interface(), depth+1, limit-n)
		}
		return n
	case reflect.String:
		return r.Len() + 2
	}
	return 24
}
