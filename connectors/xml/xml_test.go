package xml_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
	"github.com/vrsky/vrsky/connectors/xml"
)

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, xml.Connector, sdk.Env{Tenant: "t1", Integration: "orders"},
		json.RawMessage(`{"direction":"toJson","arrays":["order/item"],"maxDepth":50}`),
		map[string]json.RawMessage{
			"bad direction":          json.RawMessage(`{"direction":"sideways"}`),
			"name-like prefix":       json.RawMessage(`{"attributePrefix":"a"}`),
			"name-like text key":     json.RawMessage(`{"textKey":"text"}`),
			"text key under prefix":  json.RawMessage(`{"attributePrefix":"@","textKey":"@text"}`),
			"bad root":               json.RawMessage(`{"direction":"toXml","root":"1root"}`),
			"root-only array path":   json.RawMessage(`{"arrays":["order"]}`),
			"bad array path":         json.RawMessage(`{"arrays":["order//item"]}`),
			"negative depth":         json.RawMessage(`{"maxDepth":-1}`),
			"depth over the limit":   json.RawMessage(`{"maxDepth":100000}`),
			"bytes over the limit":   json.RawMessage(`{"maxBytes":1073741824}`),
			"wrong type":             json.RawMessage(`{"arrays":"order/item"}`),
			"malformed":              json.RawMessage(`{"direction":`),
			"negative maximum bytes": json.RawMessage(`{"maxBytes":-5}`),
		})
}

func build(t *testing.T, cfg string) sdk.Converter {
	t.Helper()
	inst, err := xml.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(cfg))
	require.NoError(t, err)
	return inst.(sdk.Converter)
}

func convert(t *testing.T, c sdk.Converter, body string) (string, error) {
	t.Helper()
	out, err := c.Convert(t.Context(), sdk.Message{ID: "m1", Body: []byte(body), Headers: map[string]string{"k": "v"}})
	if err != nil {
		require.True(t, sdk.IsPermanent(err), "bad input is a permanent error: %v", err)
		return "", err
	}
	require.Equal(t, "m1", out.ID)
	require.Equal(t, "v", out.Header("k"))
	return string(out.Body), nil
}

