package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultImage is the nats-server image tenants' instances run: the
// release VRSky's own tests embed (github.com/nats-io/nats-server/v2 in
// go.mod), Alpine-based so nats-server is on PATH for the lame-duck
// preStop hook.
const DefaultImage = "nats:2.15.2-alpine"

// The ports every instance listens on.
const (
	ClientPort  = 4222
	ClusterPort = 6222
	MonitorPort = 8222
)

// Config says where and how the provisioner runs tenants' instances. The
// zero value of every field but Namespace has a default (see New).
type Config struct {
	// Namespace is where every instance's objects live. Required.
	Namespace string
	// ClusterDomain, when set, is appended to the Service host names
	// (<svc>.<ns>.svc.<ClusterDomain>); empty leaves them at <svc>.<ns>.svc,
	// which the pods' DNS search path completes.
	ClusterDomain string
	// Image is the nats-server image; a tag other than latest, or a digest.
	Image string
	// Replicas is 1 (one server) or 3 (a JetStream cluster). 0 means 1.
	Replicas int32
	// StorageClass of the JetStream volumes; empty uses the cluster's default.
	StorageClass string
	// StorageSize of each server's JetStream volume; zero means 10Gi.
	// JetStream's file store may use 90 % of it.
	StorageSize resource.Quantity
	// Resources of the nats-server container; empty means 250m CPU and
	// 512Mi memory requested, 2 CPUs and 2Gi memory at most. The memory
	// store may use a quarter of the memory limit.
	Resources corev1.ResourceRequirements
	// Platform names the pods of VRSky's roles, which alone may reach the
	// instances.
	Platform Platform
	// PollInterval is how often Ensure looks whether the instance is ready;
	// 0 means 2 s.
	PollInterval time.Duration
}

// Platform identifies VRSky's role pods for the instances' NetworkPolicy.
type Platform struct {
	// Namespace the roles run in; empty means Config.Namespace.
	Namespace string
	// Labels every role pod has (the chart's app.kubernetes.io/name and
	// app.kubernetes.io/instance); each role adds its
	// app.kubernetes.io/component (api, worker, runner). Required.
	Labels map[string]string
}

// defaultStorage and defaultResources are the Config defaults.
var (
	defaultStorage   = resource.MustParse("10Gi")
	defaultResources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("512Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
)

// withDefaults fills the zero fields and checks the rest.
func (c Config) withDefaults() (Config, error) {
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		return c, fmt.Errorf("namespace %q: %s", c.Namespace, strings.Join(msgs, "; "))
	}
	if c.ClusterDomain != "" {
		if msgs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(msgs) > 0 {
			return c, fmt.Errorf("cluster domain %q: %s", c.ClusterDomain, strings.Join(msgs, "; "))
		}
	}
	if c.Image == "" {
		c.Image = DefaultImage
	}
	if err := checkImage(c.Image); err != nil {
		return c, err
	}
	switch c.Replicas {
	case 0:
		c.Replicas = 1
	case 1, 3:
	default:
		return c, fmt.Errorf("replicas %d: an instance runs 1 server or a cluster of 3", c.Replicas)
	}
	if c.StorageClass != "" {
		if msgs := validation.IsDNS1123Subdomain(c.StorageClass); len(msgs) > 0 {
			return c, fmt.Errorf("storage class %q: %s", c.StorageClass, strings.Join(msgs, "; "))
		}
	}
	if c.StorageSize.IsZero() {
		c.StorageSize = defaultStorage.DeepCopy()
	}
	if c.StorageSize.Cmp(resource.MustParse("1Gi")) < 0 {
		return c, fmt.Errorf("storage size %s: at least 1Gi", c.StorageSize.String())
	}
	if len(c.Resources.Requests) == 0 && len(c.Resources.Limits) == 0 {
		c.Resources = *defaultResources.DeepCopy()
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		return c, fmt.Errorf("resources: a memory limit is required (the memory store is sized from it)")
	}
	if c.Platform.Namespace == "" {
		c.Platform.Namespace = c.Namespace
	}
	if msgs := validation.IsDNS1123Label(c.Platform.Namespace); len(msgs) > 0 {
		return c, fmt.Errorf("platform namespace %q: %s", c.Platform.Namespace, strings.Join(msgs, "; "))
	}
	if len(c.Platform.Labels) == 0 {
		return c, fmt.Errorf("platform labels: the labels of VRSky's role pods are required")
	}
	for k, v := range c.Platform.Labels {
		if msgs := append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...); len(msgs) > 0 {
			return c, fmt.Errorf("platform label %s=%s: %s", k, v, strings.Join(msgs, "; "))
		}
		if k == componentLabel {
			return c, fmt.Errorf("platform label %s: set per role by the provisioner", k)
		}
	}
	c.Platform.Labels = maps.Clone(c.Platform.Labels)
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	return c, nil
}

