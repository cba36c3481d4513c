"""Values of `charts/llm-serving` for one model of a stack: a pure function of the Serving component's args
(the models' and pools' settings, facts the platform derived) and the sizing.

The Serving component renders one release per model from `serving_values(args, model_name, ...)`;
the offline plan renders the same values with the real Helm engine. Nothing here touches AWS or Kubernetes.

What comes from where:
  GPUs, parallelism   `components.sizing.fit_on` on each instance type of the model's pool; the hungriest
                      layout wins (Karpenter may start any of the types), as the settings rules budget it
  CPU, memory         a share of the smallest node of the pool that holds the layout (HOST_SHARE of its
                      GPUs' part of the node; the rest is left to kubelet and the DaemonSets)
  weights cache       the size of the checkpoint that is pushed (the native one unless the catalog has a
                      checkpoint in the served precision), plus WEIGHTS_MARGIN
  weights path        `models.<name>.weights.load` (null: stream on one node, copy across nodes)
  probes, deadline    the cold-start estimate (`components.sizing.cold_start`): the startup probe waits for
                      vLLM's own start, the rollout deadline for all of it (node launch, image, weights, engine)
  autoscaling         KEDA on per-replica load: vLLM's running plus waiting requests (names from the contract,
                      which the monitoring component's metrics.yaml lists) against vllm.maxNumSeqs; scale-up and
                      scale-down windows from the same cold-start estimate (`cold_start_seconds`)
  zone spread         a requirement (DoNotSchedule) where the pool spans two or more zones and replicas.min >= 2,
                      best effort (ScheduleAnyway) otherwise
  images              pinned in the chart; `image_registry` points both images at the ECR pull-through
                      cache, and is required when the stack's nodes have no NAT
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.catalog import InstanceType, Model, WeightDtype, resolve_instance, resolve_model
from components.contract import (
    GENERATION_TIMEOUT_SECONDS,
    MAX_RELEASE_NAME,
    POOL_LABEL,
    SERVER_PRE_STOP_SECONDS,
    TENANT_LABEL,
    VLLM_REQUESTS_RUNNING,
    VLLM_REQUESTS_WAITING,
)
from components.errors import UnbuildableSetting
from components.settings.types import Interconnect, ModelSettings, NatMode, PoolSettings
from components.sizing import DEFAULT_GPU_MEMORY_UTILIZATION, SizingOption, fit_on
from components.sizing.cold_start import STREAM_CONCURRENCY, ColdStart, WeightsLoad, estimate, node_launch
from components.sizing.core import weights_gb
from components.sizing.throughput import Batching, Replica, batching

if TYPE_CHECKING:
    # Only for annotations: the component's module imports the Pulumi SDKs, which this one does without.
    from components.k8s.serving import ServingArgs

CHART_DIR = Path(__file__).resolve().parents[2] / "charts" / "llm-serving"


# Share of a node's CPU and memory (its GPUs' part of the node) a replica requests. The rest is for
# kubelet's reservation and the DaemonSets every GPU node runs (CNI, kube-proxy, CSI, Pod Identity agent,
# device plugin, DCGM and node exporters): about 0.5 vCPU and 1-2 GiB in all, a quarter of a 4-vCPU node.
HOST_SHARE = 0.75
# The PersistentVolumeClaim of the FSx file system, in each namespace of a model with weights.load fsx (Serving).
FSX_CLAIM = "model-files"
# The weights cache holds the checkpoint plus tokenizer and config files; 10% covers file-system overhead.
WEIGHTS_MARGIN = 1.10
GIB = 2**30
GB = 10**9


def release_name(model_name: str) -> str:
    """The Helm release of a model: its settings key (a DNS label within Helm's 53 characters)."""
    if len(model_name) > MAX_RELEASE_NAME:
        raise UnbuildableSetting(
            f"models.{model_name}", f"the name is {len(model_name)} characters; Helm allows {MAX_RELEASE_NAME}"
        )
    return model_name


def _layout(
    model_name: str, model_settings: ModelSettings, pool: PoolSettings
) -> tuple[SizingOption, list[InstanceType]]:
    """The layout the model gets on its pool, and the pool's instance types it fits on."""
    fits: list[tuple[SizingOption, InstanceType]] = []
    for type_name in pool.instance_types:
        fit = fit_on(
            model_settings.model,
            type_name,
            dtype=model_settings.dtype,
            context=model_settings.context,
            concurrency=model_settings.concurrency,
        )
        if isinstance(fit, SizingOption):
            fits.append((fit, resolve_instance(type_name)))
    if not fits:
        raise UnbuildableSetting(f"models.{model_name}.pool", f"fits no instance type of pool {model_settings.pool!r}")
    option = max(fits, key=lambda f: (f[0].gpus_per_replica, f[0].tensor_parallel))[0]
    return option, [instance for _, instance in fits]


def batching_flags(model_settings: ModelSettings, option: SizingOption, instances: list[InstanceType]) -> Batching:
    """--max-num-seqs and --max-num-batched-tokens for the model's layout: the smallest of what the pool's
    instance types allow (Karpenter may start any of them)."""
    choices = []
    for instance in instances:
        assert instance.gpu is not None
        replica = Replica(
            model=resolve_model(model_settings.model),
            gpu=instance.gpu,
            dtype=option.dtype,
            gpu_memory_gb=instance.gpu_memory_gb,
            tensor_parallel=option.tensor_parallel,
            pipeline_parallel=option.pipeline_parallel,
        )
        choices.append(batching(replica, context=model_settings.context, concurrency=model_settings.concurrency))
    return min(choices, key=lambda flags: (flags.max_num_seqs, flags.max_num_batched_tokens))


def nodes_per_replica(args: ServingArgs, model_name: str) -> int:
    """Nodes one replica of the model spans on its pool (more than one: a LeaderWorkerSet group)."""
    model_settings = args.models[model_name]
    return _layout(model_name, model_settings, args.pools[model_settings.pool])[0].nodes_per_replica


def _pushed_dtype(model: Model, served: WeightDtype) -> tuple[WeightDtype, str]:
    """The checkpoint in the bucket and vLLM's --quantization: a served precision with no checkpoint of its
    own in the catalog means the native checkpoint is pushed and vLLM quantizes it while loading."""
    if served is model.native_dtype or served in model.checkpoints:
        return served, ""
    if served is WeightDtype.FP8:
        return model.native_dtype, "fp8"
    raise UnbuildableSetting(
        "dtype", f"{served.value} needs a {served.value} checkpoint of {model.name}; vLLM quantizes only to fp8"
    )


def weights_load(model_name: str, model_settings: ModelSettings, nodes_per_replica: int) -> WeightsLoad:
    """The model's weight path: its setting, or stream for a one-node replica and copy for a multi-node one."""
    load = model_settings.weights.load
    if load is None:
        return WeightsLoad.STREAM if nodes_per_replica == 1 else WeightsLoad.COPY
    if load is WeightsLoad.STREAM and nodes_per_replica > 1:
        raise UnbuildableSetting(
            f"models.{model_name}.weights.load",
            f"stream is for a replica on one node; this one spans {nodes_per_replica} (each pipeline stage's node "
            "would stream the whole checkpoint, and vLLM shares streamed reads only between one node's ranks): "
            "use copy",
        )
    return load


def cold_start(
    model_name: str,
    model_settings: ModelSettings,
    pool: PoolSettings,
    *,
    fsx_throughput_mb_per_second: float | None = None,
) -> ColdStart:
    """The estimated cold start of one replica of the model on its pool (a new node, then image, weights, engine);
    fsx_throughput_mb_per_second: the FSx file system's baseline, for a model with weights.load fsx."""
    option, _ = _layout(model_name, model_settings, pool)
    model = resolve_model(model_settings.model)
    try:
        pushed, _ = _pushed_dtype(model, option.dtype)
    except UnbuildableSetting as exc:
        raise UnbuildableSetting(f"models.{model_name}.{exc.path}", exc.message) from None
    checkpoint_gb, _ = weights_gb(model, pushed)
    load = weights_load(model_name, model_settings, option.nodes_per_replica)
    return estimate(
        checkpoint_gb,
        load,
        model_settings.weights.check,
        fsx_throughput_mb_per_second=fsx_throughput_mb_per_second,
        node_launch_seconds=pool_node_launch_seconds(pool),
    )


def pool_node_launch_seconds(pool: PoolSettings) -> int:
    """A new node of the pool serves GPUs after: the team's measurement, else its slowest family's catalog figure."""
    if pool.node_launch_seconds is not None:
        return pool.node_launch_seconds
    return max(node_launch(resolve_instance(name)) for name in pool.instance_types)


def _fsx_throughput(args: ServingArgs) -> float | None:
    return args.fsx.throughput_mb_per_second if args.fsx is not None else None


def cold_start_seconds(args: ServingArgs, model_name: str) -> int:
    """Seconds from "a replica is wanted" with no free node to "it serves": the estimate's total, which the
    autoscaler's behaviour and the rollout deadline are sized to."""
    model_settings = args.models[model_name]
    return cold_start(
        model_name, model_settings, args.pools[model_settings.pool], fsx_throughput_mb_per_second=_fsx_throughput(args)
    ).total_seconds


def _gi(value_bytes: float) -> int:
    return max(1, math.ceil(value_bytes / GIB))


def serving_values(
    args: ServingArgs,
    model_name: str,
    *,
    bucket: str,
    image_registry: str | None = None,
    tenant: str | None = None,
    service_account: str | None = None,
    storage_role_arn: str | None = None,
    prometheus_release: str = "kube-prometheus-stack",
    gateway_namespace: str = "gateway",
    gateway_pod_labels: Mapping[str, str] | None = None,
    monitoring_namespace: str = "monitoring",
    prometheus_pod_labels: Mapping[str, str] | None = None,
    await_rollout: bool = True,
    prometheus_url: str | None = None,
    canary: bool = False,
) -> dict[str, Any]:
    """Values of charts/llm-serving for `args.models[model_name]`, over the chart's defaults. Of `args` only the
    plain fields are read (models, pools, dedicated_pools, region, nat, deployment): the rest are the
    component's wiring, resolved and passed below.

    bucket: the model bucket (ModelStorage). image_registry: registry host and prefix both images are pulled
    through (the ECR pull-through cache, e.g. `<account>.dkr.ecr.<region>.amazonaws.com/docker-hub`); required
    when `args.nat` is none, else None pulls from Docker Hub. tenant, service_account,
    storage_role_arn: the service account the pods run as and the tenant whose storage role EKS Pod Identity
    binds to it (default: `<model>-serving`). prometheus_release: the `release` label kube-prometheus-stack
    selects ServiceMonitors by. gateway_*, monitoring_*, *_pod_labels: who the NetworkPolicy admits.
    prometheus_url: where KEDA reads vLLM's load; given (and replicas.max above replicas.min), the chart
    creates a ScaledObject and leaves the Deployment's replicas to it. await_rollout: True makes Pulumi wait
    for the Deployment up to its rollout deadline (annotation pulumi.com/timeoutSeconds: the cold-start
    estimate: node launch, image pull, weights and engine load); False skips the wait
    (pulumi.com/skipAwait), for an `up` before the weights are pushed, when no replica can become ready.

    A replica that spans several nodes (pipeline parallel across nodes, `vllm.nodesPerReplica` > 1) renders as a
    LeaderWorkerSet: one pod per node, each with one node's GPUs and the pool's EFA interfaces.

    canary: the values of the model's canary release (`models.<m>.canary`): the canary's revision and replica counts,
    everything else as the stable release's, the served name included (the gateway splits one name between both).

    Raises UnbuildableSetting for what the chart cannot serve: a multi-node replica on a pool without EFA or with
    autoscaling asked for, a missing pull-through registry without NAT, a name over 53 characters.
    """
    if model_name not in args.models:
        raise UnbuildableSetting(f"models.{model_name}", "no such model in the stack's settings")
    path = f"models.{model_name}"
    model_settings = args.models[model_name]
    release_name(model_name)
    if canary:
        if model_settings.canary is None:
            raise UnbuildableSetting(f"{path}.canary", "the model has no canary")
        model_settings = dataclasses.replace(
            model_settings, revision=model_settings.canary.revision, replicas=model_settings.canary.replicas
        )
    if image_registry is None and args.nat is NatMode.NONE:
        raise UnbuildableSetting(
            "network.nat", "is none: nodes cannot reach Docker Hub, so image_registry must name the pull-through cache"
        )
    model = resolve_model(model_settings.model)
    pool = args.pools[model_settings.pool]
    option, instances = _layout(model_name, model_settings, pool)
    nodes = option.nodes_per_replica
    flags = batching_flags(model_settings, option, instances)
    if nodes > 1 and pool.interconnect is not Interconnect.EFA:
        raise UnbuildableSetting(
            f"{path}.pool",
            f"{model.name} needs {nodes} {option.instance} nodes per replica (pipeline parallel "
            f"{option.pipeline_parallel} across nodes): pool {model_settings.pool!r} must set interconnect: efa",
        )
    if nodes > 1 and model_settings.replicas.max != model_settings.replicas.min:
        replicas_path = f"{path}.canary.replicas.max" if canary else f"{path}.replicas.max"
        raise UnbuildableSetting(replicas_path, "a multi-node replica is not autoscaled: set max equal to min")
    try:
        pushed, quantization = _pushed_dtype(model, option.dtype)
    except UnbuildableSetting as exc:
        raise UnbuildableSetting(f"{path}.{exc.path}", exc.message) from None

    # GPUs of one pod: the whole replica on one node, or one pipeline stage (a whole node) per pod of a group.
    gpus = option.gpus_per_replica // nodes
    # Requests that fit the smallest node able to hold the layout, so any type Karpenter picks will do.
    host = min((i for i in instances if i.gpu_count >= gpus), key=lambda i: (i.vcpu * gpus / i.gpu_count, i.name))
    node_share = gpus / host.gpu_count
    cpu = max(1, math.floor(host.vcpu * node_share * HOST_SHARE))
    memory_gi = max(4, math.floor(host.memory_gib * node_share * HOST_SHARE))
    shm_gi = 2 if gpus == 1 else 4 * gpus
    checkpoint_gb, _ = weights_gb(model, pushed)
    weights_gi = _gi(checkpoint_gb * GB * WEIGHTS_MARGIN)
    load = weights_load(model_name, model_settings, nodes)
    if load is WeightsLoad.FSX and args.fsx is None:
        raise UnbuildableSetting(f"{path}.weights.load", "fsx needs the stack's FSx file system (storage.fsx)")
    starting = estimate(
        checkpoint_gb,
        load,
        model_settings.weights.check,
        fsx_throughput_mb_per_second=_fsx_throughput(args),
        node_launch_seconds=pool_node_launch_seconds(pool),
    )
    # The startup probe covers vLLM's own start; the deadline everything from the rollout on, a new node included.
    startup_minutes = math.ceil(starting.engine_seconds / 60)
    deadline_minutes = math.ceil(starting.total_seconds / 60)
    # Streamed or read from the shared file system: no copy on the node, no weights volume of its own.
    no_local_copy = starting.load is not WeightsLoad.COPY

    dedicated = args.dedicated_pools.get(model_settings.pool)
    tolerations = (
        # A dedicated pool's taint; admission lets only that tenant's namespaces tolerate it (Isolation).
        [{"key": TENANT_LABEL, "operator": "Equal", "value": dedicated, "effect": "NoSchedule"}] if dedicated else []
    )
    replicas = model_settings.replicas.min

    values: dict[str, Any] = {
        "model": {
            "servedName": model_name,
            "catalogName": model.name,
            "revision": model_settings.revision,
            "quantization": quantization,
        },
        # Where `modelyard models push` puts them: by catalog name, shared by every entry serving these weights.
        "weights": {
            "bucket": bucket,
            "region": args.region,
            "prefix": f"models/{model.name}/{model_settings.revision}",
            "load": starting.load.value,
            "check": starting.check.value,
            # The streamer's S3 clients, and its CPU buffer: a quarter of the pod's memory, at most its own 40 GB
            # default (with `distributed`, which tensor-parallel ranks use, the streamer's default is unlimited).
            "stream": {"concurrency": STREAM_CONCURRENCY, "memoryLimitGi": max(1, min(40, memory_gi // 4))},
            # The FSx file system's claim in the namespace (weights.load fsx only): the bucket's models/ is its /models.
            **({"fsx": {"claimName": FSX_CLAIM}} if starting.load is WeightsLoad.FSX else {}),
        },
        "vllm": {
            "tensorParallel": option.tensor_parallel,
            "pipelineParallel": option.pipeline_parallel,
            "nodesPerReplica": option.nodes_per_replica,
            "maxModelLen": model_settings.context,
            # The budget sizing fitted the model into: the engine must not take more.
            "gpuMemoryUtilization": DEFAULT_GPU_MEMORY_UTILIZATION,
            # Batch to the throughput optimum within the KV cache's room (components/sizing/throughput.py), not to
            # the sizing concurrency: a replica that may hold more sequences serves more tokens for the same GPUs.
            "maxNumSeqs": flags.max_num_seqs,
            "maxNumBatchedTokens": flags.max_num_batched_tokens,
        },
        "deploymentAnnotations": (
            {"pulumi.com/timeoutSeconds": str(deadline_minutes * 60)}
            if await_rollout
            else {"pulumi.com/skipAwait": "true"}
        ),
        "replicaCount": replicas,
        "maxReplicas": model_settings.replicas.max,
        # A stopping server pauses while the Service and the gateway stop sending to it, then finishes what it holds:
        # up to the longest generation the gateway allows (rollouts, drains and scale-down never cut one short).
        "preStopSeconds": SERVER_PRE_STOP_SECONDS,
        "terminationGracePeriodSeconds": SERVER_PRE_STOP_SECONDS + GENERATION_TIMEOUT_SECONDS,
        # A model that may run on one replica (replicas.min 1): while it does, no other serves when it moves, so
        # Karpenter may not take its node for consolidation, drift or expiry (a Spot interruption or a drain by hand
        # still does; the plan and docs say it has no HA then).
        "podAnnotations": {"karpenter.sh/do-not-disrupt": "true"} if model_settings.replicas.min == 1 else {},
        "progressDeadlineMinutes": deadline_minutes,
        "resources": {
            "requests": {"cpu": str(cpu), "memory": f"{memory_gi}Gi"},
            "limits": {"memory": f"{memory_gi}Gi"},
        },
        "pool": {"labelKey": POOL_LABEL, "name": model_settings.pool, "extraTolerations": tolerations},
        "probes": {"startup": {"minutes": startup_minutes}},
        # Streaming and FSx need no local copy: the chart then renders no emptyDir for the weights.
        "volumes": {"weightsSizeGi": 1 if no_local_copy else weights_gi, "shmSizeGi": shm_gi},
        "serviceAccount": {
            "name": service_account or f"{model_name}-serving",
            "tenant": tenant or "",
            "storageRoleArn": storage_role_arn or "",
        },
        "serviceMonitor": {"release": prometheus_release},
        "networkPolicy": {
            "gateway": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": gateway_namespace}},
                "podSelector": {"matchLabels": dict(gateway_pod_labels or {"app.kubernetes.io/name": "litellm"})},
            },
            "prometheus": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": monitoring_namespace}},
                "podSelector": {"matchLabels": dict(prometheus_pod_labels or {"app.kubernetes.io/name": "prometheus"})},
            },
        },
        "commonLabels": {"modelyard.dev/stack": args.deployment},
        # Over two or more zones, a model that always runs two replicas or more keeps one per zone as a requirement (a
        # zone's loss leaves it serving); a pool in one zone (EFA, a reservation) or one replica spreads best effort.
        "topologySpread": {
            "whenUnsatisfiable": "DoNotSchedule"
            if len(pool.zone_ids or args.zone_ids) >= 2 and model_settings.replicas.min >= 2
            else "ScheduleAnyway"
        },
        # KEDA scales replicas.min..replicas.max on per-replica load (running plus waiting requests against what a
        # replica holds), given a Prometheus to read it from, with windows sized to the model's cold start.
        "autoscaling": {
            "enabled": prometheus_url is not None
            and nodes == 1
            and model_settings.replicas.max > model_settings.replicas.min,
            "prometheusUrl": prometheus_url or "",
            "runningMetric": VLLM_REQUESTS_RUNNING,
            "waitingMetric": VLLM_REQUESTS_WAITING,
            "coldStartSeconds": starting.total_seconds,
        },
    }
    if nodes > 1:
        # Every pod of a group asks for the EFA interfaces of the pool's smallest EFA offer (Karpenter attaches
        # them to nodes whose pods request them; the EFA device plugin hands them out).
        efa = min(i.efa_interfaces for i in instances if i.gpu_count >= gpus)
        values["multiNode"] = {"efaDevices": efa}
    if image_registry is not None:
        values["image"] = {"registry": image_registry}
        values["loader"] = {"image": {"registry": image_registry}}
    own = model_settings.image
    if own is not None:
        # The stack's own build, pulled from where it lives (its ECR needs no pull-through cache), by digest.
        values["image"] = {"registry": own.registry, "repository": own.repository, "tag": own.tag, "digest": own.digest}
    return values
