package file

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLineBytes bounds one ndjson line; a longer line becomes a bad record
// holding its first BadPrefixBytes.
const (
	MaxLineBytes   = 64 << 20
	BadPrefixBytes = 4 << 10
)

// maxXMLDepth bounds how deeply a record's elements may nest.
const maxXMLDepth = 100

// record is one record read from a file.
type record struct {
	// line is the 1-based line the record starts on.
	line int
	// body is the record as a JSON object, or its raw text when problem is
	// set.
	body []byte
	// problem describes why the record is bad (with its line and, where
	// known, column); empty for a good record.
	problem string
	// element is an xml record's element name.
	element string
}

// recordReader reads the records of one file in order. next returns io.EOF
// after the last record; any other error means the file cannot be parsed
// (from that point on).
type recordReader interface {
	next() (record, error)
}

// parseError is a failure that is the file's content's fault, as opposed
// to a failure to read it.
type parseError struct{ msg string }

func (e *parseError) Error() string { return e.msg }

func unparseable(format string, args ...any) error {
	return &parseError{msg: fmt.Sprintf(format, args...)}
}

// newRecordReader returns a reader of r's records in the given format. A
// UTF-8 byte order mark at the start is skipped in every format.
func newRecordReader(r io.Reader, s *consumerSettings) (recordReader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xEF\xBB\xBF")) {
		_, _ = br.Discard(3)
	}
	switch s.format {
	case FormatCSV:
		return newCSVReader(br, s), nil
	case FormatJSON:
		return newJSONReader(br), nil
	case FormatXML:
		return newXMLReader(br), nil
	default:
		return &ndjsonReader{r: br, max: MaxLineBytes}, nil
	}
}

// tracker passes reads through and keeps the bytes read since the last
// release, so a decoder's offsets can be turned into raw text, lines and
// columns without reading the file twice.
type tracker struct {
	r    io.Reader
	buf  []byte // the bytes from offset base on
	base int64
	// lines counts the newlines before base; col counts the characters
	// between the last of them and base.
	lines int
	col   int
}

