{{/* The release's full name: the release name alone when it already says modeldeploy. */}}
{{- define "modeldeploy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
The operator's pods. The component is part of the selector because the Deployments the
operator renders for models also say app.kubernetes.io/name: modeldeploy.
*/}}
{{- define "modeldeploy.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modeldeploy.labels" -}}
{{ include "modeldeploy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "modeldeploy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modeldeploy.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is needed when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modeldeploy.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Lease `modeldeploy run --leader-election-namespace` holds (LEASE_NAME in controller/operator.py). */}}
{{- define "modeldeploy.leaseName" -}}
modeldeploy-operator
{{- end -}}

{{/*
What the operator does inside each namespace it manages: read its ModelDeployments, write
their status and Events, and own their children. Children are written by server-side apply,
which is the patch verb (and create for an object that does not exist yet). The operator never
writes a ModelDeployment's spec or metadata, and reads no Secrets: a model's credentials Secret
reaches the model-fetching init container through envFrom, resolved by the kubelet.
*/}}
{{- define "modeldeploy.namespacedRules" -}}
- apiGroups: [modeldeploy.io]
  resources: [modeldeployments]
  verbs: [get, list, watch]
- apiGroups: [modeldeploy.io]
  resources: [modeldeployments/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
# Scheduling and readiness of a model's pods explain a wait in its conditions.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
# The children: Deployments per revision, Services, autoscalers, and the objects of each
# traffic provider (Gateway API, Istio, NGINX Ingress, SMI).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, grpcroutes]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.istio.io]
  resources: [virtualservices]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [networking.k8s.io]
  resources: [ingresses]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [split.smi-spec.io]
  resources: [trafficsplits]
  verbs: [get, list, watch, create, patch, delete]
{{- end -}}

{{/*
Cluster-scoped reads, needed in both modes: GPU capacity is judged against every node, and kopf
follows CustomResourceDefinitions to notice a provider's CRD installed after it started.
*/}}
{{- define "modeldeploy.clusterReadRules" -}}
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
# The verification policy reads namespace labels (and kopf follows watched namespaces).
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
# Server templates (cluster-scoped): models name them in spec.runtime.name.
- apiGroups: [modeldeploy.io]
  resources: [modelruntimes]
  verbs: [get, list, watch]
{{- end -}}
