{{/* Chart name, overridable with nameOverride. */}}
{{- define "shrink.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name prefix of every object: RELEASE-shrink (or fullnameOverride). */}}
{{- define "shrink.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "shrink.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "shrink.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "coordinator"). */}}
{{- define "shrink.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shrink.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Image reference: repository/NAME:tag (tag defaults to appVersion). */}}
{{- define "shrink.image" -}}
{{- printf "%s/%s:%s" .root.Values.image.repository .name (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "shrink.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "shrink.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The coordinator's in-cluster gRPC address, as workers and clients dial it. */}}
{{- define "shrink.coordinatorAddress" -}}
{{- printf "%s-coordinator.%s.svc:%d" (include "shrink.fullname" .) .Release.Namespace (int .Values.coordinator.grpcPort) -}}
{{- end -}}

{{/* Refuses values the binaries would reject or that would deploy less security than asked. */}}
{{- define "shrink.validateValues" -}}
{{- if .Values.tls.enabled -}}
{{- if not .Values.tls.secretName -}}
{{- fail "tls.secretName: tls.enabled needs an existing Secret with tls.crt, tls.key and ca.crt" -}}
{{- end -}}
{{- if and .Values.tls.mutual (not .Values.tls.workerSecretName) -}}
{{- fail "tls.workerSecretName: tls.mutual needs an existing Secret with the workers' tls.crt, tls.key and ca.crt (or set tls.mutual=false)" -}}
{{- end -}}
{{- end -}}
{{- if .Values.auth.enabled -}}
{{- if not .Values.tls.enabled -}}
{{- fail "auth.enabled needs tls.enabled: shrink-coordinator refuses --tokens without TLS (tokens would travel in plaintext)" -}}
{{- end -}}
{{- if not .Values.auth.secretName -}}
{{- fail "auth.secretName: auth.enabled needs an existing Secret holding the tokens file (lines TOKEN TENANT)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) -}}
{{- fail "autoscaling.maxReplicas must be at least autoscaling.minReplicas" -}}
{{- end -}}
{{- end -}}
