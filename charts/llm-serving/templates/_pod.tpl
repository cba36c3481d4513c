{{/*
The pod spec of a model server, for one role: "single" (the Deployment's pods: the whole replica on one node),
"leader" (a LeaderWorkerSet group's first pod: the Ray head and the vLLM server behind the Service) or "worker"
(the group's other pods: Ray workers, each holding a pipeline stage). Called with (dict "root" $ "role" <role>).
Every pod of a group copies and checks the weights itself: vLLM loads each stage from local files.
weights.load "copy": an init container copies the weights to the node's NVMe, a second checks them, vLLM reads them
there; "stream": one init container checks the bucket's objects against the manifest, and vLLM streams them from
S3 into GPU memory (Run:ai Model Streamer, --load-format runai_streamer): no copy, no weights volume; "fsx": the
stack's FSx for Lustre file system (its claim weights.fsx.claimName) mounted read-only at /fsx, where the bucket's
models/ is /fsx/models: one init container checks the files there against the manifest, vLLM reads them.
*/}}
{{- define "llm-serving.podSpec" -}}
{{- $root := .root }}
{{- $role := .role }}
{{- $gpus := include "llm-serving.gpus" $root }}
{{- $modelDir := include "llm-serving.modelDir" $root }}
{{- $prefix := include "llm-serving.weightsPrefix" $root }}
{{- $stream := eq $root.Values.weights.load "stream" }}
{{- $fsx := eq $root.Values.weights.load "fsx" }}
{{- $copy := eq $root.Values.weights.load "copy" }}
{{- if $fsx }}
{{- $modelDir = printf "/fsx/%s" $prefix }}
{{- end }}
serviceAccountName: {{ include "llm-serving.serviceAccountName" $root }}
# EKS Pod Identity mounts its own projected token; the Kubernetes API token is not needed.
automountServiceAccountToken: false
enableServiceLinks: false
terminationGracePeriodSeconds: {{ int $root.Values.terminationGracePeriodSeconds }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ int $root.Values.securityContext.runAsUser }}
  runAsGroup: {{ int $root.Values.securityContext.runAsGroup }}
  fsGroup: {{ int $root.Values.securityContext.fsGroup }}
  fsGroupChangePolicy: OnRootMismatch
  seccompProfile:
    type: RuntimeDefault
# Only GPU nodes of the model's pool.
nodeSelector:
  {{ $root.Values.pool.labelKey }}: {{ $root.Values.pool.name | quote }}
  nvidia.com/gpu.present: "true"
tolerations:
  - key: nvidia.com/gpu
    operator: Exists
    effect: NoSchedule
  {{- with $root.Values.pool.extraTolerations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if and (eq $role "single") (gt (max (int $root.Values.replicaCount) (int $root.Values.maxReplicas)) 1) }}
