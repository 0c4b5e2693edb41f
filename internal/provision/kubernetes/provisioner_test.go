package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/vrsky/vrsky/internal/provision"
)

var update = flag.Bool("update", false, "rewrite testdata/api-calls.json from the calls the tests make")

const testNS = "tenants"

func testConfig() Config {
	return Config{
		Namespace:    testNS,
		Platform:     Platform{Namespace: "vrsky", Labels: map[string]string{"app.kubernetes.io/name": "vrsky", "app.kubernetes.io/instance": "vrsky"}},
		PollInterval: time.Millisecond,
	}
}

// cluster is a fake clientset with what the StatefulSet controller would
// do: a StatefulSet read back reports min(replicas, ready) ready servers,
// and creating or scaling one makes its pods' PersistentVolumeClaims. The
// controller's writes go to the tracker directly, so the clientset's
// recorded actions are the provisioner's alone.
type cluster struct {
	*fake.Clientset
	ready atomic.Int32
}

var (
	statefulSets = appsv1.SchemeGroupVersion.WithResource("statefulsets")
	pvcs         = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")
)

func newCluster(t *testing.T, objects ...runtime.Object) *cluster {
	t.Helper()
	c := &cluster{Clientset: fake.NewClientset(objects...)}
	c.ready.Store(3)
	tracker := c.Tracker()
	c.PrependReactor("get", "statefulsets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		get := a.(k8stesting.GetAction)
		obj, err := tracker.Get(statefulSets, get.GetNamespace(), get.GetName())
		if err != nil {
			return true, nil, err
		}
		ss := obj.(*appsv1.StatefulSet).DeepCopy()
		want := *ss.Spec.Replicas
		ss.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: ss.Generation, Replicas: want,
			ReadyReplicas: min(want, c.ready.Load()), UpdatedReplicas: want,
			CurrentRevision: "r1", UpdateRevision: "r1",
		}
		return true, ss, nil
	})
	makeClaims := func(a k8stesting.Action) (bool, runtime.Object, error) {
		ss := a.(interface{ GetObject() runtime.Object }).GetObject().(*appsv1.StatefulSet)
		for i := range int(*ss.Spec.Replicas) {
			for _, tmpl := range ss.Spec.VolumeClaimTemplates {
				claim := tmpl.DeepCopy()
				claim.Name = fmt.Sprintf("%s-%s-%d", tmpl.Name, ss.Name, i)
				claim.Namespace = ss.Namespace
				for k, v := range ss.Spec.Selector.MatchLabels {
					claim.Labels[k] = v
				}
				if err := tracker.Create(pvcs, claim, ss.Namespace); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Errorf("create claim: %v", err)
				}
			}
		}
		return false, nil, nil
	}
	c.PrependReactor("create", "statefulsets", makeClaims)
	c.PrependReactor("update", "statefulsets", makeClaims)
	return c
}

func newProvisioner(t *testing.T, c *cluster, mutate ...func(*Config)) *Provisioner {
	t.Helper()
	cfg := testConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(c, cfg)
	require.NoError(t, err)
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writes returns the create, update and delete actions recorded.
func writes(c *cluster) []string {
	var out []string
	for _, a := range c.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" {
			out = append(out, v+" "+a.GetResource().Resource)
		}
	}
	return out
}

func TestEnsureCreatesTheInstanceOnceAndKeepsItsCredentials(t *testing.T) {
	c := newCluster(t)
	p := newProvisioner(t, c)
	ctx := ctxT(t)

	inst, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.NoError(t, inst.Validate())
	require.Equal(t, []string{"nats://nats-t-acme.tenants.svc:4222"}, inst.URLs)
	require.Equal(t, "http://nats-t-acme.tenants.svc:8222", inst.Monitor)
	require.Equal(t, "vrsky", inst.User)
	require.True(t, validPassword(inst.Password), "32 random bytes in hex: %q", inst.Password)
	require.ElementsMatch(t, []string{
		"create secrets", "create services", "create services", "create networkpolicies", "create statefulsets",
	}, writes(c))

	// Every object is there, labelled, and the Secret's configuration has the password.
	sec, err := c.CoreV1().Secrets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, inst.Password, string(sec.Data[passwordKey]))
	require.Contains(t, string(sec.Data[configKey]), inst.Password)
	ss, err := c.AppsV1().StatefulSets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	np, err := c.NetworkingV1().NetworkPolicies(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	svc, err := c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	headless, err := c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme-headless", metav1.GetOptions{})
	require.NoError(t, err)
	for _, m := range []metav1.ObjectMeta{sec.ObjectMeta, ss.ObjectMeta, np.ObjectMeta, svc.ObjectMeta, headless.ObjectMeta, ss.Spec.Template.ObjectMeta} {
		require.Equal(t, "vrsky", m.Labels["app.kubernetes.io/managed-by"], m.Name)
		require.Equal(t, "acme", m.Labels["vrsky.io/tenant"], m.Name)
		require.Equal(t, "acme", m.Annotations["vrsky.io/tenant"], m.Name)
	}

	// The second Ensure changes nothing and returns the same credentials.
	c.ClearActions()
	again, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, inst, again)
	require.Empty(t, writes(c), "a second Ensure only reads")

	// A new Provisioner (a restarted worker) returns them too.
	again, err = newProvisioner(t, c).Ensure(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, inst, again)

	// Another tenant gets other credentials.
	other, err := p.Ensure(ctx, "globex")
	require.NoError(t, err)
	require.NotEqual(t, inst.Password, other.Password)
	require.NoError(t, p.Check(ctx, "acme"))
	require.NoError(t, p.Check(ctx, "globex"))
}

