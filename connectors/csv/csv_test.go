package csv_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/csv"
	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, csv.Connector, sdk.Env{Tenant: "t1", Integration: "orders"},
		json.RawMessage(`{"delimiter":";","types":{"qty":"int"},"ragged":"pad"}`),
		map[string]json.RawMessage{
			"bad direction":         json.RawMessage(`{"direction":"toXml"}`),
			"bad mode":              json.RawMessage(`{"mode":"file"}`),
			"row mode with header":  json.RawMessage(`{"mode":"row","header":true,"columns":["a"]}`),
			"row mode skipRows":     json.RawMessage(`{"mode":"row","skipRows":1,"columns":["a"]}`),
			"row mode no columns":   json.RawMessage(`{"mode":"row"}`),
			"no header no columns":  json.RawMessage(`{"header":false}`),
			"long delimiter":        json.RawMessage(`{"delimiter":";;"}`),
			"quote delimiter":       json.RawMessage(`{"delimiter":"\""}`),
			"newline delimiter":     json.RawMessage(`{"delimiter":"\n"}`),
			"empty column":          json.RawMessage(`{"columns":["a",""]}`),
			"duplicate column":      json.RawMessage(`{"columns":["a","a"]}`),
			"bad type":              json.RawMessage(`{"types":{"a":"decimal"}}`),
			"type of unknown col":   json.RawMessage(`{"columns":["a"],"types":{"b":"int"}}`),
			"negative skipRows":     json.RawMessage(`{"skipRows":-1}`),
			"bad ragged":            json.RawMessage(`{"ragged":"ignore"}`),
			"maxBytes out of range": json.RawMessage(`{"maxBytes":1073741824}`),
			"malformed":             json.RawMessage(`{"types":`),
		})
}

