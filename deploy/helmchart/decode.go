package helmchart

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// The custom resources the chart renders, as far as the chart uses them.
// Decoding refuses any field not declared here, so a misspelt field fails
// a test instead of being ignored by the cluster's CRD pruning.

// ServiceMonitor is monitoring.coreos.com/v1 ServiceMonitor.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// PrometheusRule is monitoring.coreos.com/v1 PrometheusRule.
type PrometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []RuleGroup `json:"groups"`
	} `json:"spec"`
}

// RuleGroup is one group of a PrometheusRule.
type RuleGroup struct {
	Name                    string            `json:"name"`
	Labels                  map[string]string `json:"labels,omitempty"`
	Interval                string            `json:"interval,omitempty"`
	QueryOffset             string            `json:"query_offset,omitempty"`
	Limit                   *int              `json:"limit,omitempty"`
	PartialResponseStrategy string            `json:"partial_response_strategy,omitempty"`
	Rules                   []Rule            `json:"rules"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Record        string             `json:"record,omitempty"`
	Alert         string             `json:"alert,omitempty"`
	Expr          intstr.IntOrString `json:"expr"`
	For           string             `json:"for,omitempty"`
	KeepFiringFor string             `json:"keep_firing_for,omitempty"`
	Labels        map[string]string  `json:"labels,omitempty"`
	Annotations   map[string]string  `json:"annotations,omitempty"`
}

// IngressRoute is traefik.io/v1alpha1 IngressRoute.
type IngressRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		EntryPoints []string `json:"entryPoints,omitempty"`
		Routes      []struct {
			Kind        string `json:"kind"`
			Match       string `json:"match"`
			Priority    int    `json:"priority,omitempty"`
			Middlewares []struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace,omitempty"`
			} `json:"middlewares,omitempty"`
			Services []struct {
				Kind      string             `json:"kind,omitempty"`
				Name      string             `json:"name"`
				Namespace string             `json:"namespace,omitempty"`
				Port      intstr.IntOrString `json:"port"`
				Scheme    string             `json:"scheme,omitempty"`
			} `json:"services"`
		} `json:"routes"`
		TLS *struct {
			SecretName   string `json:"secretName,omitempty"`
			CertResolver string `json:"certResolver,omitempty"`
		} `json:"tls,omitempty"`
	} `json:"spec"`
}

// IPStrategy is how Traefik picks a request's client address.
type IPStrategy struct {
	Depth       int      `json:"depth,omitempty"`
	ExcludedIPs []string `json:"excludedIPs,omitempty"`
}

// Middleware is traefik.io/v1alpha1 Middleware (the kinds the chart uses).
type Middleware struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		RateLimit *struct {
			Average         int    `json:"average"`
			Burst           int    `json:"burst"`
			Period          string `json:"period,omitempty"`
			SourceCriterion *struct {
				IPStrategy        *IPStrategy `json:"ipStrategy,omitempty"`
				RequestHeaderName string      `json:"requestHeaderName,omitempty"`
				RequestHost       bool        `json:"requestHost,omitempty"`
			} `json:"sourceCriterion,omitempty"`
		} `json:"rateLimit,omitempty"`
		IPAllowList *struct {
			SourceRange []string    `json:"sourceRange"`
			IPStrategy  *IPStrategy `json:"ipStrategy,omitempty"`
		} `json:"ipAllowList,omitempty"`
	} `json:"spec"`
}

// newFor returns an empty value of the type of apiVersion/kind.
func newFor(apiVersion, kind string) (any, error) {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "batch/v1 Job":
		return &batchv1.Job{}, nil
	case "v1 Service":
		return &corev1.Service{}, nil
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1 Secret":
		return &corev1.Secret{}, nil
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &ServiceMonitor{}, nil
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &PrometheusRule{}, nil
	case "traefik.io/v1alpha1 IngressRoute":
		return &IngressRoute{}, nil
	case "traefik.io/v1alpha1 Middleware":
		return &Middleware{}, nil
	}
	return nil, fmt.Errorf("%s %s: not a kind this chart is expected to render", apiVersion, kind)
}

// Decode decodes one YAML document strictly: unknown fields and duplicate
// keys are errors, and so is a kind the chart is not expected to render.
func Decode(doc []byte) (Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return Object{}, fmt.Errorf("decode: %w", err)
	}
	if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
		return Object{}, fmt.Errorf("decode: apiVersion, kind and metadata.name are required (got %q %q %q)", head.APIVersion, head.Kind, head.Metadata.Name)
	}
	v, err := newFor(head.APIVersion, head.Kind)
	if err != nil {
		return Object{}, err
	}
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		return Object{}, fmt.Errorf("%s %s: %w", head.Kind, head.Metadata.Name, err)
	}
	return Object{Kind: head.Kind, APIVersion: head.APIVersion, Name: head.Metadata.Name, Doc: doc, Value: v}, nil
}