func TestEnsureWaitsForTheServersAndCheckSaysWhatIsWrong(t *testing.T) {
	c := newCluster(t)
	c.ready.Store(0)
	p := newProvisioner(t, c, func(cfg *Config) { cfg.Replicas = 3 })

	require.ErrorIs(t, p.Check(ctxT(t), "acme"), provision.ErrNotFound)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Ensure(ctx, "acme")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "0 of 3 servers ready")

	c.ready.Store(2)
	err = p.Check(ctxT(t), "acme")
	require.ErrorContains(t, err, "2 of 3 servers ready")
	require.NotErrorIs(t, err, provision.ErrNotFound)

	// Ensure returns as soon as the servers are ready.
	done := make(chan error, 1)
	go func() { _, err := p.Ensure(ctxT(t), "acme"); done <- err }()
	time.Sleep(20 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("Ensure returned before the servers were ready: %v", err)
	default:
	}
	c.ready.Store(3)
	require.NoError(t, <-done)
	require.NoError(t, p.Check(ctxT(t), "acme"))

	// A missing Secret or Service is named.
	require.NoError(t, c.CoreV1().Secrets(testNS).Delete(ctxT(t), "nats-t-acme", metav1.DeleteOptions{}))
	require.ErrorContains(t, p.Check(ctxT(t), "acme"), "Secret nats-t-acme")
	_, err = p.Ensure(ctxT(t), "acme")
	require.NoError(t, err)
	require.NoError(t, c.CoreV1().Services(testNS).Delete(ctxT(t), "nats-t-acme", metav1.DeleteOptions{}))
	require.ErrorContains(t, p.Check(ctxT(t), "acme"), "Service nats-t-acme")
}

func TestReadiness(t *testing.T) {
	ss := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "s", Generation: 2}}
	ss.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, ReadyReplicas: 1}
	require.ErrorContains(t, readiness(ss), "not seen its latest change")
	ss.Status.ObservedGeneration = 2
	require.NoError(t, readiness(ss), "replicas unset means one")
	ss.Spec.Replicas = ptrTo(int32(3))
	ss.Status = appsv1.StatefulSetStatus{ObservedGeneration: 2, ReadyReplicas: 3, UpdatedReplicas: 1, UpdateRevision: "r2"}
	require.ErrorContains(t, readiness(ss), "1 of 3 servers run the current configuration")
	ss.Status.UpdatedReplicas = 3
	require.NoError(t, readiness(ss))
}

func TestRemoveDeletesEverythingWithTheVolumes(t *testing.T) {
	// Claims of another tenant and one VRSky did not make stay.
	foreign := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data-nats-t-acme-9", Namespace: testNS,
		Labels: map[string]string{"app.kubernetes.io/instance": "nats-t-acme"}}}
	c := newCluster(t, foreign)
	p := newProvisioner(t, c, func(cfg *Config) { cfg.Replicas = 3 })
	ctx := ctxT(t)
	_, err := p.Ensure(ctx, "acme")
	require.NoError(t, err)
	_, err = p.Ensure(ctx, "acme-2")
	require.NoError(t, err)
	claims, err := c.CoreV1().PersistentVolumeClaims(testNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, claims.Items, 7, "3 per instance and the foreign one")

	c.ClearActions()
	require.NoError(t, p.Remove(ctx, "acme"))
	require.ErrorIs(t, p.Check(ctx, "acme"), provision.ErrNotFound)
	for _, get := range []func() error{
		func() error {
			_, err := c.AppsV1().StatefulSets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme-headless", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.NetworkingV1().NetworkPolicies(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := c.CoreV1().Secrets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
			return err
		},
	} {
		require.True(t, apierrors.IsNotFound(get()))
	}
	claims, err = c.CoreV1().PersistentVolumeClaims(testNS).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var left []string
	for _, cl := range claims.Items {
		left = append(left, cl.Name)
	}
	require.ElementsMatch(t, []string{"data-nats-t-acme-9", "data-nats-t-acme-2-0", "data-nats-t-acme-2-1", "data-nats-t-acme-2-2"}, left)
	var deletedClaims int
	for _, a := range c.Actions() {
		if a.GetVerb() == "delete" && a.GetResource().Resource == "persistentvolumeclaims" {
			deletedClaims++
		}
	}
	require.Equal(t, 3, deletedClaims)

	// Again, and for a tenant that never had one: nothing to do, no error.
	require.NoError(t, p.Remove(ctx, "acme"))
	require.NoError(t, p.Remove(ctx, "initech"))
	require.NoError(t, p.Check(ctx, "acme-2"), "the other tenant's instance is untouched")
}