// checkImage refuses an image without a tag or digest, or tagged latest.
func checkImage(ref string) error {
	if strings.ContainsAny(ref, " \t\n") {
		return fmt.Errorf("image %q: contains white space", ref)
	}
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return fmt.Errorf("image %s: no tag (it would mean latest)", ref)
	}
	if tag := name[i+1:]; tag == "" || tag == "latest" {
		return fmt.Errorf("image %s: tag %q is not a version", ref, tag)
	}
	return nil
}

// The environment variables FromEnv reads.
const (
	EnvNamespace         = "VRSKY_PROVISIONER_NAMESPACE"
	EnvClusterDomain     = "VRSKY_PROVISIONER_CLUSTER_DOMAIN"
	EnvImage             = "VRSKY_PROVISIONER_IMAGE"
	EnvReplicas          = "VRSKY_PROVISIONER_REPLICAS"
	EnvStorageClass      = "VRSKY_PROVISIONER_STORAGE_CLASS"
	EnvStorageSize       = "VRSKY_PROVISIONER_STORAGE_SIZE"
	EnvResources         = "VRSKY_PROVISIONER_RESOURCES"
	EnvPlatformNamespace = "VRSKY_PROVISIONER_PLATFORM_NAMESPACE"
	EnvPlatformLabels    = "VRSKY_PROVISIONER_PLATFORM_LABELS"
)

// FromEnv reads a Config from the VRSKY_PROVISIONER_* variables (getenv is
// os.Getenv in the binary): the namespace; optionally the cluster domain,
// image, replicas (1 or 3), storage class and size (a quantity such as
// 20Gi), resources (the JSON of a Kubernetes ResourceRequirements); the
// platform's namespace and its pods' labels (k=v,k=v). The Helm chart sets
// them when tenantInstances.enabled is true.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Namespace:     getenv(EnvNamespace),
		ClusterDomain: getenv(EnvClusterDomain),
		Image:         getenv(EnvImage),
		StorageClass:  getenv(EnvStorageClass),
		Platform:      Platform{Namespace: getenv(EnvPlatformNamespace)},
	}
	if c.Namespace == "" {
		return c, fmt.Errorf("%s is not set", EnvNamespace)
	}
	if s := getenv(EnvReplicas); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvReplicas, err)
		}
		c.Replicas = int32(n)
	}
	if s := getenv(EnvStorageSize); s != "" {
		q, err := resource.ParseQuantity(s)
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvStorageSize, err)
		}
		c.StorageSize = q
	}
	if s := getenv(EnvResources); s != "" {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.Resources); err != nil {
			return c, fmt.Errorf("%s: %w", EnvResources, err)
		}
	}
	labels, err := parseLabels(getenv(EnvPlatformLabels))
	if err != nil {
		return c, fmt.Errorf("%s: %w", EnvPlatformLabels, err)
	}
	c.Platform.Labels = labels
	return c.withDefaults()
}

// parseLabels reads k=v,k=v.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("label %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}
