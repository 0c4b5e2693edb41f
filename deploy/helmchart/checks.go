package helmchart

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// RoleDrainSeconds is how long a VRSky role drains after SIGTERM
// (cmd/vrsky: roleShutdownTimeout); pods must be given longer.
const RoleDrainSeconds = 30

// Workload is a pod template and the object that owns it.
type Workload struct {
	Kind, Name string
	// Job is true for batch Jobs, which run to completion (no probes).
	Job bool
	// Hook is true when the owner is a Helm hook.
	Hook     bool
	Selector *metav1.LabelSelector
	Template corev1.PodTemplateSpec
	// Replicas is the owner's replica count; nil when unset.
	Replicas *int32
}

// Workloads returns every pod template in the release.
func (r *Release) Workloads() []Workload {
	var out []Workload
	for _, o := range r.Objects {
		switch v := o.Value.(type) {
		case *appsv1.Deployment:
			out = append(out, Workload{Kind: o.Kind, Name: o.Name, Hook: o.Hook, Selector: v.Spec.Selector, Template: v.Spec.Template, Replicas: v.Spec.Replicas})
		case *appsv1.StatefulSet:
			out = append(out, Workload{Kind: o.Kind, Name: o.Name, Hook: o.Hook, Selector: v.Spec.Selector, Template: v.Spec.Template, Replicas: v.Spec.Replicas})
		case *batchv1.Job:
			out = append(out, Workload{Kind: o.Kind, Name: o.Name, Job: true, Hook: o.Hook, Selector: v.Spec.Selector, Template: v.Spec.Template})
		}
	}
	return out
}

// Check runs every check on the release and returns all problems found.
func Check(r *Release) error {
	if len(r.Objects) == 0 {
		return ErrNoObjects
	}
	return errors.Join(
		CheckContainers(r),
		CheckConfigMaps(r),
		CheckNetworkPolicyCoverage(r),
		CheckSelectors(r),
		CheckHooks(r),
		CheckMonitoring(r),
		CheckGateway(r),
		CheckCredentialsFromSecrets(r),
		CheckNames(r),
	)
}

// maxConfigMapBytes is the most the API server stores in one ConfigMap.
const maxConfigMapBytes = 1 << 20

// CheckNames: every name is a valid DNS subdomain, Service names are DNS
// labels (they become host names), and StatefulSet names leave room for the
// pod ordinal and the controller's revision label.
func CheckNames(r *Release) error {
	var errs []error
	seen := map[string]bool{}
	for _, o := range r.Objects {
		key := o.Kind + "/" + o.Name
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: rendered twice", key))
		}
		seen[key] = true
		if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s: %s", key, strings.Join(msgs, "; ")))
		}
		switch o.Kind {
		case "Service":
			if msgs := validation.IsDNS1035Label(o.Name); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s: %s", key, strings.Join(msgs, "; ")))
			}
		case "StatefulSet":
			if len(o.Name) > 52 {
				errs = append(errs, fmt.Errorf("%s: longer than 52 characters", key))
			}
		}
	}
	return errors.Join(errs...)
}

