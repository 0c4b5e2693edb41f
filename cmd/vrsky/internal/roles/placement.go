package roles

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/vrsky/vrsky/activities"
	"github.com/vrsky/vrsky/internal/provision"
	"github.com/vrsky/vrsky/internal/provision/kubernetes"
	"github.com/vrsky/vrsky/internal/provision/local"
)

// The variables that set when tenants move between the shared cluster and
// a dedicated NATS instance (docs/nats.md).
const (
	PromoteIntegrationsVar = "VRSKY_PLACEMENT_PROMOTE_INTEGRATIONS"
	PromoteRateVar         = "VRSKY_PLACEMENT_PROMOTE_RATE"
	PlacementWindowVar     = "VRSKY_PLACEMENT_WINDOW"
	DemoteAfterVar         = "VRSKY_PLACEMENT_DEMOTE_AFTER"
	PlacementCheckVar      = "VRSKY_PLACEMENT_CHECK_EVERY"
	PlacementSweepVar      = "VRSKY_PLACEMENT_SWEEP_EVERY"
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
		{PlacementSweepVar, &p.SweepEvery, time.Second},
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

// ProvisionerVar chooses how the worker makes tenants' dedicated NATS
// instances: "local" (processes on its machine, under
// VRSKY_PROVISIONER_DIR), "kubernetes" (StatefulSets in
// VRSKY_PROVISIONER_NAMESPACE, see kubernetes.FromEnv), or unset: none,
// and no tenant can be moved.
const (
	ProvisionerVar    = "VRSKY_PROVISIONER"
	ProvisionerDirVar = "VRSKY_PROVISIONER_DIR"
)

// ProvisionerFromEnv builds the worker's provisioner; close stops what it
// started (local instances).
func ProvisionerFromEnv(getenv func(string) string, log *slog.Logger) (_ provision.Provisioner, close func(), err error) {
	switch kind := getenv(ProvisionerVar); kind {
	case "", "none":
		return nil, func() {}, nil
	case "local":
		dir := getenv(ProvisionerDirVar)
		if dir == "" {
			return nil, nil, fmt.Errorf("%s=local needs %s, the directory that holds the instances", ProvisionerVar, ProvisionerDirVar)
		}
		p := &local.Provisioner{Dir: dir, Logger: log}
		return p, p.Close, nil
	case "kubernetes":
		cfg, err := kubernetes.FromEnv(getenv)
		if err != nil {
			return nil, nil, fmt.Errorf("%s=kubernetes: %w", ProvisionerVar, err)
		}
		p, err := kubernetes.NewInCluster(cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("%s=kubernetes: %w", ProvisionerVar, err)
		}
		return p, func() {}, nil
	default:
		return nil, nil, fmt.Errorf("%s: want local, kubernetes or none, got %q", ProvisionerVar, kind)
	}
}
