package bench

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/jsonexpr"
)

func TestAppendBodyIsValidJSONOfExactlyTheSize(t *testing.T) {
	total, err := jsonexpr.Compile("sum(map(items, #.qty * #.price))")
	require.NoError(t, err)
	for _, size := range []int{MinBodySize, 512, 1024, 4096, 1 << 20} {
		for _, seq := range []int64{0, 7, 10, 999_999, 1<<62 + 5} {
			b, err := AppendBody(nil, seq, size)
			require.NoError(t, err, "size %d seq %d", size, seq)
			require.Len(t, b, size, "size %d seq %d", size, seq)

			var v map[string]any
			require.NoError(t, json.Unmarshal(b, &v), "size %d seq %d", size, seq)
			for _, field := range []string{"seq", "customer", "items", "pad"} {
				require.Contains(t, v, field)
			}
			got, ok := ParseSeq(b)
			require.True(t, ok)
			require.Equal(t, seq, got)

			// The converter's expression has numbers to work on.
			var items struct {
				Items []map[string]any `json:"items"`
			}
			require.NoError(t, json.Unmarshal(b, &items))
			fields := map[string]any{"items": toAny(items.Items)}
			sum, err := total.Run(fields)
			require.NoError(t, err)
			require.Greater(t, sum, 0.0)
		}
	}
}

func toAny(items []map[string]any) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

func TestAppendBodyAppendsToDst(t *testing.T) {
	dst := []byte("prefix")
	b, err := AppendBody(dst, 42, 600)
	require.NoError(t, err)
	require.Equal(t, "prefix", string(b[:6]))
	require.Len(t, b, 606)
}

func TestAppendBodyRejects(t *testing.T) {
	_, err := AppendBody(nil, 1, 100)
	require.ErrorContains(t, err, "too small")
	_, err = AppendBody(nil, -1, 1024)
	require.ErrorContains(t, err, "negative seq")
	// The smallest size works even for the largest seq.
	_, err = AppendBody(nil, 1<<63-1, MinBodySize)
	require.NoError(t, err)
}
