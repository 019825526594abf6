{{/* The service's name: names every object of the release. */}}
{{- define "taly.name" -}}
{{- .Values.name -}}
{{- end -}}

{{- define "taly.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Immutable selector labels (a Deployment's selector cannot change after creation). */}}
{{- define "taly.selectorLabels" -}}
app.kubernetes.io/name: {{ include "taly.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "taly.labels" -}}
{{ include "taly.selectorLabels" . }}
app.kubernetes.io/part-of: taly
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
helm.sh/chart: {{ include "taly.chart" . }}
taly.io/environment: {{ .Values.environment }}
taly.io/media: {{ .Values.media }}
{{- end -}}

{{- define "taly.secretName" -}}
{{- .Values.secrets.name | default (printf "%s-secrets" (include "taly.name" .)) -}}
{{- end -}}

{{- define "taly.parameterPath" -}}
{{- printf "/taly/%s/%s/" .Values.environment (include "taly.name" .) -}}
{{- end -}}

{{- define "taly.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- if .Values.image.digest -}}{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
Checks the schema cannot express; included by every template so any render fails early.
*/}}
{{- define "taly.validate" -}}
{{- $s := .Values.sizing -}}
{{- if gt (int $s.minReplicas) (int $s.maxReplicas) -}}
{{- fail (printf "sizing.minReplicas (%d) must be <= sizing.maxReplicas (%d) for service %q" (int $s.minReplicas) (int $s.maxReplicas) .Values.name) -}}
{{- end -}}
{{- if gt (include "taly.millicores" $s.cpuRequest | float64) (include "taly.millicores" $s.cpuLimit | float64) -}}
{{- fail (printf "sizing.cpuRequest (%s) must be <= sizing.cpuLimit (%s) for service %q" (toString $s.cpuRequest) (toString $s.cpuLimit) .Values.name) -}}
{{- end -}}
{{- if gt (include "taly.bytes" $s.memoryRequest | float64) (include "taly.bytes" $s.memoryLimit | float64) -}}
{{- fail (printf "sizing.memoryRequest (%s) must be <= sizing.memoryLimit (%s) for service %q" (toString $s.memoryRequest) (toString $s.memoryLimit) .Values.name) -}}
{{- end -}}
{{- if eq (lower (toString .Values.image.tag)) "latest" -}}
{{- fail (printf "image.tag %q is mutable: give an immutable tag (a release or a commit) for service %q" .Values.image.tag .Values.name) -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.public) -}}
{{- fail (printf "ingress.enabled needs public: true (service %q is internal)" .Values.name) -}}
{{- end -}}
{{- end -}}

{{/*
A CPU quantity in millicores ("250m" -> 250, "1.5" -> 1500), for comparisons; the schema has checked its form.
*/}}
{{- define "taly.millicores" -}}
{{- $q := toString . -}}
{{- if hasSuffix "m" $q -}}{{ trimSuffix "m" $q }}{{- else -}}{{ mulf (float64 $q) 1000 }}{{- end -}}
{{- end -}}

{{/*
A memory quantity in bytes ("512Mi", "1Gi"; Ki to Ti), for comparisons; the schema has checked its form.
*/}}
{{- define "taly.bytes" -}}
{{- $q := toString . -}}
{{- $units := dict "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- $unit := substr (int (sub (len $q) 2)) (len $q) $q -}}
{{ mulf (float64 (trimSuffix $unit $q)) (get $units $unit) }}
{{- end -}}
