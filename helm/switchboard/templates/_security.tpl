{{/*
The TLS files and the SASL password of Kafka and Redis, and the CA of PostgreSQL, from existing
Secrets: each Secret is mounted read-only under /etc/switchboard/<kafka|redis|database>/, and the
SB_ variables name the files (PostgreSQL's URL names its CA itself, with sslrootcert).
Returns JSON {"env": [...], "volumes": [...], "mounts": [...]}.
dict: root, services (a list of "kafka", "redis" and "database").
*/}}
{{- define "switchboard.secretFiles" -}}
{{- $v := .root.Values }}
{{- $env := list }}
{{- $volumes := list }}
{{- $mounts := list }}
{{- range $svc := .services }}
{{- $tls := (index $v $svc).tls }}
{{- $dir := printf "/etc/switchboard/%s" $svc }}
{{- $var := printf "SB_%s_TLS_" (upper $svc) }}
{{- if and (eq $svc "kafka") (get $tls "enabled") }}
{{- $env = append $env (dict "name" "SB_KAFKA_TLS_ENABLED" "value" "true") }}
{{- end }}
{{- with $tls.caSecret }}
{{- $name := printf "%s-tls-ca" $svc }}
{{- $volumes = append $volumes (dict "name" $name "secret" (dict "secretName" . "defaultMode" 288 "items" (list (dict "key" $tls.caKey "path" "ca.crt")))) }}
{{- $mounts = append $mounts (dict "name" $name "mountPath" (printf "%s/ca" $dir) "readOnly" true) }}
{{- if ne $svc "database" }}
{{- $env = append $env (dict "name" (print $var "CA_FILE") "value" (printf "%s/ca/ca.crt" $dir)) }}
{{- end }}
{{- end }}
{{- with get $tls "certSecret" }}
{{- $name := printf "%s-tls-client" $svc }}
{{- $volumes = append $volumes (dict "name" $name "secret" (dict "secretName" . "defaultMode" 288 "items" (list (dict "key" $tls.certKey "path" "tls.crt") (dict "key" $tls.keyKey "path" "tls.key")))) }}
{{- $mounts = append $mounts (dict "name" $name "mountPath" (printf "%s/client" $dir) "readOnly" true) }}
{{- $env = append $env (dict "name" (print $var "CERT_FILE") "value" (printf "%s/client/tls.crt" $dir)) }}
{{- $env = append $env (dict "name" (print $var "KEY_FILE") "value" (printf "%s/client/tls.key" $dir)) }}
{{- end }}
{{- with get $tls "serverName" }}
{{- $env = append $env (dict "name" (print $var "SERVER_NAME") "value" .) }}
{{- end }}
{{- if and (eq $svc "kafka") $v.kafka.sasl.mechanism }}
{{- $sasl := $v.kafka.sasl }}
{{- $env = append $env (dict "name" "SB_KAFKA_SASL_MECHANISM" "value" $sasl.mechanism) }}
{{- $env = append $env (dict "name" "SB_KAFKA_SASL_USERNAME" "value" $sasl.username) }}
{{- $volumes = append $volumes (dict "name" "kafka-sasl" "secret" (dict "secretName" $sasl.passwordSecret "defaultMode" 288 "items" (list (dict "key" $sasl.passwordKey "path" "password")))) }}
{{- $mounts = append $mounts (dict "name" "kafka-sasl" "mountPath" (printf "%s/sasl" $dir) "readOnly" true) }}
{{- $env = append $env (dict "name" "SB_KAFKA_SASL_PASSWORD_FILE" "value" (printf "%s/sasl/password" $dir)) }}
{{- end }}
{{- end }}
{{- toJson (dict "env" $env "volumes" $volumes "mounts" $mounts) }}
{{- end }}

{{/* Checks of the Kafka and Redis security values; each failure says what to set. */}}
{{- define "switchboard.validateSecurity" -}}
{{- $v := .Values }}
{{- $tls := $v.kafka.tls }}
{{- if and (not $tls.enabled) (or $tls.caSecret $tls.certSecret $tls.serverName) }}
{{- fail "kafka.tls: caSecret, certSecret or serverName is set but kafka.tls.enabled is false: set kafka.tls.enabled=true" }}
{{- end }}
{{- $sasl := $v.kafka.sasl }}
{{- if and $sasl.mechanism (or (not $sasl.username) (not $sasl.passwordSecret)) }}
{{- fail (printf "kafka.sasl.mechanism is %s: set kafka.sasl.username and kafka.sasl.passwordSecret (a Secret holding the password under kafka.sasl.passwordKey)" $sasl.mechanism) }}
{{- end }}
{{- if and (not $sasl.mechanism) (or $sasl.username $sasl.passwordSecret) }}
{{- fail "kafka.sasl: username or passwordSecret is set without kafka.sasl.mechanism: set plain, scram-sha-256 or scram-sha-512" }}
{{- end }}
{{- $rtls := $v.redis.tls }}
{{- if and (or $rtls.caSecret $rtls.certSecret $rtls.serverName) $v.redis.url (not (hasPrefix "rediss://" $v.redis.url)) }}
{{- fail "redis.tls is set but redis.url is not a rediss:// URL: use rediss:// to reach Redis over TLS" }}
{{- end }}
{{- end }}
