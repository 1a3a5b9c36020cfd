{{/*
Expand the name of the chart.
*/}}
{{- define "k8s-hosts-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated at 63 characters (DNS label limit).
The release name alone is used when it already contains the chart name.
*/}}
{{- define "k8s-hosts-controller.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "k8s-hosts-controller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "k8s-hosts-controller.labels" -}}
helm.sh/chart: {{ include "k8s-hosts-controller.chart" . }}
{{ include "k8s-hosts-controller.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (immutable on the DaemonSet: never add anything here).
*/}}
{{- define "k8s-hosts-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "k8s-hosts-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the ServiceAccount to use.
*/}}
{{- define "k8s-hosts-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "k8s-hosts-controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Controller image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "k8s-hosts-controller.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
True ("true") when RBAC is a ClusterRole + ClusterRoleBinding.
*/}}
{{- define "k8s-hosts-controller.clusterWideRBAC" -}}
{{- if or .Values.allNamespaces .Values.rbac.clusterWide }}true{{- end }}
{{- end }}

{{/*
The least-privilege rules of the enabled sources, shared by the Role(s) and the ClusterRole.
*/}}
{{- define "k8s-hosts-controller.rbacRules" -}}
{{- $sources := .Values.sources }}
{{- if has "ingress" $sources }}
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if has "service" $sources }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- $gateway := list }}
{{- range $source, $plural := dict "gateway-httproute" "httproutes" "gateway-grpcroute" "grpcroutes" "gateway-tlsroute" "tlsroutes" }}
{{- if has $source $sources }}{{- $gateway = append $gateway $plural }}{{- end }}
{{- end }}
{{- if $gateway }}
{{- /* ListenerSets lend routes listeners; the controller watches them only where their CRD is served. */}}
- apiGroups: ["gateway.networking.k8s.io"]
  resources: {{ prepend (sortAlpha (append $gateway "listenersets")) "gateways" | toJson }}
  verbs: ["get", "list", "watch"]
{{- end }}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
The DaemonSet as --owner-daemonset names it: NAMESPACE/NAME.
*/}}
{{- define "k8s-hosts-controller.owner" -}}
{{- printf "%s/%s" .Release.Namespace (include "k8s-hosts-controller.fullname" .) }}
{{- end }}

{{/*
Name of the Role that lets the pod read its own DaemonSet (next to the per-namespace Roles of the full name).
*/}}
{{- define "k8s-hosts-controller.ownerRoleName" -}}
{{- printf "%s-owner" (include "k8s-hosts-controller.fullname" .) }}
{{- end }}

{{/*
Controller arguments (the flags of README.md).
*/}}
{{- define "k8s-hosts-controller.args" -}}
{{- if .Values.allNamespaces }}
- --all-namespaces
{{- else }}
- {{ printf "--namespaces=%s" (join "," .Values.namespaces) | quote }}
{{- end }}
- {{ printf "--source=%s" (join "," .Values.sources) | quote }}
- {{ printf "--hosts-file=%s" .Values.hostsFile.containerPath | quote }}
- {{ printf "--marker=%s" .Values.marker | quote }}
- {{ printf "--write-mode=%s" .Values.writeMode | quote }}
- {{ printf "--sync-delay=%v" .Values.syncDelay | quote }}
- {{ printf "--sync-max-delay=%v" .Values.syncMaxDelay | quote }}
- {{ printf "--log-format=%s" .Values.logFormat | quote }}
{{- with .Values.cluster.name }}
- {{ printf "--cluster-name=%s" . | quote }}
{{- end }}
{{- with .Values.cluster.server }}
- {{ printf "--cluster-server=%s" . | quote }}
{{- end }}
{{- if .Values.metrics.enabled }}
- {{ printf "--metrics-bind-address=:%v" .Values.metrics.port | quote }}
{{- else }}
- --metrics-bind-address=0
{{- end }}
{{- if .Values.cleanupOnExit }}
- {{ printf "--owner-daemonset=%s" (include "k8s-hosts-controller.owner" .) | quote }}
{{- else }}
- --no-cleanup-on-exit
{{- end }}
{{- with .Values.domainFilter }}
- {{ printf "--domain-filter=%s" (join "," .) | quote }}
{{- end }}
{{- with .Values.ingressClass }}
- {{ printf "--ingress-class=%s" (join "," .) | quote }}
{{- end }}
{{- if .Values.verbose }}
- --verbose
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Checks that values.schema.json cannot express (or that apply when schema validation is skipped).
*/}}
{{- define "k8s-hosts-controller.validate" -}}
{{- if and (not .Values.allNamespaces) (empty .Values.namespaces) }}
{{- fail "namespaces is empty: list at least one namespace to watch, or set allNamespaces=true" }}
{{- end }}
{{- if eq (clean .Values.hostsFile.containerPath) "/etc/hosts" }}
{{- fail "hostsFile.containerPath must not be /etc/hosts: the kubelet manages that file in every container (use e.g. /host/etc/hosts)" }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not (and .Values.metrics.enabled .Values.metrics.service.enabled)) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled and metrics.service.enabled" }}
{{- end }}
{{- end }}

{{/*
True when a Gateway API route source is on: the controller then reads Namespaces' labels (allowedRoutes
selectors), which only a ClusterRole can grant.
*/}}
{{- define "k8s-hosts-controller.gatewaySource" -}}
{{- range $source := .Values.sources }}{{ if hasPrefix "gateway-" $source }}true{{ end }}{{ end }}
{{- end }}