func build(t *testing.T, cfg string) sdk.Converter {
	t.Helper()
	inst, err := csv.Connector.Build(t.Context(), sdk.Env{}, json.RawMessage(cfg))
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
		{"header names columns, order kept", `{}`, "name,id\nAnn,1\nBob,2\n",
			`{"rows":[{"name":"Ann","id":"1"},{"name":"Bob","id":"2"}]}`},
		{"BOM is stripped", `{}`, "\xEF\xBB\xBFid,name\r\n1,Ann\r\n", `{"rows":[{"id":"1","name":"Ann"}]}`},
		{"quoted fields", `{}`, "a,b\n\"x, y\",\"say \"\"hi\"\"\nthere\"\n", `{"rows":[{"a":"x, y","b":"say \"hi\"\nthere"}]}`},
		{"header only", `{}`, "a,b\n", `{"rows":[]}`},
		{"types", `{"types":{"n":"int","f":"float","b":"bool","s":"string"}}`, "n,f,b,s\n42, 1.5 ,true,007\n,,,\n-7,1e3,0,x\n",
			`{"rows":[{"n":42,"f":1.5,"b":true,"s":"007"},{"n":null,"f":null,"b":null,"s":""},{"n":-7,"f":1000,"b":false,"s":"x"}]}`},
		{"delimiter and trimSpace", `{"delimiter":";","trimSpace":true}`, " a ; b \n 1 ; x y \n", `{"rows":[{"a":"1","b":"x y"}]}`},
		{"tab delimiter", `{"delimiter":"\t"}`, "a\tb\n1\t2\n", `{"rows":[{"a":"1","b":"2"}]}`},
		{"skipRows before the header", `{"skipRows":2}`, "Report,,\nJanuary\na,b\n1,2\n", `{"rows":[{"a":"1","b":"2"}]}`},
		{"no header", `{"header":false,"columns":["x","y"]}`, "1,2\n3,4\n", `{"rows":[{"x":"1","y":"2"},{"x":"3","y":"4"}]}`},
		{"columns replace the header", `{"columns":["x","y"]}`, "a,b\n1,2\n", `{"rows":[{"x":"1","y":"2"}]}`},
		{"ragged pad", `{"ragged":"pad"}`, "a,b,c\n1\n1,2,3\n", `{"rows":[{"a":"1","b":null,"c":null},{"a":"1","b":"2","c":"3"}]}`},
		{"ragged truncate", `{"ragged":"truncate"}`, "a,b\n1,2,3\n4\n", `{"rows":[{"a":"1","b":"2"},{"a":"4","b":null}]}`},
		{"blank lines are skipped", `{}`, "a\n\n1\n\n2\n", `{"rows":[{"a":"1"},{"a":"2"}]}`},
		{"no HTML escaping", `{}`, "a\n<b>&\n", `{"rows":[{"a":"<b>&"}]}`},
		{"row mode", `{"mode":"row","columns":["id","qty"],"types":{"qty":"int"}}`, "a-1,3\n", `{"id":"a-1","qty":3}`},
		{"row mode with BOM and no newline", `{"mode":"row","columns":["id"]}`, "\xEF\xBB\xBFx", `{"id":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(t, build(t, tt.cfg), tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.True(t, json.Valid([]byte(got)))
		})
	}
}

func TestToJSONErrors(t *testing.T) {
	tests := []struct {
		name, cfg, in string
		want          []string
	}{
		{"bare quote", `{}`, "a,b\n1,x\"y\n", []string{"malformed CSV at line 2, column 4", "bare"}},
		{"unterminated quote", `{}`, "a,b\n1,\"open\n", []string{"malformed CSV at line 2", "extraneous or missing"}},
		{"quote in a quoted field", `{}`, "a\n\"x\"y\"\n", []string{"malformed CSV at line 2, column 3"}},
		{"ragged row fails by default", `{}`, "a,b\n1,2\n3\n", []string{"line 3: row 2 has 1 fields, want 2", "ragged"}},
		{"pad still rejects long rows", `{"ragged":"pad"}`, "a,b\n1,2,3\n", []string{"line 2: row 1 has 3 fields, want 2"}},
		{"bad int", `{"types":{"n":"int"}}`, "id,n\n1,2\n2,3.5\n", []string{`line 3: row 2, column "n": "3.5" is not an int`}},
		{"bad float", `{"types":{"f":"float"}}`, "f\nNaN\n", []string{`column "f": "NaN" is not a finite float`}},
		{"bad bool", `{"types":{"b":"bool"}}`, "b\nyes\n", []string{`column "b": "yes" is not a bool`}},
		{"long bad value is cut in the error", `{"types":{"n":"int"}}`, "n\n" + strings.Repeat("é", 100) + "\n", []string{`…`}},
		{"types column not in header", `{"types":{"qty":"int"}}`, "a\n1\n", []string{`types names column "qty"`}},
		{"empty header column", `{}`, "a,,c\n", []string{"line 1: header column 2 is empty"}},
		{"duplicate header column", `{"trimSpace":true}`, "a, a\n", []string{`line 1: header column 2 "a" repeats column 1`}},
		{"empty document", `{}`, "", []string{"no header record"}},
		{"only a BOM", `{}`, "\xEF\xBB\xBF", []string{"no header record"}},
		{"bad quote in skipped rows", `{"skipRows":1}`, "x\"y\na\n", []string{"malformed CSV at line 1"}},
		{"bad quote in header", `{}`, "a\"b\n", []string{"malformed CSV at line 1"}},
		{"row mode empty", `{"mode":"row","columns":["a"]}`, "", []string{"row is empty"}},
		{"row mode two records", `{"mode":"row","columns":["a"]}`, "1\n2\n", []string{"line 2: row mode takes one record"}},
		{"row mode malformed", `{"mode":"row","columns":["a"]}`, "x\"y\n", []string{"malformed CSV at line 1"}},
		{"row mode malformed second record", `{"mode":"row","columns":["a"]}`, "x\n\"y\n", []string{"malformed CSV at line 2"}},
		{"row mode ragged", `{"mode":"row","columns":["a","b"]}`, "1\n", []string{"line 1: row 1 has 1 fields, want 2"}},
		{"over maxBytes", `{"maxBytes":16}`, "a\n" + strings.Repeat("x", 20), []string{"over the 16-byte limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, build(t, tt.cfg), tt.in)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestHugeField(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	got, err := convert(t, build(t, `{}`), "a\n\""+big+"\"\n")
	require.NoError(t, err)
	require.Len(t, got, len(`{"rows":[{"a":""}]}`)+len(big))
	_, err = convert(t, build(t, `{"maxBytes":1048576}`), "a\n"+big+"\n")
	require.ErrorContains(t, err, "over the 1048576-byte limit")
}

func TestToCSV(t *testing.T) {
	tests := []struct {
		name, cfg, in, want string
	}{
		{"array of objects, sorted keys", `{"direction":"toCsv"}`, `[{"b":1,"a":"x"},{"a":"y","c":true}]`,
			"a,b,c\nx,1,\ny,,true\n"},
		{"rows object", `{"direction":"toCsv"}`, `{"rows":[{"a":1.50},{"a":12345678901234567890}]}`, "a\n1.50\n12345678901234567890\n"},
		{"one object is one row", `{"direction":"toCsv"}`, `{"id":1,"rows":"not a list"}`, "id,rows\n1,not a list\n"},
		{"columns order and selection", `{"direction":"toCsv","columns":["z","a"]}`, `[{"a":1,"z":2,"dropped":3}]`, "z,a\n2,1\n"},
		{"quoting and nested values", `{"direction":"toCsv"}`, `[{"a":"x,y","b":"say \"hi\"","c":{"k":[1,"<"]},"d":null}]`,
			"a,b,c,d\n\"x,y\",\"say \"\"hi\"\"\",\"{\"\"k\"\":[1,\"\"<\"\"]}\",\n"},
		{"formula injection is defused", `{"direction":"toCsv"}`, `[{"a":"=HYPERLINK(\"http://evil\")","b":"+1","c":"-2+3","d":"@SUM(A1)","e":"\tx","f":"\rx","g":-5,"h":"ok"}]`,
			"a,b,c,d,e,f,g,h\n\"'=HYPERLINK(\"\"http://evil\"\")\",'+1,'-2+3,'@SUM(A1),'\tx,\"'\rx\",-5,ok\n"},
		{"formula in a header is defused", `{"direction":"toCsv"}`, `[{"=cmd":"1"}]`, "'=cmd\n1\n"},
		{"escapeFormulas off", `{"direction":"toCsv","escapeFormulas":false}`, `[{"a":"=1+1"}]`, "a\n=1+1\n"},
		{"no header", `{"direction":"toCsv","header":false}`, `[{"a":1}]`, "1\n"},
		{"delimiter", `{"direction":"toCsv","delimiter":";"}`, `[{"a":1,"b":"x;y"}]`, "a;b\n1;\"x;y\"\n"},
		{"row mode", `{"direction":"toCsv","mode":"row","columns":["b","a"]}`, `{"a":1,"b":2}`, "2,1\n"},
		{"empty rows", `{"direction":"toCsv"}`, `{"rows":[]}`, "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := convert(t, build(t, tt.cfg), tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
	out, err := build(t, `{"direction":"toCsv"}`).Convert(t.Context(), sdk.Message{Body: []byte(`{"a":1}`)})
	require.NoError(t, err)
	require.Equal(t, "text/csv", out.ContentType)
}

func TestToCSVErrors(t *testing.T) {
	tests := []struct {
		name, cfg, in string
		want          []string
	}{
		{"malformed JSON", `{"direction":"toCsv"}`, "[\n{\"a\":}]", []string{"malformed JSON", "line 2, column 6"}},
		{"empty body", `{"direction":"toCsv"}`, "", []string{"line 1, column 1"}},
		{"trailing data", `{"direction":"toCsv"}`, `{"a":1} {}`, []string{"data after the top-level value"}},
		{"scalar body", `{"direction":"toCsv"}`, `"x"`, []string{"a string, want an object"}},
		{"row not an object", `{"direction":"toCsv"}`, `[{"a":1},2]`, []string{"row 2 is a number, want an object"}},
		{"row mode with several rows", `{"direction":"toCsv","mode":"row","columns":["a"]}`, `[{"a":1},{"a":2}]`, []string{"holds 2 rows"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convert(t, build(t, tt.cfg), tt.in)
			require.Error(t, err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	toJSON := build(t, `{"types":{"qty":"int"}}`)
	toCSV := build(t, `{"direction":"toCsv","columns":["sku","name","qty"]}`)
	in := "sku,name,qty\nA-1,\"Pen, blue\",2\nB-2,\"Ink \"\"XL\"\"\",10\n"
	j, err := convert(t, toJSON, in)
	require.NoError(t, err)
	back, err := convert(t, toCSV, j)
	require.NoError(t, err)
	require.Equal(t, in, back)
}

func TestCancelledContextIsNotPermanent(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := build(t, `{}`).Convert(ctx, sdk.Message{Body: []byte("a\n1\n")})
	require.Error(t, err)
	require.False(t, sdk.IsPermanent(err))
}
