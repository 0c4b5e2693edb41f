package jsonexpr_test

import (
	"testing"

	"github.com/vrsky/vrsky/connectors/jsonexpr"
)

// orderFields is a typical order's top-level fields: eight items.
func orderFields() map[string]any {
	items := make([]any, 8)
	for i := range items {
		items[i] = map[string]any{"sku": "SKU", "qty": float64(i + 1), "price": float64(10+i) + 0.99}
	}
	return map[string]any{"id": "ord-1", "type": "order", "total": 512.0, "items": items,
		"customer": map[string]any{"name": "Ann Example", "vip": true}}
}

func BenchmarkRun(b *testing.B) {
	for _, src := range []string{
		"type == 'order' && total > 1000",
		"sum(map(items, #.qty * #.price))",
		"upper(customer.name) + ' <' + id + '>'",
	} {
		b.Run(src, func(b *testing.B) {
			p, err := jsonexpr.Compile(src)
			if err != nil {
				b.Fatal(err)
			}
			fields := orderFields()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Run(fields); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
