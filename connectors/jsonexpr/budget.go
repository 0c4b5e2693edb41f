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
	// Budget is what one evaluation may spend, twice over: every element
	// of every array or map it builds costs a unit of expr's memory
	// budget, and every loop iteration (map, filter, all, reduce, ...) and
	// every value read or made inside a loop a unit of its meter (see
	// meter). A billion-iteration loop stops well under a second.
	Budget = 1_000_000
	// MaxStringLen bounds every string an evaluation builds, in bytes.
	// Operations whose result can be much larger than their inputs
	// (repeat, replace, join, toJSON, string) are refused before they
	// allocate; + is checked after, so no string passes twice this.
	MaxStringLen = 1 << 20
)

// ErrLimit is what the error of an evaluation that exceeds Budget or
// MaxStringLen wraps.
var ErrLimit = errors.New("expression limit")

// addFunc is the function every + calls instead of the + instruction.
const addFunc = "vrskyAdd"

// Names the budget patches put in expressions.
const (
	meterVar     = "vrskyMeter"
	newMeterFunc = "vrskyNewMeter"
	stepFunc     = "vrskyStep"
	workFunc     = "vrskyWork"
	bytesPerUnit = 64
)

// budgetOptions are the options that hold an expression to the limits;
// fields are the names the expression reads as values, which no function
// may shadow.
func budgetOptions(fields identifiers) []expr.Option {
	loops := &inLoops{nodes: map[ast.Node]bool{}}
	root := &rootRecorder{}
	opts := []expr.Option{
		expr.MaxNodes(MaxNodes),
		expr.Patch(checkedAdd{}),
		expr.Patch(loops),
		expr.Patch(&meterCharges{loops: loops}),
		expr.Patch(root),
		expr.Patch(meterDeclaration{root: root}),
		guardedFunction(addFunc, nil, func(args []any) int { return -1 }),
		expr.Function(newMeterFunc, func(...any) (any, error) { return new(meter), nil }),
		expr.Function(stepFunc, func(args ...any) (any, error) { return args[1], args[0].(*meter).charge(1, args[1]) }),
		expr.Function(workFunc, func(args ...any) (any, error) { return args[1], args[0].(*meter).charge(0, args[1]) }),
	}
	for name, size := range growing {
		if _, shadowed := fields[name]; shadowed {
			continue
		}
		opts = append(opts, guardedFunction(name, builtin.Builtins[builtin.Index[name]], size))
	}
	return opts
}

// meter counts what one evaluation spends. expr cannot interrupt an
// evaluation, so the expression counts for itself: a meter is made when
// the evaluation starts (let vrskyMeter = vrskyNewMeter(); ...), every
// loop iteration charges it a unit (vrskyStep) and, inside loops, so
// does every value read or made: one unit per element of an array or map
// and per 64 bytes of a string (vrskyWork). Work outside loops is
// bounded by MaxNodes and MaxStringLen.
type meter struct{ units int }

func (m *meter) charge(units int, v any) error {
	switch x := v.(type) {
	case string:
		units += len(x) / bytesPerUnit
	case []any:
		units += len(x)
	case map[string]any:
		units += len(x)
	case []string:
		units += len(x)
	case []int:
		units += len(x)
	}
	m.units += units
	if m.units > Budget {
		return fmt.Errorf("over the budget of %d units (loop iterations, and values read or made in loops): %w", Budget, ErrLimit)
	}
	return nil
}

// inLoops collects the nodes inside the predicates of map, filter, all,
// reduce, ... whose values meterCharges charges for: calls, member
// accesses, names and #, but not the callee of a call, the object of a
// member access (a.b charges for a.b, not for a too) nor the operands of
// arithmetic, which are numbers. Operators give numbers or booleans and
// are not charged; what a comparison, contains or matches reads is.
type inLoops struct{ nodes map[ast.Node]bool }

func (l *inLoops) Visit(node *ast.Node) {
	p, ok := (*node).(*ast.PredicateNode)
	if !ok {
		return
	}
	var skip []ast.Node
	ast.Walk(&p.Node, visitFunc(func(n *ast.Node) {
		switch x := (*n).(type) {
		case *ast.CallNode:
			skip = append(skip, x.Callee)
			l.nodes[x] = true
		case *ast.MemberNode:
			skip = append(skip, x.Node)
			l.nodes[x] = true
		case *ast.BinaryNode:
			// Arithmetic reads and makes numbers: nothing to charge.
			if arithmetic[x.Operator] {
				skip = append(skip, x.Left, x.Right)
			}
		case *ast.UnaryNode:
			skip = append(skip, x.Node)
		case *ast.BuiltinNode, *ast.IdentifierNode, *ast.PointerNode:
			l.nodes[x] = true
		}
	}))
	for _, n := range skip {
		delete(l.nodes, n)
	}
}

var arithmetic = map[string]bool{"-": true, "*": true, "/": true, "%": true, "**": true, "^": true}

type visitFunc func(*ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(n) }

// meterCharges wraps each node inLoops collected in vrskyWork and each
// predicate in vrskyStep.
type meterCharges struct{ loops *inLoops }

func (c *meterCharges) Visit(node *ast.Node) {
	if p, ok := (*node).(*ast.PredicateNode); ok {
		p.Node = meterCall(stepFunc, p.Node)
		return
	}
	if c.loops.nodes[*node] {
		ast.Patch(node, meterCall(workFunc, *node))
	}
}

func meterCall(fn string, n ast.Node) ast.Node {
	return &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{&ast.IdentifierNode{Value: meterVar}, n}}
}

// rootRecorder remembers the last node it visits: the root.
type rootRecorder struct{ root *ast.Node }

func (r *rootRecorder) Visit(node *ast.Node) { r.root = node }

// meterDeclaration makes the meter when an evaluation starts, if the
// expression has a loop to charge.
type meterDeclaration struct{ root *rootRecorder }

func (d meterDeclaration) Visit(node *ast.Node) {
	if node != d.root.root || !usesMeter(*node) {
		return
	}
	*node = &ast.VariableDeclaratorNode{
		Name:  meterVar,
		Value: &ast.CallNode{Callee: &ast.IdentifierNode{Value: newMeterFunc}},
		Expr:  *node,
	}
}

func usesMeter(n ast.Node) bool {
	found := false
	ast.Walk(&n, visitFunc(func(n *ast.Node) {
		if id, ok := (*n).(*ast.IdentifierNode); ok && id.Value == meterVar {
			found = true
		}
	}))
	return found
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
