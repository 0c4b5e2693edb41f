package roles

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/activities"
)

func TestPlacementPolicyFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	p, err := PlacementPolicyFromEnv(env(nil))
	require.NoError(t, err)
	require.Equal(t, activities.DefaultPlacementPolicy, p)

	p, err = PlacementPolicyFromEnv(env(map[string]string{
		PromoteIntegrationsVar: "3", PromoteRateVar: "1000", PlacementWindowVar: "30s", DemoteAfterVar: "2m", PlacementCheckVar: "2s",
	}))
	require.NoError(t, err)
	require.Equal(t, activities.PlacementPolicy{PromoteIntegrations: 3, PromoteRate: 1000, Window: 30 * time.Second,
		DemoteAfter: 2 * time.Minute, CheckEvery: 2 * time.Second}, p)

	for name, bad := range map[string]map[string]string{
		"negative count":  {PromoteIntegrationsVar: "-1"},
		"not a count":     {PromoteIntegrationsVar: "many"},
		"NaN rate":        {PromoteRateVar: "NaN"},
		"negative rate":   {PromoteRateVar: "-5"},
		"short window":    {PlacementWindowVar: "1s"},
		"not a duration":  {DemoteAfterVar: "soon"},
		"checks too fast": {PlacementCheckVar: "10ms"},
	} {
		_, err := PlacementPolicyFromEnv(env(bad))
		require.Error(t, err, name)
	}
}
