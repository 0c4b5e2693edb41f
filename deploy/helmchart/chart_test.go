package helmchart

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

const chartDir = "../helm/vrsky"

var (
	loadOnce sync.Once
	loaded   *chart.Chart
	loadErr  error
)

// theChart is the chart as on disk, without files/ (another part of the
// project writes alerts and dashboards there; tests that need them add
// their own).
func theChart(t *testing.T) *chart.Chart {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = LoadChart(chartDir) })
	require.NoError(t, loadErr)
	return WithoutFiles(loaded, "files/")
}

// valueSets are the documented value sets; "default" is values.yaml alone.
var valueSets = []string{"default", "small", "ha", "external-everything", "tenant-instances"}

func valuesOf(t *testing.T, set string) map[string]any {
	t.Helper()
	if set == "default" {
		return map[string]any{}
	}
	v, err := ReadValues(filepath.Join(chartDir, "ci", set+"-values.yaml"))
	require.NoError(t, err)
	return v
}

func render(t *testing.T, vals map[string]any) *Release {
	t.Helper()
	r, err := Render(theChart(t), vals, "vrsky", "vrsky")
	require.NoError(t, err)
	return r
}

// with returns vals with one more values document merged over it.
func with(t *testing.T, vals map[string]any, overlay string) map[string]any {
	t.Helper()
	v, err := ReadValuesString(overlay)
	require.NoError(t, err)
	return MergeValues(vals, v)
}

func deployment(t *testing.T, r *Release, name string) *appsv1.Deployment {
	t.Helper()
	o, ok := r.Find("Deployment", name)
	require.True(t, ok, "Deployment %s", name)
	return o.Value.(*appsv1.Deployment)
}

func policy(t *testing.T, r *Release, name string) *networkingv1.NetworkPolicy {
	t.Helper()
	o, ok := r.Find("NetworkPolicy", name)
	require.True(t, ok, "NetworkPolicy %s", name)
	return o.Value.(*networkingv1.NetworkPolicy)
}

// TestValueSetsRenderAndPassEveryCheck renders the default values and each
// documented value set, decodes every object strictly and runs every check.
func TestValueSetsRenderAndPassEveryCheck(t *testing.T) {
	want := map[string]map[string]int{
		"default":             {"Deployment": 3, "StatefulSet": 1, "Job": 1, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 3, "NetworkPolicy": 7, "ConfigMap": 2, "Service": 7},
		"small":               {"Deployment": 3, "StatefulSet": 1, "Job": 1, "NetworkPolicy": 7, "ConfigMap": 2, "Service": 6},
		"ha":                  {"Deployment": 3, "StatefulSet": 1, "Job": 1, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 4, "NetworkPolicy": 7, "ConfigMap": 2, "Service": 7, "IngressRoute": 1, "Middleware": 3, "ServiceMonitor": 4},
		"external-everything": {"Deployment": 3, "Job": 1, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 2, "NetworkPolicy": 6, "ConfigMap": 1, "Service": 4, "ServiceMonitor": 3},
		"tenant-instances":    {"Deployment": 3, "StatefulSet": 1, "Job": 1, "HorizontalPodAutoscaler": 2, "PodDisruptionBudget": 3, "NetworkPolicy": 7, "ConfigMap": 2, "Service": 7, "ServiceAccount": 1, "Role": 1, "RoleBinding": 1},
	}
	for _, set := range valueSets {
		t.Run(set, func(t *testing.T) {
			r := render(t, valuesOf(t, set))
			require.NoError(t, Check(r))
			require.Equal(t, want[set], r.Kinds())
			total := 0
			for _, n := range r.Kinds() {
				total += n
			}
			t.Logf("%s: %d objects %v", set, total, r.Kinds())
			require.Contains(t, r.Notes, "vrsky-api.vrsky.svc:8080")
		})
	}
}

// TestLintPassesForEveryValueSet runs Helm's lint action (helm lint
// --strict) with each value set.
func TestLintPassesForEveryValueSet(t *testing.T) {
	for _, set := range valueSets {
		t.Run(set, func(t *testing.T) {
			require.Empty(t, Lint(chartDir, valuesOf(t, set)))
		})
	}
	t.Run("a broken value set fails lint", func(t *testing.T) {
		errs := Lint(chartDir, with(t, valuesOf(t, "small"), "nats:\n  replicas: 2\n"))
		require.NotEmpty(t, errs)
		require.ErrorContains(t, errs[0], "replicas")
	})
}

