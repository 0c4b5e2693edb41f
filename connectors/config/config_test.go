package config_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/connectors/config"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    sample
		wantErr string
	}{
		{"empty means {}", "", sample{}, ""},
		{"null means {}", " null ", sample{}, ""},
		{"fields", `{"name":"a","count":2}`, sample{Name: "a", Count: 2}, ""},
		{"unknown field", `{"name":"a","nmae":"b"}`, sample{}, `unknown field "nmae"`},
		{"wrong type", "{\n\"count\": \"x\"}", sample{}, "line 2, column"},
		{"malformed", "{\"name\": }", sample{}, "line 1, column 10"},
		{"trailing data", `{"name":"a"} {}`, sample{}, "data after the top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sample
			err := config.Decode(json.RawMessage(tt.raw), &got)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.ErrorContains(t, err, "decode config")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
