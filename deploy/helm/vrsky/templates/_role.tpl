{{/*
The Deployment and metrics Service of a role with one health listener
(worker, runner): vrsky.healthRole (dict "ctx" $ "role" "worker" "v" .Values.worker).
*/}}
{{- define "vrsky.healthRole" -}}
{{- $ctx := .ctx -}}
{{- $v := .v -}}
{{- $c := dict "ctx" $ctx "component" .role -}}
{{- $name := include "vrsky.component" $c -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "vrsky.labels" $c | nindent 4 }}
spec:
  {{- if not (and $v.autoscaling $v.autoscaling.enabled) }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "vrsky.selectorLabels" $c | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "vrsky.labels" $c | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "vrsky.configChecksum" $ctx }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "vrsky.rolePodSecurity" (dict "ctx" $ctx "role" .role) | nindent 6 }}
      terminationGracePeriodSeconds: {{ $ctx.Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .role }}
          image: {{ include "vrsky.image" $ctx }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          args: [{{ .role }}]
          envFrom:
            - configMapRef:
                name: {{ include "vrsky.fullname" $ctx }}
          env:
            - name: VRSKY_HTTP_ADDR
              value: "0.0.0.0:{{ $v.healthPort }}"
            {{- if eq .role "runner" }}
            - name: VRSKY_FILE_ROOT
              value: /files
            - name: VRSKY_RUNNER_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            {{- end }}
            {{- include "vrsky.roleEnv" (dict "ctx" $ctx "role" .role) | nindent 12 }}
            {{- if and (eq .role "worker") $ctx.Values.tenantInstances.enabled }}
            {{- include "vrsky.provisionerEnv" $ctx | nindent 12 }}
            {{- end }}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: health
              containerPort: {{ $v.healthPort }}
              protocol: TCP
          startupProbe:
            httpGet: { path: /healthz, port: health }
            periodSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet: { path: /healthz, port: health }
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          readinessProbe:
            httpGet: { path: /readyz, port: health }
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $ctx.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: nats-keys
              mountPath: /keys
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- if eq .role "runner" }}
            - name: files
              mountPath: /files
            {{- end }}
      volumes:
        {{- include "vrsky.natsKeysVolume" $ctx | nindent 8 }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if eq .role "runner" }}
        - name: files
          {{- if $v.files.existingClaim }}
          persistentVolumeClaim:
            claimName: {{ $v.files.existingClaim | quote }}
          {{- else }}
          emptyDir:
            sizeLimit: {{ $v.files.sizeLimit }}
          {{- end }}
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
# The health listener (/metrics, /healthz, /readyz), for Prometheus.
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-metrics
  labels:
    {{- include "vrsky.labels" $c | nindent 4 }}
    vrsky.io/metrics: "true"
spec:
  type: ClusterIP
  selector:
    {{- include "vrsky.selectorLabels" $c | nindent 4 }}
  ports:
    - name: health
      port: {{ $v.healthPort }}
      targetPort: health
      protocol: TCP
{{- if and $v.autoscaling $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "vrsky.labels" $c | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if $v.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "vrsky.labels" $c | nindent 4 }}
spec:
  maxUnavailable: {{ $v.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "vrsky.selectorLabels" $c | nindent 6 }}
{{- end }}
{{- end -}}
