package httpout

import (
	"encoding/json"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

// TestURLTemplateMustSpellOutTheHost: the scheme, host and port of a
// templated URL are literal, so no message can choose where the secret
// headers go.
func TestURLTemplateMustSpellOutTheHost(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"{{ .u }}", "literal http:// or https://"},
		{"ftp://erp.example.com/{{ .id }}", "literal http:// or https://"},
		{"https://erp.example.com{{ .sub }}", "host must be followed by"},
		{"https://erp.example.com{{ .sub }}/x", "host must be followed by"},
		{"https://{{ .host }}/x", "host must be followed by"},
		{"https://erp.{{ .domain }}.com/x", "host must be followed by"},
		{"https://erp.example.com:{{ .port }}/x", "host must be followed by"},
		{"https://user@erp.example.com/{{ .id }}", "user name"},
		{`https://erp.example.com\@attacker.net/{{ .id }}`, "not allowed"},
		{`https://erp.example.com\attacker.net/{{ .id }}`, "not a host"},
		{"https:///{{ .id }}", "no host"},
		{"{{ if .a }}https://a.example.com/{{ end }}", "literal http:// or https://"},
		{`https://erp.example.com/{{ define "x" }}a{{ end }}{{ template "x" }}`, "define"},
	} {
		t.Run(tt.text, func(t *testing.T) {
			_, err := ParseURLTemplate(tt.text)
			require.ErrorContains(t, err, tt.want)
		})
	}
	for _, ok := range []string{
		"https://erp.example.com/orders/{{ .id }}",
		"https://ERP.example.com:8443/{{ .id }}",
		"http://erp.example.com?id={{ .id }}",
		"https://erp.example.com#{{ .id }}",
		"https://[2001:db8::1]:8443/{{ .id }}",
		"https://erp.example.com/static",
	} {
		_, err := ParseURLTemplate(ok)
		require.NoError(t, err, ok)
	}
}

// TestURLTemplateEscapesWhatItInserts: a value inserted in the path is one
// path segment, one inserted after ? or # one query value, whatever it
// holds.
func TestURLTemplateEscapesWhatItInserts(t *testing.T) {
	const text = "https://erp.example.com/orders/{{ .id }}/lines?q={{ .q }}&n={{ .n }}#{{ .f }}"
	tmpl, err := ParseURLTemplate(text)
	require.NoError(t, err)
	render := func(id string) (string, error) {
		b, _ := json.Marshal(map[string]any{"id": id, "q": id, "n": 7, "f": id})
		return tmpl.Render(MessageData(sdk.Message{ID: "m", Body: b}))
	}
	for _, tt := range []struct{ value, path, query string }{
		{"o-1", "o-1", "o-1"},
		{".attacker.net/x", ".attacker.net%2Fx", ".attacker.net%2Fx"},
		{"../../admin", "..%2F..%2Fadmin", "..%2F..%2Fadmin"},
		{"%2e%2e", "%252e%252e", "%252e%252e"},
		{"@attacker.net", "@attacker.net", "%40attacker.net"},
		{`\attacker.net`, "%5Cattacker.net", "%5Cattacker.net"},
		{"x?admin=1#y", "x%3Fadmin=1%23y", "x%3Fadmin%3D1%23y"},
		{"a&b=c d", "a&b=c%20d", "a%26b%3Dc+d"},
		{"\u2025", "%E2%80%A5", "%E2%80%A5"},                                     // two dot leader
		{"\uff0fetc", "%EF%BC%8Fetc", "%EF%BC%8Fetc"},                            // fullwidth solidus
		{"\u202egro.rekcatta", "%E2%80%AEgro.rekcatta", "%E2%80%AEgro.rekcatta"}, // right-to-left override
		{"a\r\nHost: x", "a%0D%0AHost:%20x", "a%0D%0AHost%3A+x"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			got, err := render(tt.value)
			require.NoError(t, err)
			want := fmt.Sprintf("https://erp.example.com/orders/%s/lines?q=%s&n=7#%s", tt.path, tt.query, tt.path)
			require.Equal(t, want, got)
		})
	}
	for _, dots := range []string{".", ".."} {
		_, err := render(dots)
		require.ErrorContains(t, err, "dot segment")
		require.True(t, sdk.IsPermanent(err))
	}
}

