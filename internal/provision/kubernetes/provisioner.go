// Package kubernetes runs tenants' dedicated NATS instances in a
// Kubernetes cluster through the API server (client-go): per tenant, in one
// configured namespace, a Secret (the generated credentials and the
// nats-server configuration), a headless and a client Service, a
// StatefulSet of 1 or 3 servers with a JetStream volume each, and a
// NetworkPolicy that lets only VRSky's roles in.
//
// It implements provision.Provisioner. It never touches an object it did
// not make (every object carries app.kubernetes.io/managed-by: vrsky and the
// tenant's annotation, and is found by a name derived from the tenant name
// alone), never logs or returns a credential except in the Instance Ensure
// returns, and calls only what the Helm chart's Role grants
// (testdata/api-calls.json is that list; deploy/helmchart compares them).
package kubernetes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	networkingv1client "k8s.io/client-go/kubernetes/typed/networking/v1"
	"k8s.io/client-go/rest"

	"github.com/vrsky/vrsky/dataplane"
	"github.com/vrsky/vrsky/internal/provision"
)

// Provisioner creates, checks and removes tenants' instances in one
// namespace. It is safe for concurrent use; calls for one tenant should not
// overlap (the TenantPlacement workflow runs them one at a time).
type Provisioner struct {
	client Client
	cfg    Config
}

// Client is the part of client-go's kubernetes.Interface the provisioner
// uses: a *kubernetes.Clientset, or the fake one in tests, is a Client.
// NewForConfig builds one from the three typed clients alone, so the
// binary does not link every API group's client.
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	AppsV1() appsv1client.AppsV1Interface
	NetworkingV1() networkingv1client.NetworkingV1Interface
}

// typedClients is a Client made of the three typed clients.
type typedClients struct {
	core       corev1client.CoreV1Interface
	apps       appsv1client.AppsV1Interface
	networking networkingv1client.NetworkingV1Interface
}

func (c typedClients) CoreV1() corev1client.CoreV1Interface { return c.core }
func (c typedClients) AppsV1() appsv1client.AppsV1Interface { return c.apps }
func (c typedClients) NetworkingV1() networkingv1client.NetworkingV1Interface {
	return c.networking
}

var _ provision.Provisioner = (*Provisioner)(nil)

// New returns a Provisioner using client (a kubernetes.Interface will
// do), with cfg's defaults filled in; it refuses an invalid Config.
func New(client Client, cfg Config) (*Provisioner, error) {
	if client == nil {
		return nil, errors.New("kubernetes provisioner: no client")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("kubernetes provisioner: %w", err)
	}
	return &Provisioner{client: client, cfg: c}, nil
}

// NewForConfig returns a Provisioner talking to the API server rc
// describes.
func NewForConfig(rc *rest.Config, cfg Config) (*Provisioner, error) {
	var (
		c   typedClients
		err error
	)
	if c.core, err = corev1client.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("kubernetes provisioner: %w", err)
	}
	if c.apps, err = appsv1client.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("kubernetes provisioner: %w", err)
	}
	if c.networking, err = networkingv1client.NewForConfig(rc); err != nil {
		return nil, fmt.Errorf("kubernetes provisioner: %w", err)
	}
	return New(c, cfg)
}

// NewInCluster returns a Provisioner that talks to the API server of the
// cluster it runs in, as the pod's ServiceAccount.
func NewInCluster(cfg Config) (*Provisioner, error) {
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes provisioner: %w", err)
	}
	return NewForConfig(rc, cfg)
}

