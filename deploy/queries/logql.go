package queries

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// LogSchema is what the log pipeline (deploy/alloy/config.alloy) gives
// Loki: the stream labels and the structured-metadata fields.
type LogSchema struct {
	Labels   []string
	Metadata []string
}

// CheckLogQL is the minimal LogQL check used instead of Loki's parser (AGPL,
// not imported). It accepts exactly this subset of LogQL, which is all the
// dashboards use, and refuses anything else:
//
//	query    = logExpr | metric
//	metric   = agg [grouping] "(" metric ")" | rangeFn "(" logExpr "[" duration "]" ")"
//	agg      = sum | count | max | min | avg
//	grouping = (by | without) "(" label {"," label} ")"
//	rangeFn  = count_over_time | rate | bytes_over_time | bytes_rate
//	logExpr  = selector {stage}
//	selector = "{" matchers "}"            (parsed by Prometheus' matcher parser)
//	stage    = ("|=" | "!=" | "|~" | "!~") string
//	         | "|" (json | logfmt)
//	         | "|" field ("=" | "!=" | "=~" | "!~") string
//
// and checks the names: selector labels must be stream labels of schema,
// and at least one selector matcher must not match the empty string (Loki's
// own rule); a field filtered on or grouped by must be a stream label or a
// structured-metadata field of schema, unless a json or logfmt stage comes
// first; regular expressions must compile. Grafana's interval variables are
// expanded first (Expand).
func CheckLogQL(expr string, schema LogSchema) error {
	l := &logLexer{src: Expand(expr)}
	c := &logChecker{lex: l, schema: schema}
	if err := c.query(); err != nil {
		return fmt.Errorf("logql %q: %w", expr, err)
	}
	if t := l.next(); t.kind != tokEOF {
		return fmt.Errorf("logql %q: unexpected %q after the query", expr, t.text)
	}
	return nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokPunct
	tokErr
)

type token struct {
	kind tokKind
	text string // the identifier, the unquoted string, or the punctuation
	raw  string // the source text
}

type logLexer struct {
	src    string
	pos    int
	peeked *token
}

var puncts = []string{"|=", "!=", "|~", "!~", "=~", "{", "}", "(", ")", "[", "]", ",", "|", "="}

func (l *logLexer) peek() token {
	if l.peeked == nil {
		t := l.scan()
		l.peeked = &t
	}
	return *l.peeked
}

func (l *logLexer) next() token {
	t := l.peek()
	l.peeked = nil
	return t
}

func (l *logLexer) scan() token {
	for l.pos < len(l.src) && unicode.IsSpace(rune(l.src[l.pos])) {
		l.pos++
	}
	if l.pos >= len(l.src) {
		return token{kind: tokEOF}
	}
	rest := l.src[l.pos:]
	switch c := rest[0]; {
	case c == '"' || c == '`':
		s, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return token{kind: tokErr, text: "unterminated string"}
		}
		u, err := strconv.Unquote(s)
		if err != nil {
			return token{kind: tokErr, text: "bad string " + s}
		}
		l.pos += len(s)
		return token{kind: tokString, text: u, raw: s}
	case c == '_' || unicode.IsLetter(rune(c)):
		end := 1
		for end < len(rest) && (rest[end] == '_' || unicode.IsLetter(rune(rest[end])) || unicode.IsDigit(rune(rest[end]))) {
			end++
		}
		l.pos += end
		return token{kind: tokIdent, text: rest[:end], raw: rest[:end]}
	}
	for _, p := range puncts {
		if strings.HasPrefix(rest, p) {
			l.pos += len(p)
			return token{kind: tokPunct, text: p, raw: p}
		}
	}
	return token{kind: tokErr, text: fmt.Sprintf("unexpected character %q", rest[0])}
}

type logChecker struct {
	lex    *logLexer
	schema LogSchema
	parsed bool // a json or logfmt stage extracts fields
}

var (
	aggOps   = []string{"sum", "count", "max", "min", "avg"}
	rangeFns = []string{"count_over_time", "rate", "bytes_over_time", "bytes_rate"}
)

func (c *logChecker) expect(kind tokKind, text string) (token, error) {
	t := c.lex.next()
	if t.kind == tokErr {
		return t, fmt.Errorf("%s", t.text)
	}
	if t.kind != kind || (text != "" && t.text != text) {
		want := text
		if want == "" {
			want = map[tokKind]string{tokIdent: "a name", tokString: "a string"}[kind]
		}
		return t, fmt.Errorf("want %s, got %q", want, t.raw)
	}
	return t, nil
}

func (c *logChecker) query() error {
	t := c.lex.peek()
	if t.kind == tokPunct && t.text == "{" {
		return c.logExpr()
	}
	return c.metric()
}

