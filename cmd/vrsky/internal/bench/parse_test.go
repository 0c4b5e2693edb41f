package bench

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSeq(t *testing.T) {
	tests := []struct {
		name string
		line string
		want int64
		ok   bool
	}{
		{name: "first field", line: `{"seq":12,"a":1}`, want: 12, ok: true},
		{name: "last field", line: `{"pad":"xx","seq":34}`, want: 34, ok: true},
		{name: "space after colon", line: `{"seq": 56 }`, want: 56, ok: true},
		{name: "zero", line: `{"seq":0}`, want: 0, ok: true},
		{name: "crlf", line: "{\"seq\":7\r", want: 7, ok: true},
		{name: "max int64", line: `{"seq":9223372036854775807}`, want: 1<<63 - 1, ok: true},
		{name: "empty", line: ``},
		{name: "no seq", line: `{"id":1}`},
		{name: "garbage", line: `\x00\xff not json at all`},
		{name: "string seq", line: `{"seq":"12"}`},
		{name: "negative", line: `{"seq":-1}`},
		{name: "float", line: `{"seq":1.5}`},
		{name: "exponent", line: `{"seq":1e3}`},
		{name: "no value", line: `{"seq":}`},
		{name: "cut short after key", line: `{"seq":`},
		{name: "cut short in number", line: `{"seq":123`},
		{name: "overflow", line: `{"seq":9223372036854775808}`},
		{name: "long overflow", line: `{"seq":99999999999999999999999}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseSeq([]byte(tt.line))
			require.Equal(t, tt.ok, ok)
			if tt.ok {
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func FuzzParseSeq(f *testing.F) {
	f.Add([]byte(`{"seq":12}`))
	f.Add([]byte(`{"seq":-`))
	f.Add([]byte(`"seq":99999999999999999999`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if seq, ok := ParseSeq(line); ok && seq < 0 {
			t.Fatalf("negative seq %d from %q", seq, line)
		}
	})
}
