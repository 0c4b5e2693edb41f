package httpout

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"text/template"
	"text/template/parse"
)

// Limits every Template is parsed and rendered under. Templates are
// written by tenants and rendered in a shared runner, so a template that
// would render without bound fails its own message instead (see
// docs/adr/0015-expression-and-template-budgets.md).
const (
	// MaxTemplateLen bounds a template's source, in bytes.
	MaxTemplateLen = 64 << 10
	// MaxRenderSize bounds what one render writes, in bytes, and any
	// string a template function returns.
	MaxRenderSize = 4 << 20
	// MaxRenderSteps bounds the steps of one render: each write of text
	// or of an action's value, each iteration of a range and each call
	// of a defined template is one step.
	MaxRenderSteps = 1_000_000
	// MaxRangeDepth is how deeply ranges may nest, counting those of the
	// templates a range calls.
	MaxRangeDepth = 3
	// MaxPrintfWidth bounds a width or precision in a printf format.
	MaxPrintfWidth = 1000
)

// ErrRenderLimit is what a render that exceeds MaxRenderSize or
// MaxRenderSteps fails with.
var ErrRenderLimit = errors.New("template limit")

// renderBudget is what one render has spent. The writer and the template
// functions of one render share it: each template owns a pool of clones
// whose functions are bound to their own renderBudget (see
// Template.instances).
type renderBudget struct {
	steps int
}

// charge counts a step and n bytes of work that are not output (a string
// a function built), a step per 64 bytes.
func (b *renderBudget) charge(n int) error {
	b.steps += 1 + n/64
	if b.steps > MaxRenderSteps {
		return fmt.Errorf("more than %d steps (loop iterations, writes and work in functions): %w", MaxRenderSteps, ErrRenderLimit)
	}
	return nil
}

// budgetWriter collects a render's output and fails the render once it is
// over MaxRenderSize bytes or its budget is spent. text/template stops at
// the first failed write.
type budgetWriter struct {
	buf    []byte
	budget *renderBudget
}