// TestBrokenValuesAreRefused: values that would make a broken or unsafe
// install fail at render time with a message naming the value.
func TestBrokenValuesAreRefused(t *testing.T) {
	cases := []struct{ name, overlay, want string }{
		{"image tagged latest", "image:\n  tag: latest\n", "image"},
		{"NATS image tagged latest", "nats:\n  image:\n    tag: latest\n", "/nats/image/tag"},
		{"an even NATS cluster", "nats:\n  replicas: 2\n", "/nats/replicas"},
		{"no NATS at all", "nats:\n  enabled: false\n", "nats.external.url"},
		{"no NATS keys Secret", "secrets:\n  natsKeys:\n    secretName: \"\"\n", "secretName"},
		{"no Secret for the database URL", "secrets:\n  existingSecret: \"\"\n", "secrets.databaseURL"},
		{"grace shorter than the drain", "terminationGracePeriodSeconds: 30\n", "terminationGracePeriodSeconds"},
		{"a misspelt key", "api:\n  replica: 3\n", "replica"},
		{"a container without limits", "runner:\n  resources:\n    limits: null\n", "limits"},
		{"Temporal without a port", "temporal:\n  address: temporal.example.com\n", "temporal"},
		{"S3 endpoint with a scheme", "s3:\n  endpoint: https://s3.example.com\n", "s3"},
		{"gateway without a host", "gateway:\n  enabled: true\n  host: \"\"\n", "host"},
		{"gateway host injecting a Traefik rule", "gateway:\n  enabled: true\n  host: \"a.example.com`) || Host(`evil.example.com\"\n", "host"},
		{"image tag injecting YAML", "image:\n  tag: \"1.0\\n    privileged: true\"\n", "tag"},
		{"webhook key TTL that is no duration", "api:\n  webhookKeyTTL: forever\n", "webhookKeyTTL"},
		{"remembered keys that are no count", "api:\n  webhookTenantKeys: many\n", "webhookTenantKeys"},
		{"log level", "logLevel: verbose\n", "logLevel"},
		{"no Prometheus peers", "networkPolicy:\n  prometheus: []\n", "prometheus"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Render(theChart(t), with(t, valuesOf(t, "small"), c.overlay), "vrsky", "vrsky")
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

// TestHostileStringValuesStayStrings: free-text values cannot add keys or
// objects to what is rendered.
func TestHostileStringValuesStayStrings(t *testing.T) {
	hostile := "x\nVRSKY_DATABASE_URL: postgres://a:b@c/d\n---\napiVersion: v1\nkind: Secret"
	vals := with(t, valuesOf(t, "small"), "tenantEnvAllow: "+strconv.Quote(hostile)+"\n")
	r := render(t, vals)
	o, ok := r.Find("ConfigMap", "vrsky")
	require.True(t, ok)
	cm := o.Value.(*corev1.ConfigMap)
	require.Equal(t, hostile, cm.Data["VRSKY_TENANT_ENV_ALLOW"])
	require.NotContains(t, cm.Data, "VRSKY_DATABASE_URL")
	require.Empty(t, r.OfKind("Secret"))
	// The value itself holds a URL with a password: the ConfigMap check
	// notices it.
	require.ErrorContains(t, CheckConfigMaps(r), "looks like a credential")
}

// TestChecksCatchBrokenObjects: each check fails on the mistake it exists
// for, so a chart change that makes that mistake fails the tests.
func TestChecksCatchBrokenObjects(t *testing.T) {
	cases := []struct {
		name  string
		check func(*Release) error
		spoil func(t *testing.T, r *Release)
		want  string
	}{
		{"no readiness probe", CheckContainers, func(t *testing.T, r *Release) {
			deployment(t, r, "vrsky-runner").Spec.Template.Spec.Containers[0].ReadinessProbe = nil
		}, "readiness probe"},
		{"no memory limit", CheckContainers, func(t *testing.T, r *Release) {
			delete(deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "no memory limit"},
		{"image tagged latest", CheckContainers, func(t *testing.T, r *Release) {
			deployment(t, r, "vrsky-worker").Spec.Template.Spec.Containers[0].Image = "ghcr.io/vrsky/vrsky:latest"
		}, "not a version"},
		{"image without a tag", CheckContainers, func(t *testing.T, r *Release) {
			deployment(t, r, "vrsky-worker").Spec.Template.Spec.Containers[0].Image = "registry:5000/vrsky"
		}, "no tag"},
		{"writable root filesystem", CheckContainers, func(t *testing.T, r *Release) {
			f := false
			deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "read-only"},
		{"capabilities kept", CheckContainers, func(t *testing.T, r *Release) {
			deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Drop = nil
		}, "drop ALL"},
		{"grace shorter than the drain", CheckContainers, func(t *testing.T, r *Release) {
			g := int64(30)
			deployment(t, r, "vrsky-runner").Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds"},
		{"a password in a ConfigMap", CheckConfigMaps, func(t *testing.T, r *Release) {
			o, _ := r.Find("ConfigMap", "vrsky")
			o.Value.(*corev1.ConfigMap).Data["VRSKY_S3_SECRET_KEY"] = "hunter2"
		}, "names a credential"},
		{"a database URL with its password in a ConfigMap", CheckConfigMaps, func(t *testing.T, r *Release) {
			o, _ := r.Find("ConfigMap", "vrsky")
			o.Value.(*corev1.ConfigMap).Data["DB"] = "postgres://vrsky:hunter2@db:5432/vrsky"
		}, "looks like a credential"},
		{"a ConfigMap over 1 MiB", CheckConfigMaps, func(t *testing.T, r *Release) {
			o, _ := r.Find("ConfigMap", "vrsky")
			o.Value.(*corev1.ConfigMap).Data["BIG"] = strings.Repeat("x", 1<<20)
		}, "1 MiB"},
		{"a credential variable set as a plain value", CheckCredentialsFromSecrets, func(t *testing.T, r *Release) {
			c := &deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0]
			c.Env = append(c.Env, corev1.EnvVar{Name: "VRSKY_SECRETS_KEY", Value: "abc"})
		}, "must come from a Secret"},
		{"a pod no NetworkPolicy governs", CheckNetworkPolicyCoverage, func(t *testing.T, r *Release) {
			deployment(t, r, "vrsky-worker").Spec.Template.Labels["app.kubernetes.io/component"] = "worker2"
		}, "not governed"},
		{"a Service selecting no pods", CheckSelectors, func(t *testing.T, r *Release) {
			o, _ := r.Find("Service", "vrsky-api")
			o.Value.(*corev1.Service).Spec.Selector["app.kubernetes.io/component"] = "apy"
		}, "matches no pods"},
		{"a Service targeting a port the pods lack", CheckSelectors, func(t *testing.T, r *Release) {
			o, _ := r.Find("Service", "vrsky-api-admin")
			o.Value.(*corev1.Service).Spec.Ports[0].TargetPort.StrVal = "metrics"
		}, "no container port"},
		{"a Deployment not selecting its pods", CheckSelectors, func(t *testing.T, r *Release) {
			deployment(t, r, "vrsky-api").Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "other"
		}, "does not match"},
		{"replicas under an HPA", CheckSelectors, func(t *testing.T, r *Release) {
			n := int32(2)
			deployment(t, r, "vrsky-runner").Spec.Replicas = &n
		}, "reset the scale"},
		{"an HPA aiming at nothing", CheckSelectors, func(t *testing.T, r *Release) {
			r.Objects = slices.DeleteFunc(r.Objects, func(o Object) bool { return o.Kind == "Deployment" && o.Name == "vrsky-runner" })
		}, "not in the release"},
		{"migrations not a hook", CheckHooks, func(t *testing.T, r *Release) {
			for i := range r.Objects {
				if r.Objects[i].Kind == "Job" {
					r.Objects[i].Hook, r.Objects[i].Events = false, nil
				}
			}
		}, "pre-install and pre-upgrade"},
		{"migrations using the release's ConfigMap", CheckHooks, func(t *testing.T, r *Release) {
			o, _ := r.Find("Job", "vrsky-migrate")
			c := &o.Value.(*batchv1.Job).Spec.Template.Spec.Containers[0]
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "vrsky"}}})
		}, "creates only after"},
		{"a ServiceMonitor scraping a missing port", CheckMonitoring, func(t *testing.T, r *Release) {
			o, _ := r.Find("ServiceMonitor", "vrsky-api")
			o.Value.(*ServiceMonitor).Spec.Endpoints[0].Port = "http"
		}, "no selected Service has a port"},
		{"the gateway exposing the admin port", CheckGateway, func(t *testing.T, r *Release) {
			o, _ := r.Find("IngressRoute", "vrsky-gateway")
			ir := o.Value.(*IngressRoute)
			ir.Spec.Routes[0].Services[0].Name = "vrsky-api-admin"
			ir.Spec.Routes[0].Services[0].Port.StrVal = "admin"
		}, "admin port"},
		{"the gateway without TLS", CheckGateway, func(t *testing.T, r *Release) {
			o, _ := r.Find("IngressRoute", "vrsky-gateway")
			o.Value.(*IngressRoute).Spec.TLS = nil
		}, "no TLS"},
		{"a route to a missing Middleware", CheckGateway, func(t *testing.T, r *Release) {
			r.Objects = slices.DeleteFunc(r.Objects, func(o Object) bool { return o.Name == "vrsky-gateway-webhooks-ratelimit" })
		}, "not in the release"},
		{"a Service name too long for DNS", CheckNames, func(t *testing.T, r *Release) {
			for i := range r.Objects {
				if r.Objects[i].Kind == "Service" && r.Objects[i].Name == "vrsky-api" {
					r.Objects[i].Name = strings.Repeat("a", 64)
				}
			}
		}, "63"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, valuesOf(t, "ha"))
			require.NoError(t, c.check(r), "the check passes before the object is spoilt")
			c.spoil(t, r)
			err := c.check(r)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
			require.Error(t, Check(r))
		})
	}
	require.ErrorIs(t, Check(&Release{}), ErrNoObjects)
}

// TestRolesGetTheConfigurationTheyNeed: each role gets the VRSKY_
// variables it refuses to start without, credentials from Secrets, and
// only the NATS file it needs: the keys file in the roles, the server
// configuration in NATS.
func TestRolesGetTheConfigurationTheyNeed(t *testing.T) {
	r := render(t, map[string]any{})
	needs := map[string][]string{
		"api":    {"VRSKY_DATABASE_URL", "VRSKY_NATS_URL", "VRSKY_TEMPORAL_ADDR", "VRSKY_S3_ENDPOINT", "VRSKY_ADMIN_KEY_SHA256", "VRSKY_SECRETS_KEY", "VRSKY_NATS_KEYS_FILE", "VRSKY_ADMIN_ADDR"},
		"worker": {"VRSKY_DATABASE_URL", "VRSKY_NATS_URL", "VRSKY_TEMPORAL_ADDR", "VRSKY_S3_ENDPOINT", "VRSKY_NATS_KEYS_FILE"},
		"runner": {"VRSKY_NATS_URL", "VRSKY_S3_ENDPOINT", "VRSKY_FILE_ROOT", "VRSKY_SECRETS_KEY", "VRSKY_NATS_KEYS_FILE", "VRSKY_RUNNER_NAME"},
	}
	for role, vars := range needs {
		d := deployment(t, r, "vrsky-"+role)
		c := d.Spec.Template.Spec.Containers[0]
		require.Equal(t, []string{role}, c.Args)
		env := r.Env(c)
		for _, v := range vars {
			require.NotEmpty(t, env[v], "%s needs %s", role, v)
		}
		require.Equal(t, "nats://vrsky-nats.vrsky.svc:4222", env["VRSKY_NATS_URL"])
		require.Equal(t, "3", env["VRSKY_NATS_REPLICAS"], "streams at the cluster's size")
		require.Equal(t, "secret:vrsky/s3-secret-key", env["VRSKY_S3_SECRET_KEY"])
		if role != "runner" {
			require.Equal(t, "secret:vrsky/database-url", env["VRSKY_DATABASE_URL"])
		} else {
			require.NotContains(t, env, "VRSKY_DATABASE_URL", "runners have no database")
		}
		// Listeners reachable from the kubelet and Prometheus, not loopback.
		require.True(t, strings.HasPrefix(env["VRSKY_HTTP_ADDR"], "0.0.0.0:"), role)
		var keys *corev1.Volume
		for i, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == "nats-keys" {
				keys = &d.Spec.Template.Spec.Volumes[i]
			}
		}
		require.NotNil(t, keys, role)
		require.Equal(t, []corev1.KeyToPath{{Key: "nats-keys.json", Path: "nats-keys.json"}}, keys.Secret.Items, "only the keys file")
		require.Equal(t, "vrsky-nats-keys", keys.Secret.SecretName)
	}
	require.Equal(t, "0.0.0.0:9090", r.Env(deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0])["VRSKY_ADMIN_ADDR"])

	o, ok := r.Find("StatefulSet", "vrsky-nats")
	require.True(t, ok)
	ss := o.Value.(*appsv1.StatefulSet)
	var sources []string
	for _, v := range ss.Spec.Template.Spec.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				require.Equal(t, []corev1.KeyToPath{{Key: "nats-auth.conf", Path: "auth.conf"}}, s.Secret.Items, "NATS never sees the seeds")
				sources = append(sources, "secret")
			}
			if s.ConfigMap != nil {
				sources = append(sources, "configmap")
			}
		}
	}
	require.ElementsMatch(t, []string{"secret", "configmap"}, sources)

	t.Run("tenant secrets switched off", func(t *testing.T) {
		r := render(t, with(t, map[string]any{}, "secrets:\n  secretsKey:\n    enabled: false\n"))
		for _, role := range []string{"api", "runner"} {
			require.NotContains(t, r.Env(deployment(t, r, "vrsky-"+role).Spec.Template.Spec.Containers[0]), "VRSKY_SECRETS_KEY")
		}
	})
	t.Run("each credential from its own Secret", func(t *testing.T) {
		r := render(t, valuesOf(t, "external-everything"))
		env := r.Env(deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0])
		require.Equal(t, "secret:vrsky-db-app/uri", env["VRSKY_DATABASE_URL"])
		require.Equal(t, "secret:vrsky-s3/access-key-id", env["VRSKY_S3_ACCESS_KEY"])
		require.Equal(t, "secret:vrsky/admin-key-sha256", env["VRSKY_ADMIN_KEY_SHA256"])
		require.Equal(t, "nats://nats.nats.svc.cluster.local:4222", env["VRSKY_NATS_URL"])
		require.Equal(t, "true", env["VRSKY_S3_SECURE"])
		require.Contains(t, deployment(t, r, "vrsky-api").Spec.Template.Spec.Containers[0].Image, "@sha256:")
	})
}

