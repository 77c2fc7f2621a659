{{/*
Names, labels and the pieces every Deployment shares.
*/}}

{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The targets that get a Deployment, as a JSON array: ["all"], or the enabled ones of split. */}}
{{- define "switchboard.targets" -}}
{{- $targets := list }}
{{- if eq .Values.mode "all" }}
{{- $targets = list "all" }}
{{- else }}
{{- range $t := list "inbox" "router" "scheduler" "chat" "email" "sms" }}
{{- if (index $.Values $t).enabled }}
{{- $targets = append $targets $t }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $targets }}
{{- end }}

{{/* Name of a target's Deployment, Service, PDB, HPA and NetworkPolicy. dict: root, target. */}}
{{- define "switchboard.componentName" -}}
{{- if eq .target "all" }}
{{- include "switchboard.fullname" .root }}
{{- else }}
{{- printf "%s-%s" (include "switchboard.fullname" .root) .target }}
{{- end }}
{{- end }}

{{/* Whether a target serves public HTTP (API or webhooks). */}}
{{- define "switchboard.isPublic" -}}
{{- if has . (list "all" "inbox" "chat" "sms") }}true{{ end }}
{{- end }}

{{/* Whether a target keeps attachments in the blob store. */}}
{{- define "switchboard.usesBlobs" -}}
{{- if has . (list "all" "inbox" "email" "sms") }}true{{ end }}
{{- end }}

{{/* The targets that seal or open the channels' secrets: they mount the keys. */}}
{{- define "switchboard.usesSecretKeys" -}}
{{- if has . (list "all" "inbox" "chat" "email" "sms") }}true{{ end }}
{{- end }}

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "switchboard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "switchboard.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "switchboard.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a target's pods. dict: root, target. */}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .target }}
{{- end }}

{{/* Labels of a target's objects. dict: root, target. */}}
{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" .root }}
app.kubernetes.io/component: {{ .target }}
{{- end }}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the chart's Secret. */}}
{{- define "switchboard.secretName" -}}
{{- include "switchboard.fullname" . }}
{{- end }}

{{/* Whether the chart generates a Secret: some secret value is given inline. */}}
{{- define "switchboard.needsSecret" -}}
{{- $v := .Values }}
{{- if or (not $v.database.existingSecret) (not $v.redis.existingSecret) (and (eq $v.blob.store "s3") (not $v.blob.s3.existingSecret)) }}true{{ end }}
{{- end }}

{{/* SMS public URL: the setting, else the first ingress host. */}}
{{- define "switchboard.smsPublicBaseUrl" -}}
{{- if .Values.config.smsPublicBaseUrl }}
{{- .Values.config.smsPublicBaseUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := first .Values.ingress.hosts }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}
{{- if has $host .hosts }}{{ $tls = true }}{{ end }}
{{- end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- end }}
{{- end }}

{{/* Name of the blob volume's claim. */}}
{{- define "switchboard.blobClaim" -}}
{{- default (printf "%s-blobs" (include "switchboard.fullname" .)) .Values.blob.persistence.existingClaim }}
{{- end }}

{{/* Whether the blob volume can be mounted by several pods at once. */}}
{{- define "switchboard.blobShared" -}}
{{- if or (ne .Values.blob.store "persistence") (has "ReadWriteMany" .Values.blob.persistence.accessModes) }}true{{ end }}
{{- end }}

{{/* The chart's pod security context. */}}
{{- define "switchboard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The chart's container security context. */}}
{{- define "switchboard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Environment of a target's container: the secrets, the files of switchboard.secretFiles, the blob
store, GOMEMLIMIT, then extraEnv and
the target's env; a later entry replaces an earlier one of the same name, in its place.
dict: root, target.
*/}}
{{- define "switchboard.env" -}}
{{- $v := .root.Values }}
{{- $secret := include "switchboard.secretName" .root }}
{{- $env := list }}
{{- $db := dict "name" (default $secret $v.database.existingSecret) "key" (ternary $v.database.existingSecretKey "SB_DATABASE_URL" (ne $v.database.existingSecret "")) }}
{{- $env = append $env (dict "name" "SB_DATABASE_URL" "valueFrom" (dict "secretKeyRef" $db)) }}
{{- $redis := dict "name" (default $secret $v.redis.existingSecret) "key" (ternary $v.redis.existingSecretKey "SB_REDIS_URL" (ne $v.redis.existingSecret "")) }}
{{- $env = append $env (dict "name" "SB_REDIS_URL" "valueFrom" (dict "secretKeyRef" $redis)) }}
{{- $files := include "switchboard.secretFiles" (dict "root" .root "services" (list "kafka" "redis" "database")) | fromJson }}
{{- $env = concat $env $files.env }}
{{- if include "switchboard.usesBlobs" .target }}
{{- if eq $v.blob.store "s3" }}
{{- $s3 := $v.blob.s3 }}
{{- $env = append $env (dict "name" "SB_BLOB_S3_ENDPOINT" "value" $s3.endpoint) }}
{{- $env = append $env (dict "name" "SB_BLOB_S3_BUCKET" "value" $s3.bucket) }}
{{- with $s3.prefix }}{{ $env = append $env (dict "name" "SB_BLOB_S3_PREFIX" "value" .) }}{{ end }}
{{- with $s3.region }}{{ $env = append $env (dict "name" "SB_BLOB_S3_REGION" "value" .) }}{{ end }}
{{- $env = append $env (dict "name" "SB_BLOB_S3_PATH_STYLE" "value" (toString $s3.pathStyle)) }}
{{- $env = append $env (dict "name" "SB_BLOB_S3_TLS" "value" (toString $s3.tls)) }}
{{- $keys := ternary (dict "name" $s3.existingSecret "access" $s3.accessKeyKey "secret" $s3.secretKeyKey) (dict "name" $secret "access" "SB_BLOB_S3_ACCESS_KEY" "secret" "SB_BLOB_S3_SECRET_KEY") (ne $s3.existingSecret "") }}
{{- $env = append $env (dict "name" "SB_BLOB_S3_ACCESS_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $keys.name "key" $keys.access))) }}
{{- $env = append $env (dict "name" "SB_BLOB_S3_SECRET_KEY" "valueFrom" (dict "secretKeyRef" (dict "name" $keys.name "key" $keys.secret))) }}
{{- else }}
{{- $env = append $env (dict "name" "SB_BLOB_DIR" "value" "/var/lib/switchboard/blobs") }}
{{- end }}
{{- end }}
{{- if include "switchboard.usesSecretKeys" .target }}
{{- $env = append $env (dict "name" "SB_SECRETS_KEYS_FILE" "value" "/etc/switchboard/secrets/secrets.keys") }}
{{- with $v.secrets.activeKey }}{{ $env = append $env (dict "name" "SB_SECRETS_ACTIVE_KEY" "value" .) }}{{ end }}
{{- end }}
{{- $env = append $env (dict "name" "GOMEMLIMIT" "valueFrom" (dict "resourceFieldRef" (dict "resource" "limits.memory"))) }}
{{- $env = concat $env $v.extraEnv (index $v .target).env }}
{{- $names := list }}
{{- $byName := dict }}
{{- range $env }}
{{- if not (hasKey $byName .name) }}{{ $names = append $names .name }}{{ end }}
{{- $_ := set $byName .name . }}
{{- end }}
{{- $out := list }}
{{- range $names }}{{ $out = append $out (index $byName .) }}{{ end }}
{{- toYaml $out }}
{{- end }}
