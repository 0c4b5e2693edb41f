package httpout

import (
	"bytes"
	"fmt"
	"sync"
	"text/template"
	"text/template/parse"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// printFunc is appended to every printing action of a Template so that a
// missing field or JSON null prints as "" instead of "<no value>".
const printFunc = "vrskyPrint"

// Template is a Go text/template rendered per message over the message's
// JSON fields (see MessageData). A missing field or a JSON null prints as
// the empty string, and objects and arrays print as JSON. Values are
// inserted as they are; two functions escape them: json encodes any value
// as JSON ({{ json .name }} gives a quoted, escaped string) for templates
// that produce JSON, and pathEscape escapes a URL path segment
// ({{ pathEscape .id }} keeps a "/" or "?" in an ID from changing the
// URL). The built-in urlquery escapes query values. A URL template
// (ParseURLTemplate) escapes every value it inserts by itself.
//
// A field of a missing object ({{ .customer.name }} without "customer") is
// an error; {{ with .customer }}{{ .name }}{{ end }} avoids it.
type Template struct {
	tmpl   *template.Template
	static bool
	text   string
	// output is what a static template renders.
	output string
	// url, for a templated URL, is what every rendering must keep.
	url *urlRule
	// instances are clones of tmpl whose functions charge their own
	// renderBudget, so that concurrent renders count apart.
	instances sync.Pool
}

// instance is one clone of a Template with the budget its functions
// charge.
type instance struct {
	tmpl   *template.Template
	budget *renderBudget
}

// ParseTemplate parses text as a Template; name appears in errors.
// Templates are held to the limits in budget.go: one that is too long,
// nests ranges too deeply or calls itself is refused here; one that
// renders too much or for too long fails that message.
func ParseTemplate(name, text string) (*Template, error) {
	return parseTemplate(name, text, nil)
}

// parseTemplate parses text; when escape is not nil, it rewrites the tree
// instead of wrapPrints (see ParseURLTemplate).
func parseTemplate(name, text string, escape func(*template.Template) error) (*Template, error) {
	if len(text) > MaxTemplateLen {
		return nil, fmt.Errorf("parse template: %d bytes is longer than %d", len(text), MaxTemplateLen)
	}
	parseBudget := new(renderBudget)
	t, err := template.New(name).Option("missingkey=zero").Funcs(budgetFuncs(parseBudget)).Funcs(escapeFuncs(parseBudget)).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if err := checkTree(t); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	out := &Template{tmpl: t, text: text, static: isStatic(t)}
	out.instances.New = func() any {
		// Clone shares the parse trees; only the functions differ.
		c, err := t.Clone()
		if err != nil {
			panic(err) // text/template's Clone does not fail
		}
		b := new(renderBudget)
		return &instance{tmpl: c.Funcs(budgetFuncs(b)).Funcs(escapeFuncs(b)), budget: b}
	}
	if escape != nil {
		if err := escape(t); err != nil {
			return nil, err
		}
	} else {
		for _, def := range t.Templates() {
			if def.Tree != nil {
				wrapPrints(def.Tree, def.Tree.Root)
			}
		}
	}
	countSteps(t)
	if out.static {
		var buf bytes.Buffer
		if err := t.Execute(&buf, nil); err != nil {
			return nil, fmt.Errorf("render template: %w", err)
		}
		out.output = buf.String()
	}
	return out, nil
}

// Static reports whether the template has no actions: it renders to its
// text whatever the message.
func (t *Template) Static() bool { return t.static }

// Text returns the template's source.
func (t *Template) Text() string { return t.text }

// Render executes the template over data (from MessageData). Errors are
// permanent: the same message fails the same way every time.
func (t *Template) Render(data map[string]any) (string, error) {
	if t.static {
		return t.output, nil
	}
	inst := t.instances.Get().(*instance)
	*inst.budget = renderBudget{}
	w := budgetWriter{buf: make([]byte, 0, 128), budget: inst.budget}
	err := inst.tmpl.Execute(&w, data)
	t.instances.Put(inst)
	if err != nil {
		return "", sdk.PermanentError(fmt.Errorf("render template: %w", err))
	}
	out := string(w.buf)
	if t.url != nil {
		if err := t.url.check(out); err != nil {
			return "", err
		}
	}
	return out, nil
}

// MessageData is what templates see as ".": the top-level fields of the
// message's JSON object body, and "id" set to the message ID unless the
// body has its own "id" field. A body that is not a JSON object gives only
// "id".
func MessageData(msg sdk.Message) map[string]any {
	data, err := jsonbody.Decode(msg.Body)
	if err != nil || data == nil {
		data = make(map[string]any, 1)
	}
	if _, ok := data["id"]; !ok {
		data["id"] = msg.ID
	}
	return data
}

// isStatic reports whether t is plain text only.
func isStatic(t *template.Template) bool {
	if len(t.Templates()) > 1 {
		return false
	}
	if t.Tree == nil || t.Tree.Root == nil {
		return true
	}
	for _, n := range t.Tree.Root.Nodes {
		if n.Type() != parse.NodeText {
			return false
		}
	}
	return true
}

// wrapPrints appends printFunc to the pipeline of every action that prints
// ({{ .x }}, not {{ $x := .x }}).
func wrapPrints(tree *parse.Tree, n parse.Node) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			wrapPrints(tree, c)
		}
	case *parse.ActionNode:
		if len(x.Pipe.Decl) == 0 {
			ident := parse.NewIdentifier(printFunc).SetTree(tree).SetPos(x.Pos)
			x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pos, Args: []parse.Node{ident}})
		}
	case *parse.IfNode:
		wrapPrints(tree, x.List)
		wrapPrints(tree, x.ElseList)
	case *parse.RangeNode:
		wrapPrints(tree, x.List)
		wrapPrints(tree, x.ElseList)
	case *parse.WithNode:
		wrapPrints(tree, x.List)
		wrapPrints(tree, x.ElseList)
	}
}

// printable is how a value prints in a template.
func printable(v any) any {
	switch x := v.(type) {
	case nil:
		return ""
	case map[string]any, []any:
		b, err := jsonbody.Encode(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
	return v
}

// toJSON is the template function json.
func toJSON(v any) (string, error) {
	b, err := jsonbody.Encode(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