func TestHostileTenantNamesNeverReachTheAPIServer(t *testing.T) {
	c := newCluster(t)
	p := newProvisioner(t, c)
	ctx := ctxT(t)
	for _, name := range []string{
		"", "-", "-acme", "Acme", "ac me", "acme\n", "acme.evil", "../acme", "acme/x", "a_b", "acme\x00",
		"acmé", "nats-t-acme,app.kubernetes.io/managed-by", "acme=1", strings.Repeat("a", 64), strings.Repeat("a", 10000),
	} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			_, err := p.Ensure(ctx, name)
			require.ErrorContains(t, err, "invalid tenant name")
			require.ErrorContains(t, p.Check(ctx, name), "invalid tenant name")
			require.ErrorContains(t, p.Remove(ctx, name), "invalid tenant name")
		})
	}
	require.Empty(t, c.Actions())
}

func TestNamesAreValidAndDistinct(t *testing.T) {
	tenants := []string{
		"a", "0", "acme", "a-", "a--", "a-b", "0-0", "nats-h-a", "h-a",
		strings.Repeat("a", 33), strings.Repeat("a", 34), strings.Repeat("a", 63),
		strings.Repeat("a", 62) + "-", strings.Repeat("a", 22) + "-", "-b-",
		strings.Repeat("9", 63), strings.Repeat("a-", 31) + "a",
	}
	seen := map[string]string{}
	for _, tenant := range tenants {
		n, err := namesFor(tenant)
		if tenant[0] == '-' {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, tenant)
		if other, dup := seen[n.base]; dup {
			t.Fatalf("tenants %q and %q share the name %s", tenant, other, n.base)
		}
		seen[n.base] = tenant
		require.LessOrEqual(t, len(n.base), maxBase, tenant)
		require.Empty(t, validation.IsDNS1035Label(n.base), tenant)
		require.Empty(t, validation.IsDNS1035Label(n.headless), tenant)
		require.Empty(t, validation.IsDNS1123Label(n.pod(2)), tenant)
		require.Empty(t, validation.IsDNS1123Subdomain("data-"+n.pod(2)), tenant)
		require.Empty(t, metav1validation.ValidateLabels(n.labels(), field.NewPath("labels")), tenant)
		require.Equal(t, tenant, n.annotations()[TenantAnnotation])
		if strings.HasSuffix(tenant, "-") {
			require.NotContains(t, n.labels(), TenantLabel, "%q is no valid label value", tenant)
			require.True(t, strings.HasPrefix(n.base, hashedPrefix), n.base)
		} else {
			require.Equal(t, tenant, n.labels()[TenantLabel])
		}
	}
	require.Equal(t, "nats-t-acme", seen2(t, "acme"))
	// A long name keeps a readable head.
	require.True(t, strings.HasPrefix(seen2(t, strings.Repeat("b", 50)), "nats-h-"+strings.Repeat("b", 22)+"-"))
}

func seen2(t *testing.T, tenant string) string {
	n, err := namesFor(tenant)
	require.NoError(t, err)
	return n.base
}