// TestMigrationsRunBeforeTheRoles: the migration Job is a pre-install and
// pre-upgrade hook that needs only the database Secret.
func TestMigrationsRunBeforeTheRoles(t *testing.T) {
	r := render(t, map[string]any{})
	o, ok := r.Find("Job", "vrsky-migrate")
	require.True(t, ok)
	require.True(t, o.Hook)
	require.ElementsMatch(t, []string{"pre-install", "pre-upgrade"}, o.Events)
	job := o.Value.(*batchv1.Job)
	c := job.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"migrate", "up"}, c.Args)
	require.Equal(t, []string{"Secret/vrsky"}, podReferences(job.Spec.Template.Spec))
	require.Equal(t, corev1.RestartPolicyNever, job.Spec.Template.Spec.RestartPolicy)
	for _, obj := range r.Objects {
		if obj.Kind != "Job" {
			require.False(t, obj.Hook, "%s/%s is no hook", obj.Kind, obj.Name)
		}
	}
	r = render(t, with(t, map[string]any{}, "migrate:\n  enabled: false\n"))
	require.Empty(t, r.OfKind("Job"))
	require.NoError(t, Check(r))
}

// TestNATSCluster: three servers with routes to each other, JetStream on a
// volume each, operator mode from the included auth.conf; one server has
// no cluster block.
func TestNATSCluster(t *testing.T) {
	r := render(t, map[string]any{})
	o, _ := r.Find("StatefulSet", "vrsky-nats")
	ss := o.Value.(*appsv1.StatefulSet)
	require.EqualValues(t, 3, *ss.Spec.Replicas)
	require.Equal(t, "vrsky-nats-headless", ss.Spec.ServiceName)
	require.Len(t, ss.Spec.VolumeClaimTemplates, 1)
	require.Equal(t, "10Gi", ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String())
	c := ss.Spec.Template.Spec.Containers[0]
	require.Equal(t, "nats:2.12-alpine", c.Image)
	require.Equal(t, "/healthz?js-enabled-only=true", c.LivenessProbe.HTTPGet.Path)
	require.NotNil(t, c.StartupProbe)
	require.Greater(t, *ss.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(RoleDrainSeconds))

	cmObj, ok := r.Find("ConfigMap", "vrsky-nats-config")
	require.True(t, ok)
	conf := cmObj.Value.(*corev1.ConfigMap).Data["nats.conf"]
	for i := range 3 {
		require.Contains(t, conf, "nats://vrsky-nats-"+strconv.Itoa(i)+".vrsky-nats-headless.vrsky.svc:6222")
	}
	require.Contains(t, conf, `include "auth.conf"`)
	require.Contains(t, conf, `store_dir: "/data"`)
	require.Contains(t, conf, "server_name: $SERVER_NAME")

	headless, _ := r.Find("Service", "vrsky-nats-headless")
	require.True(t, headless.Value.(*corev1.Service).Spec.PublishNotReadyAddresses)

	r = render(t, valuesOf(t, "small"))
	cmObj, _ = r.Find("ConfigMap", "vrsky-nats-config")
	require.NotContains(t, cmObj.Value.(*corev1.ConfigMap).Data["nats.conf"], "cluster {")
	o, _ = r.Find("StatefulSet", "vrsky-nats")
	require.EqualValues(t, 1, *o.Value.(*appsv1.StatefulSet).Spec.Replicas)
	require.Len(t, o.Value.(*appsv1.StatefulSet).Spec.Template.Spec.Containers, 1, "no exporter in small")
	_, hasPDB := r.Find("PodDisruptionBudget", "vrsky-nats")
	require.False(t, hasPDB, "a PDB on one server would block every node drain")

	r = render(t, with(t, map[string]any{}, "nats:\n  replicas: 5\n"))
	cmObj, _ = r.Find("ConfigMap", "vrsky-nats-config")
	require.Contains(t, cmObj.Value.(*corev1.ConfigMap).Data["nats.conf"], "vrsky-nats-4.vrsky-nats-headless")
}