// Ensure creates the tenant's objects or brings them back to what they
// should be, then waits until every server is ready (or ctx ends). The
// credentials are made once and kept in the Secret: calls for one tenant
// return the same ones for as long as the Secret exists.
func (p *Provisioner) Ensure(ctx context.Context, tenant string) (dataplane.Instance, error) {
	n, err := namesFor(tenant)
	if err != nil {
		return dataplane.Instance{}, err
	}
	password, config, err := p.ensureSecret(ctx, n)
	if err != nil {
		return dataplane.Instance{}, err
	}
	if err := p.ensureService(ctx, p.headlessService(n)); err != nil {
		return dataplane.Instance{}, err
	}
	if err := p.ensureService(ctx, p.clientService(n)); err != nil {
		return dataplane.Instance{}, err
	}
	if err := p.ensureNetworkPolicy(ctx, p.networkPolicy(n)); err != nil {
		return dataplane.Instance{}, err
	}
	if err := p.ensureStatefulSet(ctx, p.statefulSet(n, config)); err != nil {
		return dataplane.Instance{}, err
	}
	if err := p.waitReady(ctx, n); err != nil {
		return dataplane.Instance{}, err
	}
	host := n.base + p.svcSuffix()
	return dataplane.Instance{
		URLs:     []string{fmt.Sprintf("nats://%s:%d", host, ClientPort)},
		User:     User,
		Password: password,
		Monitor:  fmt.Sprintf("http://%s:%d", host, MonitorPort),
	}, nil
}

// Check reports whether every server of the tenant's instance is ready
// (its readiness probe asks /healthz?js-enabled-only=true), and whether
// the Secret and the client Service are there.
func (p *Provisioner) Check(ctx context.Context, tenant string) error {
	n, err := namesFor(tenant)
	if err != nil {
		return err
	}
	ss, err := p.client.AppsV1().StatefulSets(p.cfg.Namespace).Get(ctx, n.base, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("tenant %s: %w", tenant, provision.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get StatefulSet %s/%s: %w", p.cfg.Namespace, n.base, err)
	}
	if err := owned(&ss.ObjectMeta, n); err != nil {
		return err
	}
	if err := readiness(ss); err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	if _, err := p.client.CoreV1().Secrets(p.cfg.Namespace).Get(ctx, n.base, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("tenant %s: the instance's Secret %s: %w", tenant, n.base, err)
	}
	if _, err := p.client.CoreV1().Services(p.cfg.Namespace).Get(ctx, n.base, metav1.GetOptions{}); err != nil {
		return fmt.Errorf("tenant %s: the instance's Service %s: %w", tenant, n.base, err)
	}
	return nil
}

// Remove deletes the tenant's StatefulSet, Services, NetworkPolicy, Secret
// and its servers' volumes (PersistentVolumeClaims): the data is gone.
// Objects already gone are not an error.
func (p *Provisioner) Remove(ctx context.Context, tenant string) error {
	n, err := namesFor(tenant)
	if err != nil {
		return err
	}
	ns := p.cfg.Namespace
	core, apps, nets := p.client.CoreV1(), p.client.AppsV1(), p.client.NetworkingV1()
	get := metav1.GetOptions{}
	objects := []struct {
		kind, name string
		get        func() (*metav1.ObjectMeta, error)
		del        func(metav1.DeleteOptions) error
	}{
		// The StatefulSet first, in the foreground (it goes once its pods
		// have). A volume deleted below while a stopping server still
		// uses it stays until that server is gone (the cluster's PVC
		// protection); the StatefulSet's retention policy deletes the
		// volumes as well.
		{"StatefulSet", n.base,
			func() (*metav1.ObjectMeta, error) {
				o, err := apps.StatefulSets(ns).Get(ctx, n.base, get)
				return metaOf(o, err)
			},
			func(o metav1.DeleteOptions) error {
				o.PropagationPolicy = ptrTo(metav1.DeletePropagationForeground)
				return apps.StatefulSets(ns).Delete(ctx, n.base, o)
			}},
		{"Service", n.base,
			func() (*metav1.ObjectMeta, error) {
				o, err := core.Services(ns).Get(ctx, n.base, get)
				return metaOf(o, err)
			},
			func(o metav1.DeleteOptions) error { return core.Services(ns).Delete(ctx, n.base, o) }},
		{"Service", n.headless,
			func() (*metav1.ObjectMeta, error) {
				o, err := core.Services(ns).Get(ctx, n.headless, get)
				return metaOf(o, err)
			},
			func(o metav1.DeleteOptions) error { return core.Services(ns).Delete(ctx, n.headless, o) }},
		{"NetworkPolicy", n.base,
			func() (*metav1.ObjectMeta, error) {
				o, err := nets.NetworkPolicies(ns).Get(ctx, n.base, get)
				return metaOf(o, err)
			},
			func(o metav1.DeleteOptions) error { return nets.NetworkPolicies(ns).Delete(ctx, n.base, o) }},
		{"Secret", n.base,
			func() (*metav1.ObjectMeta, error) {
				o, err := core.Secrets(ns).Get(ctx, n.base, get)
				return metaOf(o, err)
			},
			func(o metav1.DeleteOptions) error { return core.Secrets(ns).Delete(ctx, n.base, o) }},
	}
	for _, o := range objects {
		m, err := o.get()
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get %s/%s %s: %w", ns, o.kind, o.name, err)
		}
		if err := owned(m, n); err != nil {
			return err
		}
		// Only the object just checked: not one made again under its name.
		opts := metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptrTo(m.UID)}}
		if err := o.del(opts); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s/%s %s: %w", ns, o.kind, o.name, err)
		}
	}
	sel := labels.SelectorFromSet(map[string]string{instanceLabel: n.base, managedByLabel: managedBy, componentLabel: component})
	pvcs, err := p.client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return fmt.Errorf("list the volumes of tenant %s: %w", tenant, err)
	}
	for _, pvc := range pvcs.Items {
		if !sel.Matches(labels.Set(pvc.Labels)) {
			continue // not this instance's, whatever the list returned
		}
		if err := p.client.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, pvc.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s/PersistentVolumeClaim %s: %w", ns, pvc.Name, err)
		}
	}
	return nil
}

