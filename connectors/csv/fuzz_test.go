package csv_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/csv"
	"github.com/vrsky/vrsky/connectors/sdk"
)

// FuzzCSVToJSON: converting never panics, failures are permanent, and what
// converts is valid JSON that converts back to CSV.
func FuzzCSVToJSON(f *testing.F) {
	for _, seed := range []string{
		"a,b\n1,2\n",
		"\xEF\xBB\xBFid;n\r\n1;x\r\n",
		"a,b\n\"x, y\",\"q\"\"q\"\n",
		"a,b\n1,x\"y\n",
		"a,b\n1\n1,2,3\n",
		"a,a\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	plain, err := csv.New(csv.Config{})
	require.NoError(f, err)
	lenient, err := csv.New(csv.Config{Delimiter: ";", Ragged: csv.RaggedTruncate, TrimSpace: true, SkipRows: 1, Types: map[string]string{}})
	require.NoError(f, err)
	toCSV, err := csv.New(csv.Config{Direction: csv.ToCSV})
	require.NoError(f, err)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, c := range []*csv.Converter{plain, lenient} {
			out, err := c.Convert(ctx, sdk.Message{Body: body})
			if err != nil {
				require.True(t, sdk.IsPermanent(err), "bad input is permanent: %v", err)
				continue
			}
			require.True(t, json.Valid(out.Body), "invalid JSON %q from %q", out.Body, body)
			_, err = toCSV.Convert(ctx, out)
			require.NoError(t, err, "JSON %s from %q", out.Body, body)
		}
	})
}