func TestURLTemplateDotSegmentsFromLiteralAndValue(t *testing.T) {
	tmpl, err := ParseURLTemplate("https://erp.example.com/a/.{{ .x }}/b")
	require.NoError(t, err)
	_, err = tmpl.Render(map[string]any{"x": "."})
	require.ErrorContains(t, err, "dot segment")
	got, err := tmpl.Render(map[string]any{"x": "x"})
	require.NoError(t, err)
	require.Equal(t, "https://erp.example.com/a/.x/b", got)
}

// TestURLTemplateKeepsExplicitEscaping: templates written with pathEscape
// and urlquery render as they did.
func TestURLTemplateKeepsExplicitEscaping(t *testing.T) {
	tmpl, err := ParseURLTemplate("https://erp.example.com/orders/{{ pathEscape .path }}?q={{ urlquery .path }}&r={{ .path | urlquery }}&m={{ pathEscape .missing }}")
	require.NoError(t, err)
	got, err := tmpl.Render(map[string]any{"path": "../admin?x=1"})
	require.NoError(t, err)
	require.Equal(t, "https://erp.example.com/orders/..%2Fadmin%3Fx=1?q=..%2Fadmin%3Fx%3D1&r=..%2Fadmin%3Fx%3D1&m=", got)
}

// TestRenderedURLIsCheckedAgainstTheConfiguredHost: the last check before
// a request, whatever the template did.
func TestRenderedURLIsCheckedAgainstTheConfiguredHost(t *testing.T) {
	rule := urlRule{scheme: "https", host: "erp.example.com"}
	for _, bad := range []string{
		"https://erp.example.com.attacker.net/x",
		"https://attacker.net/x",
		"https://erp.example.com@attacker.net/x",
		"http://erp.example.com/x",
		"https://erp.example.com:444/x",
		"https://erp.example.com/a/%2e%2e/b",
		"https://erp.example.com/a/%2E./b",
		"https://erp.example.com/..",
		"://nope",
	} {
		err := rule.check(bad)
		require.Error(t, err, bad)
		require.True(t, sdk.IsPermanent(err))
		require.NotContains(t, err.Error(), "?")
	}
	require.NoError(t, rule.check("https://ERP.example.com/a/b?c=..&d=/"))
}

// TestProducerSendsInjectedValuesToTheConfiguredHostOnly plays the attacks
// through the producer: the request carrying the secret header reaches the
// configured host with the value escaped, or is not made at all.
func TestProducerSendsInjectedValuesToTheConfiguredHostOnly(t *testing.T) {
	t.Setenv("VRSKY_TEST_API_KEY", "key-123")
	tg := newTarget(t, nil)
	other := newTarget(t, nil)
	p := newProducer(t, tg.cfg(map[string]any{
		"url":           tg.srv.URL + "/orders/{{ .id }}?v={{ .id }}",
		"secretHeaders": map[string]any{"Authorization": map[string]string{"env": "VRSKY_TEST_API_KEY"}},
	}))
	err := p.Write(t.Context(), []sdk.Message{
		msg("sub", fmt.Sprintf(`{"id":".%s/x"}`, other.host)),
		msg("at", fmt.Sprintf(`{"id":"@%s/x"}`, other.host)),
		msg("dots", `{"id":".."}`),
	})
	var be *sdk.BatchError
	require.ErrorAs(t, err, &be)
	require.Len(t, be.Failed, 1)
	require.ErrorContains(t, be.Failed[2], "dot segment")
	require.True(t, sdk.IsPermanent(be.Failed[2]))
	require.Empty(t, other.requests())
	reqs := tg.requests()
	require.Len(t, reqs, 2)
	for i, r := range reqs {
		require.Equal(t, "key-123", r.Header.Get("Authorization"))
		require.Contains(t, []string{"v=" + url.QueryEscape("."+other.host+"/x"), "v=" + url.QueryEscape("@"+other.host+"/x")}, r.Query, i)
	}

	_, err = build(t.Context(), sdk.Env{}, json.RawMessage(`{"url":"https://erp.example.com{{ .sub }}"}`), nil)
	require.ErrorContains(t, err, "host must be followed by")
}
