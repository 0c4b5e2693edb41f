package jsonbody_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/vrsky/vrsky/connectors/jsonbody"
)

// orderBody is a 1 KiB order shaped like the load generator's.
func orderBody() []byte {
	var b strings.Builder
	b.WriteString(`{"seq":12345,"customer":{"id":"c-345","name":"Customer 345","email":"customer345@example.com","tier":"gold"},"items":[`)
	for k := range 3 {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"sku-` + strconv.Itoa(345+k) + `","qty":` + strconv.Itoa(1+k) + `,"price":` + strconv.Itoa(5+3*k) + `.25}`)
	}
	b.WriteString(`],"pad":"`)
	b.WriteString(strings.Repeat("x", 1024-b.Len()-2))
	b.WriteString(`"}`)
	return []byte(b.String())
}

func BenchmarkDecode1KiB(b *testing.B) {
	body := orderBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonbody.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode1KiB(b *testing.B) {
	doc, err := jsonbody.Decode(orderBody())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonbody.Encode(doc); err != nil {
			b.Fatal(err)
		}
	}
}