// ensureSecret returns the instance's password and configuration, making
// the credentials when there are none yet and rewriting the configuration
// when it is not what this Config makes.
func (p *Provisioner) ensureSecret(ctx context.Context, n names) (password, config string, err error) {
	secrets := p.client.CoreV1().Secrets(p.cfg.Namespace)
	cur, err := secrets.Get(ctx, n.base, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		password, routePassword, err := newPassword(), newPassword(), error(nil)
		want := p.secret(n, password, routePassword)
		if _, err = secrets.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return "", "", fmt.Errorf("create Secret %s/%s: %w", p.cfg.Namespace, n.base, err)
		}
		return password, string(want.Data[configKey]), nil
	case err != nil:
		return "", "", fmt.Errorf("get Secret %s/%s: %w", p.cfg.Namespace, n.base, err)
	}
	if err := owned(&cur.ObjectMeta, n); err != nil {
		return "", "", err
	}
	password, routePassword := string(cur.Data[passwordKey]), string(cur.Data[routePasswordKey])
	// A damaged Secret gets new credentials: the instance then restarts
	// with them (the configuration's hash changes).
	if !validPassword(password) {
		password = newPassword()
	}
	if !validPassword(routePassword) {
		routePassword = newPassword()
	}
	want := p.secret(n, password, routePassword)
	if !equality.Semantic.DeepEqual(cur.Data, want.Data) || !sameMeta(&cur.ObjectMeta, &want.ObjectMeta) {
		cur.Data = want.Data
		cur.Labels, cur.Annotations = mergeMeta(cur.ObjectMeta, want.ObjectMeta)
		if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return "", "", fmt.Errorf("update Secret %s/%s: %w", p.cfg.Namespace, n.base, err)
		}
	}
	return password, string(want.Data[configKey]), nil
}

