package httpout

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// The functions a URL template's actions end with (see escapeURL).
const (
	rawFunc          = "vrskyRaw"
	pathSegmentFunc  = "vrskyPathSegment"
	queryValueFunc   = "vrskyQueryValue"
	fragmentFunc     = "vrskyFragment"
	maxURLValueBytes = MaxRenderSize
)

// escapeFuncs are the functions escapeURL puts in URL templates.
func escapeFuncs(b *renderBudget) template.FuncMap {
	return template.FuncMap{
		rawFunc: func(args ...any) (string, error) {
			for i, a := range args {
				args[i] = printable(a)
			}
			return b.bounded("url value", argsSize(args), func() (string, error) { return fmt.Sprint(args...), nil })
		},
		pathSegmentFunc: func(v any) (string, error) {
			return b.bounded("url path", sizeOf(v, maxURLValueBytes), func() (string, error) {
				return url.PathEscape(fmt.Sprint(printable(v))), nil
			})
		},
		queryValueFunc: func(v any) (string, error) {
			return b.bounded("url query", sizeOf(v, maxURLValueBytes), func() (string, error) {
				return url.QueryEscape(fmt.Sprint(printable(v))), nil
			})
		},
		fragmentFunc: func(v any) (string, error) {
			return b.bounded("url fragment", sizeOf(v, maxURLValueBytes), func() (string, error) {
				return url.PathEscape(fmt.Sprint(printable(v))), nil
			})
		},
	}
}

// urlRule is what every rendering of a templated URL keeps: the scheme
// and host (with port) written in the template.
type urlRule struct {
	scheme, host string
}

// ParseURLTemplate parses a URL template. Its scheme (http or https),
// host and port must be written out, followed by "/", "?" or "#", before
// the first action: "https://erp.example.com/orders/{{ .id }}", never
// "https://erp.example.com{{ .sub }}" nor "https://{{ .host }}/". Every
// value an action inserts is escaped by where it stands: as one path
// segment (url.PathEscape: "/", "?" and "#" escaped) before any "?" or
// "#" of the template's text, as a query value (url.QueryEscape: "&" and
// "=" too) after a "?", and like a path segment again after a "#". pathEscape and urlquery, which templates used before
// the escaping was automatic, are applied once, not twice. Each rendering
// is checked before it is used: same scheme and host, no "." or ".."
// path segment (escaped or not); a message that fails the check fails
// permanently. {{ define }} and {{ template }} are refused.
func ParseURLTemplate(text string) (*Template, error) {
	var rule *urlRule
	t, err := parseTemplate("url", text, func(t *template.Template) error {
		var err error
		rule, err = escapeURL(t)
		return err
	})
	if err != nil {
		if strings.HasPrefix(err.Error(), "url: ") {
			return nil, err
		}
		return nil, fmt.Errorf("url: %w", err)
	}
	if !t.Static() {
		t.url = rule
	}
	return t, nil
}

// escapeURL checks a URL template's literal scheme and host and ends each
// printing action with the escaping its place calls for.
func escapeURL(t *template.Template) (*urlRule, error) {
	if len(t.Templates()) > 1 {
		return nil, errors.New("url: {{ define }} and {{ template }} are not supported in a URL")
	}
	root := t.Tree.Root
	if isStatic(t) {
		return nil, nil
	}
	first, ok := root.Nodes[0].(*parse.TextNode)
	literal := ""
	if ok {
		literal = string(first.Text)
	}
	scheme, rest, found := strings.Cut(literal, "://")
	scheme = strings.ToLower(scheme)
	if !found || (scheme != "http" && scheme != "https") {
		return nil, errors.New("url: must start with a literal http:// or https://")
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		return nil, errors.New("url: the host must be followed by /, ? or # before any {{ }}: the scheme, host and port are written out")
	}
	authority := rest[:end]
	switch {
	case authority == "":
		return nil, errors.New("url: no host")
	case strings.Contains(authority, "@"):
		return nil, errors.New("url: a user name or password is not allowed in the url")
	}
	u, err := url.Parse(scheme + "://" + authority + "/")
	if err != nil || u.Host != authority || u.Hostname() == "" {
		return nil, fmt.Errorf("url: %q is not a host and port", authority)
	}
	rule := &urlRule{scheme: scheme, host: u.Host}

	// Where the next action stands: the path, the query or the fragment,
	// by the "?" and "#" of the text before it in the template.
	escape := pathSegmentFunc
	place := func(text string) {
		switch {
		case strings.Contains(text, "#"):
			escape = fragmentFunc
		case strings.Contains(text, "?") && escape == pathSegmentFunc:
			escape = queryValueFunc
		}
	}
	place(rest)
	var failed error
	walk(root, func(n parse.Node) {
		switch x := n.(type) {
		case *parse.TextNode:
			if x != first {
				place(string(x.Text))
			}
		case *parse.TemplateNode:
			failed = errors.New("url: {{ define }} and {{ template }} are not supported in a URL")
		case *parse.ActionNode:
			if len(x.Pipe.Decl) > 0 {
				return
			}
			// Escaping is automatic: an explicit pathEscape or urlquery
			// at the end only prints.
			last := x.Pipe.Cmds[len(x.Pipe.Cmds)-1]
			if id, ok := last.Args[0].(*parse.IdentifierNode); ok && (id.Ident == "pathEscape" || id.Ident == "urlquery") {
				last.Args[0] = parse.NewIdentifier(rawFunc).SetTree(t.Tree).SetPos(id.Pos)
			}
			ident := parse.NewIdentifier(escape).SetTree(t.Tree).SetPos(x.Pos)
			x.Pipe.Cmds = append(x.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: x.Pos, Args: []parse.Node{ident}})
		}
	})
	if failed != nil {
		return nil, failed
	}
	return rule, nil
}

// check refuses a rendered URL that goes elsewhere than the template's
// scheme and host, or whose path has a dot segment. Its errors name the
// host, never the path or query.
func (r *urlRule) check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return sdk.Permanentf("rendered url is not a url")
	}
	if u.User != nil || u.Opaque != "" || !strings.EqualFold(u.Scheme, r.scheme) || !strings.EqualFold(u.Host, r.host) {
		return sdk.Permanentf("rendered url goes to %s://%s, not to %s://%s as configured", u.Scheme, u.Host, r.scheme, r.host)
	}
	for seg := range strings.SplitSeq(u.EscapedPath(), "/") {
		s, err := url.PathUnescape(seg)
		if err != nil || s == "." || s == ".." {
			return sdk.Permanentf("rendered url path has a dot segment")
		}
	}
	return nil
}
