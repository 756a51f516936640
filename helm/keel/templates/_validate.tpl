{{/*
Value combinations the schema cannot express. Each stops the render with one line naming the
value to fix, so a bad release fails at `helm install`/`helm template`, not at pod start.
*/}}
{{- define "keel.validate" -}}
{{- $v := .Values }}

{{- if and (not $v.existingSecret) (not $v.externalSecret.enabled) }}
{{- fail "existingSecret: name the Secret holding APP__DATABASE__URL, APP__AUTH__SIGNING_KEY and APP__WEBHOOKS__ENCRYPTION_KEYS__K1, or set externalSecret.enabled=true (production refuses to start without them)" }}
{{- end }}
{{- if and $v.existingSecret $v.externalSecret.enabled }}
{{- fail "existingSecret and externalSecret.enabled are exclusive: the ExternalSecret creates the Secret the pods use" }}
{{- end }}
{{- if and $v.migrations.existingSecret $v.externalSecret.enabled }}
{{- fail "migrations.existingSecret and externalSecret.enabled are exclusive: the ExternalSecret creates the migration Secret from externalSecret.database.remoteKey" }}
{{- end }}
{{- if $v.externalSecret.enabled }}
{{- if not $v.externalSecret.secretStoreRef.name }}
{{- fail "externalSecret.secretStoreRef.name: name the (Cluster)SecretStore that reads AWS Secrets Manager" }}
{{- end }}
{{- if not $v.externalSecret.database.appRemoteKey }}
{{- fail "externalSecret.database.appRemoteKey: set the ARN or name of the app role's secret (terraform output db_app_secret_arn); the pods no longer connect as the master user" }}
{{- end }}
{{- if and $v.migrations.enabled (not $v.externalSecret.database.remoteKey) }}
{{- fail "externalSecret.database.remoteKey: set the ARN or name of the RDS-managed master secret (terraform output db_secret_arn); the migration Job connects as the schema owner" }}
{{- end }}
{{- if eq $v.externalSecret.database.appRemoteKey $v.externalSecret.database.remoteKey }}
{{- fail "externalSecret.database.appRemoteKey: is the master secret (externalSecret.database.remoteKey); the pods must get the app role's secret, terraform output db_app_secret_arn" }}
{{- end }}
{{- if not $v.externalSecret.database.host }}
{{- fail "externalSecret.database.host: set the PostgreSQL host (terraform output db_endpoint)" }}
{{- end }}
{{- if and (not $v.database.tls.caBundle.configMapName) (ne (toString (index $v.config "APP__DATABASE__REQUIRE_VERIFIED_TLS" | default "true")) "false") }}
{{- fail "database.tls.caBundle.configMapName: the pods run APP_ENV=production, which refuses database URLs without sslmode=verify-full; mount the RDS CA bundle (or set config.APP__DATABASE__REQUIRE_VERIFIED_TLS=\"false\" for a database without TLS)" }}
{{- end }}
{{- if not $v.externalSecret.signingKey.remoteKey }}
{{- fail "externalSecret.signingKey.remoteKey: set the Secrets Manager secret holding the token signing key" }}
{{- end }}
{{- if not $v.externalSecret.webhookEncryptionKey.remoteKey }}
{{- fail "externalSecret.webhookEncryptionKey.remoteKey: set the Secrets Manager secret holding the webhook encryption key (base64 of 32 random bytes, openssl rand -base64 32); production refuses to start without one" }}
{{- end }}
{{- $ids := list }}
{{- range $i, $key := include "keel.webhookEncryptionKeys" . | fromYamlArray }}
{{- $where := ternary "externalSecret.webhookEncryptionKey" (printf "externalSecret.webhookEncryptionKey.previousKeys[%d]" (sub $i 1)) (eq $i 0) }}
{{- $id := toString $key.keyId }}
{{- /* The id becomes APP__WEBHOOKS__ENCRYPTION_KEYS__<ID>, which the app reads back in lower case; "__" would nest it one level deeper. */}}
{{- if or (not (regexMatch "^[a-z0-9_]+$" $id)) (contains "__" $id) }}
{{- fail (printf "%s.keyId: %q must match ^[a-z0-9_]+$ without a double underscore (it becomes APP__WEBHOOKS__ENCRYPTION_KEYS__%s, which the app reads back in lower case)" $where $id (upper $id)) }}
{{- end }}
{{- if not $key.remoteKey }}
{{- fail (printf "%s.remoteKey: set the Secrets Manager secret holding key %q" $where $id) }}
{{- end }}
{{- if has $id $ids }}
{{- fail (printf "%s.keyId: %q is listed twice; each key id names one key" $where $id) }}
{{- end }}
{{- $ids = append $ids $id }}
{{- end }}
{{- $active := toString (index $v.config "APP__WEBHOOKS__ACTIVE_KEY" | default "k1") }}
{{- if not (has $active $ids) }}
{{- fail (printf "config.APP__WEBHOOKS__ACTIVE_KEY: %q%s is not a key id the ExternalSecret fetches (%s); the pods would refuse to start. Set it to one of those, or fix externalSecret.webhookEncryptionKey.keyId" $active (ternary "" " (unset: the app's default)" (hasKey $v.config "APP__WEBHOOKS__ACTIVE_KEY")) (join ", " $ids)) }}
{{- end }}
{{- /* The app takes a password only with a user name, and a user name only with a password. */}}
{{- $smtpUser := index $v.config "APP__EMAIL__SMTP_USERNAME" | default "" }}
{{- $emailOn := ne (toString (index $v.config "APP__EMAIL__ENABLED" | default "true")) "false" }}
{{- if and $emailOn $v.externalSecret.smtpPassword.remoteKey (not $smtpUser) }}
{{- fail "config.APP__EMAIL__SMTP_USERNAME: externalSecret.smtpPassword.remoteKey is set, so name the SMTP user too; the app refuses a password without a user name" }}
{{- end }}
{{- if and $emailOn $smtpUser (not $v.externalSecret.smtpPassword.remoteKey) }}
{{- fail "externalSecret.smtpPassword.remoteKey: config.APP__EMAIL__SMTP_USERNAME is set, so fetch the relay's password too; the app refuses a user name without a password" }}
{{- end }}
{{- end }}

