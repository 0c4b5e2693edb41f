package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzAcceptedMatchesEncodingJSON: the 202's body is what encoding/json
// would write, for every ID the ingress can answer with.
func FuzzAcceptedMatchesEncodingJSON(f *testing.F) {
	for _, id := range []string{"order-1", `a"b\c`, "<&>", "~!@#$%^*()", strings.Repeat("z", MaxIdempotencyKey)} {
		f.Add(id, 0)
		f.Add(id, 1000)
	}
	f.Fuzz(func(t *testing.T, id string, count int) {
		if !ValidKey(id) || count < 0 {
			return
		}
		a := Accepted{ID: id, Count: count}
		var want bytes.Buffer
		require.NoError(t, json.NewEncoder(&want).Encode(a))
		require.Equal(t, want.String(), string(a.appendJSON(nil)))
	})
}
