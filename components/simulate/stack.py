"""A stack as the simulator sees it: for each model, what its release renders and what its nodes cost; for the
gateway, its limits; for pools and tenants, their ceilings. Built from validated settings alone (no plan run), with
the same functions the plan uses:

  servers        the llm-serving chart rendered by the real Helm engine over `serving_values` (the plan's values):
                 --max-num-seqs and --max-num-batched-tokens of the server, the ScaledObject (the autoscaler's
                 signal, target, windows, policies, bounds, polling), the ServiceMonitor's scrape interval
  layout         the instance type Karpenter starts for the model (the cost model's cheapest fit of the pool), its
                 GPUs, replicas per node and nodes per replica (`components.sizing.fit_on`)
  throughput     `components.sizing.throughput` for that replica (step time at a batch, prefill)
  cold start     `components.k8s.serving_values.cold_start`: node launch, image, weights, engine
  nodes          the pool's Karpenter NodePool as `components.k8s.gpu_pools.node_pool_spec` renders it: its GPU
                 limit (pools.<p>.max_gpus) and how long an empty node lives (consolidateAfter)
  quota          tenants.<t>.gpu_quota of the tenant whose namespace runs the model's servers
  gateway        tenants' and keys' rpm and tpm limits, gateway.model_rpm, per gateway replica unless gateway.redis
                 shares the counters; the request timeout (GENERATION_TIMEOUT_SECONDS)
  price          a node-hour as the cost model prices the model's GPU line (components.cost.estimate)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from components import catalog
from components.contract import GENERATION_TIMEOUT_SECONDS
from components.k8s.monitoring.assets import TtftObjective, ttft_objective
from components.settings.types import Settings
from components.simulate.hpa import Autoscaler
from components.sizing import SizingOption, fit_on
from components.sizing.cold_start import ColdStart
from components.sizing.throughput import Replica

# Stand-ins for the AWS layer's outputs: the serving values the simulator reads (batch flags, autoscaler, scrape
# interval) depend on none of them, but the chart's schema checks their shape.
_OFFLINE_ACCOUNT = "000000000000"
_OFFLINE_BUCKET = "offline-simulation-models"


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    key: str  # the settings key (models.<key>)
    catalog_model: str
    pool: str
    owner: str  # the tenant whose namespace and GPU quota the servers use
    instance: str  # the node type
    gpus_per_node: int
    gpus_per_replica: int
    nodes_per_replica: int
    replicas_per_node: int
    replica: Replica  # the throughput model's view of one replica
    max_num_seqs: int
    max_num_batched_tokens: int
    min_replicas: int
    max_replicas: int
    autoscaler: Autoscaler | None  # None: a fixed count (replicas.min == replicas.max)
    scrape_seconds: int
    cold_start: ColdStart
    node_usd_per_hour: Decimal | None  # None: the instance type has no sourced price
    price_basis: str
    capacity_output_tokens_per_second: float  # per replica at its throughput optimum (the cost model's capacity)


@dataclass(frozen=True, kw_only=True)
class Pool:
    max_gpus: int
    consolidate_after_seconds: int
    min_nodes: int


@dataclass(frozen=True, kw_only=True)
class Limit:
    """A gateway limit a minute (requests, tokens); None: none."""

    rpm: int | None
    tpm: int | None


@dataclass(frozen=True, kw_only=True)
class StackModel:
    name: str
    models: Mapping[str, ServedModel]
    pools: Mapping[str, Pool]
    quotas: Mapping[str, int]  # tenant -> GPUs its namespace may request
    tenant_models: Mapping[str, tuple[str, ...]]
    tenant_limits: Mapping[str, Limit]
    key_limits: Mapping[str, tuple[str, Limit]]  # key -> (its tenant, its limit)
    model_rpm: Mapping[str, int]
    limit_multiplier: int  # gateway replicas counting apart (no gateway.redis), else 1
    timeout_seconds: int
    objective: TtftObjective


def _duration_seconds(text: str) -> int:
    """A Go duration of the forms the kit renders (30s, 10m, 1h)."""
    match = re.fullmatch(r"(\d+)([smh])", text)
    if match is None:
        raise ValueError(f"cannot read the duration {text!r}")
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def _flag(args: list[str], name: str) -> int:
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return int(value)


def _rendered_release(settings: Settings, model: str, chart: Any) -> list[dict[str, Any]]:
    from components.aws.image_cache import mirrored
    from components.contract import tenant_namespace
    from components.k8s.serving_values import serving_values
    from components.platform import AwsLayer, serving_args

    placeholders: dict[str, Any] = {f.name: f"<{f.name}>" for f in dataclasses.fields(AwsLayer)}
    placeholders.update(account_id=_OFFLINE_ACCOUNT, model_bucket=_OFFLINE_BUCKET, gpu_security_groups={})
    args = serving_args(settings, AwsLayer(**placeholders))
    registry = (
        mirrored("docker.io", account=_OFFLINE_ACCOUNT, region=settings.region) if settings.image_cache_on else None
    )
    owner = args.model_owners[model]
    values = serving_values(
        args,
        model,
        bucket=_OFFLINE_BUCKET,
        image_registry=registry,
        tenant=owner,
        service_account=args.service_account,
        prometheus_release=args.prometheus_release,
        prometheus_pod_labels=args.prometheus_pod_labels,
        prometheus_url=args.prometheus_url,
    )
    out = chart.render(values=values, name=model, namespace=tenant_namespace(owner))
    docs = [d for path, text in sorted(out.items()) if path.endswith(".yaml") for d in yaml.safe_load_all(text)]
    return [d for d in docs if d]


def _layout(settings: Settings, key: str) -> SizingOption:
    from components.cost.estimate import gpu_fleets

    (fleet,) = [f for f in gpu_fleets(settings) if f.model_key == key]
    m = settings.models[key]
    fit = fit_on(m.model, fleet.instance.name, dtype=m.dtype, context=m.context, concurrency=m.concurrency)
    assert isinstance(fit, SizingOption), f"{key} fits {fleet.instance.name} (the cost model chose it)"
    return fit


def stack_model(settings: Settings) -> StackModel:
    """The simulator's view of a stack (see the module docstring for where each part comes from)."""
    import helm_python as helm

    from components.cost.estimate import gpu_fleets, gpu_node_hourly, pricer
    from components.k8s.gpu_pools import node_pool_spec
    from components.k8s.serving_values import CHART_DIR, cold_start

    fleets = {f.model_key: f for f in gpu_fleets(settings)}
    p = pricer(settings)
    models: dict[str, ServedModel] = {}
    with helm.Chart.load(CHART_DIR) as chart:
        for key, m in sorted(settings.models.items()):
            if key not in fleets:
                continue  # settings validation refuses a model that fits no type of its pool
            objects = _rendered_release(settings, key, chart)
            kinds = {o["kind"] for o in objects}
            workload = next(o for o in objects if o["kind"] in ("Deployment", "LeaderWorkerSet"))
            if workload["kind"] == "Deployment":
                template = workload["spec"]["template"]
            else:
                template = workload["spec"]["leaderWorkerTemplate"]["leaderTemplate"]
            server = template["spec"]["containers"][0]
            scaled = [o for o in objects if o["kind"] == "ScaledObject"]
            (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
            fit = _layout(settings, key)
            fleet = fleets[key]
            instance = fleet.instance
            assert instance.gpu is not None, kinds
            priced = gpu_node_hourly(settings, fleet, p)
            models[key] = ServedModel(
                key=key,
                catalog_model=fleet.model,
                pool=m.pool,
                owner=settings.model_owner(key) or "",
                instance=instance.name,
                gpus_per_node=instance.gpu_count,
                gpus_per_replica=fit.gpus_per_replica,
                nodes_per_replica=fit.nodes_per_replica,
                replicas_per_node=max(1, fit.replicas_per_node),
                replica=Replica(
                    model=catalog.resolve_model(m.model),
                    gpu=instance.gpu,
                    dtype=fit.dtype,
                    gpu_memory_gb=instance.gpu_memory_gb,
                    tensor_parallel=fit.tensor_parallel,
                    pipeline_parallel=fit.pipeline_parallel,
                ),
                max_num_seqs=_flag(server["args"], "max-num-seqs"),
                max_num_batched_tokens=_flag(server["args"], "max-num-batched-tokens"),
                min_replicas=m.replicas.min,
                max_replicas=m.replicas.max,
                autoscaler=Autoscaler.from_scaled_object(scaled[0]) if scaled else None,
                scrape_seconds=_duration_seconds(monitor["spec"]["endpoints"][0]["interval"]),
                cold_start=cold_start(key, m, settings.pools[m.pool]),
                node_usd_per_hour=priced[0] if priced else None,
                price_basis=priced[1] if priced else f"{instance.name}: no sourced price",
                capacity_output_tokens_per_second=fleet.output_tokens_per_second,
            )
    pools = {}
    for name, pool in settings.pools.items():
        spec = node_pool_spec(name, pool, tenant=None, node_class=name, zone_ids=pool.zone_ids)
        disruption: Any = spec["disruption"]
        limits: Any = spec["limits"]
        pools[name] = Pool(
            max_gpus=int(limits["nvidia.com/gpu"]),
            consolidate_after_seconds=_duration_seconds(disruption["consolidateAfter"]),
            min_nodes=pool.min_nodes,
        )
    gateway = settings.gateway
    tenant_limits = {}
    for name, tenant in settings.tenants.items():
        rpm, tpm = tenant.rate_limits(gateway.tenant_limits)
        tenant_limits[name] = Limit(rpm=rpm, tpm=tpm)
    keys = {name: (k.tenant or name, Limit(rpm=k.rpm_limit, tpm=k.tpm_limit)) for name, k in gateway.keys.items()}
    return StackModel(
        name=settings.stack,
        models=models,
        pools=pools,
        quotas={name: t.gpu_quota for name, t in settings.tenants.items()},
        tenant_models={name: tuple(t.models) for name, t in settings.tenants.items()},
        tenant_limits=tenant_limits,
        key_limits=keys,
        model_rpm=dict(gateway.model_rpm),
        limit_multiplier=1 if gateway.redis is not None else max(1, gateway.replicas),
        timeout_seconds=GENERATION_TIMEOUT_SECONDS,
        objective=ttft_objective(),
    )