{{- range $key, $_ := $v.config }}
{{- if or (has $key (list "APP__DATABASE__URL" "APP__DATABASE__MIGRATION_URL" "APP__AUTH__SIGNING_KEY" "APP__EMAIL__SMTP_PASSWORD")) (hasPrefix "APP__WEBHOOKS__ENCRYPTION_KEYS__" $key) }}
{{- fail (printf "config.%s: secrets do not belong in config (a ConfigMap); put them in existingSecret or the ExternalSecret" $key) }}
{{- end }}
{{- if has $key (list "APP_ENV" "APP__SERVER__HOST" "APP__SERVER__PORT" "OTEL_RESOURCE_ATTRIBUTES") }}
{{- fail (printf "config.%s: set by the chart (the probes, Service and telemetry depend on it); remove it from config" $key) }}
{{- end }}
{{- if eq $key "APP__WORKER__ENABLED" }}
{{- fail "config.APP__WORKER__ENABLED: use worker.enabled, which sets it to false on the API exactly when the worker Deployment runs the background work; in config it would reach every pod and could stop the work altogether" }}
{{- end }}
{{- if eq $key "APP__TELEMETRY__OTLP_ENDPOINT" }}
{{- fail "config.APP__TELEMETRY__OTLP_ENDPOINT: use otel.endpoint, which also opens the NetworkPolicy egress to the collector" }}
{{- end }}
{{- if eq $key "OTEL_EXPORTER_OTLP_PROTOCOL" }}
{{- fail "config.OTEL_EXPORTER_OTLP_PROTOCOL: use otel.protocol, which the chart sets beside otel.endpoint" }}
{{- end }}
{{- end }}

{{- if and $v.migrations.existingSecret (eq $v.migrations.existingSecret $v.existingSecret) }}
{{- fail "migrations.existingSecret: must not be existingSecret, which the pods read; the owner's URL belongs in a Secret only the migration Job gets" }}
{{- end }}

{{- if eq $v.image.tag "latest" }}
{{- fail "image.tag: \"latest\" is mutable and, with pullPolicy IfNotPresent, never re-pulled; use a version or leave it empty for the appVersion" }}
{{- end }}

{{- $shutdown := include "keel.shutdownTimeoutSeconds" . }}
{{- if $shutdown }}
{{- /*
2: the app's bound on closing its database pools after the drain (server/lifecycle.rs). The
worker pods share this grace period without the preStop sleep, so the rule covers them too:
the job in hand gets the shutdown timeout, then the pools their 2s.
*/}}
{{- if le (int $v.terminationGracePeriodSeconds) (add (int $v.preStopSleepSeconds) (atoi $shutdown) 2) }}
{{- fail (printf "terminationGracePeriodSeconds: %d must exceed preStopSleepSeconds (%d) plus the app's shutdown timeout (%ss) plus 2s to close its database connections, or in-flight requests are cut off" (int $v.terminationGracePeriodSeconds) (int $v.preStopSleepSeconds) $shutdown) }}
{{- end }}
{{- end }}

