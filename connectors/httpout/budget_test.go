package httpout

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
	"github.com/vrsky/vrsky/connectors/sdk/sdktest"
)

// TestHostileTemplates plays templates a tenant could write to make the
// shared runner render without bound: each must fail its own message with
// a permanent error naming the limit, quickly and in bounded memory.
func TestHostileTemplates(t *testing.T) {
	a := make([]string, 1000)
	for i := range a {
		a[i] = fmt.Sprint(i)
	}
	body := fmt.Sprintf(`{"a":[%s],"s":%q,"big":%q}`, strings.Join(a, ","), strings.Repeat("x", 1000), strings.Repeat("y", 1<<20))
	data := MessageData(sdk.Message{ID: "m", Body: []byte(body)})
	tests := []struct {
		name, text, want string
	}{
		// 10^9 copies of a 1 KB string: a terabyte.
		{"nested range", "{{range .a}}{{range $.a}}{{range $.a}}{{$.s}}{{end}}{{end}}{{end}}", "bytes"},
		// 10^9 iterations that print nothing.
		{"silent nested range", "{{range .a}}{{range $.a}}{{range $.a}}{{end}}{{end}}{{end}}", "steps"},
		{"range over a large integer", "{{range 2000000000}}{{end}}", "steps"},
		// A variable that doubles on every iteration.
		{"printf doubling", `{{$x := .s}}{{range .a}}{{$x = printf "%s%s" $x $x}}{{end}}{{len $x}}`, "bytes"},
		{"print doubling", `{{$x := .s}}{{range .a}}{{$x = print $x $x}}{{end}}{{len $x}}`, "bytes"},
		{"json growth", `{{$x := .s}}{{range .a}}{{$x = json $x}}{{end}}{{len $x}}`, "bytes"},
		{"escaper growth", `{{$x := "<&>"}}{{range .a}}{{$x = html $x $x}}{{end}}{{len $x}}`, "bytes"},
		// A million iterations, each copying a megabyte without printing.
		{"silent copying", `{{range 1000000}}{{$x := printf "%s" $.big}}{{end}}`, "steps"},
		{"silent escaping", `{{range 1000000}}{{$x := urlquery $.big}}{{end}}`, "steps"},
		{"printf width", `{{printf "%0999999999d" 1}}`, "width"},
		{"printf star width", `{{printf "%*d" 999999999 1}}`, "width"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := ParseTemplate("body", tt.text)
			require.NoError(t, err)
			var renderErr error
			start := time.Now()
			peak := sdktest.PeakHeap(func() {
				done := make(chan error, 1)
				go func() { _, err := tmpl.Render(data); done <- err }()
				select {
				case renderErr = <-done:
				case <-time.After(20 * time.Second):
					t.Fatalf("%s: still rendering after 20s", tt.text)
				}
			})
			t.Logf("%s: %v, peak heap +%d MiB: %v", tt.name, time.Since(start).Round(time.Millisecond), peak>>20, renderErr)
			require.Error(t, renderErr)
			require.True(t, sdk.IsPermanent(renderErr), "%v", renderErr)
			require.ErrorContains(t, renderErr, tt.want)
			require.Less(t, peak, uint64(64<<20), "peak heap during the attack")
		})
	}
}

// TestTemplatesRefusedAtConfigTime: what can be seen in the template
// itself is refused before any message arrives.
func TestTemplatesRefusedAtConfigTime(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"range nested too deep", "{{range .a}}{{range $.a}}{{range $.a}}{{range $.a}}x{{end}}{{end}}{{end}}{{end}}", "ranges nested"},
		{"deep nesting in a define", `{{define "d"}}{{range .}}{{range .}}{{range .}}{{range .}}{{end}}{{end}}{{end}}{{end}}{{end}}`, "ranges nested"},
		{"recursion", `{{define "a"}}{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}`, "calls itself"},
		{"mutual recursion", `{{define "a"}}{{template "b" .}}{{end}}{{define "b"}}{{template "a" .}}{{end}}{{template "a" .}}`, "calls itself"},
		{"too long", strings.Repeat("x", MaxTemplateLen+1), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTemplate("body", tt.text)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := ParseTemplate("body", "{{range .a}}{{range .b}}{{range .c}}{{.}}{{end}}{{end}}{{end}}")
	require.NoError(t, err, "three levels are allowed")
}

// TestBudgetLeavesNormalTemplatesAlone: a body over a large but reasonable
// message renders as before.
func TestBudgetLeavesNormalTemplatesAlone(t *testing.T) {
	items := make([]string, 20_000)
	for i := range items {
		items[i] = fmt.Sprintf(`{"sku":"SKU-%05d","qty":%d}`, i, i%5)
	}
	data := MessageData(sdk.Message{ID: "m", Body: []byte(`{"items":[` + strings.Join(items, ",") + `]}`)})
	tmpl, err := ParseTemplate("body", `[{{range $i, $x := .items}}{{if $i}},{{end}}{"sku":{{json $x.sku}},"qty":{{$x.qty}},"n":{{printf "%05d" $i}}}{{end}}]`)
	require.NoError(t, err)
	out, err := tmpl.Render(data)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(out, `[{"sku":"SKU-00000","qty":0,"n":00000},{"sku":"SKU-00001"`), out[:80])
	require.Equal(t, 20_000, strings.Count(out, `"sku"`))
}

// TestConcurrentRendersCountApart: renders of one template running at once
// each have their own budget, so a hostile message does not fail the
// others and they do not add up to a failure.
func TestConcurrentRendersCountApart(t *testing.T) {
	tmpl, err := ParseTemplate("body", `{{range .a}}{{$x := printf "%s" $.s}}{{end}}{{len .a}}`)
	require.NoError(t, err)
	small := MessageData(sdk.Message{ID: "m", Body: []byte(`{"a":[1,2,3],"s":"` + strings.Repeat("x", 6000) + `"}`)})
	bomb := MessageData(sdk.Message{ID: "m", Body: []byte(`{"a":[` + strings.TrimSuffix(strings.Repeat("1,", 20000), ",") + `],"s":"` + strings.Repeat("x", 6000) + `"}`)})
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			data := small
			if i%8 == 0 {
				data = bomb
			}
			out, err := tmpl.Render(data)
			if i%8 == 0 {
				if err == nil {
					err = fmt.Errorf("the bomb rendered %d bytes", len(out))
				} else {
					err = nil
				}
			}
			errs <- err
		}()
	}
	for range 64 {
		require.NoError(t, <-errs)
	}
}
