package router_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vrsky/vrsky/connectors/router"
	"github.com/vrsky/vrsky/connectors/sdk"
)

func BenchmarkRoute1KiB(b *testing.B) {
	var items []string
	for i := range 8 {
		items = append(items, fmt.Sprintf(`{"sku":"SKU-%04d","name":"Item number %d","qty":%d,"price":%d.99}`, i, i, i+1, 10+i))
	}
	body := fmt.Sprintf(`{"id":"ord-123456","type":"order","status":"paid","total":512,"currency":"EUR",`+
		`"customer":{"id":42,"name":"Ann Example","email":"ann@example.com","vip":true,"address":{"street":"Main Street 1","city":"Springfield","zip":"12345","country":"DE"}},`+
		`"items":[%s],"note":"%s"}`, strings.Join(items, ","), strings.Repeat("x", 200))
	inst, err := router.Connector.Build(b.Context(), sdk.Env{}, json.RawMessage(`{"routes":[
		{"when":"type == 'refund'","to":["refunds"]},
		{"when":"type == 'order' && total > 1000","to":["big"]},
		{"when":"customer?.vip ?? false","to":["vip"]}],"default":["rest"]}`))
	if err != nil {
		b.Fatal(err)
	}
	f := inst.(sdk.Filter)
	msg := sdk.Message{ID: "m", Body: []byte(body)}
	b.SetBytes(int64(len(msg.Body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Filter(b.Context(), msg); err != nil {
			b.Fatal(err)
		}
	}
}