// TestObjectsDecodeStrictly renders every object the provisioner builds
// to YAML and decodes it back strictly into its Kubernetes API type: no
// field is unknown, nothing is lost.
func TestObjectsDecodeStrictly(t *testing.T) {
	for _, replicas := range []int32{1, 3} {
		t.Run(fmt.Sprint(replicas), func(t *testing.T) {
			p := newProvisioner(t, newCluster(t), func(cfg *Config) { cfg.Replicas = replicas; cfg.StorageClass = "fast-ssd" })
			n, err := namesFor("acme")
			require.NoError(t, err)
			sec := p.secret(n, newPassword(), newPassword())
			objects := []runtime.Object{sec, p.clientService(n), p.headlessService(n), p.networkPolicy(n), p.statefulSet(n, string(sec.Data[configKey]))}
			for _, obj := range objects {
				doc, err := yaml.Marshal(obj)
				require.NoError(t, err)
				back := obj.DeepCopyObject()
				zero(back)
				require.NoError(t, yaml.UnmarshalStrict(doc, back), string(doc))
				require.True(t, equality.Semantic.DeepEqual(obj, back), "%T changed on the way through YAML", obj)
				var head struct {
					APIVersion, Kind string
				}
				require.NoError(t, yaml.Unmarshal(doc, &head))
				require.NotEmpty(t, head.APIVersion)
				require.NotEmpty(t, head.Kind)
			}
			// A misspelt field would be refused.
			require.Error(t, yaml.UnmarshalStrict([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {}}\n"), &corev1.Service{}))

			ss := objects[4].(*appsv1.StatefulSet)
			require.EqualValues(t, replicas, *ss.Spec.Replicas)
			require.Equal(t, appsv1.ParallelPodManagement, ss.Spec.PodManagementPolicy)
			require.Equal(t, n.headless, ss.Spec.ServiceName)
			require.Equal(t, ss.Spec.Selector.MatchLabels, n.selector())
			require.Subset(t, ss.Spec.Template.Labels, ss.Spec.Selector.MatchLabels)
			pod := ss.Spec.Template.Spec
			require.False(t, *pod.AutomountServiceAccountToken)
			require.True(t, *pod.SecurityContext.RunAsNonRoot)
			ctr := pod.Containers[0]
			require.Equal(t, DefaultImage, ctr.Image)
			require.Equal(t, "/healthz?js-enabled-only=true", ctr.LivenessProbe.HTTPGet.Path)
			require.Equal(t, "/healthz?js-enabled-only=true", ctr.ReadinessProbe.HTTPGet.Path)
			require.True(t, *ctr.SecurityContext.ReadOnlyRootFilesystem)
			require.False(t, *ctr.SecurityContext.AllowPrivilegeEscalation)
			require.Equal(t, []corev1.Capability{"ALL"}, ctr.SecurityContext.Capabilities.Drop)
			require.Equal(t, "2Gi", ctr.Resources.Limits.Memory().String())
			require.Equal(t, "fast-ssd", *ss.Spec.VolumeClaimTemplates[0].Spec.StorageClassName)
			require.Equal(t, "10Gi", ss.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String())
			require.Equal(t, appsv1.DeletePersistentVolumeClaimRetentionPolicyType, ss.Spec.PersistentVolumeClaimRetentionPolicy.WhenDeleted)
			var mounts []string
			for _, m := range ctr.VolumeMounts {
				mounts = append(mounts, m.Name)
			}
			require.ElementsMatch(t, []string{"config", "data", "run"}, mounts)

			np := objects[3].(*networkingv1.NetworkPolicy)
			require.Equal(t, n.selector(), np.Spec.PodSelector.MatchLabels)
			require.ElementsMatch(t, []networkingv1.PolicyType{"Ingress", "Egress"}, np.Spec.PolicyTypes)
			ports := map[int32][]string{}
			for _, in := range np.Spec.Ingress {
				for _, from := range in.From {
					sel := from.PodSelector.MatchLabels
					if sel[instanceLabel] == n.base {
						require.Nil(t, from.NamespaceSelector, "the instance's own pods")
						ports[in.Ports[0].Port.IntVal] = append(ports[in.Ports[0].Port.IntVal], "own")
						continue
					}
					require.Equal(t, "vrsky", from.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
					require.Equal(t, "vrsky", sel["app.kubernetes.io/name"])
					ports[in.Ports[0].Port.IntVal] = append(ports[in.Ports[0].Port.IntVal], sel[componentLabel])
				}
			}
			want := map[int32][]string{ClientPort: {"api", "worker", "runner"}, MonitorPort: {"worker"}}
			if replicas == 3 {
				want[ClusterPort] = []string{"own"}
				require.Len(t, np.Spec.Egress, 2, "routes and DNS")
			} else {
				require.Empty(t, np.Spec.Egress, "one server reaches nothing")
			}
			require.Equal(t, want, ports)
		})
	}
}

// zero empties a pointer to a struct.
func zero(obj runtime.Object) {
	switch v := obj.(type) {
	case *corev1.Secret:
		*v = corev1.Secret{}
	case *corev1.Service:
		*v = corev1.Service{}
	case *networkingv1.NetworkPolicy:
		*v = networkingv1.NetworkPolicy{}
	case *appsv1.StatefulSet:
		*v = appsv1.StatefulSet{}
	}
}

func TestPeersInTheSameNamespaceNeedNoNamespaceSelector(t *testing.T) {
	p := newProvisioner(t, newCluster(t), func(cfg *Config) { cfg.Platform.Namespace = testNS })
	n, _ := namesFor("acme")
	for _, in := range p.networkPolicy(n).Spec.Ingress {
		for _, from := range in.From {
			require.Nil(t, from.NamespaceSelector)
			require.Equal(t, "vrsky", from.PodSelector.MatchLabels["app.kubernetes.io/instance"])
		}
	}
}

// TestNATSConfigRunsAServer: the configuration in the Secret, loaded by
// nats-server itself, runs a server with JetStream that takes the
// platform's user and password and refuses others.
func TestNATSConfigRunsAServer(t *testing.T) {
	p := newProvisioner(t, newCluster(t))
	n, _ := namesFor("acme")
	password := newPassword()
	dir := t.TempDir()
	conf := p.natsConfig(n, password, newPassword())
	// Where the pod has its volume and ports, the test has a temporary
	// directory and free ports.
	conf = strings.ReplaceAll(conf, fmt.Sprintf("%q", dataDir), fmt.Sprintf("%q", filepath.Join(dir, "js")))
	conf = strings.ReplaceAll(conf, fmt.Sprintf("%q", pidFile), fmt.Sprintf("%q", filepath.Join(dir, "nats.pid")))
	conf = strings.ReplaceAll(conf, fmt.Sprintf("0.0.0.0:%d", ClientPort), "127.0.0.1:-1")
	conf = strings.ReplaceAll(conf, fmt.Sprintf("0.0.0.0:%d", MonitorPort), "127.0.0.1:-1")
	path := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(path, []byte(conf), 0o600))
	t.Setenv("POD_NAME", "nats-t-acme-0")
	opts, err := server.ProcessConfigFile(path)
	require.NoError(t, err)
	require.Equal(t, "nats-t-acme-0", opts.ServerName)
	require.True(t, opts.JetStream)
	require.EqualValues(t, 10<<30/10*9, opts.JetStreamMaxStore)
	require.EqualValues(t, 2<<30/4, opts.JetStreamMaxMemory)
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	require.NoError(t, err)
	go ns.Start()
	require.True(t, ns.ReadyForConnections(10*time.Second))
	t.Cleanup(ns.Shutdown)

	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(User, password))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	_, err = js.CreateStream(ctxT(t), jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}, Storage: jetstream.FileStorage})
	require.NoError(t, err)
	_, err = js.Publish(ctxT(t), "s", []byte("hi"))
	require.NoError(t, err)

	for _, bad := range []nats.Option{nats.UserInfo(User, newPassword()), nats.UserInfo(routeUser, password)} {
		_, err = nats.Connect(ns.ClientURL(), bad, nats.NoReconnect())
		require.Error(t, err)
	}
	_, err = nats.Connect(ns.ClientURL(), nats.NoReconnect())
	require.Error(t, err, "no anonymous clients")
}

