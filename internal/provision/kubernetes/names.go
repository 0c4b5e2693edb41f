package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vrsky/vrsky/internal/spec"
)

// The labels and annotation on every object the provisioner makes.
const (
	managedByLabel = "app.kubernetes.io/managed-by"
	managedBy      = "vrsky"
	nameLabel      = "app.kubernetes.io/name"
	instanceLabel  = "app.kubernetes.io/instance"
	componentLabel = "app.kubernetes.io/component"
	component      = "tenant-nats"
	// TenantLabel carries the tenant's name, on every object whose tenant
	// name is a valid label value (all but names ending in "-").
	TenantLabel = "vrsky.io/tenant"
	// TenantAnnotation carries the tenant's name on every object.
	TenantAnnotation = "vrsky.io/tenant"
)

// The two forms of an instance's base name. A tenant name that is a DNS
// label short enough becomes readablePrefix+tenant; any other valid tenant
// name (ending in "-", or too long) becomes hashedPrefix, at most
// hashedKeep of its characters, "-" and hashLen hex digits of its SHA-256.
// The prefixes differ so the two forms never meet.
const (
	readablePrefix = "nats-t-"
	hashedPrefix   = "nats-h-"
	hashedKeep     = 22
	hashLen        = 10
	// maxBase keeps every derived name valid: the StatefulSet's at most 52
	// characters (the controller adds a revision hash to a label), the
	// headless Service's a DNS label, the PVCs' data-<base>-<ordinal>.
	maxBase = 40
)

// names are the object names and labels of one tenant's instance.
type names struct {
	tenant string
	// base names the StatefulSet, the client Service, the Secret and the
	// NetworkPolicy.
	base     string
	headless string
}

// namesFor derives the names of tenant's objects, refusing invalid tenant
// names before anything reaches the API server.
func namesFor(tenant string) (names, error) {
	if !spec.ValidName(tenant) {
		return names{}, fmt.Errorf("invalid tenant name %q", tenant)
	}
	base := readablePrefix + tenant
	if len(base) > maxBase || len(validation.IsDNS1123Label(base)) > 0 {
		sum := sha256.Sum256([]byte(tenant))
		keep := tenant[:min(len(tenant), hashedKeep)]
		keep = strings.TrimRight(keep, "-")
		if keep != "" {
			keep += "-"
		}
		base = hashedPrefix + keep + hex.EncodeToString(sum[:])[:hashLen]
	}
	n := names{tenant: tenant, base: base, headless: base + "-headless"}
	for _, s := range []string{n.base, n.headless} {
		if msgs := validation.IsDNS1035Label(s); len(msgs) > 0 {
			return names{}, fmt.Errorf("tenant %q: derived name %q: %s", tenant, s, strings.Join(msgs, "; "))
		}
	}
	return n, nil
}

// selector is the label set the instance's pods are selected by.
func (n names) selector() map[string]string {
	return map[string]string{nameLabel: "nats", instanceLabel: n.base, componentLabel: component}
}

// labels go on every object of the instance.
func (n names) labels() map[string]string {
	l := n.selector()
	l[managedByLabel] = managedBy
	if len(validation.IsValidLabelValue(n.tenant)) == 0 {
		l[TenantLabel] = n.tenant
	}
	return l
}

// annotations go on every object of the instance.
func (n names) annotations() map[string]string {
	return map[string]string{TenantAnnotation: n.tenant}
}

// pod is the name of the i-th server's pod.
func (n names) pod(i int) string { return fmt.Sprintf("%s-%d", n.base, i) }
