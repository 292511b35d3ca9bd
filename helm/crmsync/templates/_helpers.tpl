{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "crmsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "crmsync.fullname" -}}
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

{{- define "crmsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "crmsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crmsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "crmsync.labels" -}}
helm.sh/chart: {{ include "crmsync.chart" . }}
{{ include "crmsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "crmsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crmsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "crmsync.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* Consumer group id of the worker (config.kafka.groupId, default "crmsync"). */}}
{{- define "crmsync.groupId" -}}
{{- $kafka := required "config.kafka is required" .Values.config.kafka }}
{{- default "crmsync" $kafka.groupId }}
{{- end }}

{{/* Topic names of config.kafka.topics (each a name or {name, format}), one per line. */}}
{{- define "crmsync.topicNames" -}}
{{- range .Values.config.kafka.topics }}
{{- if kindIs "string" . }}
{{ . }}
{{- else }}
{{ required "config.kafka.topics: an object entry needs a name" .name }}
{{- end }}
{{- end }}
{{- end }}

{{/* SIGTERM drain deadline in milliseconds (config.worker.drainTimeoutMs, default 10000). */}}
{{- define "crmsync.drainTimeoutMs" -}}
{{- $worker := .Values.config.worker | default dict }}
{{- if hasKey $worker "drainTimeoutMs" }}{{ int $worker.drainTimeoutMs }}{{ else }}10000{{ end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: given, it must exceed the drain deadline;
otherwise ceil(drainTimeoutMs / 1000) + terminationGraceMarginSeconds.
*/}}
{{- define "crmsync.terminationGracePeriodSeconds" -}}
{{- $drainMs := int (include "crmsync.drainTimeoutMs" .) }}
{{- $drainS := div (add $drainMs 999) 1000 }}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) }}
{{- $given := int .Values.terminationGracePeriodSeconds }}
{{- if le (mul $given 1000) $drainMs }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than the drain deadline config.worker.drainTimeoutMs (%d ms), or the worker is killed before it has committed" $given $drainMs) }}
{{- end }}
{{- $given }}
{{- else }}
{{- add $drainS (int .Values.terminationGraceMarginSeconds) }}
{{- end }}
{{- end }}

{{/*
config.state.dir when the state lives in RocksDB (config.state.backend
rocksdb), where the chart mounts stateVolume; empty otherwise.
*/}}
{{- define "crmsync.stateDir" -}}
{{- $state := .Values.config.state | default dict }}
{{- if eq (toString ($state.backend | default "memory")) "rocksdb" }}
{{- $dir := required "config.state.dir is required with config.state.backend rocksdb (e.g. /var/lib/crmsync/state)" $state.dir }}
{{- if not (hasPrefix "/" (toString $dir)) }}
{{- fail (printf "config.state.dir must be an absolute path (got %q): the chart mounts a volume there" $dir) }}
{{- end }}
{{- $dir }}
{{- end }}
{{- end }}

{{/* Metrics port, taken from config.worker.metrics.listen (host:port); fails when the listener cannot serve the probes. */}}
{{- define "crmsync.metricsPort" -}}
{{- $worker := .Values.config.worker | default dict }}
{{- $metrics := $worker.metrics | default dict }}
{{- $listen := "0.0.0.0:9464" }}
{{- if hasKey $metrics "listen" }}{{ $listen = toString $metrics.listen }}{{ end }}
{{- if not (regexMatch "^(0\\.0\\.0\\.0|\\[::\\]|):[0-9]+$" $listen) }}
{{- fail (printf "config.worker.metrics.listen must be 0.0.0.0:<port> (got %q): the probes and Prometheus reach the listener through the pod IP" $listen) }}
{{- end }}
{{- $port := int (regexFind "[0-9]+$" $listen) }}
{{- if or (lt $port 1) (gt $port 65535) }}
{{- fail (printf "config.worker.metrics.listen: port %d is out of range 1..65535" $port) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* Environment variable that carries a provider's API key. */}}
{{- define "crmsync.apiKeyEnv" -}}
{{- $secret := index (.root.Values.providers | default dict) .name | default dict }}
{{- $secret.envName | default (printf "%s_API_KEY" (upper .name)) }}
{{- end }}

{{/* Environment variable that carries a Kafka property from a Secret (kafka.secretProperties[]). */}}
{{- define "crmsync.kafkaSecretEnv" -}}
{{- .envName | default (printf "KAFKA_%s" (.property | upper | replace "." "_" | replace "-" "_")) }}
{{- end }}

{{/* librdkafka properties that carry credentials: never literals in the ConfigMap. */}}
{{- define "crmsync.kafkaCredentialProperties" -}}
sasl.password ssl.key.password ssl.key.pem ssl.keystore.password sasl.oauthbearer.client.secret sasl.oauthbearer.config
{{- end }}

{{/*
The worker's config as JSON: .Values.config with each provider's apiKey set to
{"env": <apiKeyEnv>} when providers.<name>.existingSecret is given, and each
property of kafka.secretProperties set to {"env": <kafkaSecretEnv>} in
config.kafka.properties; a literal credential property fails.
*/}}
{{- define "crmsync.config" -}}
{{- $config := deepCopy .Values.config }}
{{- $providers := required "config.providers: configure at least one provider" $config.providers }}
{{- range $name, $provider := $providers }}
{{- $secret := index ($.Values.providers | default dict) $name | default dict }}
{{- if $secret.existingSecret }}
{{- if hasKey $provider "apiKey" }}
{{- fail (printf "config.providers.%s.apiKey and providers.%s.existingSecret are both set; keep one" $name $name) }}
{{- end }}
{{- $_ := set $provider "apiKey" (dict "env" (include "crmsync.apiKeyEnv" (dict "root" $ "name" $name))) }}
{{- else if not (hasKey $provider "apiKey") }}
{{- fail (printf "provider %s has no API key: set providers.%s.existingSecret (and secretKey), or config.providers.%s.apiKey" $name $name $name) }}
{{- end }}
{{- end }}
{{- $kafka := $config.kafka }}
{{- $properties := $kafka.properties | default dict }}
{{- range (.Values.kafka | default dict).secretProperties | default list }}
{{- if hasKey $properties .property }}
{{- fail (printf "config.kafka.properties.%s and kafka.secretProperties both set %s; keep the Secret" .property .property) }}
{{- end }}
{{- $_ := set $properties .property (dict "env" (include "crmsync.kafkaSecretEnv" .)) }}
{{- end }}
{{- $credentials := splitList " " (include "crmsync.kafkaCredentialProperties" .) }}
{{- range $name, $value := $properties }}
{{- if and (has $name $credentials) (not (kindIs "map" $value)) }}
{{- fail (printf "config.kafka.properties.%s is a credential and would be written into the ConfigMap: take it from a Secret with kafka.secretProperties (property: %s, secretName, secretKey)" $name $name) }}
{{- end }}
{{- end }}
{{- if $properties }}
{{- $_ := set $kafka "properties" $properties }}
{{- end }}
{{- $worker := $config.worker | default dict }}
{{- $metrics := $worker.metrics | default dict }}
{{- if not (hasKey $metrics "listen") }}
{{- $_ := set $metrics "listen" "0.0.0.0:9464" }}
{{- end }}
{{- $_ := set $worker "metrics" $metrics }}
{{- $_ := set $config "worker" $worker }}
{{- toPrettyJson $config }}
{{- end }}

{{/* Replica cap: nothing may scale beyond the partition count. */}}
{{- define "crmsync.checkReplicas" -}}
{{- $partitions := int .Values.partitions }}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled }}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled are both set; choose one" }}
{{- end }}
{{- if .Values.autoscaling.keda.enabled }}
{{- if gt (int .Values.autoscaling.keda.maxReplicaCount) $partitions }}
{{- fail (printf "autoscaling.keda.maxReplicaCount (%d) exceeds partitions (%d): replicas beyond the partition count get no partition and sit idle" (int .Values.autoscaling.keda.maxReplicaCount) $partitions) }}
{{- end }}
{{- if gt (int .Values.autoscaling.keda.minReplicaCount) (int .Values.autoscaling.keda.maxReplicaCount) }}
{{- fail "autoscaling.keda.minReplicaCount exceeds maxReplicaCount" }}
{{- end }}
{{- else if .Values.autoscaling.hpa.enabled }}
{{- if gt (int .Values.autoscaling.hpa.maxReplicas) $partitions }}
{{- fail (printf "autoscaling.hpa.maxReplicas (%d) exceeds partitions (%d): replicas beyond the partition count get no partition and sit idle" (int .Values.autoscaling.hpa.maxReplicas) $partitions) }}
{{- end }}
{{- if gt (int .Values.autoscaling.hpa.minReplicas) (int .Values.autoscaling.hpa.maxReplicas) }}
{{- fail "autoscaling.hpa.minReplicas exceeds maxReplicas" }}
{{- end }}
{{- else if gt (int .Values.replicaCount) $partitions }}
{{- fail (printf "replicaCount (%d) exceeds partitions (%d): replicas beyond the partition count get no partition and sit idle" (int .Values.replicaCount) $partitions) }}
{{- end }}
{{- end }}
