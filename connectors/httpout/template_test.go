package httpout

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func TestTemplateRender(t *testing.T) {
	body := `{"id":"o-1","total":12.50,"big":12345678901234567890,"n":null,"tags":["a","b"],"customer":{"name":"Ann","vip":true},"count":3,"path":"../admin?x=1"}`
	tests := []struct {
		text string
		want string
	}{
		{"plain text", "plain text"},
		{"{{/* a comment */}}text", "text"},
		{"Big order {{ .id }}: {{ .total }}", "Big order o-1: 12.5"},
		{"{{ .missing }}|{{ .n }}|", "||"},
		{"{{ .big }}", "12345678901234567890"},
		{"{{ .tags }} {{ .customer }}", `["a","b"] {"name":"Ann","vip":true}`},
		{"{{ json .id }} {{ json .missing }} {{ json .customer.name }}", `"o-1" null "Ann"`},
		{"{{ if .customer.vip }}VIP {{ end }}{{ .customer.name }}", "VIP Ann"},
		{"{{ if .missing }}yes{{ else }}no {{ .missing }}{{ end }}", "no "},
		{"{{ with .nobody }}{{ .name }}{{ else }}none{{ end }}", "none"},
		{"{{ range .tags }}[{{ . }}]{{ end }}", "[a][b]"},
		{"{{ $c := .count }}{{ $c }}", "3"},
		{`{{ define "x" }}<{{ .name }}>{{ end }}{{ template "x" .customer }}`, "<Ann>"},
		{"{{ printf \"%05d\" .count }}", "00003"},
		{"/orders/{{ pathEscape .path }}?q={{ urlquery .path }}&m={{ pathEscape .missing }}", "/orders/..%2Fadmin%3Fx=1?q=..%2Fadmin%3Fx%3D1&m="},
	}
	data := MessageData(sdk.Message{ID: "m-1", Body: []byte(body)})
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			tmpl, err := ParseTemplate("t", tt.text)
			require.NoError(t, err)
			got, err := tmpl.Render(data)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.text, tmpl.Text())
		})
	}
}

func TestTemplateStatic(t *testing.T) {
	for text, static := range map[string]bool{
		"":                          true,
		"https://x/":                true,
		"{{/* c */}}x":              true,
		"{{ .a }}":                  false,
		`{{ define "a" }}{{ end }}`: false,
	} {
		tmpl, err := ParseTemplate("t", text)
		require.NoError(t, err)
		require.Equal(t, static, tmpl.Static(), text)
	}
}

func TestTemplateErrorsArePermanent(t *testing.T) {
	tmpl, err := ParseTemplate("t", "{{ .customer.name }}")
	require.NoError(t, err)
	_, err = tmpl.Render(MessageData(sdk.Message{ID: "m", Body: []byte(`{}`)}))
	require.ErrorContains(t, err, "render template")
	require.True(t, sdk.IsPermanent(err))

	_, err = ParseTemplate("t", "{{ .a ")
	require.ErrorContains(t, err, "parse template")
	_, err = ParseTemplate("t", "{{ nosuchfunc .a }}")
	require.ErrorContains(t, err, "nosuchfunc")
	_, err = ParseTemplate("t", `{{ template "missing" }}x`)
	require.NoError(t, err)
}

func TestMessageData(t *testing.T) {
	require.Equal(t, map[string]any{"id": "m"}, MessageData(sdk.Message{ID: "m", Body: []byte("not json")}))
	require.Equal(t, map[string]any{"id": "m"}, MessageData(sdk.Message{ID: "m", Body: []byte("[1]")}))
	require.Equal(t, map[string]any{"id": "own", "a": 1}, MessageData(sdk.Message{ID: "m", Body: []byte(`{"id":"own","a":1}`)}))
}