func egressPorts(p *networkingv1.NetworkPolicy) []int32 {
	var out []int32
	for _, e := range p.Spec.Egress {
		for _, port := range e.Ports {
			out = append(out, port.Port.IntVal)
		}
	}
	return out
}

func ingressPorts(p *networkingv1.NetworkPolicy) []int32 {
	var out []int32
	for _, e := range p.Spec.Ingress {
		for _, port := range e.Ports {
			out = append(out, port.Port.IntVal)
		}
	}
	return out
}

// TestNetworkPoliciesAllowOnlyWhatEachRoleNeeds.
func TestNetworkPoliciesAllowOnlyWhatEachRoleNeeds(t *testing.T) {
	r := render(t, valuesOf(t, "ha"))
	deny := policy(t, r, "vrsky-default-deny")
	require.Empty(t, deny.Spec.PodSelector.MatchLabels)
	require.Empty(t, deny.Spec.Ingress)
	require.Empty(t, deny.Spec.Egress)
	require.ElementsMatch(t, []networkingv1.PolicyType{"Ingress", "Egress"}, deny.Spec.PolicyTypes)

	require.ElementsMatch(t, []int32{4222, 5432, 7233, 9000}, egressPorts(policy(t, r, "vrsky-api")))
	require.ElementsMatch(t, []int32{4222, 8222, 5432, 7233, 9000}, egressPorts(policy(t, r, "vrsky-worker")))
	runner := policy(t, r, "vrsky-runner")
	require.ElementsMatch(t, []int32{4222, 9000, 443, 5432}, egressPorts(runner), "ha lets runners reach a tenant database range")
	require.ElementsMatch(t, []int32{5432}, egressPorts(policy(t, r, "vrsky-migrate")))
	require.ElementsMatch(t, []int32{8080, 9090}, ingressPorts(policy(t, r, "vrsky-api")))
	require.ElementsMatch(t, []int32{9090}, ingressPorts(runner))

	// Runners reach the internet, not private ranges, on the listed ports.
	d := render(t, map[string]any{})
	var internet *networkingv1.NetworkPolicyEgressRule
	for i, e := range policy(t, d, "vrsky-runner").Spec.Egress {
		if len(e.To) > 0 && e.To[0].IPBlock != nil {
			internet = &policy(t, d, "vrsky-runner").Spec.Egress[i]
		}
	}
	require.NotNil(t, internet)
	require.Equal(t, "0.0.0.0/0", internet.To[0].IPBlock.CIDR)
	require.Contains(t, internet.To[0].IPBlock.Except, "169.254.0.0/16")
	require.Contains(t, internet.To[0].IPBlock.Except, "10.0.0.0/8")
	require.ElementsMatch(t, []int32{4222, 9000, 80, 443}, egressPorts(policy(t, d, "vrsky-runner")))
	require.NotContains(t, egressPorts(policy(t, d, "vrsky-runner")), int32(5432), "runners have no database")

	// NATS routes only between NATS pods.
	nats := policy(t, r, "vrsky-nats")
	for _, in := range nats.Spec.Ingress {
		if in.Ports[0].Port.IntVal != 6222 {
			continue
		}
		require.Len(t, in.From, 1)
		require.Equal(t, "nats", in.From[0].PodSelector.MatchLabels["app.kubernetes.io/component"])
	}
	require.Len(t, nats.Spec.Egress, 1)
	require.EqualValues(t, 6222, nats.Spec.Egress[0].Ports[0].Port.IntVal)

	// Prometheus from the configured namespace.
	r = render(t, with(t, map[string]any{}, "networkPolicy:\n  prometheus:\n    - namespaceSelector:\n        matchLabels:\n          kubernetes.io/metadata.name: observability\n"))
	for _, in := range policy(t, r, "vrsky-worker").Spec.Ingress {
		require.Equal(t, "observability", in.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	}

	// DNS for every pod of the release.
	dns := policy(t, r, "vrsky-dns")
	for _, w := range r.Workloads() {
		require.True(t, selects(&dns.Spec.PodSelector, w.Template.Labels), w.Name)
	}

	// Policies can be switched off; the coverage check then fails.
	r = render(t, with(t, map[string]any{}, "networkPolicy:\n  enabled: false\n"))
	require.Empty(t, r.OfKind("NetworkPolicy"))
	require.ErrorContains(t, CheckNetworkPolicyCoverage(r), "not governed")
}

// TestMonitoringFilesAreOptional: the PrometheusRule and the dashboards
// come from files/ when it has them and are left out, without an error,
// when it does not.
func TestMonitoringFilesAreOptional(t *testing.T) {
	vals := valuesOf(t, "ha")
	r := render(t, vals)
	require.Empty(t, r.OfKind("PrometheusRule"))
	for _, o := range r.OfKind("ConfigMap") {
		require.NotContains(t, o.Name, "dashboard")
	}

	alerts := []byte(`groups:
  - name: vrsky
    rules:
      - alert: VRSkyDown
        expr: up{job=~".*vrsky.*"} == 0
        for: 5m
        labels: { severity: page }
        annotations:
          summary: "{{ $labels.instance }} is down"
      - record: vrsky:http_requests:rate5m
        expr: sum(rate(vrsky_http_requests_total[5m]))
`)
	dashboard := []byte(`{"title": "VRSky overview", "panels": [{"type": "timeseries", "targets": [{"expr": "{{ not a template }}"}]}]}`)
	ch := FileOverlay(theChart(t), map[string][]byte{
		"files/alerts.yaml":                alerts,
		"files/dashboards/overview.json":   dashboard,
		"files/dashboards/Hot_Path.json":   []byte(`{"title": "hot path"}`),
		"files/dashboards/notes.md":        []byte("not a dashboard"),
		"files/dashboards/sub/nested.json": []byte(`{}`),
	})
	r, err := Render(ch, vals, "vrsky", "vrsky")
	require.NoError(t, err)
	require.NoError(t, Check(r))
	rules := r.OfKind("PrometheusRule")
	require.Len(t, rules, 1)
	pr := rules[0].Value.(*PrometheusRule)
	require.Equal(t, "kube-prometheus-stack", pr.Labels["release"])
	require.Len(t, pr.Spec.Groups, 1)
	require.Equal(t, "VRSkyDown", pr.Spec.Groups[0].Rules[0].Alert)
	require.Equal(t, "{{ $labels.instance }} is down", pr.Spec.Groups[0].Rules[0].Annotations["summary"], "alert templates are kept, not rendered by Helm")

	cm, ok := r.Find("ConfigMap", "vrsky-dashboard-overview")
	require.True(t, ok)
	require.Equal(t, "1", cm.Value.(*corev1.ConfigMap).Labels["grafana_dashboard"])
	require.JSONEq(t, string(dashboard), cm.Value.(*corev1.ConfigMap).Data["overview.json"])
	_, ok = r.Find("ConfigMap", "vrsky-dashboard-hot-path")
	require.True(t, ok, "file names become valid object names")
	dashboards := 0
	for _, o := range r.OfKind("ConfigMap") {
		if strings.Contains(o.Name, "dashboard") {
			dashboards++
		}
	}
	require.Equal(t, 2, dashboards, "only files/dashboards/*.json")

	t.Run("switched off", func(t *testing.T) {
		r, err := Render(ch, with(t, vals, "monitoring:\n  prometheusRule:\n    enabled: false\n  dashboards:\n    enabled: false\n"), "vrsky", "vrsky")
		require.NoError(t, err)
		require.Empty(t, r.OfKind("PrometheusRule"))
	})
	t.Run("malformed alerts", func(t *testing.T) {
		bad := FileOverlay(theChart(t), map[string][]byte{"files/alerts.yaml": []byte("groups: [\n  - name: x\n")})
		_, err := Render(bad, vals, "vrsky", "vrsky")
		require.ErrorContains(t, err, "files/alerts.yaml")
	})
	t.Run("a rule with an unknown field", func(t *testing.T) {
		bad := FileOverlay(theChart(t), map[string][]byte{"files/alerts.yaml": []byte("groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up == 0\n        severity: page\n")})
		_, err := Render(bad, vals, "vrsky", "vrsky")
		require.ErrorContains(t, err, "severity")
	})
	t.Run("the files of the chart on disk", func(t *testing.T) {
		// Whatever files/ holds when this runs (nothing, or the alerts and
		// dashboards written for the chart) renders and passes the checks.
		loadOnce.Do(func() { loaded, loadErr = LoadChart(chartDir) })
		r, err := Render(loaded, vals, "vrsky", "vrsky")
		require.NoError(t, err)
		require.NoError(t, Check(r))
	})
}

// constInt reads an integer constant of a Go file of the api package.
func constInt(t *testing.T, file, name string) int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "..", "api", file), nil, 0)
	require.NoError(t, err)
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if n.Name != name || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				require.True(t, ok, "%s is a literal", name)
				v, err := strconv.Atoi(lit.Value)
				require.NoError(t, err)
				return v
			}
		}
	}
	t.Fatalf("constant %s not found in api/%s", name, file)
	return 0
}