func TestClusterConfigParses(t *testing.T) {
	p := newProvisioner(t, newCluster(t), func(cfg *Config) { cfg.Replicas = 3; cfg.ClusterDomain = "cluster.example" })
	n, _ := namesFor("acme")
	routePassword := newPassword()
	path := filepath.Join(t.TempDir(), "nats.conf")
	require.NoError(t, os.WriteFile(path, []byte(p.natsConfig(n, newPassword(), routePassword)), 0o600))
	t.Setenv("POD_NAME", "nats-t-acme-1")
	opts, err := server.ProcessConfigFile(path)
	require.NoError(t, err)
	require.Equal(t, "nats-t-acme", opts.Cluster.Name)
	require.Equal(t, ClusterPort, opts.Cluster.Port)
	require.Equal(t, routeUser, opts.Cluster.Username)
	require.Equal(t, routePassword, opts.Cluster.Password)
	require.True(t, opts.Cluster.NoAdvertise)
	var hosts []string
	for _, r := range opts.Routes {
		hosts = append(hosts, r.Hostname())
		require.Equal(t, routeUser, r.User.Username())
	}
	require.Equal(t, []string{
		"nats-t-acme-0.nats-t-acme-headless.tenants.svc.cluster.example",
		"nats-t-acme-1.nats-t-acme-headless.tenants.svc.cluster.example",
		"nats-t-acme-2.nats-t-acme-headless.tenants.svc.cluster.example",
	}, hosts)
	require.Equal(t, MonitorPort, opts.HTTPPort)
	require.Equal(t, ClientPort, opts.Port)
}