func TestToJSON(t *testing.T) {
	tests := []struct {
		name, cfg, in, want string
	}{
		{"leaf elements are strings", `{}`, `<order><id>42</id><note></note><empty/></order>`,
			`{"order":{"id":"42","note":"","empty":""}}`},
		{"attributes and text", `{}`, `<?xml version="1.0" encoding="UTF-8"?><order id="7"><total currency="EUR">12.50</total></order>`,
			`{"order":{"@id":"7","total":{"@currency":"EUR","#text":"12.50"}}}`},
		{"repeated siblings become arrays, in document order", `{}`, `<o><item>a</item><x>1</x><item>b</item></o>`,
			`{"o":{"item":["a","b"],"x":"1"}}`},
		{"configured arrays even when single", `{"arrays":["o/items/item","/o/tag"]}`, `<o><items><item>a</item></items><tag>t</tag></o>`,
			`{"o":{"items":{"item":["a"]},"tag":["t"]}}`},
		{"configured path elsewhere is not an array", `{"arrays":["o/items/item"]}`, `<o><item>a</item></o>`,
			`{"o":{"item":"a"}}`},
		{"custom prefix and text key", `{"attributePrefix":"-","textKey":"$value"}`, `<p lang="en">hi</p>`,
			`{"p":{"-lang":"en","$value":"hi"}}`},
		{"mixed content keeps trimmed text", `{}`, "<p>\n  hello <b>bold</b> world\n</p>",
			`{"p":{"#text":"hello  world","b":"bold"}}`},
		{"whitespace between children is dropped", `{}`, "<a>\n  <b>1</b>\n  <c>2</c>\n</a>\n",
			`{"a":{"b":"1","c":"2"}}`},
		{"leaf whitespace is kept", `{}`, `<a> x </a>`, `{"a":" x "}`},
		{"entities, character references and CDATA", `{}`, `<a t="&quot;q&quot;">&lt;b&gt; &amp; &#233; <![CDATA[<raw>&]]></a>`,
			`{"a":{"@t":"\"q\"","#text":"<b> & é <raw>&"}}`},
		{"namespace prefixes are kept", `{}`, `<s:Envelope xmlns:s="urn:s"><s:Body>x</s:Body></s:Envelope>`,
			`{"s:Envelope":{"@xmlns:s":"urn:s","s:Body":"x"}}`},
		{"comments and processing instructions are skipped", `{}`, `<!-- c --><?pi x?><a><!-- c -->1</a>`, `{"a":"1"}`},
		{"no HTML escaping in output", `{}`, `<a>&lt;tag&gt; &amp;</a>`, `{"a":"<tag> &"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(t, build(t, tt.cfg), tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestToJSONContentType(t *testing.T) {
	out, err := build(t, `{}`).Convert(t.Context(), sdk.Message{Body: []byte(`<a/>`), ContentType: "text/xml"})
	require.NoError(t, err)
	require.Equal(t, "application/json", out.ContentType)
	out, err = build(t, `{"direction":"toXml"}`).Convert(t.Context(), sdk.Message{Body: []byte(`{"a":1}`), ContentType: "application/json"})
	require.NoError(t, err)
	require.Equal(t, "application/xml", out.ContentType)
}

// TestHostileXML: DTDs, entity bombs and external entities never expand,
// and size and depth are bounded.
func TestHostileXML(t *testing.T) {
	billionLaughs := `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<lolz>&lol2;</lolz>`
	tests := []struct {
		name, cfg, in string
		want          []string
	}{
		{"billion laughs", `{}`, billionLaughs, []string{"DTDs are not allowed", "line 2, column 1"}},
		{"external entity", `{}`, `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`,
			[]string{"DTDs are not allowed", "line 1, column 22"}},
		{"external DTD", `{}`, `<!DOCTYPE foo SYSTEM "http://169.254.169.254/latest/meta-data/"><foo/>`, []string{"DTDs are not allowed"}},
		{"DTD after the root", `{}`, `<a/><!DOCTYPE a>`, []string{"DTDs are not allowed"}},
		{"undeclared entity", `{}`, `<foo>&xxe;</foo>`, []string{"malformed XML at line 1", "xxe"}},
		{"deep nesting", `{}`, strings.Repeat("<a>", 101) + strings.Repeat("</a>", 101), []string{"nested deeper than 100", "line 1, column 301"}},
		{"configured depth", `{"maxDepth":3}`, `<a><b><c><d/></c></b></a>`, []string{"nested deeper than 3"}},
		{"over maxBytes", `{"maxBytes":10}`, `<a>0123456789</a>`, []string{"over the 10-byte limit"}},
		{"non-UTF-8 encoding", `{}`, `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, []string{"malformed XML", "ISO-8859-1"}},
		{"invalid UTF-8", `{}`, "<a>\xff</a>", []string{"malformed XML", "UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, build(t, tt.cfg), tt.in)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "root:x:0:0", "no file was read")
		})
	}
}

func TestMalformedXMLNamesLineAndColumn(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"mismatched end tag", "<a>\n  <b>x</c>\n</a>", []string{"line 2, column 7", "</c> does not match <b>"}},
		{"unclosed element", "<a>\n<b>", []string{"line 2, column 4", "<b> is not closed"}},
		{"bad attribute", "<a>\n <b x=1/></a>", []string{"line 2", "unquoted or missing attribute value"}},
		{"two roots", "<a/>\n<b/>", []string{"line 2, column 1", "more than one root"}},
		{"text outside the root", "<a/>junk", []string{"line 1, column 5", "text outside the root"}},
		{"stray end tag", "</a>", []string{"line 1, column 1", "without a start tag"}},
		{"empty body", "", []string{"line 1, column 1", "no root element"}},
		{"only whitespace", "  \n ", []string{"no root element"}},
		{"multi-byte characters count as one column", "<a>é</b>", []string{"line 1, column 5"}},
	}
	c := build(t, `{}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, c, tt.in)
			require.Error(t, err)
			require.ErrorContains(t, err, "malformed XML")
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestToXML(t *testing.T) {
	tests := []struct {
		name, cfg, in, want string
	}{
		{"one key is the root", `{"direction":"toXml"}`, `{"order":{"@id":"7","id":42,"paid":true,"note":null,"total":{"@currency":"EUR","#text":12.5}}}`,
			`<order id="7"><id>42</id><paid>true</paid><note></note><total currency="EUR">12.5</total></order>`},
		{"several keys go under root", `{"direction":"toXml"}`, `{"a":1,"b":"x"}`, `<root><a>1</a><b>x</b></root>`},
		{"configured root", `{"direction":"toXml","root":"doc"}`, `{"a":1,"b":2}`, `<doc><a>1</a><b>2</b></doc>`},
		{"arrays are repeated elements", `{"direction":"toXml"}`, `{"o":{"item":["a",{"@n":"2","#text":"b"}]}}`,
			`<o><item>a</item><item n="2">b</item></o>`},
		{"a top-level array goes under root", `{"direction":"toXml"}`, `{"rows":[{"a":1},{"a":2}]}`,
			`<root><rows><a>1</a></rows><rows><a>2</a></rows></root>`},
		{"a lone attribute goes under root", `{"direction":"toXml"}`, `{"@id":"1"}`, `<root id="1"></root>`},
		{"text and attributes are escaped", `{"direction":"toXml"}`, `{"a":{"@q":"\"<&>'","#text":"<script>&amp;</script>"}}`,
			`<a q="&#34;&lt;&amp;&gt;&#39;">&lt;script&gt;&amp;amp;&lt;/script&gt;</a>`},
		{"control characters are replaced", `{"direction":"toXml"}`, `{"a":"x\u0000y"}`, "<a>x\uFFFDy</a>"},
		{"empty object", `{"direction":"toXml"}`, `{}`, `<root></root>`},
		{"custom prefix", `{"direction":"toXml","attributePrefix":"-","textKey":"$t"}`, `{"a":{"-k":"v","$t":"x","b":"1"}}`,
			`<a k="v">x<b>1</b></a>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(t, build(t, tt.cfg), tt.in)
			require.NoError(t, err)
			require.Equal(t, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+tt.want, got)
		})
	}
}

func TestToXMLErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
	}{
		{"malformed JSON", "{\n \"a\": }", []string{"malformed JSON", "line 2, column 7"}},
		{"empty body", "", []string{"line 1, column 1"}},
		{"trailing data", `{"a":1} x`, []string{"data after the top-level value"}},
		{"not an object", `[1]`, []string{"an array, want an object"}},
		{"key not a name", `{"first name":"x"}`, []string{`"first name"`, "not an XML element name"}},
		{"key starting with a digit", `{"a":{"1x":"y"}}`, []string{`"1x" at a/1x`}},
		{"bad attribute name", `{"a":{"@1":"y"}}`, []string{`"@1"`, "attribute name"}},
		{"the other prefix is not an attribute", `{"a":{"-b":"y"}}`, []string{`"-b" at a/-b`, "not an XML element name"}},
		{"object as attribute", `{"a":{"@x":{"y":1}}}`, []string{`attribute "@x"`, "an object cannot be text"}},
		{"array as text", `{"a":{"#text":[1]}}`, []string{`"#text" at a`, "an array cannot be text"}},
		{"nested arrays", `{"a":{"b":[[1]]}}`, []string{"a/b is an array inside an array"}},
		{"too deep", `{"a":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 101), []string{"nested deeper than 100"}},
		{"unclosed", `{"a":[1,2`, []string{"malformed JSON"}},
	}
	c := build(t, `{"direction":"toXml"}`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, c, tt.in)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	sample := `<?xml version="1.0" encoding="UTF-8"?>
<order id="A-17" xmlns:x="urn:example">
  <customer tier="gold">Ann &amp; Bob</customer>
  <item sku="1"><name>Pen</name><qty>2</qty></item>
  <item sku="2"><name>Ink &lt;blue&gt;</name><qty>1</qty></item>
  <x:note>fragile</x:note>
  <gift/>
</order>`
	toJSON := build(t, `{"arrays":["order/item"]}`)
	toXML := build(t, `{"direction":"toXml"}`)
	j1, err := convert(t, toJSON, sample)
	require.NoError(t, err)
	require.Equal(t, `{"order":{"@id":"A-17","@xmlns:x":"urn:example","customer":{"@tier":"gold","#text":"Ann & Bob"},`+
		`"item":[{"@sku":"1","name":"Pen","qty":"2"},{"@sku":"2","name":"Ink <blue>","qty":"1"}],"x:note":"fragile","gift":""}}`, j1)
	x, err := convert(t, toXML, j1)
	require.NoError(t, err)
	j2, err := convert(t, toJSON, x)
	require.NoError(t, err)
	require.Equal(t, j1, j2, "XML → JSON → XML → JSON is stable")
}

func TestCancelledContextIsNotPermanent(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := build(t, `{}`).Convert(ctx, sdk.Message{Body: []byte(`<a/>`)})
	require.Error(t, err)
	require.False(t, sdk.IsPermanent(err))
}

func TestHugeField(t *testing.T) {
	big := strings.Repeat("x", 4<<20)
	got, err := convert(t, build(t, `{}`), `<a b="`+big+`">`+big+`</a>`)
	require.NoError(t, err)
	require.Len(t, got, len(`{"a":{"@b":"","#text":""}}`)+2*len(big))
	_, err = convert(t, build(t, `{"maxBytes":1048576}`), `<a>`+big+`</a>`)
	require.ErrorContains(t, err, "over the 1048576-byte limit")
}
