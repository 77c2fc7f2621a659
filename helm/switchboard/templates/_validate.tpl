{{/*
Checks across values that the schema cannot express; each failure says what to set.
*/}}
{{- define "switchboard.validate" -}}
{{- $v := .Values }}
{{- if not $v.kafka.brokers }}
{{- fail "kafka.brokers is empty: set the Kafka bootstrap brokers, such as [my-cluster-kafka-bootstrap:9092] (Strimzi)" }}
{{- end }}
{{- if and (not $v.database.url) (not $v.database.existingSecret) }}
{{- fail "database: set database.url, or database.existingSecret (such as CloudNativePG's <cluster>-app, key uri)" }}
{{- end }}
{{- if and (not $v.redis.url) (not $v.redis.existingSecret) }}
{{- fail "redis: set redis.url (such as redis://valkey:6379/0), or redis.existingSecret" }}
{{- end }}
{{- if not $v.secrets.existingSecret }}
{{- fail "secrets.existingSecret is empty: create a Secret holding the keys that seal the channels' secrets, such as kubectl create secret generic switchboard-keys --from-literal=secrets.keys=\"$(switchboard admin secrets new-key)\", and name it here" }}
{{- end }}
{{- include "switchboard.validateSecurity" . }}
{{- $targets := include "switchboard.targets" . | fromJsonArray }}
{{- if not $targets }}
{{- fail "mode split: every target is disabled; enable at least one of inbox, router, scheduler, chat, email, sms" }}
{{- end }}
{{- if eq $v.blob.store "s3" }}
{{- $s3 := $v.blob.s3 }}
{{- if or (not $s3.endpoint) (not $s3.bucket) }}
{{- fail "blob.store s3: set blob.s3.endpoint (such as s3.eu-west-1.amazonaws.com) and blob.s3.bucket" }}
{{- end }}
{{- if and (not $s3.existingSecret) (or (not $s3.accessKey) (not $s3.secretKey)) }}
{{- fail "blob.store s3: set blob.s3.accessKey and blob.s3.secretKey, or blob.s3.existingSecret" }}
{{- end }}
{{- else if not (include "switchboard.blobShared" .) }}
{{- $blobPods := 0 }}
{{- range $t := $targets }}
{{- if include "switchboard.usesBlobs" $t }}
{{- $c := index $v $t }}
{{- $blobPods = add $blobPods (ternary $c.autoscaling.maxReplicas $c.replicas $c.autoscaling.enabled) }}
{{- end }}
{{- end }}
{{- if gt (int $blobPods) 1 }}
{{- fail "blob.persistence.accessModes lacks ReadWriteMany but several pods keep attachments (the inbox, email and sms Deployments, or several replicas): use ReadWriteMany, or blob.store s3" }}
{{- end }}
{{- end }}
{{- if and (has "sms" $targets) (ne $v.mode "all") (not (include "switchboard.smsPublicBaseUrl" .)) }}
{{- fail "sms: set config.smsPublicBaseUrl to the URL Twilio reaches the webhooks at (such as https://switchboard.example.com), or an ingress host, or sms.enabled=false" }}
{{- end }}
{{- $drain := add $v.config.httpShutdownDelaySeconds 35 }}
{{- if le (int $v.terminationGracePeriodSeconds) (int $drain) }}
{{- fail (printf "terminationGracePeriodSeconds %d leaves no time to drain: set more than %d (config.httpShutdownDelaySeconds, plus 20s for HTTP requests and 15s for the consumers' batches)" (int $v.terminationGracePeriodSeconds) (int $drain)) }}
{{- end }}
{{- range $t := $targets }}
{{- $a := (index $v $t).autoscaling }}
{{- if $a.enabled }}
{{- if lt (int $a.maxReplicas) (int $a.minReplicas) }}
{{- fail (printf "%s.autoscaling: maxReplicas %d is below minReplicas %d" $t (int $a.maxReplicas) (int $a.minReplicas)) }}
{{- end }}
{{- if and (not $a.targetCPUUtilizationPercentage) (not $a.targetMemoryUtilizationPercentage) }}
{{- fail (printf "%s.autoscaling: set targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" $t) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