func (p *Provisioner) ensureService(ctx context.Context, want *corev1.Service) error {
	services := p.client.CoreV1().Services(p.cfg.Namespace)
	cur, err := services.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := services.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", p.cfg.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get Service %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	if err := owned(&cur.ObjectMeta, namesOf(want.ObjectMeta)); err != nil {
		return err
	}
	// clusterIP and type are immutable or assigned by the cluster: a
	// headless Service that lost its clusterIP: None cannot be repaired by
	// an update, so it is recreated.
	if (cur.Spec.ClusterIP == corev1.ClusterIPNone) != (want.Spec.ClusterIP == corev1.ClusterIPNone) {
		if err := services.Delete(ctx, cur.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Service %s/%s to recreate it: %w", p.cfg.Namespace, cur.Name, err)
		}
		if _, err := services.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s/%s: %w", p.cfg.Namespace, want.Name, err)
		}
		return nil
	}
	same := equality.Semantic.DeepEqual(cur.Spec.Ports, want.Spec.Ports) &&
		equality.Semantic.DeepEqual(cur.Spec.Selector, want.Spec.Selector) &&
		cur.Spec.PublishNotReadyAddresses == want.Spec.PublishNotReadyAddresses &&
		sameMeta(&cur.ObjectMeta, &want.ObjectMeta)
	if same {
		return nil
	}
	cur.Spec.Ports, cur.Spec.Selector = want.Spec.Ports, want.Spec.Selector
	cur.Spec.PublishNotReadyAddresses = want.Spec.PublishNotReadyAddresses
	cur.Labels, cur.Annotations = mergeMeta(cur.ObjectMeta, want.ObjectMeta)
	if _, err := services.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update Service %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	return nil
}

func (p *Provisioner) ensureNetworkPolicy(ctx context.Context, want *networkingv1.NetworkPolicy) error {
	policies := p.client.NetworkingV1().NetworkPolicies(p.cfg.Namespace)
	cur, err := policies.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := policies.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create NetworkPolicy %s/%s: %w", p.cfg.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get NetworkPolicy %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	if err := owned(&cur.ObjectMeta, namesOf(want.ObjectMeta)); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(cur.Spec, want.Spec) && sameMeta(&cur.ObjectMeta, &want.ObjectMeta) {
		return nil
	}
	cur.Spec = want.Spec
	cur.Labels, cur.Annotations = mergeMeta(cur.ObjectMeta, want.ObjectMeta)
	if _, err := policies.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update NetworkPolicy %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	return nil
}

// ensureStatefulSet creates the StatefulSet or updates what may change in
// one: replicas, the pod template, the update strategy and the volume
// retention policy. Its selector, Service name and volume templates are
// immutable; a new storage size or class applies to new instances only.
//
// The API server fills defaults into a pod template, so the template is
// compared through the hash of the one the provisioner built
// (specHashAnnotation), and replicas directly.
func (p *Provisioner) ensureStatefulSet(ctx context.Context, want *appsv1.StatefulSet) error {
	spec, err := json.Marshal(want.Spec)
	if err != nil {
		return fmt.Errorf("StatefulSet %s: %w", want.Name, err)
	}
	sum := sha256.Sum256(spec)
	want.Annotations[specHashAnnotation] = hex.EncodeToString(sum[:])
	sets := p.client.AppsV1().StatefulSets(p.cfg.Namespace)
	cur, err := sets.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if _, err := sets.Create(ctx, want, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create StatefulSet %s/%s: %w", p.cfg.Namespace, want.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get StatefulSet %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	if err := owned(&cur.ObjectMeta, namesOf(want.ObjectMeta)); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(cur.Spec.Replicas, want.Spec.Replicas) && sameMeta(&cur.ObjectMeta, &want.ObjectMeta) {
		return nil
	}
	cur.Spec.Replicas, cur.Spec.Template = want.Spec.Replicas, want.Spec.Template
	cur.Spec.UpdateStrategy = want.Spec.UpdateStrategy
	cur.Spec.PersistentVolumeClaimRetentionPolicy = want.Spec.PersistentVolumeClaimRetentionPolicy
	cur.Labels, cur.Annotations = mergeMeta(cur.ObjectMeta, want.ObjectMeta)
	if _, err := sets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update StatefulSet %s/%s: %w", p.cfg.Namespace, want.Name, err)
	}
	return nil
}