// TestGatewayLimitsDoNotUndercutTheInAppLimits: by default a client is
// stopped by the gateway only where the api role would stop its tenant
// anyway, so tenants get the api role's answers (problem details,
// Retry-After) rather than Traefik's.
func TestGatewayLimitsDoNotUndercutTheInAppLimits(t *testing.T) {
	r := render(t, with(t, map[string]any{}, "gateway:\n  enabled: true\n"))
	require.NoError(t, Check(r))
	limit := func(name string) (int, int) {
		o, ok := r.Find("Middleware", name)
		require.True(t, ok, name)
		rl := o.Value.(*Middleware).Spec.RateLimit
		require.Equal(t, "1s", rl.Period)
		return rl.Average, rl.Burst
	}
	avg, burst := limit("vrsky-gateway-webhooks-ratelimit")
	require.GreaterOrEqual(t, avg, constInt(t, "ingress.go", "DefaultWebhookTenantRate"))
	require.GreaterOrEqual(t, burst, constInt(t, "ingress.go", "DefaultWebhookTenantBurst"))
	avg, burst = limit("vrsky-gateway-api-ratelimit")
	require.GreaterOrEqual(t, avg, constInt(t, "ratelimit.go", "DefaultTenantRate"))
	require.GreaterOrEqual(t, burst, constInt(t, "ratelimit.go", "DefaultTenantBurst"))
	require.GreaterOrEqual(t, avg, constInt(t, "ratelimit.go", "DefaultKeyRate"))

	o, _ := r.Find("IngressRoute", "vrsky-gateway")
	ir := o.Value.(*IngressRoute)
	require.Len(t, ir.Spec.Routes, 2)
	require.Equal(t, "Host(`vrsky.example.com`) && PathPrefix(`/v1/hooks/`)", ir.Spec.Routes[0].Match)
	require.Greater(t, ir.Spec.Routes[0].Priority, ir.Spec.Routes[1].Priority, "webhooks match before the catch-all")
	require.Equal(t, "vrsky-tls", ir.Spec.TLS.SecretName)
	require.Empty(t, r.OfKind("Middleware")[0].Value.(*Middleware).Spec.IPAllowList)
	require.Len(t, r.OfKind("Middleware"), 2, "no allow list unless ranges are given")

	r = render(t, valuesOf(t, "ha"))
	al, ok := r.Find("Middleware", "vrsky-gateway-api-allowlist")
	require.True(t, ok)
	require.Equal(t, []string{"203.0.113.0/24"}, al.Value.(*Middleware).Spec.IPAllowList.SourceRange)
}

