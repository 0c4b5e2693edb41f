package httpout

import (
	"net/url"
	"strings"
	"testing"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// FuzzURLValue inserts any value in the path, query and fragment of a
// URL template: the rendered URL keeps the configured host and each
// value reads back whole from the one place it was put, or the message
// fails permanently.
func FuzzURLValue(f *testing.F) {
	for _, seed := range []string{
		"o-1", ".attacker.net/x", "../../admin", "..", ".", "%2e%2e", "@attacker.net", `\attacker.net`,
		"x?admin=1#y", "a&b=c d", "\u2025", "\uff0fetc", "\u202e", "a\r\nHost: x", "", "%", "[::1]:80",
	} {
		f.Add(seed)
	}
	tmpl, err := ParseURLTemplate("https://erp.example.com/a/{{ .v }}/b?q={{ .v }}#{{ .v }}")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := tmpl.Render(map[string]any{"v": v})
		if err != nil {
			if !sdk.IsPermanent(err) || (v != "." && v != "..") {
				t.Fatalf("value %q: %v", v, err)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("value %q gave %q, not a url: %v", v, got, err)
		}
		if u.Scheme != "https" || u.Host != "erp.example.com" || u.User != nil {
			t.Fatalf("value %q moved the request to %q", v, got)
		}
		segs := strings.Split(u.EscapedPath(), "/")
		if len(segs) != 4 || segs[1] != "a" || segs[3] != "b" {
			t.Fatalf("value %q changed the path: %q", v, u.EscapedPath())
		}
		if seg, err := url.PathUnescape(segs[2]); err != nil || seg != v {
			t.Fatalf("value %q reads back from the path as %q", v, seg)
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(q) != 1 || q.Get("q") != v {
			t.Fatalf("value %q changed the query: %q", v, u.RawQuery)
		}
		if u.Fragment != v {
			t.Fatalf("value %q reads back from the fragment as %q", v, u.Fragment)
		}
	})
}

// FuzzURLTemplate parses any URL template: one that is accepted renders,
// for any message, to its own scheme and host or fails permanently.
func FuzzURLTemplate(f *testing.F) {
	for _, seed := range []string{
		"https://erp.example.com/orders/{{ .id }}",
		"https://erp.example.com{{ .sub }}",
		"https://{{ .host }}/x",
		"http://erp.example.com:8080?x={{ .v }}",
		"https://erp.example.com/{{ if .a }}{{ .a }}{{ else }}none{{ end }}?q={{ range .l }}{{ . }},{{ end }}",
		"https://erp.example.com/{{ pathEscape .id }}?q={{ urlquery .id }}",
		"https://[::1]:8443/{{ .id }}",
		"https://erp.example.com/static",
	} {
		f.Add(seed, `{"id":"../x","sub":".evil.net","a":"@b","l":["/","?"],"v":"#"}`)
	}
	f.Fuzz(func(t *testing.T, text, body string) {
		tmpl, err := ParseURLTemplate(text)
		if err != nil || tmpl.Static() {
			return
		}
		got, err := tmpl.Render(MessageData(sdk.Message{ID: "m", Body: []byte(body)}))
		if err != nil {
			if !sdk.IsPermanent(err) {
				t.Fatalf("non-permanent error: %v", err)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || !strings.EqualFold(u.Host, tmpl.url.host) || !strings.EqualFold(u.Scheme, tmpl.url.scheme) {
			t.Fatalf("template %q rendered %q, not on %s://%s", text, got, tmpl.url.scheme, tmpl.url.host)
		}
	})
}

// FuzzTemplate parses and renders any template over any message: no
// panic, errors are permanent, and the output is within MaxRenderSize.
func FuzzTemplate(f *testing.F) {
	for _, seed := range []string{
		"Big order {{ .id }}: {{ .total }}",
		`{"order":{{ json .id }},"lines":[{{ range $i, $x := .items }}{{ if $i }},{{ end }}{{ json $x }}{{ end }}]}`,
		"{{ range .items }}{{ range $.items }}{{ range $.items }}{{ $.s }}{{ end }}{{ end }}{{ end }}",
		`{{ $x := .s }}{{ range .items }}{{ $x = printf "%s%s" $x $x }}{{ end }}{{ len $x }}`,
		`{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}`,
		`{{ printf "%0999d|%.3f|%q" 1 .total .s }}`,
		"{{ range 100 }}{{ html $.s }}{{ js $.s }}{{ urlquery $.s }}{{ pathEscape $.s }}{{ end }}",
	} {
		f.Add(seed, `{"id":"o-1","total":12.5,"s":"<a&b>\"","items":[1,{"k":"v"},[2]]}`)
	}
	f.Fuzz(func(t *testing.T, text, body string) {
		tmpl, err := ParseTemplate("t", text)
		if err != nil {
			return
		}
		out, err := tmpl.Render(MessageData(sdk.Message{ID: "m", Body: []byte(body)}))
		if err != nil {
			if !sdk.IsPermanent(err) {
				t.Fatalf("non-permanent error: %v", err)
			}
			return
		}
		if len(out) > MaxRenderSize {
			t.Fatalf("rendered %d bytes", len(out))
		}
	})
}
