{{/*
The pod template of the release's long-running Deployments, one definition for the API
(`keel serve`) and the worker (`keel worker`): the same image, security context, environment,
Secrets, CA bundle, probes and spread, told apart by the component label, the command, the
resources and what only the API needs: the preStop sleep (no Service routes to the worker, so
there is no endpoint removal to wait for) and, with worker.enabled, APP__WORKER__ENABLED=false.
Call with (dict "root" $ "component" "api") or "worker".
*/}}
{{- define "keel.podTemplate" -}}
{{- $root := .root }}
{{- $component := .component }}
{{- $api := eq $component "api" -}}
metadata:
  annotations:
    {{- /* Env vars are read at start: a config change must roll the pods. */}}
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  labels:
    {{- include "keel.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $component }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "keel.serviceAccountName" $root }}
  automountServiceAccountToken: false
  {{- with include "keel.imagePullSecrets" $root | trim }}{{ . | nindent 2 }}{{ end }}
  securityContext:
    {{- include "keel.podSecurityContext" $root | nindent 4 }}
  {{- /* Must outlast preStop sleep + the app's own drain (APP__SERVER__SHUTDOWN_TIMEOUT). */}}
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  containers:
    - name: {{ $component }}
      image: {{ include "keel.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: ["{{ ternary "serve" "worker" $api }}"]
      {{- /* The last log lines become the termination message: a refused start-up is visible in kubectl describe. */}}
      terminationMessagePolicy: FallbackToLogsOnError
      ports:
        - name: http
          containerPort: 8080
          protocol: TCP
      env:
        {{- include "keel.env" $root | nindent 8 }}
        {{- if and $api $root.Values.worker.enabled }}
        {{- /* The worker Deployment runs background work; only then does the API leave it out. */}}
        - name: APP__WORKER__ENABLED
          value: "false"
        {{- end }}
      envFrom:
        - configMapRef:
            name: {{ include "keel.configMapName" $root }}
        - secretRef:
            name: {{ include "keel.secretName" $root }}
      {{- /* Liveness never touches the database: an outage must turn pods unready, not restart them. */}}
      startupProbe:
        httpGet:
          path: /health/live
          port: http
        periodSeconds: 2
        failureThreshold: 30
      livenessProbe:
        httpGet:
          path: /health/live
          port: http
        periodSeconds: 10
        timeoutSeconds: 2
        failureThreshold: 3
      readinessProbe:
        httpGet:
          path: /health/ready
          port: http
        periodSeconds: 5
        timeoutSeconds: 2
        failureThreshold: 2
      {{- if $api }}
      lifecycle:
        {{- /*
        Keeps serving while the endpoint removal reaches kube-proxy and the ingress, so no
        request is sent to a closed socket. The image has no shell or sleep binary, hence
        the native sleep action (Kubernetes >= 1.30).
        */}}
        preStop:
          sleep:
            seconds: {{ $root.Values.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml (ternary $root.Values.resources $root.Values.worker.resources $api) | nindent 8 }}
      securityContext:
        {{- include "keel.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        {{- include "keel.tmpVolumeMount" $root | nindent 8 }}
        {{- with include "keel.dbCaVolumeMount" $root | trim }}{{ . | nindent 8 }}{{ end }}
  volumes:
    {{- include "keel.tmpVolume" $root | nindent 4 }}
    {{- with include "keel.dbCaVolume" $root | trim }}{{ . | nindent 4 }}{{ end }}
  {{- $selector := include (printf "keel.%sSelectorLabels" $component) $root }}
  topologySpreadConstraints:
    {{- /* ScheduleAnyway: a lost zone must not leave replicas unschedulable. */}}
    - maxSkew: 1
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- $selector | nindent 10 }}
      matchLabelKeys:
        - pod-template-hash
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- $selector | nindent 10 }}
      matchLabelKeys:
        - pod-template-hash
  {{- with include "keel.scheduling" $root | trim }}{{ . | nindent 2 }}{{ end }}
{{- end }}
