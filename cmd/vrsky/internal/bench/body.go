package bench

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// MinBodySize is the smallest body AppendBody can build for any seq.
const MinBodySize = 320

// bodyItems is how many line items every generated order carries.
const bodyItems = 3

// AppendBody appends a JSON object of exactly size bytes for message seq to
// dst: an order with a customer, line items and a "pad" string that fills it
// up to size. The items make the pipeline's converter do real work
// (sum(map(items, #.qty * #.price))) and seq lets the sink reader match
// arrivals to intended send times.
func AppendBody(dst []byte, seq int64, size int) ([]byte, error) {
	if seq < 0 {
		return dst, fmt.Errorf("build body: negative seq %d", seq)
	}
	start := len(dst)
	dst = slices.Grow(dst, size) // once, not by doubling: bodies can be 10 MiB
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	cust := seq % 1000
	dst = append(dst, `,"customer":{"id":"c-`...)
	dst = strconv.AppendInt(dst, cust, 10)
	dst = append(dst, `","name":"Customer `...)
	dst = strconv.AppendInt(dst, cust, 10)
	dst = append(dst, `","email":"customer`...)
	dst = strconv.AppendInt(dst, cust, 10)
	dst = append(dst, `@example.com","tier":"gold"},"items":[`...)
	for k := int64(0); k < bodyItems; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"sku":"sku-`...)
		dst = strconv.AppendInt(dst, (seq+k)%500, 10)
		dst = append(dst, `","qty":`...)
		dst = strconv.AppendInt(dst, 1+(seq+k)%5, 10)
		dst = append(dst, `,"price":`...)
		dst = strconv.AppendInt(dst, 5+3*k, 10)
		dst = append(dst, ".25}"...)
	}
	dst = append(dst, `],"pad":"`...)
	const tail = `"}`
	pad := size - (len(dst) - start) - len(tail)
	if pad < 0 {
		return dst[:start], errors.New("build body: size " + strconv.Itoa(size) + " is too small for the order fields")
	}
	for pad > 0 {
		n := min(pad, len(padding))
		dst = append(dst, padding[:n]...)
		pad -= n
	}
	return append(dst, tail...), nil
}

// padding fills bodies up to their size, a chunk at a time.
var padding = bytes.Repeat([]byte{'x'}, 64<<10)
