package httpout

import (
	"testing"

	"github.com/vrsky/vrsky/connectors/sdk"
)

func BenchmarkRender(b *testing.B) {
	body := `{"id":"ord-1","total":512.5,"customer":{"name":"Ann Example","vip":true},"items":[{"sku":"A","qty":1},{"sku":"B","qty":2},{"sku":"C","qty":3}]}`
	data := MessageData(sdk.Message{ID: "m", Body: []byte(body)})
	for _, tt := range []struct{ name, text string }{
		{"url", "https://erp.example.com/orders/{{ .id }}?customer={{ .customer.name }}"},
		{"text", "Big order {{ .id }}: {{ .total }} for {{ .customer.name }}"},
		{"body", `{"order":{{ json .id }},"lines":[{{ range $i, $x := .items }}{{ if $i }},{{ end }}{"sku":{{ json $x.sku }},"qty":{{ $x.qty }}}{{ end }}]}`},
	} {
		b.Run(tt.name, func(b *testing.B) {
			tmpl, err := ParseTemplate(tt.name, tt.text)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tmpl.Render(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
