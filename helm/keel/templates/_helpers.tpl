{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "keel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name. A release named like the chart ("keel") gives "keel", which is the
service account name infra/modules/workload-identity binds to the IAM role.
*/}}
{{- define "keel.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keel.labels" -}}
helm.sh/chart: {{ include "keel.chart" . }}
{{ include "keel.selectorLabels" . }}
app.kubernetes.io/version: {{ include "keel.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Never changes over a release's life: Deployment selectors are immutable. */}}
{{- define "keel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector of the API pods only. The component label keeps the worker's, the migration Job's and
the test's pods out of the Service endpoints, the PodDisruptionBudget, the NetworkPolicy and the
spread constraints.
*/}}
{{- define "keel.apiSelectorLabels" -}}
{{ include "keel.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{/* Selector of the worker pods (`keel worker`) only; disjoint from the API's by the component. */}}
{{- define "keel.workerSelectorLabels" -}}
{{ include "keel.selectorLabels" . }}
app.kubernetes.io/component: worker
{{- end }}

{{- define "keel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "keel.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "keel.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "keel.imageTag" .) }}
{{- end }}

{{/*
The Secret the pods read APP__DATABASE__URL, APP__AUTH__SIGNING_KEY, the webhook encryption
keys and the SMTP password from.
*/}}
{{- define "keel.secretName" -}}
{{- if .Values.externalSecret.enabled }}
{{- include "keel.fullname" . }}
{{- else }}
{{- .Values.existingSecret }}
{{- end }}
{{- end }}

{{/*
The webhook encryption keys the ExternalSecret fetches, as a YAML list of {keyId, remoteKey,
property}: externalSecret.webhookEncryptionKey first, then its previousKeys. Read back with
fromYamlArray.
*/}}
{{- define "keel.webhookEncryptionKeys" -}}
{{- $key := .Values.externalSecret.webhookEncryptionKey }}
{{- $keys := list (dict "keyId" $key.keyId "remoteKey" $key.remoteKey "property" ($key.property | default "")) }}
{{- range $key.previousKeys }}
{{- $keys = append $keys (dict "keyId" .keyId "remoteKey" .remoteKey "property" (.property | default "")) }}
{{- end }}
{{- toYaml $keys }}
{{- end }}

{{/*
The Secret only the migration Job reads APP__DATABASE__MIGRATION_URL (the schema owner's URL)
from; empty when migrations run over APP__DATABASE__URL (one role, no grants).
*/}}
{{- define "keel.migrationSecretName" -}}
{{- if .Values.externalSecret.enabled }}
{{- include "keel.fullname" . }}-migration
{{- else }}
{{- .Values.migrations.existingSecret }}
{{- end }}
{{- end }}

{{- define "keel.configMapName" -}}
{{- include "keel.fullname" . }}
{{- end }}

{{/*
Pod-level security context shared by the API, the worker, the migration Job and the test pod. uid/gid 65532
is the distroless "nonroot" user the image runs as.
*/}}
{{- define "keel.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "keel.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
privileged: false
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
Environment every keel process of the release gets (API, worker and migrations). The config
map's settings come separately: envFrom a ConfigMap for the Deployments, inline for the hook Job.
*/}}
{{- define "keel.env" -}}
- name: APP_ENV
  value: production
{{- /* The Service, the probes and the NetworkPolicy rely on 0.0.0.0:8080; pinned here, not left to config. */}}
- name: APP__SERVER__HOST
  value: "0.0.0.0"
- name: APP__SERVER__PORT
  value: "8080"
{{- with .Values.otel.endpoint }}
- name: APP__TELEMETRY__OTLP_ENDPOINT
  value: {{ . | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $.Values.otel.protocol | quote }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- /* Kubernetes expands $(VAR) from the variables defined above it in this list. */}}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.instance.id=$(POD_NAME),k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME),service.version=%s" (include "keel.imageTag" .) | quote }}
{{- end }}

{{/* Writable scratch space: the root filesystem is read-only. */}}
{{- define "keel.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "keel.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Where the database CA bundle appears in every pod that connects; the sslrootcert of the URLs
(the ExternalSecret's, or your own Secret's) names this path.
*/}}
{{- define "keel.dbCaPath" -}}
/etc/db-ca/ca.pem
{{- end }}

{{/*
Query of the database URLs the ExternalSecrets build: verify-full checks the server's
certificate and host name against the bundle; without one, require still refuses plaintext
(RDS enforces TLS with rds.force_ssl) but cannot detect an impostor.
*/}}
{{- define "keel.dbUrlQuery" -}}
{{- if .Values.database.tls.caBundle.configMapName -}}
sslmode=verify-full&sslrootcert={{ include "keel.dbCaPath" . }}
{{- else -}}
sslmode=require
{{- end }}
{{- end }}

{{- define "keel.dbCaVolume" -}}
{{- with .Values.database.tls.caBundle }}
{{- if .configMapName }}
- name: db-ca
  configMap:
    name: {{ .configMapName }}
    items:
      - key: {{ .key }}
        path: {{ base (include "keel.dbCaPath" $) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keel.dbCaVolumeMount" -}}
{{- if .Values.database.tls.caBundle.configMapName }}
- name: db-ca
  mountPath: {{ dir (include "keel.dbCaPath" .) }}
  readOnly: true
{{- end }}
{{- end }}

{{/* DNS through CoreDNS (label k8s-app=kube-dns on EKS and most distributions). */}}
{{- define "keel.networkPolicyDnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}

{{/* Egress rules shared by the API's, the worker's and the migration Job's NetworkPolicies. */}}
{{- define "keel.networkPolicyEgress" -}}
{{ include "keel.networkPolicyDnsEgress" . }}
- to:
    {{- range .Values.networkPolicy.databaseCidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: 5432
{{- if .Values.otel.endpoint }}
{{- $otel := .Values.networkPolicy.otelCollector }}
- to:
    {{- if or $otel.namespaceSelector $otel.podSelector }}
    {{- $peer := dict }}
    {{- with $otel.namespaceSelector }}{{ $_ := set $peer "namespaceSelector" (dict "matchLabels" .) }}{{ end }}
    {{- with $otel.podSelector }}{{ $_ := set $peer "podSelector" (dict "matchLabels" .) }}{{ end }}
    {{- /* One peer: namespace AND pod selector, not either of them. */}}
    - {{ toYaml $peer | indent 6 | trim }}
    {{- end }}
    {{- range $otel.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: 4317
    - protocol: TCP
      port: 4318
{{- end }}
{{- end }}

{{/*
config.APP__WEBHOOKS__ALLOWED_NETWORKS (comma-separated CIDRs, as the app reads it) as a YAML
list; read back with fromYamlArray.
*/}}
{{- define "keel.webhookAllowedNetworks" -}}
{{- $networks := list }}
{{- range splitList "," (toString (index .Values.config "APP__WEBHOOKS__ALLOWED_NETWORKS" | default "")) }}
{{- with trim . }}{{ $networks = append $networks . }}{{ end }}
{{- end }}
{{- toYaml $networks }}
{{- end }}

{{/*
Egress only the pods that run background work get (the worker's with worker.enabled, else the
API's): webhook delivery to the internet minus the app's SSRF ranges, and SMTP to the relay. The API pods get neither while a
worker Deployment does the work, so a compromised API pod cannot reach the internet.
*/}}
{{- define "keel.networkPolicyWorkEgress" -}}
{{- with .Values.networkPolicy.webhookEgress }}
{{- if .enabled }}
- to:
    - ipBlock:
        cidr: {{ .cidr }}
        {{- with .except }}
        except:
          {{- toYaml . | nindent 10 }}
        {{- end }}
    {{- /* What the app allowlists past its SSRF rule, the network opens past except. */}}
    {{- range include "keel.webhookAllowedNetworks" $ | fromYamlArray }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end }}
{{- end }}
{{- with .Values.networkPolicy.smtp }}
{{- if .cidrs }}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - protocol: TCP
      port: {{ .port }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Whole-seconds value of APP__SERVER__SHUTDOWN_TIMEOUT when it is written as "<n>s" or "<n>m"
(the app's default is 25s); empty for other humantime forms, which are then not checked.
*/}}
{{- define "keel.shutdownTimeoutSeconds" -}}
{{- $raw := get .Values.config "APP__SERVER__SHUTDOWN_TIMEOUT" | default "25s" }}
{{- if regexMatch "^[0-9]+s$" $raw }}
{{- trimSuffix "s" $raw }}
{{- else if regexMatch "^[0-9]+m$" $raw }}
{{- mul (trimSuffix "m" $raw | atoi) 60 }}
{{- end }}
{{- end }}

{{/*
checkov's CKV2_K8S_6 (pods without a NetworkPolicy) is skipped only in releases that turned
the policies off; with networkPolicy.enabled every pod of the chart is covered.
Call with (list $ "<n>") to get checkov.io/skip<n>.
*/}}
{{- define "keel.checkovNetworkPolicySkip" -}}
{{- $root := index . 0 }}
{{- if not $root.Values.networkPolicy.enabled -}}
checkov.io/skip{{ index . 1 }}: CKV2_K8S_6=networkPolicy.enabled is false in this release (the chart cannot guess the database CIDRs); set it with networkPolicy.databaseCidrs to cover every pod
{{- end }}
{{- end }}

{{/* Pod-spec fields every pod of the release shares (API, worker, migration Job, test). */}}
{{- define "keel.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "keel.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
