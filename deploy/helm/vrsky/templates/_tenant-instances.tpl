{{/*
Tenants' dedicated NATS instances (tenantInstances): the worker runs them
through the Kubernetes API (internal/provision/kubernetes).
*/}}

{{- define "vrsky.tenantInstancesNamespace" -}}
{{- default .Release.Namespace .Values.tenantInstances.namespace -}}
{{- end -}}

{{/* The worker's ServiceAccount while it manages instances. */}}
{{- define "vrsky.workerServiceAccount" -}}
{{- include "vrsky.component" (dict "ctx" . "component" "worker") -}}
{{- end -}}

{{/*
Pod-level settings of a role: vrsky.rolePodSecurity (dict "ctx" $ "role" "worker").
Only the worker, and only while it manages instances, gets an API token.
*/}}
{{- define "vrsky.rolePodSecurity" -}}
{{- if and (eq .role "worker") .ctx.Values.tenantInstances.enabled -}}
serviceAccountName: {{ include "vrsky.workerServiceAccount" .ctx }}
automountServiceAccountToken: true
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- else -}}
{{- include "vrsky.podSecurity" .ctx -}}
{{- end -}}
{{- end -}}

{{/* The worker's VRSKY_PROVISIONER* variables (internal/provision/kubernetes FromEnv). */}}
{{- define "vrsky.provisionerEnv" -}}
{{- $ti := .Values.tenantInstances -}}
- name: VRSKY_PROVISIONER
  value: kubernetes
- name: VRSKY_PROVISIONER_NAMESPACE
  value: {{ include "vrsky.tenantInstancesNamespace" . | quote }}
- name: VRSKY_PROVISIONER_IMAGE
  value: {{ include "vrsky.imageRef" (dict "image" $ti.image "default" "") | quote }}
- name: VRSKY_PROVISIONER_REPLICAS
  value: {{ $ti.replicas | quote }}
- name: VRSKY_PROVISIONER_STORAGE_SIZE
  value: {{ $ti.storage.size | quote }}
{{- with $ti.storage.storageClassName }}
- name: VRSKY_PROVISIONER_STORAGE_CLASS
  value: {{ . | quote }}
{{- end }}
- name: VRSKY_PROVISIONER_RESOURCES
  value: {{ toJson $ti.resources | quote }}
{{- with $ti.clusterDomain }}
- name: VRSKY_PROVISIONER_CLUSTER_DOMAIN
  value: {{ . | quote }}
{{- end }}
- name: VRSKY_PROVISIONER_PLATFORM_NAMESPACE
  value: {{ .Release.Namespace | quote }}
- name: VRSKY_PROVISIONER_PLATFORM_LABELS
  value: {{ printf "app.kubernetes.io/name=%s,app.kubernetes.io/instance=%s" (include "vrsky.name" .) .Release.Name | quote }}
{{- end -}}

{{/*
Egress from a role to the instances: vrsky.tenantInstancesEgress (dict "ctx" $ "ports" (list 4222)).
The instances' pods are labelled by the provisioner, not by Helm.
*/}}
{{- define "vrsky.tenantInstancesEgress" -}}
{{- $ns := include "vrsky.tenantInstancesNamespace" .ctx -}}
- ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
  to:
    - podSelector:
        matchLabels:
          app.kubernetes.io/managed-by: vrsky
          app.kubernetes.io/component: tenant-nats
      {{- if ne $ns .ctx.Release.Namespace }}
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $ns | quote }}
      {{- end }}
{{- end -}}
