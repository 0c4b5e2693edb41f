package roles

import (
	"fmt"
	"strconv"
	"time"

	"github.com/vrsky/vrsky/activities"
)

// The variables that set when tenants move between the shared cluster and
// a dedicated NATS instance (docs/nats.md).
const (
	PromoteIntegrationsVar = "VRSKY_PLACEMENT_PROMOTE_INTEGRATIONS"
	PromoteRateVar         = "VRSKY_PLACEMENT_PROMOTE_RATE"
	PlacementWindowVar     = "VRSKY_PLACEMENT_WINDOW"
	DemoteAfterVar         = "VRSKY_PLACEMENT_DEMOTE_AFTER"
	PlacementCheckVar      = "VRSKY_PLACEMENT_CHECK_EVERY"
)

// PlacementPolicyFromEnv reads the placement thresholds; what is unset
// keeps activities.DefaultPlacementPolicy's value, and 0 disables a
// promotion trigger.
func PlacementPolicyFromEnv(getenv func(string) string) (activities.PlacementPolicy, error) {
	p := activities.DefaultPlacementPolicy
	if v := getenv(PromoteIntegrationsVar); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, fmt.Errorf("%s: want a count ≥ 0, got %q", PromoteIntegrationsVar, v)
		}
		p.PromoteIntegrations = n
	}
	if v := getenv(PromoteRateVar); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r != r {
			return p, fmt.Errorf("%s: want messages per second ≥ 0, got %q", PromoteRateVar, v)
		}
		p.PromoteRate = r
	}
	for _, d := range []struct {
		name string
		into *time.Duration
		min  time.Duration
	}{
		{PlacementWindowVar, &p.Window, 10 * time.Second},
		{DemoteAfterVar, &p.DemoteAfter, 10 * time.Second},
		{PlacementCheckVar, &p.CheckEvery, time.Second},
	} {
		v := getenv(d.name)
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil || dur < d.min {
			return p, fmt.Errorf("%s: want a duration of at least %s, got %q", d.name, d.min, v)
		}
		*d.into = dur
	}
	return p, nil
}
