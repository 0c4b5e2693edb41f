// Package floors holds the import rules between VRSky's floors in one
// table: each floor may import the floors below it and never one above.
// The walk of a webhook message (ingress connector → publisher → stage →
// settle) and of a tenant creation (api → control → workflow → activities
// → store) then only goes forward; docs/architecture.md draws both.
package floors

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/vrsky/vrsky/"

// floor is a set of packages and what none of them may depend on, even
// through another package.
type floor struct {
	name      string
	packages  []string
	forbidden []string // import path prefixes, also through other packages
	allowed   []string // exceptions to forbidden
	// forbiddenDirect may be reached through a floor below, never imported
	// here: the API reaches Temporal only through internal/control.
	forbiddenDirect []string
}

var (
	controlPlane = []string{module + "internal/control", module + "workflows", module + "activities", "go.temporal.io/"}
	apiFloor     = []string{module + "api", module + "ui"}
	assembly     = []string{module + "cmd/"}
	runtime      = []string{module + "hotpath"}
	connectors   = []string{module + "connectors/"}
	contract     = []string{module + "dataplane"}
)

func join(parts ...[]string) (all []string) {
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

var floors = []floor{
	{
		name: "foundations",
		packages: []string{"internal/logging", "internal/natsauth", "internal/secretbox", "internal/spec",
			"internal/store", "internal/blobstore", "internal/dbmigrate", "internal/natsserver",
			"internal/natscluster", "internal/pgcluster", "internal/s3dev", "internal/natsmetrics", "internal/gctarget"},
		forbidden: join(contract, runtime, connectors, controlPlane, apiFloor, assembly),
		allowed:   []string{module + "connectors/sdk"},
	},
	{
		// The provisioners start tenants' dedicated NATS instances for the
		// control plane's activities; they describe them with dataplane's
		// Instance and know nothing of what runs on them.
		name:      "provisioners",
		packages:  []string{"internal/provision/..."},
		forbidden: join(runtime, connectors, controlPlane, apiFloor, assembly),
		allowed:   []string{module + "connectors/sdk"},
	},
	{
		name:      "connectors",
		packages:  []string{"connectors/..."},
		forbidden: join(contract, runtime, controlPlane, apiFloor, assembly, []string{module + "internal/store"}),
	},
	{
		name:      "data-plane contract",
		packages:  []string{"dataplane"},
		forbidden: join(runtime, connectors, controlPlane, apiFloor, assembly, []string{"github.com/prometheus/"}),
		allowed:   []string{module + "connectors/sdk"},
	},
	{
		name:      "data-plane runtime",
		packages:  []string{"hotpath"},
		forbidden: join(controlPlane, apiFloor, assembly),
	},
	{
		name:      "control plane",
		packages:  []string{"internal/control", "internal/control/wire", "workflows", "activities"},
		forbidden: join(runtime, apiFloor, assembly),
	},
	{
		name:      "control client",
		packages:  []string{"internal/control", "internal/control/wire"},
		forbidden: []string{module + "workflows", module + "activities"},
	},
	{
		name:            "api",
		packages:        []string{"api"},
		forbidden:       join(controlPlane[1:3], runtime, assembly),
		forbiddenDirect: []string{"go.temporal.io/"},
	},
}

func TestEachFloorImportsOnlyTheFloorsBelow(t *testing.T) {
	for _, f := range floors {
		t.Run(f.name, func(t *testing.T) {
			for _, pkg := range f.packages {
				check(t, pkg, goList(t, "-deps", "{{.ImportPath}}", pkg), f.forbidden, f.allowed)
				check(t, pkg, goList(t, "", "{{join .Imports \"\\n\"}}", pkg), f.forbiddenDirect, nil)
			}
		})
	}
}

// goList lists what go list prints for pkg with the template, one field
// per line.
func goList(t *testing.T, flag, template, pkg string) []string {
	args := []string{"list", "-f", template}
	if flag != "" {
		args = append(args, flag)
	}
	out, err := exec.Command("go", append(args, module+pkg)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// check reports the first dependency under each forbidden prefix.
func check(t *testing.T, pkg string, deps, forbidden, allowed []string) {
	t.Helper()
	for _, p := range forbidden {
		for _, dep := range deps {
			if under(dep, p) && !underAny(dep, allowed) {
				t.Errorf("%s depends on %s: a floor above it (%s)", pkg, dep, p)
				break
			}
		}
	}
}

func under(dep, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(dep, prefix)
	}
	return dep == prefix || strings.HasPrefix(dep, prefix+"/")
}

func underAny(dep string, prefixes []string) bool {
	for _, p := range prefixes {
		if under(dep, p) {
			return true
		}
	}
	return false
}