topologySpreadConstraints:
  - maxSkew: {{ int $root.Values.topologySpread.maxSkew }}
    topologyKey: {{ $root.Values.topologySpread.topologyKey }}
    whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "llm-serving.selectorLabels" $root | nindent 8 }}
{{- end }}
initContainers:
  {{- if $stream }}
  # Waits for the model's manifest.json (pushed last by `modelyard models push`: waiting instead of failing keeps
  # a first `pulumi up` green before any weights are pushed), checks the manifest's own SHA-256, then every object
  # against it: its size and SHA-256 record (quick) or every byte (full). The vLLM image brings python3 and boto3.
  - name: check-weights
    image: {{ include "llm-serving.imageRef" $root.Values.image | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command:
      - python3
      - -c
      - {{ $root.Files.Get "files/check-weights.py" | quote }}
      - s3
      - {{ $root.Values.weights.bucket | quote }}
      - {{ $prefix | quote }}
      - {{ $root.Values.weights.check | quote }}
    env:
      - name: POLL_SECONDS
        value: {{ int $root.Values.weights.pollSeconds | quote }}
      - name: AWS_REGION
        value: {{ $root.Values.weights.region | quote }}
      - name: AWS_DEFAULT_REGION
        value: {{ $root.Values.weights.region | quote }}
      - name: HOME
        value: /scratch
    resources:
      {{- toYaml $root.Values.loader.resources | nindent 6 }}
    securityContext:
      {{- include "llm-serving.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: scratch
        mountPath: /scratch
        subPath: check
      - name: scratch
        mountPath: /tmp
        subPath: check-tmp
  {{- else if $fsx }}
  # Waits for the model's manifest.json on the file system (pushed last by `modelyard models push`; FSx imports it
  # from the bucket within minutes), then checks the files there against it: every file present with its size
  # (quick), or every byte re-hashed (full: read through Lustre).
  - name: check-weights
    image: {{ include "llm-serving.imageRef" $root.Values.image | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command:
      - python3
      - -c
      - {{ $root.Files.Get "files/check-weights.py" | quote }}
      - local
      - {{ $modelDir | quote }}
      - {{ $root.Values.weights.check | quote }}
    env:
      - name: HOME
        value: /scratch
      - name: POLL_SECONDS
        value: {{ int $root.Values.weights.pollSeconds | quote }}
    resources:
      {{- toYaml $root.Values.loader.resources | nindent 6 }}
    securityContext:
      {{- include "llm-serving.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: model-files
        mountPath: /fsx
        readOnly: true
      - name: scratch
        mountPath: /scratch
        subPath: verify
      - name: scratch
        mountPath: /tmp
        subPath: verify-tmp
  {{- else }}
  # Waits for the model's manifest.json (pushed last by `modelyard models push`), then copies the
  # weights to the node's NVMe. Waiting instead of failing keeps a first `pulumi up` green before
  # any weights are pushed, without a crash loop.
  - name: fetch-weights
    image: {{ include "llm-serving.imageRef" $root.Values.loader.image | quote }}
    imagePullPolicy: {{ $root.Values.loader.image.pullPolicy }}
    command:
      - /bin/sh
      - -c
      - |
        set -eu
        aws configure set default.s3.max_concurrent_requests "$MAX_CONCURRENT_REQUESTS"
        until err=$(aws s3api head-object --bucket "$BUCKET" --key "$PREFIX/manifest.json" 2>&1 >/dev/null); do
          echo "waiting for s3://$BUCKET/$PREFIX/manifest.json (push the weights with modelyard models push): $err"
          sleep "$POLL_SECONDS"
        done
        aws s3 sync --only-show-errors --no-progress "s3://$BUCKET/$PREFIX/" "$MODEL_DIR/"
        echo "weights of $PREFIX copied to $MODEL_DIR"
    env:
      - name: BUCKET
        value: {{ $root.Values.weights.bucket | quote }}
      - name: PREFIX
        value: {{ $prefix | quote }}
      - name: MODEL_DIR
        value: {{ $modelDir | quote }}
      - name: POLL_SECONDS
        value: {{ int $root.Values.weights.pollSeconds | quote }}
      - name: MAX_CONCURRENT_REQUESTS
        value: {{ int $root.Values.loader.maxConcurrentRequests | quote }}
      - name: AWS_REGION
        value: {{ $root.Values.weights.region | quote }}
      - name: AWS_DEFAULT_REGION
        value: {{ $root.Values.weights.region | quote }}
      - name: AWS_CONFIG_FILE
        value: /scratch/aws/config
      - name: HOME
        value: /scratch
      - name: AWS_PAGER
        value: ""
    resources:
      {{- toYaml $root.Values.loader.resources | nindent 6 }}
    securityContext:
      {{- include "llm-serving.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: weights
        mountPath: {{ $modelDir }}
      - name: scratch
        mountPath: /scratch
        subPath: loader
      - name: scratch
        mountPath: /tmp
        subPath: loader-tmp
  # Checks the copy against the manifest: every file present with its size (quick), or every byte re-hashed (full);
  # a mismatch fails the pod's start (and the copy is retried) instead of serving corrupt weights.
  - name: check-weights
    image: {{ include "llm-serving.imageRef" $root.Values.image | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command:
      - python3
      - -c
      - {{ $root.Files.Get "files/check-weights.py" | quote }}
      - local
      - {{ $modelDir | quote }}
      - {{ $root.Values.weights.check | quote }}
    env:
      - name: HOME
        value: /scratch
    resources:
      {{- toYaml $root.Values.loader.resources | nindent 6 }}
    securityContext:
      {{- include "llm-serving.containerSecurityContext" $root | nindent 6 }}
    volumeMounts:
      - name: weights
        mountPath: {{ $modelDir }}
        readOnly: true
      - name: scratch
        mountPath: /scratch
        subPath: verify
      - name: scratch
        mountPath: /tmp
        subPath: verify-tmp
  {{- end }}
containers:
  - name: vllm
    image: {{ include "llm-serving.imageRef" $root.Values.image | quote }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    {{- if $root.Values.preStopSeconds }}
    lifecycle:
      preStop:
        sleep:
          seconds: {{ int $root.Values.preStopSeconds }}
    {{- end }}
    {{- if eq $role "single" }}
    command:
      - vllm
      - serve
    {{- else if eq $role "leader" }}
    # The Ray head of the group, then vLLM once every node of the group has joined (the leader side of vLLM's
    # examples/online_serving/multi-node-serving.sh); the arguments below reach `vllm serve` as "$@".
    command:
      - /bin/sh
      - -c
      - |
        set -eu
        ray start --head --port="$RAY_PORT" --node-ip-address="$VLLM_HOST_IP" --include-dashboard=false
        waited=0
        until [ "$(python3 -c 'import ray; ray.init(address="auto", logging_level="ERROR"); print(sum(n["Alive"] for n in ray.nodes()))' 2>/dev/null)" = "$LWS_GROUP_SIZE" ]; do
          if [ "$waited" -ge "$JOIN_TIMEOUT_SECONDS" ]; then
            echo "the group's $LWS_GROUP_SIZE nodes did not all join Ray within $JOIN_TIMEOUT_SECONDS s" >&2
            exit 1
          fi
          echo "waiting for the group's $LWS_GROUP_SIZE nodes to join Ray"
          sleep 5
          waited=$((waited + 5))
        done
        exec vllm serve "$@"
      - vllm-leader
    {{- else }}
    # A Ray worker joining the group's leader (the worker side of vLLM's
    # examples/online_serving/multi-node-serving.sh); vLLM on the leader places a pipeline stage here.
    command:
      - /bin/sh
      - -c
      - |
        set -u
        waited=0
        until ray start --address="$LWS_LEADER_ADDRESS:$RAY_PORT" --node-ip-address="$VLLM_HOST_IP" --node-manager-port="$RAY_NODE_MANAGER_PORT" --block; do
          if [ "$waited" -ge "$JOIN_TIMEOUT_SECONDS" ]; then
            echo "could not join Ray at $LWS_LEADER_ADDRESS:$RAY_PORT within $JOIN_TIMEOUT_SECONDS s" >&2
            exit 1
          fi
          echo "waiting for the Ray head at $LWS_LEADER_ADDRESS:$RAY_PORT"
          sleep 5
          waited=$((waited + 5))
        done
    {{- end }}
    {{- if ne $role "worker" }}
    args:
      {{- if $stream }}
      - {{ printf "s3://%s/%s" $root.Values.weights.bucket $prefix | quote }}
      # Safetensors streamed from S3 into GPU memory; config and tokenizer files are pulled to VLLM_CACHE_ROOT.
      # distributed: the node's tensor-parallel ranks split the reads and share the tensors over NCCL.
      - --load-format=runai_streamer
      - {{ printf "--model-loader-extra-config={\"concurrency\":%d,\"memory_limit\":%d%s}" (int $root.Values.weights.stream.concurrency) (mul (int $root.Values.weights.stream.memoryLimitGi) 1073741824) (ternary ",\"distributed\":true" "" (gt (int $root.Values.vllm.tensorParallel) 1)) | quote }}
      {{- else }}
      - {{ $modelDir | quote }}
      {{- end }}
      - --served-model-name={{ $root.Values.model.servedName }}
      - --host=0.0.0.0
      - --port={{ int $root.Values.service.port }}
      - --tensor-parallel-size={{ int $root.Values.vllm.tensorParallel }}
      - --pipeline-parallel-size={{ int $root.Values.vllm.pipelineParallel }}
      - --max-model-len={{ int $root.Values.vllm.maxModelLen }}
      - --gpu-memory-utilization={{ $root.Values.vllm.gpuMemoryUtilization }}
      - --max-num-seqs={{ int $root.Values.vllm.maxNumSeqs }}
      - --max-num-batched-tokens={{ int $root.Values.vllm.maxNumBatchedTokens }}
      {{- if $root.Values.vllm.enablePrefixCaching }}
      - --enable-prefix-caching
      {{- else }}
      - --no-enable-prefix-caching
      {{- end }}
      {{- if $root.Values.model.quantization }}
      - --quantization={{ $root.Values.model.quantization }}
      {{- end }}
      # Prompts stay out of the logs (off by default since vLLM 0.10.2; --disable-log-requests is gone since 0.12).
      - --no-enable-log-requests
      {{- if eq $role "leader" }}
      # Ray places the pipeline stages on the group's nodes.
      - --distributed-executor-backend=ray
      {{- end }}
      {{- range $root.Values.vllm.extraArgs }}
      - {{ . | quote }}
      {{- end }}
    {{- end }}
    ports:
      {{- if eq $role "worker" }}
      - name: ray
        containerPort: {{ int $root.Values.multiNode.rayNodeManagerPort }}
        protocol: TCP
      {{- else }}
      - name: http
        containerPort: {{ int $root.Values.service.port }}
        protocol: TCP
      {{- end }}
    env:
      # Nothing reaches the Hugging Face Hub or a telemetry endpoint: weights are local.
      - name: HF_HUB_OFFLINE
        value: "1"
      - name: TRANSFORMERS_OFFLINE
        value: "1"
      - name: VLLM_NO_USAGE_STATS
        value: "1"
      - name: DO_NOT_TRACK
        value: "1"
      # Every cache on the writable scratch volume; the root filesystem is read-only.
      - name: HOME
        value: /scratch
      - name: XDG_CACHE_HOME
        value: /scratch/cache
      - name: XDG_CONFIG_HOME
        value: /scratch/config
      - name: HF_HOME
        value: /scratch/cache/huggingface
      - name: VLLM_CACHE_ROOT
        value: /scratch/cache/vllm
      - name: VLLM_CONFIG_ROOT
        value: /scratch/config/vllm
      - name: TRITON_CACHE_DIR
        value: /scratch/cache/triton
      - name: CUDA_CACHE_PATH
        value: /scratch/cache/nv
      - name: NUMBA_CACHE_DIR
        value: /scratch/cache/numba
      - name: TMPDIR
        value: /tmp
      # The uid has no passwd entry; torch asks getpass.getuser(), which reads USER first.
      - name: USER
        value: vllm
      {{- if $stream }}
      # The streamer's S3 client: the bucket's region; credentials from EKS Pod Identity through boto3's chain.
      - name: AWS_REGION
        value: {{ $root.Values.weights.region | quote }}
      - name: AWS_DEFAULT_REGION
        value: {{ $root.Values.weights.region | quote }}
      {{- end }}
      {{- if ne $role "single" }}
      # Ray and NCCL between the group's pods: the pod's own address, the port of the group's Ray head.
      - name: VLLM_HOST_IP
        valueFrom:
          fieldRef:
            fieldPath: status.podIP
      - name: RAY_PORT
        value: {{ int $root.Values.multiNode.rayPort | quote }}
      - name: RAY_NODE_MANAGER_PORT
        value: {{ int $root.Values.multiNode.rayNodeManagerPort | quote }}
      - name: JOIN_TIMEOUT_SECONDS
        value: {{ int $root.Values.multiNode.joinTimeoutSeconds | quote }}
      - name: RAY_USAGE_STATS_ENABLED
        value: "0"
      # NCCL and Gloo bootstrap over the pod's VPC interface; with aws-ofi-nccl in the image, NCCL moves data
      # through libfabric's EFA provider (GPUDirect RDMA on p4d/p5), without it over TCP sockets.
      - name: NCCL_SOCKET_IFNAME
        value: eth0
      - name: GLOO_SOCKET_IFNAME
        value: eth0
      {{- if gt (int $root.Values.multiNode.efaDevices) 0 }}
      - name: FI_PROVIDER
        value: efa
      - name: FI_EFA_USE_DEVICE_RDMA
        value: "1"
      {{- end }}
      {{- end }}
    resources:
      requests:
        cpu: {{ $root.Values.resources.requests.cpu | quote }}
        memory: {{ $root.Values.resources.requests.memory | quote }}
        ephemeral-storage: {{ printf "%dGi" (add (ternary (int $root.Values.volumes.weightsSizeGi) 0 $copy) (int $root.Values.volumes.scratchSizeGi)) | quote }}
        {{ $root.Values.gpuResourceName }}: {{ $gpus | quote }}
        {{- if and (ne $role "single") (gt (int $root.Values.multiNode.efaDevices) 0) }}
        vpc.amazonaws.com/efa: {{ int $root.Values.multiNode.efaDevices | quote }}
        {{- end }}
      limits:
        memory: {{ $root.Values.resources.limits.memory | quote }}
        {{ $root.Values.gpuResourceName }}: {{ $gpus | quote }}
        {{- if and (ne $role "single") (gt (int $root.Values.multiNode.efaDevices) 0) }}
        vpc.amazonaws.com/efa: {{ int $root.Values.multiNode.efaDevices | quote }}
        {{- end }}
    securityContext:
      {{- include "llm-serving.containerSecurityContext" $root | nindent 6 }}
    {{- if eq $role "worker" }}
    # A worker answers nothing but Ray: its probes ask the Ray node manager's port, open once it has joined.
    startupProbe:
      tcpSocket:
        port: ray
    {{- else }}
    startupProbe:
      httpGet:
        path: /health
        port: http
    {{- end }}
      periodSeconds: {{ int $root.Values.probes.startup.periodSeconds }}
      timeoutSeconds: 5
      failureThreshold: {{ div (mul $root.Values.probes.startup.minutes 60) $root.Values.probes.startup.periodSeconds }}
    readinessProbe:
      {{- if eq $role "worker" }}
      tcpSocket:
        port: ray
      {{- else }}
      httpGet:
        path: /health
        port: http
      {{- end }}
      periodSeconds: {{ int $root.Values.probes.readiness.periodSeconds }}
      timeoutSeconds: {{ int $root.Values.probes.readiness.timeoutSeconds }}
      failureThreshold: {{ int $root.Values.probes.readiness.failureThreshold }}
    livenessProbe:
      {{- if eq $role "worker" }}
      tcpSocket:
        port: ray
      {{- else }}
      httpGet:
        path: /health
        port: http
      {{- end }}
      periodSeconds: {{ int $root.Values.probes.liveness.periodSeconds }}
      timeoutSeconds: {{ int $root.Values.probes.liveness.timeoutSeconds }}
      failureThreshold: {{ int $root.Values.probes.liveness.failureThreshold }}
    volumeMounts:
      {{- if $copy }}
      - name: weights
        mountPath: {{ $modelDir }}
        readOnly: true
      {{- else if $fsx }}
      - name: model-files
        mountPath: /fsx
        readOnly: true
      {{- end }}
      - name: shm
        mountPath: /dev/shm
      - name: scratch
        mountPath: /scratch
        subPath: vllm
      - name: scratch
        mountPath: /tmp
        subPath: vllm-tmp
volumes:
  {{- if $fsx }}
  # The stack's FSx for Lustre file system, read-only (its PersistentVolume is read-only too).
  - name: model-files
    persistentVolumeClaim:
      claimName: {{ required "weights.fsx.claimName is required with weights.load fsx" $root.Values.weights.fsx.claimName }}
      readOnly: true
  {{- end }}
  {{- if $copy }}
  # emptyDir, not hostPath: Pod Security restricted forbids hostPath, and on the kit's GPU nodes
  # kubelet's ephemeral storage is the instance-store RAID0, so this is the node's NVMe anyway.
  - name: weights
    emptyDir:
      sizeLimit: {{ printf "%dGi" (int $root.Values.volumes.weightsSizeGi) }}
  {{- end }}
  - name: shm
    emptyDir:
      medium: Memory
      sizeLimit: {{ printf "%dGi" (int $root.Values.volumes.shmSizeGi) }}
  - name: scratch
    emptyDir:
      sizeLimit: {{ printf "%dGi" (int $root.Values.volumes.scratchSizeGi) }}
{{- end }}
