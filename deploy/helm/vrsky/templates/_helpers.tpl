{{/*
Names, labels and the pieces every VRSky role shares.
*/}}

{{- define "vrsky.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vrsky.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: vrsky.component (dict "ctx" $ "component" "api"). */}}
{{- define "vrsky.component" -}}
{{- printf "%s-%s" (include "vrsky.fullname" .ctx | trunc 45 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "vrsky.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vrsky.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vrsky.labels" -}}
{{ include "vrsky.selectorLabels" . }}
app.kubernetes.io/part-of: vrsky
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels of objects that belong to no single component. */}}
{{- define "vrsky.commonLabels" -}}
app.kubernetes.io/name: {{ include "vrsky.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: vrsky
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* image reference: vrsky.imageRef .Values.image (with .Chart.AppVersion as the default tag). */}}
{{- define "vrsky.imageRef" -}}
{{- $img := .image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- $tag := toString (default .default $img.tag) -}}
{{- if or (eq $tag "") (eq $tag "latest") -}}
{{- fail (printf "image %s: set a version tag or a digest, not %q" $img.repository $tag) -}}
{{- end -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "vrsky.image" -}}
{{- include "vrsky.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) -}}
{{- end -}}

{{/* secretKeyRef of one secrets.* item. */}}
{{- define "vrsky.secretRef" -}}
{{- $name := default .ctx.Values.secrets.existingSecret .item.secretName -}}
{{- if not $name -}}
{{- fail (printf "secrets.%s: set its secretName or secrets.existingSecret" .what) -}}
{{- end -}}
{{- if not .item.key -}}
{{- fail (printf "secrets.%s.key is empty" .what) -}}
{{- end -}}
valueFrom:
  secretKeyRef:
    name: {{ $name | quote }}
    key: {{ .item.key | quote }}
{{- end -}}

{{- define "vrsky.natsKeysSecret" -}}
{{- $n := .Values.secrets.natsKeys.secretName -}}
{{- if not $n -}}
{{- fail "secrets.natsKeys.secretName: the Secret with the NATS keys made by `vrsky nats-config` is required (docs/deploy-kubernetes.md)" -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{- define "vrsky.natsURL" -}}
{{- if .Values.nats.enabled -}}
{{- printf "nats://%s.%s.svc:%d" (include "vrsky.component" (dict "ctx" . "component" "nats")) .Release.Namespace (int .Values.nats.ports.client) -}}
{{- else if .Values.nats.external.url -}}
{{- .Values.nats.external.url -}}
{{- else -}}
{{- fail "nats.enabled is false: set nats.external.url" -}}
{{- end -}}
{{- end -}}

{{/*
Environment of a role: vrsky.roleEnv (dict "ctx" $ "role" "api").
Plain settings come from the chart's ConfigMap; credentials from Secrets.
*/}}
{{- define "vrsky.roleEnv" -}}
{{- $v := .ctx.Values -}}
{{- $role := .role -}}
{{- if has $role (list "api" "worker") }}
- name: VRSKY_DATABASE_URL
  {{- include "vrsky.secretRef" (dict "ctx" .ctx "item" $v.secrets.databaseURL "what" "databaseURL") | nindent 2 }}
{{- end }}
- name: VRSKY_S3_ACCESS_KEY
  {{- include "vrsky.secretRef" (dict "ctx" .ctx "item" $v.secrets.s3AccessKey "what" "s3AccessKey") | nindent 2 }}
- name: VRSKY_S3_SECRET_KEY
  {{- include "vrsky.secretRef" (dict "ctx" .ctx "item" $v.secrets.s3SecretKey "what" "s3SecretKey") | nindent 2 }}
{{- if eq $role "api" }}
- name: VRSKY_ADMIN_KEY_SHA256
  {{- include "vrsky.secretRef" (dict "ctx" .ctx "item" $v.secrets.adminKeySHA256 "what" "adminKeySHA256") | nindent 2 }}
{{- end }}
{{- if and (has $role (list "api" "runner")) $v.secrets.secretsKey.enabled }}
- name: VRSKY_SECRETS_KEY
  {{- include "vrsky.secretRef" (dict "ctx" .ctx "item" $v.secrets.secretsKey "what" "secretsKey") | nindent 2 }}
{{- end }}
- name: VRSKY_NATS_KEYS_FILE
  value: /keys/nats-keys.json
{{- end -}}

{{/* The keys-file volume of a role (only the keys file, never the server config). */}}
{{- define "vrsky.natsKeysVolume" -}}
- name: nats-keys
  secret:
    secretName: {{ include "vrsky.natsKeysSecret" . | quote }}
    defaultMode: 0400
    items:
      - key: {{ .Values.secrets.natsKeys.keysFileKey | quote }}
        path: nats-keys.json
{{- end -}}

{{- define "vrsky.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress rule to an external service: vrsky.egressTo (dict "np" .Values.postgresql.networkPolicy). */}}
{{- define "vrsky.egressTo" -}}
- ports:
    - protocol: TCP
      port: {{ int .np.port }}
  {{- with .np.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "vrsky.natsEgress" -}}
{{- if .Values.nats.enabled }}
- ports:
    - protocol: TCP
      port: {{ int .Values.nats.ports.client }}
  to:
    - podSelector:
        matchLabels:
          {{- include "vrsky.selectorLabels" (dict "ctx" . "component" "nats") | nindent 10 }}
{{- else }}
{{- include "vrsky.egressTo" (dict "np" .Values.nats.external.networkPolicy) }}
{{- end }}
{{- end -}}

{{/* The checksum that rolls the roles when the shared settings change. */}}
{{- define "vrsky.configChecksum" -}}
{{- include (print .Template.BasePath "/configmap.yaml") . | sha256sum -}}
{{- end -}}
