package roles

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHotRatePerRunnerFromEnv(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  float64
		bad   bool
	}{
		{value: "", want: 0},
		{value: "500", want: 500},
		{value: "2.5e3", want: 2500},
		{value: "0", bad: true},
		{value: "-10", bad: true},
		{value: "NaN", bad: true},
		{value: "+Inf", bad: true},
		{value: "1e999", bad: true},
		{value: "lots", bad: true},
		{value: "100 msgs/s", bad: true},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv(HotRatePerRunnerVar, tc.value)
			got, err := HotRatePerRunnerFromEnv()
			if tc.bad {
				require.ErrorContains(t, err, HotRatePerRunnerVar)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