// waitReady polls the StatefulSet until all its servers run the current
// template and are ready, or ctx ends.
func (p *Provisioner) waitReady(ctx context.Context, n names) error {
	t := time.NewTicker(p.cfg.PollInterval)
	defer t.Stop()
	for {
		ss, err := p.client.AppsV1().StatefulSets(p.cfg.Namespace).Get(ctx, n.base, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("wait for tenant %s's instance: get StatefulSet: %w", n.tenant, err)
		}
		notReady := readiness(ss)
		if notReady == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for tenant %s's instance: %w (%w)", n.tenant, ctx.Err(), notReady)
		case <-t.C:
		}
	}
}

// readiness says what keeps a StatefulSet from being ready, or nil.
func readiness(ss *appsv1.StatefulSet) error {
	want := int32(1)
	if ss.Spec.Replicas != nil {
		want = *ss.Spec.Replicas
	}
	st := ss.Status
	switch {
	case st.ObservedGeneration < ss.Generation:
		return fmt.Errorf("StatefulSet %s: the controller has not seen its latest change yet", ss.Name)
	case st.ReadyReplicas != want:
		return fmt.Errorf("StatefulSet %s: %d of %d servers ready", ss.Name, st.ReadyReplicas, want)
	case st.UpdateRevision != "" && st.UpdatedReplicas != want:
		return fmt.Errorf("StatefulSet %s: %d of %d servers run the current configuration", ss.Name, st.UpdatedReplicas, want)
	}
	return nil
}

// metaOf returns the metadata of an object just read.
func metaOf[T interface{ GetObjectMeta() metav1.Object }](o T, err error) (*metav1.ObjectMeta, error) {
	if err != nil {
		return nil, err
	}
	m, ok := o.GetObjectMeta().(*metav1.ObjectMeta)
	if !ok {
		return nil, fmt.Errorf("unexpected metadata type %T", o.GetObjectMeta())
	}
	return m, nil
}

// owned refuses an object that has the instance's name but was not made
// by VRSky for this tenant.
func owned(m *metav1.ObjectMeta, n names) error {
	if m.Labels[managedByLabel] != managedBy || m.Annotations[TenantAnnotation] != n.tenant {
		return fmt.Errorf("%s/%s exists but is not tenant %s's instance (managed-by %q, tenant %q): refusing to touch it",
			m.Namespace, m.Name, n.tenant, m.Labels[managedByLabel], m.Annotations[TenantAnnotation])
	}
	return nil
}

// namesOf recovers the names from an object the provisioner built.
func namesOf(m metav1.ObjectMeta) names {
	return names{tenant: m.Annotations[TenantAnnotation]}
}

// sameMeta reports whether cur already has every label and annotation of want.
func sameMeta(cur, want *metav1.ObjectMeta) bool {
	for k, v := range want.Labels {
		if cur.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if cur.Annotations[k] != v {
			return false
		}
	}
	return true
}

// mergeMeta keeps labels and annotations others added and sets ours.
func mergeMeta(cur, want metav1.ObjectMeta) (lbls, annotations map[string]string) {
	lbls, annotations = maps.Clone(cur.Labels), maps.Clone(cur.Annotations)
	if lbls == nil {
		lbls = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(lbls, want.Labels)
	maps.Copy(annotations, want.Annotations)
	return lbls, annotations
}

// newPassword is 32 random bytes in hex.
func newPassword() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it panics rather)
	return hex.EncodeToString(b)
}

func validPassword(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32
}

func resourceMi(n int64) resource.Quantity { return *resource.NewQuantity(n<<20, resource.BinarySI) }

func ptrTo[T any](v T) *T { return &v }
