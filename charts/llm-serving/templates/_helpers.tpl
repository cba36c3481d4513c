{{/*
Helpers of llm-serving. Every name is namespaced llm-serving.* so a parent chart's helpers never collide.
No .Capabilities and no lookup anywhere: the kit renders this chart with two Helm engines (the offline
plan's and the Pulumi provider's), which differ exactly there.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "llm-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name of every object: fullnameOverride, else <release>-<name> (the release alone when it holds the name). */}}
{{- define "llm-serving.fullname" -}}
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

{{/* name-version for the helm.sh/chart label. */}}
{{- define "llm-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels the selectors match: stable for the life of a release. */}}
{{- define "llm-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llm-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "llm-serving.labels" -}}
helm.sh/chart: {{ include "llm-serving.chart" . }}
{{ include "llm-serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: model-server
app.kubernetes.io/part-of: modelyard
modelyard.dev/model: {{ .Values.model.servedName | quote }}
modelyard.dev/revision: {{ .Values.model.revision | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "llm-serving.serviceAccountName" -}}
{{- default (include "llm-serving.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* registry/repository:tag[@digest] of an image block. */}}
{{- define "llm-serving.imageRef" -}}
{{- $ref := printf "%s/%s:%s" (trimSuffix "/" .registry) .repository .tag }}
{{- if .digest }}
{{- printf "%s@%s" $ref .digest }}
{{- else }}
{{- $ref }}
{{- end }}
{{- end }}

{{/*
GPUs of one pod: tensor parallel x pipeline parallel when the replica is one pod; one pipeline stage (tensor
parallel, a whole node) per pod of a multi-node group.
*/}}
{{- define "llm-serving.gpus" -}}
{{- if gt (int .Values.vllm.nodesPerReplica) 1 }}
{{- int .Values.vllm.tensorParallel }}
{{- else }}
{{- mul (int .Values.vllm.tensorParallel) (int .Values.vllm.pipelineParallel) }}
{{- end }}
{{- end }}

{{/* The key prefix of the model's weights in the bucket, without a trailing slash. */}}
{{- define "llm-serving.weightsPrefix" -}}
{{- if .Values.weights.prefix }}
{{- trimSuffix "/" .Values.weights.prefix }}
{{- else }}
{{- printf "models/%s/%s" .Values.model.servedName .Values.model.revision }}
{{- end }}
{{- end }}

{{/* Where the weights sit inside the pod. */}}
{{- define "llm-serving.modelDir" -}}
/models/{{ .Values.model.servedName }}
{{- end }}

{{/* The container securityContext every container gets (Pod Security restricted and more). */}}
{{- define "llm-serving.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.securityContext.runAsUser }}
runAsGroup: {{ int .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
"true" when KEDA scales the Deployment: autoscaling on, room above the minimum, and one node per replica (a
LeaderWorkerSet is not autoscaled: docs/serving.md). The Deployment then leaves `replicas` unset, so an upgrade
never resets what the autoscaler chose.
*/}}
{{- define "llm-serving.autoscaled" -}}
{{- if and .Values.autoscaling.enabled (eq (int .Values.vllm.nodesPerReplica) 1) (gt (int .Values.maxReplicas) (int .Values.replicaCount)) -}}true{{- end -}}
{{- end }}

{{/* Labels the Service selects: every server pod, or a multi-node group's leader alone (workers serve no HTTP). */}}
{{- define "llm-serving.servedLabels" -}}
{{ include "llm-serving.selectorLabels" . }}
{{- if gt (int .Values.vllm.nodesPerReplica) 1 }}
modelyard.dev/role: leader
{{- end }}
{{- end }}
