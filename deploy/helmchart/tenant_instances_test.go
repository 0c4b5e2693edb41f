package helmchart

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// apiCallsFile lists the calls the worker's Kubernetes provisioner makes,
// as its own tests record them on a fake API server.
const apiCallsFile = "../../internal/provision/kubernetes/testdata/api-calls.json"

type apiCall struct {
	Group    string `json:"group"`
	Resource string `json:"resource"`
	Verb     string `json:"verb"`
}

// granted expands a Role's rules into the calls they allow, refusing
// wildcards and rules narrowed to names (the provisioner's names depend on
// the tenant).
func granted(t *testing.T, rules []rbacv1.PolicyRule) map[apiCall]bool {
	t.Helper()
	out := map[apiCall]bool{}
	for _, r := range rules {
		require.Empty(t, r.ResourceNames, "resourceNames")
		require.Empty(t, r.NonResourceURLs)
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					require.NotContains(t, []string{g, res, v}, "*", "wildcards grant more than the provisioner uses")
					out[apiCall{Group: g, Resource: res, Verb: v}] = true
				}
			}
		}
	}
	return out
}

// TestTenantInstancesRoleGrantsExactlyWhatTheProvisionerCalls: the Role
// the chart gives the worker allows every call the provisioner makes and
// nothing more.
func TestTenantInstancesRoleGrantsExactlyWhatTheProvisionerCalls(t *testing.T) {
	doc, err := os.ReadFile(apiCallsFile)
	require.NoError(t, err)
	var calls []apiCall
	require.NoError(t, json.Unmarshal(doc, &calls))
	require.NotEmpty(t, calls)
	want := map[apiCall]bool{}
	for _, c := range calls {
		want[c] = true
	}

	r := render(t, valuesOf(t, "tenant-instances"))
	require.NoError(t, Check(r))
	o, ok := r.Find("Role", "vrsky-tenant-instances")
	require.True(t, ok)
	role := o.Value.(*rbacv1.Role)
	require.Equal(t, "vrsky-tenants", role.Namespace, "the Role lives where the instances do")
	require.Equal(t, want, granted(t, role.Rules))

	// A rule more, or one less, is caught.
	require.NotEqual(t, want, granted(t, append(slices.Clone(role.Rules), rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}})))
	require.NotEqual(t, want, granted(t, role.Rules[1:]))

	o, ok = r.Find("RoleBinding", "vrsky-tenant-instances")
	require.True(t, ok)
	rb := o.Value.(*rbacv1.RoleBinding)
	require.Equal(t, "vrsky-tenants", rb.Namespace)
	require.Equal(t, rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "vrsky-tenant-instances"}, rb.RoleRef)
	require.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "vrsky-worker", Namespace: "vrsky"}}, rb.Subjects)
	o, ok = r.Find("ServiceAccount", "vrsky-worker")
	require.True(t, ok)
	require.False(t, *o.Value.(*corev1.ServiceAccount).AutomountServiceAccountToken, "pods opt in")
}