// CheckContainers: every container has CPU and memory requests and limits,
// a pinned image, a locked-down security context, and, outside Jobs,
// liveness and readiness probes; role pods outlive the roles' drain.
func CheckContainers(r *Release) error {
	var errs []error
	for _, w := range r.Workloads() {
		spec := w.Template.Spec
		where := w.Kind + "/" + w.Name
		if !w.Job && (spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds <= RoleDrainSeconds) {
			errs = append(errs, fmt.Errorf("%s: terminationGracePeriodSeconds must be longer than the %d s drain", where, RoleDrainSeconds))
		}
		podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			cw := where + " container " + c.Name
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[res]; !ok {
					errs = append(errs, fmt.Errorf("%s: no %s request", cw, res))
				}
				if _, ok := c.Resources.Limits[res]; !ok {
					errs = append(errs, fmt.Errorf("%s: no %s limit", cw, res))
				}
			}
			if err := checkImage(c.Image); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", cw, err))
			}
			if !w.Job && (c.LivenessProbe == nil || c.ReadinessProbe == nil) {
				errs = append(errs, fmt.Errorf("%s: needs both a liveness and a readiness probe", cw))
			}
			sc := c.SecurityContext
			switch {
			case sc == nil:
				errs = append(errs, fmt.Errorf("%s: no securityContext", cw))
			default:
				if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
					errs = append(errs, fmt.Errorf("%s: may run as root", cw))
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					errs = append(errs, fmt.Errorf("%s: allowPrivilegeEscalation must be false", cw))
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					errs = append(errs, fmt.Errorf("%s: root filesystem must be read-only", cw))
				}
				if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
					errs = append(errs, fmt.Errorf("%s: must drop ALL capabilities and add none", cw))
				}
				if sc.Privileged != nil && *sc.Privileged {
					errs = append(errs, fmt.Errorf("%s: privileged", cw))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// checkImage refuses an image without a tag or digest, or tagged latest.
func checkImage(ref string) error {
	if ref == "" {
		return errors.New("no image")
	}
	if strings.Contains(ref, "@sha256:") {
		return nil
	}
	name := ref[strings.LastIndex(ref, "/")+1:]
	i := strings.LastIndex(name, ":")
	if i < 0 {
		return fmt.Errorf("image %s has no tag (it would mean latest)", ref)
	}
	if tag := name[i+1:]; tag == "" || tag == "latest" {
		return fmt.Errorf("image %s: tag %q is not a version", ref, tag)
	}
	return nil
}

var (
	secretKeyName = regexp.MustCompile(`(?i)(passw|secret|token|private|credential|access[-_.]?key|api[-_.]?key|seed|database[-_.]?url|dsn)`)
	secretValues  = []*regexp.Regexp{
		regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^/\s:@"]+:[^/\s@"]+@`), // URL with a password
		regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`),
		regexp.MustCompile(`\bS[OAU][A-Z2-7]{50,}\b`), // NATS nkey seeds
		regexp.MustCompile(`\bAKIA[0-9A-Z]{16}\b`),    // AWS access key IDs
		regexp.MustCompile(`\bvrsky_[0-9a-f]{64}\b`),  // an API key (metric names are vrsky_ too)
	}
)

// SecretLooking says why a ConfigMap entry looks like a credential, or "".
func SecretLooking(key, value string) string {
	if secretKeyName.MatchString(key) {
		return "its key names a credential"
	}
	for _, re := range secretValues {
		if re.MatchString(value) {
			return "its value looks like a credential (" + re.String() + ")"
		}
	}
	return ""
}

// CheckConfigMaps: no ConfigMap holds anything that looks like a credential.
func CheckConfigMaps(r *Release) error {
	var errs []error
	for _, o := range r.OfKind("ConfigMap") {
		cm := o.Value.(*corev1.ConfigMap)
		for k, v := range cm.Data {
			if why := SecretLooking(k, v); why != "" {
				errs = append(errs, fmt.Errorf("ConfigMap/%s key %s: %s; use a Secret", o.Name, k, why))
			}
		}
		size := 0
		for k, v := range cm.Data {
			size += len(k) + len(v)
		}
		if size > maxConfigMapBytes {
			errs = append(errs, fmt.Errorf("ConfigMap/%s: %d bytes, over the 1 MiB a ConfigMap may hold", o.Name, size))
		}
		if len(cm.BinaryData) > 0 {
			errs = append(errs, fmt.Errorf("ConfigMap/%s: binaryData cannot be checked for credentials", o.Name))
		}
	}
	return errors.Join(errs...)
}

func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}