func TestChangesAndDamageAreRepaired(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	inst, err := newProvisioner(t, c).Ensure(ctx, "acme")
	require.NoError(t, err)
	ss, err := c.AppsV1().StatefulSets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	oldHash := ss.Spec.Template.Annotations[configHashAnnotation]

	// One server becomes three: everything but the client Service changes,
	// the credentials stay.
	c.ClearActions()
	three := newProvisioner(t, c, func(cfg *Config) { cfg.Replicas = 3 })
	again, err := three.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.Equal(t, inst, again)
	require.ElementsMatch(t, []string{"update secrets", "update services", "update networkpolicies", "update statefulsets"}, writes(c))
	ss, err = c.AppsV1().StatefulSets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 3, *ss.Spec.Replicas)
	require.NotEqual(t, oldHash, ss.Spec.Template.Annotations[configHashAnnotation], "the new configuration rolls the servers")
	headless, err := c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme-headless", metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, headless.Spec.Ports, 3)

	// Someone scales it down, loosens the policy, deletes the Service.
	ss.Spec.Replicas = ptrTo(int32(1))
	ss.Labels["team"] = "ops"
	_, err = c.AppsV1().StatefulSets(testNS).Update(ctx, ss, metav1.UpdateOptions{})
	require.NoError(t, err)
	np, err := c.NetworkingV1().NetworkPolicies(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
	_, err = c.NetworkingV1().NetworkPolicies(testNS).Update(ctx, np, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, c.CoreV1().Services(testNS).Delete(ctx, "nats-t-acme", metav1.DeleteOptions{}))
	// and the headless Service is replaced by one with a cluster IP.
	require.NoError(t, c.CoreV1().Services(testNS).Delete(ctx, "nats-t-acme-headless", metav1.DeleteOptions{}))
	headless.Spec.ClusterIP, headless.ResourceVersion = "10.0.0.1", ""
	_, err = c.CoreV1().Services(testNS).Create(ctx, headless, metav1.CreateOptions{})
	require.NoError(t, err)

	_, err = three.Ensure(ctx, "acme")
	require.NoError(t, err)
	ss, err = c.AppsV1().StatefulSets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 3, *ss.Spec.Replicas)
	require.Equal(t, "ops", ss.Labels["team"], "labels others add stay")
	np, err = c.NetworkingV1().NetworkPolicies(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, three.networkPolicy(namesMust(t, "acme")).Spec, np.Spec)
	_, err = c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	headless, err = c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme-headless", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.ClusterIPNone, headless.Spec.ClusterIP)

	// A damaged password is replaced, and the servers roll with it.
	sec, err := c.CoreV1().Secrets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	sec.Data[passwordKey] = []byte("not hex")
	_, err = c.CoreV1().Secrets(testNS).Update(ctx, sec, metav1.UpdateOptions{})
	require.NoError(t, err)
	fixed, err := three.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.True(t, validPassword(fixed.Password))
	require.NotEqual(t, inst.Password, fixed.Password)
	sec, err = c.CoreV1().Secrets(testNS).Get(ctx, "nats-t-acme", metav1.GetOptions{})
	require.NoError(t, err)
	require.Contains(t, string(sec.Data[configKey]), fixed.Password)
}

func namesMust(t *testing.T, tenant string) names {
	n, err := namesFor(tenant)
	require.NoError(t, err)
	return n
}

// TestObjectsNotMadeByVRSkyAreLeftAlone: an object that has an instance's
// name but not VRSky's labels is refused, never updated or deleted.
func TestObjectsNotMadeByVRSkyAreLeftAlone(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "nats-t-acme", Namespace: testNS, Labels: map[string]string{"app": "theirs"}}
	for _, obj := range []runtime.Object{
		&corev1.Secret{ObjectMeta: meta},
		&corev1.Service{ObjectMeta: meta},
		&networkingv1.NetworkPolicy{ObjectMeta: meta},
		&appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{Replicas: ptrTo(int32(1))}},
	} {
		t.Run(fmt.Sprintf("%T", obj), func(t *testing.T) {
			c := newCluster(t, obj)
			p := newProvisioner(t, c)
			_, err := p.Ensure(ctxT(t), "acme")
			require.ErrorContains(t, err, "is not tenant acme's instance")
			require.ErrorContains(t, p.Remove(ctxT(t), "acme"), "is not tenant acme's instance")
			for _, w := range writes(c) {
				require.False(t, strings.HasPrefix(w, "update "), "nothing is updated: %v", writes(c))
			}
			// Still there, unchanged (VRSky's own objects made before the
			// refusal are removed).
			gvr := map[string]string{"*v1.Secret": "secrets", "*v1.Service": "services", "*v1.NetworkPolicy": "networkpolicies", "*v1.StatefulSet": "statefulsets"}[fmt.Sprintf("%T", obj)]
			group := corev1.SchemeGroupVersion
			switch gvr {
			case "networkpolicies":
				group = networkingv1.SchemeGroupVersion
			case "statefulsets":
				group = appsv1.SchemeGroupVersion
			}
			still, err := c.Tracker().Get(group.WithResource(gvr), testNS, "nats-t-acme")
			require.NoError(t, err)
			require.Equal(t, map[string]string{"app": "theirs"}, still.(metav1.Object).GetLabels())
		})
	}
	// Another tenant's object under this tenant's name (it cannot happen
	// with derived names, but is refused all the same).
	theirs := newCluster(t)
	_, err := newProvisioner(t, theirs).Ensure(ctxT(t), "acme")
	require.NoError(t, err)
	ss, _ := theirs.AppsV1().StatefulSets(testNS).Get(ctxT(t), "nats-t-acme", metav1.GetOptions{})
	ss.Annotations[TenantAnnotation] = "globex"
	_, err = theirs.AppsV1().StatefulSets(testNS).Update(ctxT(t), ss, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.ErrorContains(t, newProvisioner(t, theirs).Check(ctxT(t), "acme"), "is not tenant acme's instance")
}

