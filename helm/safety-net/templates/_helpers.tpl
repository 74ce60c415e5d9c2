{{/* Chart name, release-qualified name and labels. */}}
{{- define "safety-net.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "safety-net.fullname" -}}
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

{{- define "safety-net.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "safety-net.selectorLabels" -}}
app.kubernetes.io/name: {{ include "safety-net.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "safety-net.labels" -}}
helm.sh/chart: {{ include "safety-net.chart" . }}
{{ include "safety-net.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: safety-net
{{- end }}

{{/* The API pods (Deployment, Service, PDB and NetworkPolicy select these). */}}
{{- define "safety-net.apiSelectorLabels" -}}
{{ include "safety-net.selectorLabels" . }}
app.kubernetes.io/component: api
{{- end }}

{{- define "safety-net.migrateSelectorLabels" -}}
{{ include "safety-net.selectorLabels" . }}
app.kubernetes.io/component: migrate
{{- end }}

{{/* repository[:tag][@digest]; the tag defaults to the chart's appVersion. */}}
{{- define "safety-net.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if eq (toString $tag) "latest" -}}
{{- fail "image.tag must not be \"latest\": pin a version (and preferably image.digest)" -}}
{{- end -}}
{{- $ref := printf "%s:%s" .Values.image.repository (toString $tag) -}}
{{- if .Values.image.digest -}}
{{- if not (hasPrefix "sha256:" .Values.image.digest) -}}
{{- fail "image.digest must look like sha256:<hex>" -}}
{{- end -}}
{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end }}

{{- define "safety-net.cli" -}}
{{- printf "%s/.venv/bin/safety-net" (trimSuffix "/" .Values.image.appDir) -}}
{{- end }}

{{- define "safety-net.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "safety-net.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false (use a dedicated one)" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "safety-net.secretName" -}}
{{- default (include "safety-net.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "safety-net.keysSecretName" -}}
{{- default (printf "%s-keys" (include "safety-net.fullname" .)) .Values.keys.existingSecret }}
{{- end }}

{{- define "safety-net.checkpointKeysSecretName" -}}
{{- default (printf "%s-checkpoint-keys" (include "safety-net.fullname" .)) .Values.checkpointKeys.existingSecret }}
{{- end }}

{{- define "safety-net.kekSecretName" -}}
{{- default (printf "%s-kek" (include "safety-net.fullname" .)) .Values.kek.existingSecret }}
{{- end }}

{{- define "safety-net.claimName" -}}
{{- default (printf "%s-checkpoints" (include "safety-net.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/* postgresql+asyncpg URL for a user/password over postgresql.host (args: dict root user password). */}}
{{- define "safety-net.pgUrl" -}}
{{- $pg := .root.Values.postgresql -}}
{{- $auth := urlquery .user -}}
{{- if .password }}{{ $auth = printf "%s:%s" $auth (urlquery .password) }}{{ end -}}
{{- $url := printf "postgresql+asyncpg://%s@%s:%v/%s" $auth $pg.host $pg.port $pg.database -}}
{{- if $pg.ssl }}{{ $url = printf "%s?ssl=%s" $url (urlquery $pg.ssl) }}{{ end -}}
{{- $url -}}
{{- end }}

{{/* The service role's DATABASE_URL ("" when it must come from existingSecret). */}}
{{- define "safety-net.databaseUrl" -}}
{{- $pg := .Values.postgresql -}}
{{- if $pg.url -}}
{{- $pg.url -}}
{{- else if $pg.host -}}
{{- include "safety-net.pgUrl" (dict "root" . "user" $pg.user "password" $pg.password) -}}
{{- end -}}
{{- end }}

{{/* The background role's URL ("" when it must come from existingSecret). */}}
{{- define "safety-net.backgroundDatabaseUrl" -}}
{{- $bg := .Values.postgresql.background -}}
{{- if $bg.url -}}
{{- $bg.url -}}
{{- else if and .Values.postgresql.host $bg.user -}}
{{- include "safety-net.pgUrl" (dict "root" . "user" $bg.user "password" $bg.password) -}}
{{- end -}}
{{- end }}

{{/* The schema owner's URL for the migration Job (falls back to the service URL). */}}
{{- define "safety-net.ownerDatabaseUrl" -}}
{{- $owner := .Values.migration.owner -}}
{{- if $owner.url -}}
{{- $owner.url -}}
{{- else if and $owner.user .Values.postgresql.host -}}
{{- include "safety-net.pgUrl" (dict "root" . "user" $owner.user "password" $owner.password) -}}
{{- else -}}
{{- include "safety-net.databaseUrl" . -}}
{{- end -}}
{{- end }}

{{- define "safety-net.redisUrl" -}}
{{- $r := .Values.redis -}}
{{- if $r.url -}}
{{- $r.url -}}
{{- else if $r.host -}}
{{- $auth := "" -}}
{{- if $r.password }}{{ $auth = printf ":%s@" (urlquery $r.password) }}{{ end -}}
{{- printf "%s://%s%s:%v/%v" (ternary "rediss" "redis" (eq (toString $r.tls) "true")) $auth $r.host $r.port $r.db -}}
{{- end -}}
{{- end }}

{{/* Refuse to render a release that could not work or would be unsafe. */}}
{{- define "safety-net.validate" -}}
{{- if and (not .Values.existingSecret) (not (include "safety-net.databaseUrl" .)) -}}
{{- fail "set postgresql.url (or postgresql.host and its credentials) or existingSecret: the service needs DATABASE_URL" -}}
{{- end -}}
{{- if hasPrefix "sqlite" (include "safety-net.databaseUrl" .) -}}
{{- fail "SQLite is for development only: give a PostgreSQL URL" -}}
{{- end -}}
{{- if and (not .Values.existingSecret) (not (include "safety-net.backgroundDatabaseUrl" .)) -}}
{{- fail "set postgresql.background.url (or postgresql.host and postgresql.background.user/password) or existingSecret: the service needs BACKGROUND_DATABASE_URL, the background role's connection (docs/decisions/0013-signed-tenancy.md)" -}}
{{- end -}}
{{- if not (has .Values.config.issuer (list "builtin" "oidc")) -}}
{{- fail "config.issuer must be builtin or oidc" -}}
{{- end -}}
{{- if and (eq .Values.config.issuer "oidc") (not .Values.existingSecret) (or (not .Values.oidc.issuer) (not .Values.oidc.jwksUrl)) -}}
{{- fail "config.issuer is oidc: set oidc.issuer and oidc.jwksUrl" -}}
{{- end -}}
{{- if .Values.existingSecret -}}
{{- $pg := .Values.postgresql }}{{ $r := .Values.redis }}{{ $o := .Values.oidc -}}
{{- if or $pg.url $pg.host $pg.password $pg.background.url $pg.background.password $r.url $r.host $r.password $o.issuer $o.audience $o.jwksUrl .Values.metrics.token -}}
{{- fail "existingSecret is set: put DATABASE_URL, BACKGROUND_DATABASE_URL, REDIS_URL, SAFETY_NET_OIDC_* and SAFETY_NET_METRICS_TOKEN in that Secret, not in postgresql/redis/oidc/metrics values (they would be ignored)" -}}
{{- end -}}
{{- end -}}
{{- $owner := .Values.migration.owner -}}
{{- if and (default .Values.existingSecret .Values.migration.existingSecret) (or $owner.url $owner.user $owner.password) -}}
{{- fail "the migration reads its URL from a Secret of yours (migration.existingSecret or existingSecret): put the owner URL there and name its key in migration.existingSecretKey, instead of migration.owner (it would be ignored)" -}}
{{- end -}}
{{- range $k, $v := .Values.config.extra -}}
{{- if or (has $k (list "DATABASE_URL" "REDIS_URL" "SAFETY_NET_ENV")) (hasPrefix "SAFETY_NET_OIDC_" $k) (contains "PASSWORD" (upper $k)) (contains "SECRET" (upper $k)) (contains "TOKEN" (upper $k)) -}}
{{- fail (printf "config.extra.%s does not belong in the ConfigMap" $k) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled .Values.podDisruptionBudget.minAvailable .Values.podDisruptionBudget.maxUnavailable -}}
{{- fail "podDisruptionBudget: set only one of minAvailable and maxUnavailable" -}}
{{- end -}}
{{- end }}

{{/* Environment shared by the API and the migration Job. */}}
{{- define "safety-net.baseEnv" -}}
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
- name: HOME
  value: /tmp
- name: TMPDIR
  value: /tmp
{{- end }}