// CheckNetworkPolicyCoverage: every pod template is selected by a
// NetworkPolicy of its own (not just the namespace's default deny) that
// governs both its ingress and its egress.
func CheckNetworkPolicyCoverage(r *Release) error {
	var policies []*networkingv1.NetworkPolicy
	for _, o := range r.OfKind("NetworkPolicy") {
		policies = append(policies, o.Value.(*networkingv1.NetworkPolicy))
	}
	var errs []error
	for _, w := range r.Workloads() {
		var ingress, egress bool
		for _, p := range policies {
			if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 {
				continue // the default deny
			}
			if !selects(&p.Spec.PodSelector, w.Template.Labels) {
				continue
			}
			ingress = ingress || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			egress = egress || slices.Contains(p.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
		if !ingress || !egress {
			errs = append(errs, fmt.Errorf("%s/%s: pods not governed by a NetworkPolicy of their own (ingress %t, egress %t)", w.Kind, w.Name, ingress, egress))
		}
	}
	return errors.Join(errs...)
}

// CheckSelectors: each workload selects its own template; every Service,
// PodDisruptionBudget and HorizontalPodAutoscaler points at pods or a
// Deployment the release has; a Deployment under an HPA sets no replicas.
func CheckSelectors(r *Release) error {
	var errs []error
	workloads := r.Workloads()
	matchesSome := func(sel *metav1.LabelSelector) bool {
		for _, w := range workloads {
			if !w.Job && selects(sel, w.Template.Labels) {
				return true
			}
		}
		return false
	}
	for _, w := range workloads {
		if w.Job {
			continue
		}
		if !selects(w.Selector, w.Template.Labels) {
			errs = append(errs, fmt.Errorf("%s/%s: selector does not match its pod template's labels", w.Kind, w.Name))
		}
		for _, other := range workloads {
			if other.Name != w.Name && !other.Job && selects(w.Selector, other.Template.Labels) {
				errs = append(errs, fmt.Errorf("%s/%s: selector also matches %s/%s's pods", w.Kind, w.Name, other.Kind, other.Name))
			}
		}
	}
	for _, o := range r.OfKind("Service") {
		svc := o.Value.(*corev1.Service)
		if len(svc.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("Service/%s: no selector", o.Name))
			continue
		}
		var pods *corev1.PodTemplateSpec
		for _, w := range workloads {
			if !w.Job && selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, w.Template.Labels) {
				pods = &w.Template
				break
			}
		}
		if pods == nil {
			errs = append(errs, fmt.Errorf("Service/%s: selector %v matches no pods", o.Name, svc.Spec.Selector))
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal != "" && !hasContainerPort(pods, p.TargetPort.StrVal) {
				errs = append(errs, fmt.Errorf("Service/%s port %s: target port %q is no container port of its pods", o.Name, p.Name, p.TargetPort.StrVal))
			}
		}
	}
	for _, o := range r.OfKind("PodDisruptionBudget") {
		pdb := o.Value.(*policyv1.PodDisruptionBudget)
		if !matchesSome(pdb.Spec.Selector) {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget/%s: selector matches no pods", o.Name))
		}
	}
	for _, o := range r.OfKind("HorizontalPodAutoscaler") {
		hpa := o.Value.(*autoscalingv2.HorizontalPodAutoscaler)
		ref := hpa.Spec.ScaleTargetRef
		target, ok := r.Find(ref.Kind, ref.Name)
		if !ok || ref.APIVersion != "apps/v1" {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler/%s: target %s %s/%s is not in the release", o.Name, ref.APIVersion, ref.Kind, ref.Name))
			continue
		}
		if d, ok := target.Value.(*appsv1.Deployment); ok && d.Spec.Replicas != nil {
			errs = append(errs, fmt.Errorf("Deployment/%s sets replicas while HorizontalPodAutoscaler/%s scales it: every upgrade would reset the scale", d.Name, o.Name))
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas > hpa.Spec.MaxReplicas {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler/%s: minReplicas must be set and at most maxReplicas", o.Name))
		}
	}
	return errors.Join(errs...)
}

func hasContainerPort(pods *corev1.PodTemplateSpec, name string) bool {
	for _, c := range pods.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// CheckHooks: the migration Job is a pre-install and pre-upgrade hook (so
// Helm runs it, and waits for it, before any role starts or changes), no
// role is a hook, and the hook uses nothing the release itself creates.
func CheckHooks(r *Release) error {
	var errs []error
	created := map[string]bool{}
	for _, o := range r.Objects {
		if !o.Hook {
			created[o.Kind+"/"+o.Name] = true
		}
	}
	var migrate int
	for _, w := range r.Workloads() {
		if !w.Job {
			if w.Hook {
				errs = append(errs, fmt.Errorf("%s/%s: a long-running workload must not be a hook", w.Kind, w.Name))
			}
			continue
		}
		if !slices.Contains(w.Template.Spec.Containers[0].Args, "migrate") {
			continue
		}
		migrate++
		o, _ := r.Find(w.Kind, w.Name)
		if !o.Hook || !slices.Contains(o.Events, "pre-install") || !slices.Contains(o.Events, "pre-upgrade") {
			errs = append(errs, fmt.Errorf("Job/%s: migrations must be a pre-install and pre-upgrade hook (events %v)", w.Name, o.Events))
		}
		spec := w.Template.Spec
		if sa := spec.ServiceAccountName; sa != "" && created["ServiceAccount/"+sa] {
			errs = append(errs, fmt.Errorf("Job/%s: uses ServiceAccount %s, which the release creates after its hooks", w.Name, sa))
		}
		for _, ref := range podReferences(spec) {
			if created[ref] {
				errs = append(errs, fmt.Errorf("Job/%s: uses %s, which the release creates only after its pre-install hooks", w.Name, ref))
			}
		}
	}
	if migrate > 1 {
		errs = append(errs, fmt.Errorf("%d migration Jobs; want one", migrate))
	}
	return errors.Join(errs...)
}

// podReferences lists the ConfigMaps and Secrets a pod spec uses, as
// "Kind/name".
func podReferences(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				out = append(out, "ConfigMap/"+e.ConfigMapRef.Name)
			}
			if e.SecretRef != nil {
				out = append(out, "Secret/"+e.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if e.ValueFrom.ConfigMapKeyRef != nil {
				out = append(out, "ConfigMap/"+e.ValueFrom.ConfigMapKeyRef.Name)
			}
			if e.ValueFrom.SecretKeyRef != nil {
				out = append(out, "Secret/"+e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil {
			out = append(out, "ConfigMap/"+v.ConfigMap.Name)
		}
		if v.Secret != nil {
			out = append(out, "Secret/"+v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					out = append(out, "ConfigMap/"+s.ConfigMap.Name)
				}
				if s.Secret != nil {
					out = append(out, "Secret/"+s.Secret.Name)
				}
			}
		}
	}
	return out
}

// CheckMonitoring: each ServiceMonitor selects a Service of the release
// that has the port it scrapes.
func CheckMonitoring(r *Release) error {
	var errs []error
	for _, o := range r.OfKind("ServiceMonitor") {
		sm := o.Value.(*ServiceMonitor)
		if len(sm.Spec.Endpoints) == 0 {
			errs = append(errs, fmt.Errorf("ServiceMonitor/%s: no endpoints", o.Name))
		}
		for _, ep := range sm.Spec.Endpoints {
			found := false
			for _, so := range r.OfKind("Service") {
				svc := so.Value.(*corev1.Service)
				if !selects(&sm.Spec.Selector, svc.Labels) {
					continue
				}
				for _, p := range svc.Spec.Ports {
					found = found || p.Name == ep.Port
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("ServiceMonitor/%s: no selected Service has a port named %q", o.Name, ep.Port))
			}
		}
	}
	for _, o := range r.OfKind("PrometheusRule") {
		pr := o.Value.(*PrometheusRule)
		for _, g := range pr.Spec.Groups {
			if g.Name == "" || len(g.Rules) == 0 {
				errs = append(errs, fmt.Errorf("PrometheusRule/%s: a group needs a name and rules", o.Name))
			}
			for _, rule := range g.Rules {
				if (rule.Alert == "") == (rule.Record == "") || rule.Expr.String() == "" {
					errs = append(errs, fmt.Errorf("PrometheusRule/%s group %s: each rule is an alert or a record, with an expr", o.Name, g.Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// CheckGateway: every IngressRoute sends traffic to a Service port of the
// release (never the admin port) through Middlewares the release has, over
// TLS.
func CheckGateway(r *Release) error {
	var errs []error
	for _, o := range r.OfKind("IngressRoute") {
		ir := o.Value.(*IngressRoute)
		if ir.Spec.TLS == nil || (ir.Spec.TLS.SecretName == "" && ir.Spec.TLS.CertResolver == "") {
			errs = append(errs, fmt.Errorf("IngressRoute/%s: no TLS", o.Name))
		}
		for _, rt := range ir.Spec.Routes {
			if len(rt.Middlewares) == 0 {
				errs = append(errs, fmt.Errorf("IngressRoute/%s route %s: no rate limit", o.Name, rt.Match))
			}
			for _, m := range rt.Middlewares {
				if _, ok := r.Find("Middleware", m.Name); !ok {
					errs = append(errs, fmt.Errorf("IngressRoute/%s: Middleware %s is not in the release", o.Name, m.Name))
				}
			}
			for _, s := range rt.Services {
				so, ok := r.Find("Service", s.Name)
				if !ok {
					errs = append(errs, fmt.Errorf("IngressRoute/%s: Service %s is not in the release", o.Name, s.Name))
					continue
				}
				svc := so.Value.(*corev1.Service)
				found := false
				for _, p := range svc.Spec.Ports {
					if p.Name == s.Port.String() || (s.Port.StrVal == "" && p.Port == s.Port.IntVal) {
						found = true
						if p.Name == "admin" {
							errs = append(errs, fmt.Errorf("IngressRoute/%s: exposes the admin port", o.Name))
						}
					}
				}
				if !found {
					errs = append(errs, fmt.Errorf("IngressRoute/%s: Service %s has no port %s", o.Name, s.Name, s.Port.String()))
				}
			}
		}
	}
	for _, o := range r.OfKind("Middleware") {
		m := o.Value.(*Middleware)
		if rl := m.Spec.RateLimit; rl != nil && (rl.Average <= 0 || rl.Burst < 1) {
			errs = append(errs, fmt.Errorf("Middleware/%s: a rate limit needs average > 0 and burst ≥ 1", o.Name))
		}
		if al := m.Spec.IPAllowList; al != nil && len(al.SourceRange) == 0 {
			errs = append(errs, fmt.Errorf("Middleware/%s: an empty allow list refuses everyone", o.Name))
		}
	}
	return errors.Join(errs...)
}

// credentialVars are the VRSky variables that hold credentials.
var credentialVars = []string{"VRSKY_DATABASE_URL", "VRSKY_S3_ACCESS_KEY", "VRSKY_S3_SECRET_KEY", "VRSKY_ADMIN_KEY_SHA256", "VRSKY_SECRETS_KEY"}

// CheckCredentialsFromSecrets: a credential variable is only ever set from
// a Secret, never as a plain value or from a ConfigMap.
func CheckCredentialsFromSecrets(r *Release) error {
	var errs []error
	for _, w := range r.Workloads() {
		for _, c := range w.Template.Spec.Containers {
			for _, e := range c.Env {
				if !slices.Contains(credentialVars, e.Name) {
					continue
				}
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					errs = append(errs, fmt.Errorf("%s/%s container %s: %s must come from a Secret", w.Kind, w.Name, c.Name, e.Name))
				}
			}
		}
	}
	for _, o := range r.OfKind("ConfigMap") {
		for k := range o.Value.(*corev1.ConfigMap).Data {
			if slices.Contains(credentialVars, k) {
				errs = append(errs, fmt.Errorf("ConfigMap/%s: holds %s", o.Name, k))
			}
		}
	}
	return errors.Join(errs...)
}

// Env returns the environment a container gets: its env entries and, for
// envFrom ConfigMaps of the release, their keys. Values set from a Secret
// are returned as "secret:NAME/KEY".
func (r *Release) Env(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if o, ok := r.Find("ConfigMap", from.ConfigMapRef.Name); ok {
			for k, v := range o.Value.(*corev1.ConfigMap).Data {
				env[from.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			env[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}
