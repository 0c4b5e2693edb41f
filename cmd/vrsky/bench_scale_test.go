package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBenchScaleFlags: the scale scenario's flags reach its settings, which
// the other scenarios refuse, and bad values are refused before any stack
// starts.
func TestBenchScaleFlags(t *testing.T) {
	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"scale flag, other scenario": {[]string{"--tenants", "3"}, "settings of the scale scenario only"},
		"flood, other scenario":      {[]string{"--scenario", "cdc", "--flood-tenant-rate", "10"}, "settings of the scale scenario only"},
		"fewer integrations":         {[]string{"--scenario", "scale", "--tenants", "10", "--integrations", "5"}, "at least one per tenant"},
		"too many active":            {[]string{"--scenario", "scale", "--tenants", "1", "--integrations", "2", "--active", "3"}, "active 3"},
		"negative runners":           {[]string{"--scenario", "scale", "--runners", "-1"}, "runners -1"},
		"short idle window":          {[]string{"--scenario", "scale", "--idle-window", "10ms"}, "idle window 10ms"},
		"negative deploy timeout":    {[]string{"--scenario", "scale", "--deploy-timeout", "-1s"}, "deploy timeout"},
		"negative idle settle":       {[]string{"--scenario", "scale", "--idle-settle", "-1s"}, "idle settle -1s"},
	} {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"bench", "--data-dir", t.TempDir()}, tt.args...), &out, &errOut)
			require.ErrorContains(t, err, tt.want)
			require.Empty(t, out.String())
		})
	}
}