func (t *tracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// slice returns the bytes between two offsets at or after base.
func (t *tracker) slice(from, to int64) []byte {
	from, to = t.clamp(from), t.clamp(to)
	if to < from {
		to = from
	}
	return t.buf[from-t.base : to-t.base]
}

func (t *tracker) clamp(off int64) int64 {
	return min(max(off, t.base), t.base+int64(len(t.buf)))
}

// position returns the 1-based line and column of the byte at off.
func (t *tracker) position(off int64) (line, col int) {
	before := t.buf[:t.clamp(off)-t.base]
	nl := bytes.LastIndexByte(before, '\n')
	if nl < 0 {
		return t.lines + 1, t.col + utf8.RuneCount(before) + 1
	}
	return t.lines + bytes.Count(before, []byte{'\n'}) + 1, utf8.RuneCount(before[nl+1:]) + 1
}

// release forgets the bytes before off.
func (t *tracker) release(off int64) {
	gone := t.buf[:t.clamp(off)-t.base]
	if nl := bytes.LastIndexByte(gone, '\n'); nl >= 0 {
		t.lines += bytes.Count(gone, []byte{'\n'})
		t.col = utf8.RuneCount(gone[nl+1:])
	} else {
		t.col += utf8.RuneCount(gone)
	}
	t.base += int64(len(gone))
	t.buf = append(t.buf[:0], t.buf[len(gone):]...)
}

// ndjsonReader reads one JSON object per line; blank lines are skipped.
type ndjsonReader struct {
	r *bufio.Reader
	// max is the longest line read whole.
	max  int
	line int
	buf  []byte
}

func (n *ndjsonReader) next() (record, error) {
	for {
		line, tooLong, err := n.readLine()
		if err != nil {
			return record{}, err
		}
		n.line++
		if tooLong {
			return record{line: n.line, body: bytes.Clone(line), problem: fmt.Sprintf("line %d: longer than %d bytes (the body holds its start)", n.line, n.max)}, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var out bytes.Buffer
		if err := json.Compact(&out, line); err != nil {
			return record{line: n.line, body: bytes.Clone(line), problem: jsonProblem(line, n.line, err)}, nil
		}
		if kind := jsonKind(out.Bytes()); kind != "" {
			return record{line: n.line, body: bytes.Clone(line), problem: fmt.Sprintf("line %d: JSON value is %s, want an object", n.line, kind)}, nil
		}
		return record{line: n.line, body: out.Bytes()}, nil
	}
}

// readLine returns the next line without its line ending. A line longer
// than n.max is read to its end but only its first BadPrefixBytes are
// returned, with tooLong set.
func (n *ndjsonReader) readLine() (line []byte, tooLong bool, err error) {
	n.buf = n.buf[:0]
	for {
		chunk, err := n.r.ReadSlice('\n')
		if !tooLong && len(n.buf)+len(bytes.TrimRight(chunk, "\r\n")) > n.max {
			tooLong = true
			n.buf = n.buf[:min(len(n.buf), BadPrefixBytes)]
		}
		if !tooLong {
			n.buf = append(n.buf, chunk...)
		} else if len(n.buf) < BadPrefixBytes {
			n.buf = append(n.buf, chunk[:min(len(chunk), BadPrefixBytes-len(n.buf))]...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(n.buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, fmt.Errorf("read line %d: %w", n.line+1, err)
		}
		return trimEOL(n.buf), tooLong, nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'})
}

// jsonProblem describes a JSON syntax error in text, which starts on line
// first of the file.
func jsonProblem(text []byte, first int, err error) string {
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return fmt.Sprintf("line %d: malformed JSON: %v", first, err)
	}
	line, col := position(text, syn.Offset-1)
	return fmt.Sprintf("line %d, column %d: malformed JSON: %v", first+line-1, col, err)
}

// position returns the 1-based line and column of the byte at off in text.
func position(text []byte, off int64) (line, col int) {
	t := tracker{buf: text}
	return t.position(off)
}

// jsonKind names the type of a compact JSON value that is not an object,
// or returns "" for an object.
func jsonKind(v []byte) string {
	switch v[0] {
	case '{':
		return ""
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// jsonReader reads a JSON array of objects, or a single object, streaming
// the array's elements.
type jsonReader struct {
	t       *tracker
	dec     *json.Decoder
	started bool
	done    bool
}

func newJSONReader(r io.Reader) *jsonReader {
	t := &tracker{r: r}
	return &jsonReader{t: t, dec: json.NewDecoder(t)}
}

func (j *jsonReader) next() (record, error) {
	if j.done {
		return record{}, io.EOF
	}
	if !j.started {
		j.started = true
		tok, err := j.dec.Token()
		if errors.Is(err, io.EOF) {
			return record{}, unparseable("the file is empty: want a JSON array of objects, or one object")
		}
		if err != nil {
			return record{}, j.syntax(err)
		}
		switch tok {
		case json.Delim('['):
		case json.Delim('{'):
			j.done = true
			rec, err := j.object(j.dec.InputOffset() - 1)
			if err != nil {
				return record{}, err
			}
			return rec, j.end()
		default:
			// Nothing is released yet: the value starts at the first
			// non-space byte read.
			line, col := j.t.position(int64(len(j.t.buf) - len(bytes.TrimLeft(j.t.buf, " \t\r\n"))))
			return record{}, unparseable("line %d, column %d: the file holds %s: want a JSON array of objects, or one object", line, col, tokenKind(tok))
		}
	}
	if !j.dec.More() {
		j.done = true
		if _, err := j.dec.Token(); err != nil { // the closing ]
			return record{}, j.syntax(err)
		}
		if err := j.end(); err != nil {
			return record{}, err
		}
		return record{}, io.EOF
	}
	return j.value()
}

// object reads a top-level object whose { was read at offset start, token
// by token up to its closing }, and returns it as the file's one record.
func (j *jsonReader) object(start int64) (record, error) {
	for depth := 1; depth > 0; {
		tok, err := j.dec.Token()
		if err != nil {
			return record{}, j.syntax(err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	end := j.dec.InputOffset()
	line, _ := j.t.position(start)
	var out bytes.Buffer
	if err := json.Compact(&out, j.t.slice(start, end)); err != nil {
		return record{}, fmt.Errorf("compact record: %w", err)
	}
	j.t.release(end)
	return record{line: line, body: out.Bytes()}, nil
}

// value decodes the next value as one record.
func (j *jsonReader) value() (record, error) {
	var raw json.RawMessage
	if err := j.dec.Decode(&raw); err != nil {
		return record{}, j.syntax(err)
	}
	end := j.dec.InputOffset()
	start := end - int64(len(raw))
	line, _ := j.t.position(start)
	j.t.release(end)
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return record{}, fmt.Errorf("compact record: %w", err)
	}
	if kind := jsonKind(out.Bytes()); kind != "" {
		return record{line: line, body: []byte(raw), problem: fmt.Sprintf("line %d: record is %s, want an object", line, kind)}, nil
	}
	return record{line: line, body: out.Bytes()}, nil
}

// end checks that nothing follows the top-level value.
func (j *jsonReader) end() error {
	_, err := j.dec.Token()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return j.syntax(err)
	}
	line, col := j.t.position(j.dec.InputOffset() - 1)
	return unparseable("line %d, column %d: data after the top-level JSON value", line, col)
}

// syntax turns a decoder error into a parse error that names its line and
// column; read errors stay as they are.
func (j *jsonReader) syntax(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		line, col := j.t.position(syn.Offset - 1)
		return unparseable("line %d, column %d: malformed JSON: %v", line, col, err)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		line, col := j.t.position(j.t.base + int64(len(j.t.buf)))
		return unparseable("line %d, column %d: the JSON ends too early (is the file cut off?)", line, col)
	}
	return fmt.Errorf("read: %w", err)
}

func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return "a stray " + string(v)
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "a number"
	}
}

// csvReader reads one record per row.
type csvReader struct {
	t       *tracker
	r       *csv.Reader
	s       *consumerSettings
	columns []string
	started bool
	last    int64
}

func newCSVReader(r io.Reader, s *consumerSettings) *csvReader {
	t := &tracker{r: r}
	cr := csv.NewReader(t)
	cr.Comma = s.delimiter
	cr.FieldsPerRecord = -1
	return &csvReader{t: t, r: cr, s: s, columns: s.columns}
}

func (c *csvReader) next() (record, error) {
	if !c.started {
		c.started = true
		if c.s.header {
			if err := c.readHeader(); err != nil {
				return record{}, err
			}
		}
	}
	fields, err := c.r.Read()
	if errors.Is(err, io.EOF) {
		return record{}, io.EOF
	}
	start, end := c.last, c.r.InputOffset()
	raw := func() []byte { return bytes.Clone(bytes.Trim(c.t.slice(start, end), "\r\n")) }
	defer func() {
		c.t.release(end)
		c.last = end
	}()
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return record{line: pe.StartLine, body: raw(), problem: csvProblem(pe)}, nil
	}
	if err != nil {
		return record{}, fmt.Errorf("read: %w", err)
	}
	line, _ := c.r.FieldPos(0)
	if c.columns == nil {
		c.columns = make([]string, len(fields))
		for i := range fields {
			c.columns[i] = "col" + strconv.Itoa(i+1)
		}
	}
	if len(fields) != len(c.columns) {
		return record{line: line, body: raw(),
			problem: fmt.Sprintf("line %d: %d fields, want %d (%s)", line, len(fields), len(c.columns), strings.Join(c.columns, ", "))}, nil
	}
	var obj object
	for i, name := range c.columns {
		obj.set(name, fields[i])
	}
	body, err := obj.MarshalJSON()
	if err != nil {
		return record{}, fmt.Errorf("encode line %d: %w", line, err)
	}
	return record{line: line, body: body}, nil
}

// readHeader reads the header row; configured columns take precedence
// over it.
func (c *csvReader) readHeader() error {
	fields, err := c.r.Read()
	c.last = c.r.InputOffset()
	c.t.release(c.last)
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.As(err, &pe):
		return unparseable("header: %s", csvProblem(pe))
	case err != nil:
		return fmt.Errorf("read header: %w", err)
	}
	if c.columns != nil {
		return nil
	}
	line, _ := c.r.FieldPos(0)
	seen := make(map[string]bool, len(fields))
	for i, name := range fields {
		if name == "" {
			name = "col" + strconv.Itoa(i+1)
			fields[i] = name
		}
		if seen[name] {
			return unparseable("header on line %d: column %q appears twice", line, name)
		}
		seen[name] = true
	}
	c.columns = fields
	return nil
}

func csvProblem(pe *csv.ParseError) string {
	return fmt.Sprintf("line %d, column %d: malformed CSV: %v", pe.Line, pe.Column, pe.Err)
}

// xmlReader reads the children of the root element as records.
type xmlReader struct {
	t    *tracker
	dec  *xml.Decoder
	root string
	// closed means the root element has ended.
	closed bool
}

// xmlNode is an element of a record being read.
type xmlNode struct {
	name     string
	attrs    []xml.Attr
	children []*xmlNode
	text     strings.Builder
}

func newXMLReader(r io.Reader) *xmlReader {
	t := &tracker{r: r}
	dec := xml.NewDecoder(t)
	dec.Strict = true
	// No entity map and no CharsetReader: only the predefined entities and
	// UTF-8 documents are accepted.
	return &xmlReader{t: t, dec: dec}
}

func (x *xmlReader) next() (record, error) {
	for {
		start := x.dec.InputOffset()
		tok, err := x.token()
		if errors.Is(err, io.EOF) {
			if x.root == "" {
				return record{}, unparseable("no root element")
			}
			if !x.closed {
				return record{}, x.at(start, "root element <%s> is not closed (is the file cut off?)", x.root)
			}
			return record{}, io.EOF
		}
		if err != nil {
			return record{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case x.closed:
				return record{}, x.at(start, "more than one root element")
			case x.root == "":
				x.root = qualified(t.Name)
				x.t.release(x.dec.InputOffset())
			default:
				return x.record(start, t)
			}
		case xml.EndElement:
			if x.root == "" || x.closed {
				return record{}, x.at(start, "end tag </%s> without a start tag", qualified(t.Name))
			}
			if name := qualified(t.Name); name != x.root {
				return record{}, x.at(start, "end tag </%s> does not match <%s>", name, x.root)
			}
			x.closed = true
		case xml.CharData:
			text := bytes.TrimSpace(t)
			if len(text) == 0 {
				continue
			}
			if x.root == "" || x.closed {
				return record{}, x.at(start, "text outside the root element")
			}
			end := x.dec.InputOffset()
			raw := x.t.slice(start, end)
			line, col := x.t.position(start + int64(len(raw)-len(bytes.TrimLeft(raw, " \t\r\n"))))
			raw = bytes.Clone(bytes.TrimSpace(raw))
			x.t.release(end)
			return record{line: line, body: raw, problem: fmt.Sprintf("line %d, column %d: text between records", line, col)}, nil
		}
	}
}

// token returns the next token, refusing DTDs; syntax errors name their
// line and column.
func (x *xmlReader) token() (xml.Token, error) {
	start := x.dec.InputOffset()
	tok, err := x.dec.RawToken()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		var syn *xml.SyntaxError
		if !errors.As(err, &syn) {
			return nil, fmt.Errorf("read: %w", err)
		}
		// The decoder stops just past the byte it could not accept.
		end := max(x.dec.InputOffset()-1, start)
		return nil, x.at(end, "%s", syn.Msg)
	}
	if _, ok := tok.(xml.Directive); ok {
		return nil, x.at(start, "DTDs and other directives are not allowed")
	}
	return tok, nil
}

// at is a parse error at offset off.
func (x *xmlReader) at(off int64, format string, args ...any) error {
	line, col := x.t.position(off)
	return unparseable("line %d, column %d: malformed XML: %s", line, col, fmt.Sprintf(format, args...))
}

// record reads the element that first starts up to its end tag. Mismatched
// end tags and too deep nesting make it a bad record, not a bad file: the
// reader finds the record's end and carries on.
func (x *xmlReader) record(start int64, first xml.StartElement) (record, error) {
	line, _ := x.t.position(start)
	top := &xmlNode{name: qualified(first.Name), attrs: first.Attr}
	stack := []*xmlNode{top}
	var problem string
	bad := func(off int64, format string, args ...any) {
		if problem == "" {
			l, c := x.t.position(off)
			problem = fmt.Sprintf("line %d, column %d: invalid XML element: %s", l, c, fmt.Sprintf(format, args...))
		}
	}
	for len(stack) > 0 {
		off := x.dec.InputOffset()
		tok, err := x.token()
		if errors.Is(err, io.EOF) {
			return record{}, x.at(off, "element <%s> is not closed (is the file cut off?)", stack[len(stack)-1].name)
		}
		if err != nil {
			return record{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: qualified(t.Name), attrs: t.Attr}
			if len(stack) >= maxXMLDepth {
				bad(off, "elements nested deeper than %d", maxXMLDepth)
			} else {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			name := qualified(t.Name)
			at := len(stack) - 1
			for at >= 0 && stack[at].name != name {
				at--
			}
			switch {
			case at == len(stack)-1:
				stack = stack[:at]
			case at >= 0:
				bad(off, "end tag </%s> does not match <%s>", name, stack[len(stack)-1].name)
				stack = stack[:at]
			case name == x.root:
				// The root ends inside this record.
				bad(off, "element <%s> is not closed", stack[len(stack)-1].name)
				stack = nil
				x.closed = true
			default:
				bad(off, "end tag </%s> does not match <%s>", name, stack[len(stack)-1].name)
			}
		case xml.CharData:
			stack[len(stack)-1].text.Write(t)
		}
	}
	end := x.dec.InputOffset()
	raw := x.t.slice(start, end)
	defer x.t.release(end)
	if problem != "" {
		return record{line: line, body: bytes.Clone(raw), problem: problem, element: top.name}, nil
	}
	body, err := top.object().MarshalJSON()
	if err != nil {
		return record{}, fmt.Errorf("encode record on line %d: %w", line, err)
	}
	return record{line: line, body: body, element: top.name}, nil
}

func qualified(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// object maps an element to a JSON object: attributes as @name, children
// by name (repeated children as arrays, in order of first appearance) and
// text as #text.
func (n *xmlNode) object() *object {
	obj := &object{}
	for _, a := range n.attrs {
		obj.set("@"+qualified(a.Name), a.Value)
	}
	text := n.text.String()
	if len(n.children) > 0 {
		text = strings.TrimSpace(text)
	}
	if strings.TrimSpace(text) != "" {
		obj.set("#text", text)
	}
	var names []string
	groups := map[string][]*xmlNode{}
	for _, child := range n.children {
		if _, ok := groups[child.name]; !ok {
			names = append(names, child.name)
		}
		groups[child.name] = append(groups[child.name], child)
	}
	for _, name := range names {
		group := groups[name]
		if len(group) == 1 {
			obj.set(name, group[0].value())
			continue
		}
		arr := make([]any, len(group))
		for i, child := range group {
			arr[i] = child.value()
		}
		obj.set(name, arr)
	}
	return obj
}

// value is a child element's JSON value: its text when it has neither
// attributes nor children, otherwise an object.
func (n *xmlNode) value() any {
	if len(n.attrs) == 0 && len(n.children) == 0 {
		return n.text.String()
	}
	return n.object()
}

// object is a JSON object that keeps its keys in insertion order, so a CSV
// row or an XML element reads in the order it was written.
type object struct {
	keys []string
	vals map[string]any
}

// set adds or replaces a key; a replaced key keeps its first position.
func (o *object) set(key string, v any) {
	if o.vals == nil {
		o.vals = make(map[string]any)
	}
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
}

// MarshalJSON writes the object compactly, keys in order, without HTML
// escaping.
func (o *object) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1)
		buf.WriteByte(':')
		if err := enc.Encode(o.vals[k]); err != nil {
			return nil, err
		}
		buf.Truncate(buf.Len() - 1)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