func TestTenantInstancesWorkerAndNetworkPolicies(t *testing.T) {
	// Off by default: no RBAC, no token, no provisioner variables.
	r := render(t, map[string]any{})
	require.Empty(t, r.OfKind("Role"))
	require.Empty(t, r.OfKind("RoleBinding"))
	require.Empty(t, r.OfKind("ServiceAccount"))
	for _, d := range []string{"vrsky-api", "vrsky-worker", "vrsky-runner"} {
		spec := deployment(t, r, d).Spec.Template.Spec
		require.False(t, *spec.AutomountServiceAccountToken, d)
		require.Empty(t, spec.ServiceAccountName, d)
		for k := range r.Env(spec.Containers[0]) {
			require.False(t, strings.HasPrefix(k, "VRSKY_PROVISIONER"), "%s: %s", d, k)
		}
	}

	r = render(t, valuesOf(t, "tenant-instances"))
	worker := deployment(t, r, "vrsky-worker").Spec.Template.Spec
	require.Equal(t, "vrsky-worker", worker.ServiceAccountName)
	require.True(t, *worker.AutomountServiceAccountToken)
	require.True(t, *worker.SecurityContext.RunAsNonRoot)
	env := r.Env(worker.Containers[0])
	require.Equal(t, map[string]string{
		"VRSKY_PROVISIONER":                    "kubernetes",
		"VRSKY_PROVISIONER_NAMESPACE":          "vrsky-tenants",
		"VRSKY_PROVISIONER_IMAGE":              "nats:2.15.2-alpine",
		"VRSKY_PROVISIONER_REPLICAS":           "3",
		"VRSKY_PROVISIONER_STORAGE_SIZE":       "20Gi",
		"VRSKY_PROVISIONER_STORAGE_CLASS":      "fast-ssd",
		"VRSKY_PROVISIONER_RESOURCES":          `{"limits":{"cpu":"2","memory":"2Gi"},"requests":{"cpu":"250m","memory":"512Mi"}}`,
		"VRSKY_PROVISIONER_PLATFORM_NAMESPACE": "vrsky",
		"VRSKY_PROVISIONER_PLATFORM_LABELS":    "app.kubernetes.io/name=vrsky,app.kubernetes.io/instance=vrsky",
	}, provisionerEnv(env))
	// The platform labels the provisioner lets in are the roles' own.
	for _, role := range []string{"api", "worker", "runner"} {
		labels := deployment(t, r, "vrsky-"+role).Spec.Template.Labels
		require.Equal(t, "vrsky", labels["app.kubernetes.io/name"])
		require.Equal(t, "vrsky", labels["app.kubernetes.io/instance"])
		require.Equal(t, role, labels["app.kubernetes.io/component"])
	}
	for _, d := range []string{"vrsky-api", "vrsky-runner"} {
		require.False(t, *deployment(t, r, d).Spec.Template.Spec.AutomountServiceAccountToken, "%s has no business with the API server", d)
	}

	// The roles reach the instances' client port, the worker their
	// monitoring port too, in the instances' namespace only.
	for role, ports := range map[string][]int32{"api": {4222}, "worker": {4222, 8222}, "runner": {4222}} {
		rule := instanceEgress(t, policy(t, r, "vrsky-"+role))
		var got []int32
		for _, p := range rule.Ports {
			got = append(got, p.Port.IntVal)
		}
		require.ElementsMatch(t, ports, got, role)
		require.Len(t, rule.To, 1)
		require.Equal(t, "vrsky-tenants", rule.To[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	}

	// In the release's namespace: no namespace selector, the variable
	// names it, the Role is there; one server and no class by default.
	r = render(t, with(t, map[string]any{}, "tenantInstances:\n  enabled: true\n"))
	require.NoError(t, Check(r))
	env = r.Env(deployment(t, r, "vrsky-worker").Spec.Template.Spec.Containers[0])
	require.Equal(t, "vrsky", env["VRSKY_PROVISIONER_NAMESPACE"])
	require.Equal(t, "1", env["VRSKY_PROVISIONER_REPLICAS"])
	require.NotContains(t, env, "VRSKY_PROVISIONER_STORAGE_CLASS")
	require.Nil(t, instanceEgress(t, policy(t, r, "vrsky-worker")).To[0].NamespaceSelector)
	o, _ := r.Find("Role", "vrsky-tenant-instances")
	require.Equal(t, "vrsky", o.Value.(*rbacv1.Role).Namespace)
}

func TestTenantInstancesValuesAreChecked(t *testing.T) {
	for name, overlay := range map[string]string{
		"two servers":      "tenantInstances:\n  enabled: true\n  replicas: 2\n",
		"latest":           "tenantInstances:\n  enabled: true\n  image:\n    tag: latest\n",
		"bad namespace":    "tenantInstances:\n  enabled: true\n  namespace: Tenants\n",
		"bad size":         "tenantInstances:\n  enabled: true\n  storage:\n    size: lots\n",
		"no memory limit":  "tenantInstances:\n  enabled: true\n  resources:\n    limits: { cpu: \"1\", memory: null }\n",
		"unknown field":    "tenantInstances:\n  enabled: true\n  replica: 3\n",
		"no tag or digest": "tenantInstances:\n  enabled: true\n  image:\n    tag: \"\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Render(theChart(t), with(t, map[string]any{}, overlay), "vrsky", "vrsky")
			require.Error(t, err)
		})
	}
}

func provisionerEnv(env map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if strings.HasPrefix(k, "VRSKY_PROVISIONER") {
			out[k] = v
		}
	}
	return out
}

// instanceEgress is the egress rule to the tenants' instances.
func instanceEgress(t *testing.T, p *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicyEgressRule {
	t.Helper()
	for i, e := range p.Spec.Egress {
		for _, to := range e.To {
			if to.PodSelector != nil && to.PodSelector.MatchLabels["app.kubernetes.io/component"] == "tenant-nats" {
				require.Equal(t, "vrsky", to.PodSelector.MatchLabels["app.kubernetes.io/managed-by"])
				return &p.Spec.Egress[i]
			}
		}
	}
	t.Fatalf("NetworkPolicy %s: no egress to the tenants' instances", p.Name)
	return nil
}