// TestDecodeIsStrict: unknown fields, duplicate keys, unexpected kinds and
// malformed documents are errors, never silently dropped.
func TestDecodeIsStrict(t *testing.T) {
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n"
	o, err := Decode([]byte(good))
	require.NoError(t, err)
	require.Equal(t, "v", o.Value.(*corev1.ConfigMap).Data["k"])
	bad := map[string]string{
		"unknown field":        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replica: 2\n",
		"unknown nested field": "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n    - port: 80\n      targetPorts: 8080\n",
		"duplicate key":        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n  k: w\n",
		"unexpected kind":      "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n",
		"no name":              "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
		"not YAML":             "apiVersion: [v1\n",
		"wrong type":           "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: two\n",
		"CRD unknown field":    "apiVersion: traefik.io/v1alpha1\nkind: Middleware\nmetadata:\n  name: a\nspec:\n  rateLimit:\n    average: 1\n    burst: 1\n    perIP: true\n",
		"CRD misspelt spec":    "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: a\nspec:\n  endpoint:\n    - port: x\n",
	}
	for name, doc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(doc))
			require.Error(t, err)
		})
	}
	_, err = ReadValues(filepath.Join(t.TempDir(), "missing.yaml"))
	require.Error(t, err)
	_, err = ReadValuesString("a: [1\n")
	require.Error(t, err)
}

// TestLongReleaseNamesStayValid: object names are cut to what Kubernetes
// accepts, and the cut names still pass every check.
func TestLongReleaseNamesStayValid(t *testing.T) {
	name := strings.Repeat("r", 53)
	r, err := Render(theChart(t), valuesOf(t, "ha"), name, "vrsky")
	require.NoError(t, err)
	require.NoError(t, Check(r))
	for _, o := range r.OfKind("Service") {
		require.LessOrEqual(t, len(o.Name), 63, o.Name)
	}
	for _, w := range r.Workloads() {
		for k, v := range w.Template.Labels {
			require.LessOrEqual(t, len(v), 63, "label %s of %s", k, w.Name)
		}
	}
}
