package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The keys of an instance's Secret.
const (
	passwordKey      = "password"
	routePasswordKey = "route-password"
	configKey        = "nats.conf"
)

// configHashAnnotation on the pod template rolls the servers when their
// configuration changes (a new password, a cluster block).
const configHashAnnotation = "vrsky.io/config-sha256"

// specHashAnnotation on the StatefulSet is the hash of the spec the
// provisioner last wrote.
const specHashAnnotation = "vrsky.io/spec-sha256"

// The DNS servers a clustered instance may ask (to resolve its routes):
// the kube-dns pods in kube-system, as the Helm chart's default.
var dnsPeer = networkingv1.NetworkPolicyPeer{
	NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
	PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
}

func (p *Provisioner) meta(n names, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: p.cfg.Namespace, Labels: n.labels(), Annotations: n.annotations()}
}

// secret holds the platform's password, the routes' password and the
// server configuration made from them.
func (p *Provisioner) secret(n names, password, routePassword string) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: p.meta(n, n.base),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			passwordKey:      []byte(password),
			routePasswordKey: []byte(routePassword),
			configKey:        []byte(p.natsConfig(n, password, routePassword)),
		},
	}
}

func servicePort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromString(name), Protocol: corev1.ProtocolTCP}
}

// clientService is what the platform connects to: clients and monitoring.
func (p *Provisioner) clientService(n names) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: p.meta(n, n.base),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: n.selector(),
			Ports:    []corev1.ServicePort{servicePort("client", ClientPort), servicePort("monitor", MonitorPort)},
		},
	}
}

// headlessService gives each server its stable DNS name, ready or not
// (a cluster's servers must find each other before any is ready).
func (p *Provisioner) headlessService(n names) *corev1.Service {
	ports := []corev1.ServicePort{servicePort("client", ClientPort), servicePort("monitor", MonitorPort)}
	if p.cfg.Replicas > 1 {
		ports = append(ports, servicePort("cluster", ClusterPort))
	}
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: p.meta(n, n.headless),
		Spec: corev1.ServiceSpec{
			Type:                     corev1.ServiceTypeClusterIP,
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 n.selector(),
			Ports:                    ports,
		},
	}
}

func healthProbe(period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz?js-enabled-only=true", Port: intstr.FromString("monitor")}},
		PeriodSeconds:    period,
		TimeoutSeconds:   5,
		FailureThreshold: failures,
	}
}

// statefulSet runs the servers. The secret's configuration is hashed into
// the pod template so a new configuration rolls them.
func (p *Provisioner) statefulSet(n names, config string) *appsv1.StatefulSet {
	sum := sha256.Sum256([]byte(config))
	ports := []corev1.ContainerPort{
		{Name: "client", ContainerPort: ClientPort, Protocol: corev1.ProtocolTCP},
		{Name: "monitor", ContainerPort: MonitorPort, Protocol: corev1.ProtocolTCP},
	}
	if p.cfg.Replicas > 1 {
		ports = append(ports, corev1.ContainerPort{Name: "cluster", ContainerPort: ClusterPort, Protocol: corev1.ProtocolTCP})
	}
	claim := corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: "data", Labels: n.labels(), Annotations: n.annotations()},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: p.cfg.StorageSize.DeepCopy()}},
		},
	}
	if p.cfg.StorageClass != "" {
		claim.Spec.StorageClassName = ptr.To(p.cfg.StorageClass)
	}
	return &appsv1.StatefulSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"},
		ObjectMeta: p.meta(n, n.base),
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(p.cfg.Replicas),
			ServiceName: n.headless,
			Selector:    &metav1.LabelSelector{MatchLabels: n.selector()},
			// All servers start together: a cluster's servers are not
			// ready until they have met.
			PodManagementPolicy: appsv1.ParallelPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
				WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
				WhenScaled:  appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      n.labels(),
					Annotations: map[string]string{TenantAnnotation: n.tenant, configHashAnnotation: hex.EncodeToString(sum[:])},
				},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To(int64(60)),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(int64(1000)),
						RunAsGroup:     ptr.To(int64(1000)),
						FSGroup:        ptr.To(int64(1000)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "nats",
						Image:           p.cfg.Image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Args:            []string{"--config", configFile},
						Env: []corev1.EnvVar{{
							Name:      "POD_NAME",
							ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
						}},
						Ports:     ports,
						Resources: *p.cfg.Resources.DeepCopy(),
						StartupProbe: &corev1.Probe{
							ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("monitor")}},
							PeriodSeconds:    5,
							TimeoutSeconds:   5,
							FailureThreshold: 60,
						},
						LivenessProbe:  healthProbe(30, 3),
						ReadinessProbe: healthProbe(10, 3),
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
							// Lame duck: clients move to another server before this one stops.
							Command: []string{"nats-server", "--signal", "ldm=" + pidFile},
						}}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							RunAsNonRoot:             ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: configDir, ReadOnly: true},
							{Name: "data", MountPath: dataDir},
							{Name: "run", MountPath: pidDir},
						},
					}},
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
							SecretName:  n.base,
							DefaultMode: ptr.To(int32(0o400)),
							Items:       []corev1.KeyToPath{{Key: configKey, Path: "nats.conf"}},
						}}},
						{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resourceMi(1))}}},
					},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{claim},
		},
	}
}

// networkPolicy lets VRSky's roles reach the client port and the worker
// the monitoring port; a cluster's servers reach each other's route port
// (and DNS, to resolve the routes). Nothing else gets in or out.
func (p *Provisioner) networkPolicy(n names) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	port := func(v int32) []networkingv1.NetworkPolicyPort {
		return []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(v))}}
	}
	var clients []networkingv1.NetworkPolicyPeer
	for _, role := range []string{"api", "worker", "runner"} {
		clients = append(clients, p.rolePeer(role))
	}
	own := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: n.selector()}}
	spec := networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: n.selector()},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			{Ports: port(ClientPort), From: clients},
			{Ports: port(MonitorPort), From: []networkingv1.NetworkPolicyPeer{p.rolePeer("worker")}},
		},
		Egress: []networkingv1.NetworkPolicyEgressRule{},
	}
	if p.cfg.Replicas > 1 {
		udp := corev1.ProtocolUDP
		spec.Ingress = append(spec.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: port(ClusterPort), From: []networkingv1.NetworkPolicyPeer{own}})
		spec.Egress = append(spec.Egress,
			networkingv1.NetworkPolicyEgressRule{Ports: port(ClusterPort), To: []networkingv1.NetworkPolicyPeer{own}},
			networkingv1.NetworkPolicyEgressRule{
				Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: &udp, Port: ptr.To(intstr.FromInt32(53))},
					{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(53))},
				},
				To: []networkingv1.NetworkPolicyPeer{dnsPeer},
			})
	}
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: p.meta(n, n.base),
		Spec:       spec,
	}
}

// rolePeer selects one VRSky role's pods, in the platform's namespace.
func (p *Provisioner) rolePeer(role string) networkingv1.NetworkPolicyPeer {
	l := map[string]string{componentLabel: role}
	for k, v := range p.cfg.Platform.Labels {
		l[k] = v
	}
	peer := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: l}}
	if p.cfg.Platform.Namespace != p.cfg.Namespace {
		peer.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": p.cfg.Platform.Namespace}}
	}
	return peer
}
