package roles

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/provision/local"
)

func TestPlacementPolicyFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	p, err := PlacementPolicyFromEnv(env(nil))
	require.NoError(t, err)
	require.Equal(t, activities.DefaultPlacementPolicy, p)

	p, err = PlacementPolicyFromEnv(env(map[string]string{
		PromoteIntegrationsVar: "3", PromoteRateVar: "1000", PlacementWindowVar: "30s", DemoteAfterVar: "2m", PlacementCheckVar: "2s", PlacementSweepVar: "90s",
	}))
	require.NoError(t, err)
	require.Equal(t, activities.PlacementPolicy{PromoteIntegrations: 3, PromoteRate: 1000, Window: 30 * time.Second,
		DemoteAfter: 2 * time.Minute, CheckEvery: 2 * time.Second, SweepEvery: 90 * time.Second}, p)

	for name, bad := range map[string]map[string]string{
		"negative count":  {PromoteIntegrationsVar: "-1"},
		"not a count":     {PromoteIntegrationsVar: "many"},
		"NaN rate":        {PromoteRateVar: "NaN"},
		"negative rate":   {PromoteRateVar: "-5"},
		"short window":    {PlacementWindowVar: "1s"},
		"not a duration":  {DemoteAfterVar: "soon"},
		"checks too fast": {PlacementCheckVar: "10ms"},
		"sweeps too fast": {PlacementSweepVar: "100ms"},
		"sweeps never":    {PlacementSweepVar: "-1m"},
	} {
		_, err := PlacementPolicyFromEnv(env(bad))
		require.Error(t, err, name)
	}
}

func TestProvisionerFromEnv(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	p, closeP, err := ProvisionerFromEnv(env(nil), nil)
	require.NoError(t, err)
	require.Nil(t, p, "unset: no provisioner")
	closeP()
	p, closeP, err = ProvisionerFromEnv(env(map[string]string{ProvisionerVar: "local", ProvisionerDirVar: t.TempDir()}), nil)
	require.NoError(t, err)
	require.IsType(t, &local.Provisioner{}, p)
	closeP()
	for name, bad := range map[string]map[string]string{
		"local without a directory":    {ProvisionerVar: "local"},
		"kubernetes without namespace": {ProvisionerVar: "kubernetes"},
		"kubernetes outside a cluster": {ProvisionerVar: "kubernetes", "VRSKY_PROVISIONER_NAMESPACE": "tenants", "VRSKY_PROVISIONER_PLATFORM_LABELS": "app=vrsky"},
		"unknown kind":                 {ProvisionerVar: "docker"},
	} {
		_, _, err := ProvisionerFromEnv(env(bad), nil)
		require.Error(t, err, name)
	}
}