{{- if $v.autoscaling.enabled }}
{{- if gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and (not $v.autoscaling.targetCPUUtilizationPercentage) (not $v.autoscaling.targetMemoryUtilizationPercentage) }}
{{- fail "autoscaling: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage (or both)" }}
{{- end }}
{{- $requests := default dict $v.resources.requests }}
{{- if and $v.autoscaling.targetCPUUtilizationPercentage (not $requests.cpu) }}
{{- fail "resources.requests.cpu: required by autoscaling.targetCPUUtilizationPercentage (utilization is relative to the request)" }}
{{- end }}
{{- if and $v.autoscaling.targetMemoryUtilizationPercentage (not $requests.memory) }}
{{- fail "resources.requests.memory: required by autoscaling.targetMemoryUtilizationPercentage (utilization is relative to the request)" }}
{{- end }}
{{- end }}

{{- if $v.podDisruptionBudget.enabled }}
{{- $replicas := ternary $v.autoscaling.minReplicas $v.replicaCount $v.autoscaling.enabled | int }}
{{- if lt $replicas 2 }}
{{- fail (printf "podDisruptionBudget.enabled: needs at least 2 replicas (%s is %d); a budget over one pod either blocks node drains or protects nothing" (ternary "autoscaling.minReplicas" "replicaCount" $v.autoscaling.enabled) $replicas) }}
{{- end }}
{{- if ge (int $v.podDisruptionBudget.maxUnavailable) $replicas }}
{{- fail (printf "podDisruptionBudget.maxUnavailable (%d) must be below the replica count (%d), or a drain may take every pod at once" (int $v.podDisruptionBudget.maxUnavailable) $replicas) }}
{{- end }}
{{- if $v.worker.enabled }}
{{- /* The worker's own budget follows the same rules over its replicas. */}}
{{- $workers := int $v.worker.replicaCount }}
{{- if lt $workers 2 }}
{{- fail (printf "worker.replicaCount: podDisruptionBudget.enabled needs at least 2 worker replicas (worker.replicaCount is %d); a budget over one pod either blocks node drains or protects nothing" $workers) }}
{{- end }}
{{- if ge (int $v.podDisruptionBudget.maxUnavailable) $workers }}
{{- fail (printf "podDisruptionBudget.maxUnavailable (%d) must be below worker.replicaCount (%d), or a drain may take every worker at once" (int $v.podDisruptionBudget.maxUnavailable) $workers) }}
{{- end }}
{{- end }}
{{- end }}

{{- if and $v.ingress.enabled (not $v.ingress.hosts) }}
{{- fail "ingress.hosts: ingress.enabled needs at least one host" }}
{{- end }}
{{- if and $v.httpRoute.enabled (not $v.httpRoute.parentRefs) }}
{{- fail "httpRoute.parentRefs: httpRoute.enabled needs at least one Gateway to attach to" }}
{{- end }}

{{- if $v.networkPolicy.enabled }}
{{- if not $v.networkPolicy.databaseCidrs }}
{{- fail "networkPolicy.databaseCidrs: networkPolicy.enabled needs the PostgreSQL address ranges, or the pods cannot reach the database" }}
{{- end }}
{{- $otel := $v.networkPolicy.otelCollector }}
{{- if and $v.otel.endpoint (not (or $otel.namespaceSelector $otel.podSelector $otel.cidrs)) }}
{{- fail "networkPolicy.otelCollector: otel.endpoint is set, so give the collector's namespaceSelector/podSelector or cidrs, or telemetry export is blocked" }}
{{- end }}
{{- range include "keel.webhookAllowedNetworks" . | fromYamlArray }}
{{- if not (regexMatch "^([0-9]{1,3}\\.){3}[0-9]{1,3}/[0-9]{1,2}$|^[0-9a-fA-F:]+/[0-9]{1,3}$" .) }}
{{- fail (printf "config.APP__WEBHOOKS__ALLOWED_NETWORKS: %q is not a network in CIDR notation (address/prefix); the app and the webhook NetworkPolicy need one" .) }}
{{- end }}
{{- end }}
{{- /* The relay: 587 is the app's production port (app/config/production.toml). */}}
{{- $smtp := $v.networkPolicy.smtp }}
{{- $emailOn := ne (toString (index $v.config "APP__EMAIL__ENABLED" | default "true")) "false" }}
{{- if and $emailOn (index $v.config "APP__EMAIL__SMTP_HOST") (not $smtp.cidrs) }}
{{- fail "networkPolicy.smtp.cidrs: config.APP__EMAIL__SMTP_HOST is set, so give the relay's address ranges, or the NetworkPolicy blocks email" }}
{{- end }}
{{- $smtpPort := toString (index $v.config "APP__EMAIL__SMTP_PORT" | default "587") }}
{{- if and $smtp.cidrs (ne $smtpPort (toString $smtp.port)) }}
{{- fail (printf "networkPolicy.smtp.port: %v is not the port the app connects to (%s, config.APP__EMAIL__SMTP_PORT%s), so the NetworkPolicy blocks email" $smtp.port $smtpPort (ternary "" " unset: the production default" (hasKey $v.config "APP__EMAIL__SMTP_PORT"))) }}
{{- end }}
{{- end }}
{{- end }}