func (w *budgetWriter) Write(p []byte) (int, error) {
	if err := w.budget.charge(0); err != nil {
		return 0, err
	}
	if len(w.buf)+len(p) > MaxRenderSize {
		return 0, fmt.Errorf("output longer than %d bytes: %w", MaxRenderSize, ErrRenderLimit)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// countSteps puts an empty text node first in every range body and every
// defined template, so each iteration and each call writes once and the
// budgetWriter counts it even when nothing is printed.
func countSteps(t *template.Template) {
	for _, def := range t.Templates() {
		if def.Tree == nil || def.Tree.Root == nil {
			continue
		}
		if def.Name() != t.Name() {
			prependStep(def.Tree.Root)
		}
		walk(def.Tree.Root, func(n parse.Node) {
			if r, ok := n.(*parse.RangeNode); ok && r.List != nil {
				prependStep(r.List)
			}
		})
	}
}

func prependStep(list *parse.ListNode) {
	step := &parse.TextNode{NodeType: parse.NodeText, Pos: list.Pos, Text: []byte{}}
	list.Nodes = append([]parse.Node{step}, list.Nodes...)
}

// walk calls fn for n and every node under it, in document order.
func walk(n parse.Node, fn func(parse.Node)) {
	if n == nil || reflect.ValueOf(n).IsNil() {
		return
	}
	fn(n)
	switch x := n.(type) {
	case *parse.ListNode:
		for _, c := range x.Nodes {
			walk(c, fn)
		}
	case *parse.IfNode:
		walk(x.List, fn)
		walk(x.ElseList, fn)
	case *parse.RangeNode:
		walk(x.List, fn)
		walk(x.ElseList, fn)
	case *parse.WithNode:
		walk(x.List, fn)
		walk(x.ElseList, fn)
	}
}

// checkTree refuses what can be seen in the template itself: a defined
// template that calls itself, directly or not, and ranges nested deeper
// than MaxRangeDepth.
func checkTree(t *template.Template) error {
	calls := map[string][]string{}
	for _, def := range t.Templates() {
		if def.Tree == nil {
			continue
		}
		walk(def.Tree.Root, func(n parse.Node) {
			if c, ok := n.(*parse.TemplateNode); ok {
				calls[def.Name()] = append(calls[def.Name()], c.Name)
			}
		})
	}
	const (
		visiting = iota + 1
		done
	)
	state := map[string]int{}
	var cycle func(name string) error
	cycle = func(name string) error {
		switch state[name] {
		case visiting:
			return fmt.Errorf("template %q calls itself", name)
		case done:
			return nil
		}
		state[name] = visiting
		for _, callee := range calls[name] {
			if err := cycle(callee); err != nil {
				return err
			}
		}
		state[name] = done
		return nil
	}
	for name := range calls {
		if err := cycle(name); err != nil {
			return err
		}
	}

	depths := map[string]int{}
	var depth func(name string) int
	var nested func(n parse.Node) int
	nested = func(n parse.Node) int {
		if n == nil || reflect.ValueOf(n).IsNil() {
			return 0
		}
		switch x := n.(type) {
		case *parse.ListNode:
			d := 0
			for _, c := range x.Nodes {
				d = max(d, nested(c))
			}
			return d
		case *parse.IfNode:
			return max(nested(x.List), nested(x.ElseList))
		case *parse.WithNode:
			return max(nested(x.List), nested(x.ElseList))
		case *parse.RangeNode:
			return max(1+nested(x.List), nested(x.ElseList))
		case *parse.TemplateNode:
			return depth(x.Name)
		}
		return 0
	}
	depth = func(name string) int {
		if d, ok := depths[name]; ok {
			return d
		}
		d := 0
		if def := t.Lookup(name); def != nil && def.Tree != nil {
			d = nested(def.Tree.Root)
		}
		depths[name] = d
		return d
	}
	for _, def := range t.Templates() {
		if d := depth(def.Name()); d > MaxRangeDepth {
			return fmt.Errorf("template %q: ranges nested %d deep, at most %d allowed", def.Name(), d, MaxRangeDepth)
		}
	}
	return nil
}

// budgetFuncs are the template functions, builtins that can return a
// string longer than their arguments included. Each refuses arguments
// that print longer than MaxRenderSize before it starts and a result over
// MaxRenderSize after: a variable reassigned in a range
// ({{ $x = printf "%s%s" $x $x }}) would otherwise double on every
// iteration without writing anything. An escaper's result is at most six
// times its arguments, so nothing a function builds passes 6 x 4 MiB.
func budgetFuncs(b *renderBudget) template.FuncMap {
	return template.FuncMap{
		printFunc: func(v any) (any, error) {
			if err := checkSize("print", sizeOf(v, MaxRenderSize)); err != nil {
				return nil, err
			}
			return printable(v), nil
		},
		"json": func(v any) (string, error) {
			return b.bounded("json", sizeOf(v, MaxRenderSize), func() (string, error) { return toJSON(v) })
		},
		"pathEscape": func(v any) (string, error) {
			return b.bounded("pathEscape", sizeOf(v, MaxRenderSize), func() (string, error) {
				return url.PathEscape(fmt.Sprint(printable(v))), nil
			})
		},
		"print": func(args ...any) (string, error) {
			return b.bounded("print", argsSize(args), func() (string, error) { return fmt.Sprint(args...), nil })
		},
		"println": func(args ...any) (string, error) {
			return b.bounded("println", argsSize(args), func() (string, error) { return fmt.Sprintln(args...), nil })
		},
		"printf": func(format string, args ...any) (string, error) {
			widths, err := printfWidths(format)
			if err != nil {
				return "", err
			}
			return b.bounded("printf", len(format)+widths+argsSize(args), func() (string, error) { return fmt.Sprintf(format, args...), nil })
		},
		"html":     b.escaper("html", template.HTMLEscaper),
		"js":       b.escaper("js", template.JSEscaper),
		"urlquery": b.escaper("urlquery", template.URLQueryEscaper),
	}
}

func (b *renderBudget) escaper(name string, escape func(args ...any) string) func(args ...any) (string, error) {
	return func(args ...any) (string, error) {
		return b.bounded(name, argsSize(args), func() (string, error) { return escape(args...), nil })
	}
}

// bounded runs build unless its input, of size bytes, is already over
// MaxRenderSize, refuses a result over MaxRenderSize, and charges the
// result to the render's budget.
func (b *renderBudget) bounded(name string, size int, build func() (string, error)) (string, error) {
	if err := checkSize(name, size); err != nil {
		return "", err
	}
	out, err := build()
	if err != nil {
		return "", err
	}
	if err := checkSize(name, len(out)); err != nil {
		return "", err
	}
	if err := b.charge(len(out)); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

func checkSize(name string, n int) error {
	if n > MaxRenderSize {
		return fmt.Errorf("%s: a result of %d bytes or more is longer than %d bytes: %w", name, n, MaxRenderSize, ErrRenderLimit)
	}
	return nil
}

func argsSize(args []any) int {
	n := len(args)
	for _, a := range args {
		n += sizeOf(a, MaxRenderSize)
		if n > MaxRenderSize {
			break
		}
	}
	return n
}

// printfWidths returns the sum of the widths and precisions in a printf
// format, refusing * (a width taken from the arguments) and any over
// MaxPrintfWidth.
func printfWidths(format string) (int, error) {
	sum := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		for i++; i < len(format); i++ {
			c := format[i]
			switch {
			case c == '*':
				return 0, errors.New("printf: a * width or precision is not supported")
			case c >= '0' && c <= '9':
				j := i
				for j < len(format) && format[j] >= '0' && format[j] <= '9' {
					j++
				}
				w, err := strconv.Atoi(format[i:j])
				if err != nil || w > MaxPrintfWidth {
					return 0, fmt.Errorf("printf: width or precision %s is over %d", format[i:j], MaxPrintfWidth)
				}
				sum += w
				i = j - 1
			case c == '+' || c == '-' || c == '#' || c == ' ' || c == '.' || c == '[' || c == ']':
			default:
				goto verb
			}
		}
	verb:
	}
	return sum, nil
}

// sizeOf estimates from above, without escaping, how many bytes v prints,
// stopping once past limit.
func sizeOf(v any, limit int) int {
	switch x := v.(type) {
	case nil, bool, int, int64, float64:
		return 24
	case string:
		return len(x) + 2
	case json.Number:
		return len(x)
	case []any:
		n := 2
		for _, e := range x {
			if n > limit {
				break
			}
			n += 1 + sizeOf(e, limit-n)
		}
		return n
	case map[string]any:
		n := 2
		for k, e := range x {
			if n > limit {
				break
			}
			n += 4 + len(k) + sizeOf(e, limit-n)
		}
		return n
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String:
		return r.Len() + 2
	case reflect.Slice, reflect.Array:
		n := 2
		for i := 0; i < r.Len() && n <= limit; i++ {
			n += 1 + sizeOf(r.Index(i).Interface(), limit-n)
		}
		return n
	case reflect.Map:
		n := 2
		for it := r.MapRange(); it.Next() && n <= limit; {
			n += 4 + sizeOf(it.Key().Interface(), limit-n) + sizeOf(it.Value().Interface(), limit-n)
		}
		return n
	}
	return 24
}