func (c *logChecker) metric() error {
	t, err := c.expect(tokIdent, "")
	if err != nil {
		return err
	}
	switch {
	case slices.Contains(aggOps, t.text):
		if p := c.lex.peek(); p.kind == tokIdent && (p.text == "by" || p.text == "without") {
			c.lex.next()
			if err := c.grouping(); err != nil {
				return err
			}
		}
		if _, err := c.expect(tokPunct, "("); err != nil {
			return err
		}
		if err := c.metric(); err != nil {
			return err
		}
		if _, err := c.expect(tokPunct, ")"); err != nil {
			return err
		}
		return nil
	case slices.Contains(rangeFns, t.text):
		if _, err := c.expect(tokPunct, "("); err != nil {
			return err
		}
		if err := c.logExpr(); err != nil {
			return err
		}
		if _, err := c.expect(tokPunct, "["); err != nil {
			return err
		}
		if err := c.duration(); err != nil {
			return err
		}
		if _, err := c.expect(tokPunct, ")"); err != nil {
			return err
		}
		return nil
	}
	return fmt.Errorf("%q is not a function this check accepts", t.text)
}

// duration reads the range up to "]".
func (c *logChecker) duration() error {
	l := c.lex
	if l.peeked != nil {
		return fmt.Errorf("bad range")
	}
	end := strings.IndexByte(l.src[l.pos:], ']')
	if end < 0 {
		return fmt.Errorf("unterminated range")
	}
	d := strings.TrimSpace(l.src[l.pos : l.pos+end])
	if _, err := model.ParseDuration(d); err != nil {
		return fmt.Errorf("range [%s]: %w", d, err)
	}
	l.pos += end + 1
	return nil
}

func (c *logChecker) grouping() error {
	if _, err := c.expect(tokPunct, "("); err != nil {
		return err
	}
	for {
		t, err := c.expect(tokIdent, "")
		if err != nil {
			return err
		}
		if err := c.field(t.text); err != nil {
			return err
		}
		sep := c.lex.next()
		if sep.kind == tokPunct && sep.text == ")" {
			return nil
		}
		if sep.kind != tokPunct || sep.text != "," {
			return fmt.Errorf("want , or ) in grouping, got %q", sep.raw)
		}
	}
}

// field checks a name used after the selector.
func (c *logChecker) field(name string) error {
	if c.parsed || slices.Contains(c.schema.Labels, name) || slices.Contains(c.schema.Metadata, name) {
		return nil
	}
	return fmt.Errorf("%q is neither a stream label nor a structured-metadata field of the log pipeline", name)
}

func (c *logChecker) logExpr() error {
	l := c.lex
	if l.peeked != nil {
		// query looked at the "{" already: step back before it.
		if l.peeked.kind != tokPunct || l.peeked.text != "{" {
			return fmt.Errorf("want a stream selector {...}, got %q", l.peeked.raw)
		}
		l.pos -= len("{")
		l.peeked = nil
	}
	if !strings.HasPrefix(strings.TrimLeftFunc(l.src[l.pos:], unicode.IsSpace), "{") {
		return fmt.Errorf("want a stream selector {...}")
	}
	start := l.pos + strings.IndexByte(l.src[l.pos:], '{')
	// The selector ends at the first } outside a string.
	end, inStr := -1, byte(0)
	for i := start; i < len(l.src); i++ {
		ch := l.src[i]
		switch {
		case inStr != 0 && ch == '\\' && inStr == '"':
			i++
		case inStr != 0 && ch == inStr:
			inStr = 0
		case inStr == 0 && (ch == '"' || ch == '`'):
			inStr = ch
		case inStr == 0 && ch == '}':
			end = i
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		return fmt.Errorf("unterminated stream selector")
	}
	sel := l.src[start : end+1]
	ms, err := promParser.ParseMetricSelector(sel)
	if err != nil {
		return fmt.Errorf("stream selector %s: %w", sel, err)
	}
	nonEmpty := false
	for _, m := range ms {
		if !slices.Contains(c.schema.Labels, m.Name) {
			return fmt.Errorf("stream selector %s: %q is not a stream label of the log pipeline", sel, m.Name)
		}
		if !m.Matches("") {
			nonEmpty = true
		}
	}
	if !nonEmpty {
		return fmt.Errorf("stream selector %s: every matcher matches the empty string", sel)
	}
	l.pos = end + 1
	for {
		t := l.peek()
		if t.kind != tokPunct {
			return nil
		}
		switch t.text {
		case "|=", "!=", "|~", "!~":
			l.next()
			s, err := c.expect(tokString, "")
			if err != nil {
				return err
			}
			if t.text == "|~" || t.text == "!~" {
				if _, err := regexp.Compile(s.text); err != nil {
					return fmt.Errorf("line filter %s %s: %w", t.text, s.raw, err)
				}
			}
		case "|":
			l.next()
			name, err := c.expect(tokIdent, "")
			if err != nil {
				return err
			}
			if name.text == "json" || name.text == "logfmt" {
				c.parsed = true
				continue
			}
			if err := c.field(name.text); err != nil {
				return err
			}
			op := l.next()
			if op.kind != tokPunct || !slices.Contains([]string{"=", "!=", "=~", "!~"}, op.text) {
				return fmt.Errorf("label filter on %s: want = != =~ or !~, got %q", name.text, op.raw)
			}
			v, err := c.expect(tokString, "")
			if err != nil {
				return err
			}
			if op.text == "=~" || op.text == "!~" {
				if _, err := labels.NewFastRegexMatcher(v.text); err != nil {
					return fmt.Errorf("label filter %s%s%s: %w", name.text, op.text, v.raw, err)
				}
			}
		default:
			return nil
		}
	}
}