func TestAPIErrorsAreReturned(t *testing.T) {
	for _, verb := range []string{"get", "create", "update", "delete", "list"} {
		for _, res := range []string{"secrets", "services", "networkpolicies", "statefulsets", "persistentvolumeclaims"} {
			t.Run(verb+" "+res, func(t *testing.T) {
				c := newCluster(t)
				p := newProvisioner(t, c)
				if verb == "update" {
					_, err := newProvisioner(t, c, func(cfg *Config) { cfg.Replicas = 3 }).Ensure(ctxT(t), "acme")
					require.NoError(t, err)
				}
				c.PrependReactor(verb, res, func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(corev1.Resource(res), "x", errors.New("no"))
				})
				var errs []error
				_, err := p.Ensure(ctxT(t), "acme")
				errs = append(errs, err, p.Check(ctxT(t), "acme"), p.Remove(ctxT(t), "acme"))
				var forbidden int
				for _, err := range errs {
					if apierrors.IsForbidden(err) {
						forbidden++
						require.Contains(t, err.Error(), "forbidden")
					}
				}
				called := slices.ContainsFunc(c.Actions(), func(a k8stesting.Action) bool {
					return a.GetVerb() == verb && a.GetResource().Resource == res
				})
				require.Equal(t, called, forbidden > 0, "every refused call is reported: %v", errs)
			})
		}
	}
}

// apiCall is one (API group, resource, verb) the provisioner uses.
type apiCall struct {
	Group    string `json:"group"`
	Resource string `json:"resource"`
	Verb     string `json:"verb"`
}

// TestAPICallsAreTheListTheChartGrants runs every path (create, update,
// recreate, check, remove) and compares the calls made with
// testdata/api-calls.json, which deploy/helmchart compares with the Role
// the Helm chart gives the worker.
func TestAPICallsAreTheListTheChartGrants(t *testing.T) {
	c := newCluster(t)
	ctx := ctxT(t)
	_, err := newProvisioner(t, c).Ensure(ctx, "acme")
	require.NoError(t, err)
	three := newProvisioner(t, c, func(cfg *Config) { cfg.Replicas = 3 })
	_, err = three.Ensure(ctx, "acme")
	require.NoError(t, err)
	headless, err := c.CoreV1().Services(testNS).Get(ctx, "nats-t-acme-headless", metav1.GetOptions{})
	require.NoError(t, err)
	headless.Spec.ClusterIP = "10.0.0.2"
	require.NoError(t, c.Tracker().Update(corev1.SchemeGroupVersion.WithResource("services"), headless, testNS))
	_, err = three.Ensure(ctx, "acme")
	require.NoError(t, err)
	require.NoError(t, three.Check(ctx, "acme"))
	require.NoError(t, three.Remove(ctx, "acme"))
	require.NoError(t, three.Remove(ctx, "acme"))

	set := map[apiCall]bool{}
	for _, a := range c.Actions() {
		set[apiCall{Group: a.GetResource().Group, Resource: a.GetResource().Resource, Verb: a.GetVerb()}] = true
	}
	var got []apiCall
	for call := range set {
		got = append(got, call)
	}
	slices.SortFunc(got, func(a, b apiCall) int {
		return strings.Compare(a.Group+"/"+a.Resource+"/"+a.Verb, b.Group+"/"+b.Resource+"/"+b.Verb)
	})
	doc, err := json.MarshalIndent(got, "", "  ")
	require.NoError(t, err)
	doc = append(doc, '\n')
	path := filepath.Join("testdata", "api-calls.json")
	if *update {
		require.NoError(t, os.WriteFile(path, doc, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(doc), "run go test -run TestAPICalls -update, then update the chart's Role (deploy/helm/vrsky/templates/tenant-instances.yaml)")
	require.Len(t, got, 18)
}

func TestConfigDefaultsAndRefusals(t *testing.T) {
	p := newProvisioner(t, newCluster(t), func(cfg *Config) { cfg.PollInterval = 0 })
	require.Equal(t, 2*time.Second, p.cfg.PollInterval)
	require.EqualValues(t, 1, p.cfg.Replicas)
	require.Equal(t, DefaultImage, p.cfg.Image)

	_, err := New(nil, testConfig())
	require.Error(t, err)
	for name, mutate := range map[string]func(*Config){
		"no namespace":        func(c *Config) { c.Namespace = "" },
		"bad namespace":       func(c *Config) { c.Namespace = "Tenants" },
		"bad cluster domain":  func(c *Config) { c.ClusterDomain = "cluster local" },
		"latest":              func(c *Config) { c.Image = "nats:latest" },
		"no tag":              func(c *Config) { c.Image = "registry.example:5000/nats" },
		"space in image":      func(c *Config) { c.Image = "nats:2 --x" },
		"two replicas":        func(c *Config) { c.Replicas = 2 },
		"five replicas":       func(c *Config) { c.Replicas = 5 },
		"bad storage class":   func(c *Config) { c.StorageClass = "Fast_SSD" },
		"tiny volume":         func(c *Config) { c.StorageSize = resourceMi(100) },
		"no memory limit":     func(c *Config) { c.Resources = corev1.ResourceRequirements{Requests: defaultResources.Requests} },
		"bad platform ns":     func(c *Config) { c.Platform.Namespace = "-x" },
		"no platform labels":  func(c *Config) { c.Platform.Labels = nil },
		"bad platform label":  func(c *Config) { c.Platform.Labels = map[string]string{"a b": "c"} },
		"bad label value":     func(c *Config) { c.Platform.Labels = map[string]string{"a": "c d"} },
		"component label set": func(c *Config) { c.Platform.Labels = map[string]string{componentLabel: "api"} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			mutate(&cfg)
			_, err := New(newCluster(t), cfg)
			require.Error(t, err)
		})
	}
	// A digest needs no tag.
	newProvisioner(t, newCluster(t), func(c *Config) { c.Image = "nats@sha256:" + strings.Repeat("a", 64) })
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{
		EnvNamespace:         "tenants",
		EnvClusterDomain:     "cluster.local",
		EnvImage:             "registry.example/nats:2.15.2-alpine",
		EnvReplicas:          "3",
		EnvStorageClass:      "fast",
		EnvStorageSize:       "20Gi",
		EnvResources:         `{"requests":{"cpu":"100m","memory":"256Mi"},"limits":{"memory":"1Gi"}}`,
		EnvPlatformNamespace: "vrsky",
		EnvPlatformLabels:    "app.kubernetes.io/name=vrsky, app.kubernetes.io/instance=prod",
	}
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := FromEnv(getenv(env))
	require.NoError(t, err)
	require.Equal(t, "tenants", cfg.Namespace)
	require.Equal(t, "cluster.local", cfg.ClusterDomain)
	require.EqualValues(t, 3, cfg.Replicas)
	require.Equal(t, "20Gi", cfg.StorageSize.String())
	require.Equal(t, "1Gi", cfg.Resources.Limits.Memory().String())
	require.Equal(t, map[string]string{"app.kubernetes.io/name": "vrsky", "app.kubernetes.io/instance": "prod"}, cfg.Platform.Labels)
	p, err := New(newCluster(t), cfg)
	require.NoError(t, err)
	n, _ := namesFor("acme")
	require.Equal(t, "nats-t-acme-0.nats-t-acme-headless.tenants.svc.cluster.local", p.podHost(n, 0))

	// Only the namespace and the labels are required.
	cfg, err = FromEnv(getenv(map[string]string{EnvNamespace: "tenants", EnvPlatformLabels: "a=b"}))
	require.NoError(t, err)
	require.Equal(t, "tenants", cfg.Platform.Namespace)

	for key, bad := range map[string]string{
		EnvNamespace:      "",
		EnvReplicas:       "three",
		EnvStorageSize:    "lots",
		EnvResources:      `{"requests":{"cpu":"1"},"limitz":{}}`,
		EnvPlatformLabels: "a=b,a=c",
		EnvImage:          "nats",
	} {
		t.Run(key, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			e[key] = bad
			_, err := FromEnv(getenv(e))
			require.Error(t, err)
		})
	}
	for _, bad := range []string{"a", "=b", "a=b,,c=d"} {
		_, err := parseLabels(bad)
		require.Error(t, err, bad)
	}
}

