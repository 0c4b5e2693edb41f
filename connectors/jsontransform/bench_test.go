package jsontransform_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vrsky/vrsky/connectors/jsontransform"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// body1KiB is a typical 1 KiB order event.
func body1KiB() []byte {
	var items []string
	for i := range 8 {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%04d","name":"Item number %d","qty":%d,"price":%d.99}`, i, i, i+1, 10+i))
	}
	b := fmt.Sprintf(`{"id":"ord-123456","type":"order","status":"paid","total":%d,"currency":"EUR",`+
		`"customer":{"id":42,"name":"Ann Example","email":"ann@example.com","vip":true,"address":{"street":"Main Street 1","city":"Springfield","zip":"12345","country":"DE"}},`+
		`"items":[%s],"note":"%s"}`, 512, strings.Join(items, ","), strings.Repeat("x", 200))
	return []byte(b)
}

func BenchmarkConvert1KiB(b *testing.B) {
	tr, err := jsontransform.New(jsontransform.Config{
		Defaults: map[string]any{"channel": "web"},
		Rename:   map[string]string{"note": "comment"},
		Set:      map[string]string{"customer.name": "upper(customer.name)", "gross": "total * 1.19"},
		Coerce:   map[string]string{"total": "string"},
		Remove:   []string{"customer.email"},
	})
	if err != nil {
		b.Fatal(err)
	}
	msg := sdk.Message{ID: "m", Body: body1KiB()}
	b.SetBytes(int64(len(msg.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.Convert(b.Context(), msg); err != nil {
			b.Fatal(err)
		}
	}
}
