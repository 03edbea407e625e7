{{/* Names, labels and the operator's RBAC rules: one home for each. */}}

{{- define "inferline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name: <release>-<chart>, or the release name when it already contains the chart's. */}}
{{- define "inferline.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "inferline.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects are named after the release's namespace too: two releases of the
same name in two namespaces must not share a ClusterRole. */}}
{{- define "inferline.clusterName" -}}
{{- printf "%s-%s" (include "inferline.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "inferline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inferline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object the chart creates, but for app.kubernetes.io/component. */}}
{{- define "inferline.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "inferline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: inferline
{{- end -}}

{{- define "inferline.labels" -}}
{{ include "inferline.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "inferline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "inferline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the name of an existing ServiceAccount is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "inferline.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
What the operator does in each namespace it watches (operator/inferline/controller/: kube.py,
handlers.py, main.py). Every rule was checked against the real apiserver by e2e/test_chart.py,
which runs the operator with this ServiceAccount's token.
- Watches (list + watch; kopf and the initial listing) of its inputs, of the pods of its
  pipelines, and of the children it owns.
- Children: server-side apply is a PATCH, and an apply that creates also needs `create`;
  pruning deletes with a uid precondition. Nothing is read with `get`: the watches keep the state.
- Pipeline status: server-side apply on the status subresource (PATCH).
- inferencepipelines/finalizers `update`: children carry ownerReferences with
  blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement admission plugin allows only
  to those who may update the owner's finalizers.
- Events: one per condition transition (POST).
- The built-in autoscaler sets spec.replicas through the scale subresource (PATCH), as an HPA
  would; `engine: hpa | keda` pipelines get an HPA or a KEDA ScaledObject child.
- With dra.enabled: each GPU pipeline's ResourceClaimTemplate (a child), and reads of the claims
  made from it (status); the ResourceSlice and DeviceClass reads are in inferline.clusterRules.
*/}}
{{- define "inferline.namespacedRules" -}}
- apiGroups: [inferline.dev]
  resources: [inferencepipelines, models, backends]
  verbs: [list, watch]
- apiGroups: [inferline.dev]
  resources: [inferencepipelines/status]
  verbs: [patch]
- apiGroups: [inferline.dev]
  resources: [inferencepipelines/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [inferline.dev]
  resources: [inferencepipelines/scale]
  verbs: [patch]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
# Ready waits until the pipeline's Service routes to exactly its current ready pods.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.dra.enabled }}
- apiGroups: [resource.k8s.io]
  resources: [resourceclaimtemplates]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [resource.k8s.io]
  resources: [resourceclaims]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/* Cluster-scoped reads, in both modes: the GPU inventory and the cluster-wide backends. */}}
{{- define "inferline.clusterRules" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [list, watch]
- apiGroups: [inferline.dev]
  resources: [clusterbackends]
  verbs: [list, watch]
{{- if .Values.dra.enabled }}
- apiGroups: [resource.k8s.io]
  resources: [resourceslices, deviceclasses]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/* Cluster-wide mode only: kopf watches CRDs so that it starts watching a kind (e.g. the
Prometheus Operator's ServiceMonitor) installed after the operator started. */}}
{{- define "inferline.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}