// TestOverHTTP: a Provisioner from a rest.Config speaks to an API server
// over HTTP (here one that has nothing, and then one that refuses).
func TestOverHTTP(t *testing.T) {
	var paths []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/persistentvolumeclaims") {
			_ = json.NewEncoder(w).Encode(corev1.PersistentVolumeClaimList{TypeMeta: metav1.TypeMeta{Kind: "PersistentVolumeClaimList", APIVersion: "v1"}})
			return
		}
		code, reason := http.StatusNotFound, metav1.StatusReasonNotFound
		if r.Method == http.MethodPost {
			code, reason = http.StatusForbidden, metav1.StatusReasonForbidden
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Reason: reason, Code: int32(code)})
	}))
	t.Cleanup(srv.Close)
	p, err := NewForConfig(&rest.Config{Host: srv.URL}, testConfig())
	require.NoError(t, err)
	require.ErrorIs(t, p.Check(ctxT(t), "acme"), provision.ErrNotFound)
	_, err = p.Ensure(ctxT(t), "acme")
	require.True(t, apierrors.IsForbidden(err), "%v", err)
	require.NoError(t, p.Remove(ctxT(t), "acme"), "nothing to delete is no error")
	require.Contains(t, paths, "GET /apis/apps/v1/namespaces/tenants/statefulsets/nats-t-acme")
	require.Contains(t, paths, "GET /api/v1/namespaces/tenants/persistentvolumeclaims")
	require.Contains(t, paths, "GET /apis/networking.k8s.io/v1/namespaces/tenants/networkpolicies/nats-t-acme")

	_, err = NewForConfig(&rest.Config{Host: "http://[::1"}, testConfig())
	require.Error(t, err)
}

func TestNewInClusterNeedsACluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	_, err := NewInCluster(testConfig())
	require.Error(t, err)
}

func TestConcurrentTenants(t *testing.T) {
	c := newCluster(t)
	p := newProvisioner(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			_, err := p.Ensure(ctxT(t), fmt.Sprintf("tenant-%d", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	list, err := c.AppsV1().StatefulSets(testNS).List(ctxT(t), metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list.Items, 8)
}
