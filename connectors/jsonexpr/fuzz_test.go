package jsonexpr_test

import (
	"testing"

	"github.com/vrsky/vrsky/connectors/jsonbody"
	"github.com/vrsky/vrsky/connectors/jsonexpr"
)

// FuzzRun compiles and runs any expression over any message: no panic,
// and no string result over MaxStringLen.
func FuzzRun(f *testing.F) {
	for _, seed := range []string{
		"sum(map(items, #.qty * #.price))",
		"let r = 1..1000; sum(r, sum(r, sum(r, #)))",
		`reduce(1..40, #acc + #acc, name)`,
		`len(replace(replace(name, "", name), "", name))`,
		"repeat(name, 1000000)",
		"toJSON(map(1..100, items))",
		"upper(name) + ' <' + id + '>'",
	} {
		f.Add(seed, `{"id":"o-1","name":"Ann","items":[{"qty":1,"price":2.5},{"qty":3,"price":1}]}`)
	}
	f.Fuzz(func(t *testing.T, source, body string) {
		p, err := jsonexpr.Compile(source)
		if err != nil {
			return
		}
		fields, err := jsonbody.Decode([]byte(body))
		if err != nil {
			return
		}
		v, err := p.Run(fields)
		if s, ok := v.(string); err == nil && ok && len(s) > 2*jsonexpr.MaxStringLen {
			t.Fatalf("%q gave a string of %d bytes", source, len(s))
		}
	})
}
