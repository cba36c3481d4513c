"""Cross-field rules over converted settings. Each rule returns problems; none stops the others."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache

from components import catalog
from components.catalog import s3_ranges
from components.contract import ChartSource, canary_release, quality_targets, serving_fullname, tenant_model_names
from components.errors import InputError, Problem
from components.evalsets import load_set, set_path, shipped_sets
from components.settings.schema import close_matches
from components.settings.types import (
    ENDPOINTS_WITHOUT_NAT,
    FSX_CAPACITY_STEP_GIB,
    FSX_FIRST_CAPACITIES_GIB,
    SHIPPED_TRAFFIC,
    Capacity,
    DataPolicy,
    EndpointAccess,
    FallbackProvider,
    GatewayExposure,
    Interconnect,
    InterfaceEndpoint,
    Layers,
    NatMode,
    PoolKind,
    Settings,
    TenantEgress,
)
from components.tagging import KIT_TAG_KEYS, MAX_TAGS_PER_RESOURCE

Rule = Callable[[Settings], Iterator[Problem]]

_DIRECTIONS = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


@cache
def known_regions() -> tuple[str, ...]:
    """Regions of the commercial partition, from the endpoint data botocore bundles (no network needed).

    Read as JSON rather than through botocore.session, whose import costs about 0.15 s per command.
    """
    import importlib.util
    import json
    from pathlib import Path

    spec = importlib.util.find_spec("botocore")
    assert spec is not None and spec.submodule_search_locations, "botocore is a dependency of the kit"
    data = json.loads((Path(spec.submodule_search_locations[0]) / "data" / "endpoints.json").read_text())
    (partition,) = [p for p in data["partitions"] if p["partition"] == "aws"]
    return tuple(sorted(partition["regions"]))


def zone_id_prefix(region: str) -> str:
    """The AZ-ID prefix of a region: us-east-1 -> use1, ap-northeast-2 -> apne2, eu-central-1 -> euc1.

    AWS names AZ IDs as <area><direction initials><number>-az<n> (AWS RAM user guide, "AZ IDs").
    """
    area, direction, number = region.split("-")
    return f"{area}{_DIRECTIONS[direction]}{number}"


def _p(path: str, message: str) -> Problem:
    return Problem(path=f"modelyard:{path}", message=message)


def stack_name(s: Settings) -> Iterator[Problem]:
    """`<project>-<stack>` prefixes AWS names; the longest, `<name>-models-<12-digit account>-logs`,
    must stay within S3's 63 characters, in S3's alphabet."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,37}", s.name):
        yield Problem(
            path="stack",
            message=f"project and stack name {s.name!r} must be at most 38 lower-case letters, digits and '-' "
            "(they prefix bucket and cluster names)",
        )


def region_known(s: Settings) -> Iterator[Problem]:
    if s.region not in known_regions():
        yield _p("region", f"unknown AWS region {s.region!r}" + close_matches(s.region, known_regions()))


def network_cidr(s: Settings) -> Iterator[Problem]:
    try:
        net = ipaddress.IPv4Network(s.network.cidr, strict=True)
    except ValueError as exc:
        yield _p("network.cidr", f"{s.network.cidr!r} is not a network address ({exc})")
        return
    if not net.is_private:
        yield _p("network.cidr", f"{net} is not a private range (use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
    if not 16 <= net.prefixlen <= 20:
        yield _p("network.cidr", f"/{net.prefixlen} is not allowed; use a /16 to /20 (GPU pods need addresses)")


def network_zones(s: Settings) -> Iterator[Problem]:
    zones = s.network.zone_ids
    if len(zones) not in (2, 3):
        yield _p("network.zone_ids", f"give 2 or 3 zone IDs, not {len(zones)}")
    if len(set(zones)) != len(zones):
        yield _p("network.zone_ids", "zone IDs repeat")
    if s.region not in known_regions():
        return  # reported by region_known; a prefix would be a guess
    prefix = zone_id_prefix(s.region)
    from components.catalog.regions import regions

    known = regions().get(s.region)
    listed = (
        f": {', '.join(known.zones)} (components/catalog/regions.yaml)" if known else f" (they look like {prefix}-az1)"
    )
    for i, zone in enumerate(zones):
        if not re.fullmatch(rf"{prefix}-az\d+", zone):
            yield _p(
                f"network.zone_ids[{i}]", f"{zone!r} is not a zone ID of {s.region}; zone IDs known for it{listed}"
            )


def network_endpoints(s: Settings) -> Iterator[Problem]:
    """Without NAT, a list of endpoints holds every one nodes need, and bedrock-runtime for a Bedrock fallback."""
    if s.network.nat is not NatMode.NONE or s.network.interface_endpoints is None:
        return
    listed = set(s.network.interface_endpoints)
    reasons = []
    missing = sorted(set(ENDPOINTS_WITHOUT_NAT) - listed)
    if missing:
        reasons.append("nodes reach AWS only through endpoints; add " + ", ".join(m.value for m in missing))
    bedrock = [m for m in s.fallbacks_in_use if s.gateway.fallbacks[m].provider is FallbackProvider.BEDROCK]
    if bedrock and InterfaceEndpoint.BEDROCK_RUNTIME not in listed:
        reasons.append(
            f"the gateway reaches Bedrock (the fallback of {', '.join(bedrock)} in gateway.fallbacks) only through "
            f"an endpoint; add {InterfaceEndpoint.BEDROCK_RUNTIME.value}"
        )
    if s.writes_metrics_in_region and InterfaceEndpoint.APS_WORKSPACES not in listed:
        reasons.append(
            "Prometheus writes to the metrics workspace (monitoring.remote_write) only through an endpoint; add "
            f"{InterfaceEndpoint.APS_WORKSPACES.value}"
        )
    if reasons:
        yield _p(
            "network.interface_endpoints",
            "with nat: none, " + "; ".join(reasons) + " (or leave interface_endpoints unset for the full set)",
        )


def pools_capacity(s: Settings) -> Iterator[Problem]:
    for name, pool in s.pools.items():
        path = f"pools.{name}"
        zoned = pool.capacity in (Capacity.RESERVATION, Capacity.CAPACITY_BLOCK)
        if pool.capacity is Capacity.SPOT and pool.kind is not PoolKind.ELASTIC:
            yield _p(f"{path}.capacity", "spot needs kind: elastic (Karpenter replaces interrupted nodes)")
        if zoned and pool.kind is not PoolKind.STATIC:
            yield _p(f"{path}.capacity", f"{pool.capacity.value} needs kind: static (a managed node group)")
        if zoned and pool.reservation_id is None:
            yield _p(f"{path}.reservation_id", f"required with capacity: {pool.capacity.value}")
        if not zoned and pool.reservation_id is not None:
            yield _p(f"{path}.reservation_id", "only with capacity: reservation or capacity-block")
        if zoned and len(pool.zone_ids) != 1:
            yield _p(f"{path}.zone_ids", f"{pool.capacity.value} lives in one zone: give exactly its zone ID")
        if pool.interconnect is Interconnect.EFA and len(pool.zone_ids) != 1:
            yield _p(f"{path}.zone_ids", "interconnect: efa keeps a pool in one zone: give exactly one zone ID")
        if pool.kind is PoolKind.STATIC and len(pool.instance_types) != 1:
            yield _p(f"{path}.instance_types", "a static pool has exactly one instance type")
        if not pool.instance_types:
            yield _p(f"{path}.instance_types", "give at least one instance type")
        for i, zone in enumerate(pool.zone_ids):
            if zone not in s.network.zone_ids:
                yield _p(f"{path}.zone_ids[{i}]", f"{zone!r} is not one of network.zone_ids")


def pools_catalog(s: Settings) -> Iterator[Problem]:
    """Instance types exist in the catalog, have GPUs, support EFA where asked, fit under the ceiling."""
    for name, pool in s.pools.items():
        for i, type_name in enumerate(pool.instance_types):
            path = f"pools.{name}.instance_types[{i}]"
            try:
                instance = catalog.resolve_instance(type_name)
            except catalog.UnknownInstanceError:
                gpu_types = sorted(t for t, it in catalog.instances().items() if it.gpu is not None)
                yield _p(path, f"unknown instance type {type_name!r}" + close_matches(type_name, gpu_types))
                continue
            if instance.name != type_name:
                # The catalog finds it in any case, but Karpenter's requirements and EKS match the name exactly.
                yield _p(path, f"write {type_name!r} as AWS does: {instance.name}")
                continue
            if instance.gpu is None:
                yield _p(path, f"{type_name} has no GPU; GPU pools take GPU instance types")
                continue
            if pool.interconnect is Interconnect.EFA and not instance.supports_efa:
                yield _p(path, f"{type_name} has no EFA; interconnect: efa needs an EFA-capable type")
            if pool.kind is PoolKind.STATIC and pool.min_nodes * instance.gpu_count > pool.max_gpus:
                yield _p(
                    f"pools.{name}.min_nodes",
                    f"{pool.min_nodes} {type_name} nodes hold {pool.min_nodes * instance.gpu_count} GPUs, "
                    f"above max_gpus {pool.max_gpus}",
                )
            if instance.gpu_count > pool.max_gpus:
                yield _p(
                    f"pools.{name}.max_gpus",
                    f"{pool.max_gpus} is below the {instance.gpu_count} GPUs of one {type_name} node: "
                    "the pool could never start a node",
                )


def models_catalog(s: Settings) -> Iterator[Problem]:
    """Each model is in the catalog, served in a precision it has, and fits every instance type of its pool."""
    from components.sizing import SizingInputError, SizingOption, fit_on

    gpus_at_max: dict[str, int] = {}
    gpus_by_owner: dict[str, dict[str, int]] = {}
    for name, model_settings in s.models.items():
        path = f"models.{name}"
        try:
            model = catalog.resolve_model(model_settings.model)
        except catalog.UnknownModelError as exc:
            hint = f" (did you mean {', '.join(repr(m) for m in exc.close_matches)}?)" if exc.close_matches else ""
            yield _p(f"{path}.model", f"no model {model_settings.model!r} in the catalog{hint}")
            continue
        pool = s.pools.get(model_settings.pool)
        if pool is None:
            continue  # reported by models_pools
        per_replica = 0
        multi_node_checked = False
        for type_name in pool.instance_types:
            instance = catalog.instances().get(type_name)
            if instance is None or instance.gpu is None:
                continue  # reported by pools_catalog
            try:
                fit = fit_on(
                    model,
                    type_name,
                    dtype=model_settings.dtype,
                    context=model_settings.context,
                    concurrency=model_settings.concurrency,
                )
            except SizingInputError as exc:
                yield _p(f"{path}.{exc.argument}", str(exc))
                break
            if not isinstance(fit, SizingOption):
                yield _p(path, f"{model.name} does not fit pool {model_settings.pool!r} ({type_name}): {fit.reason}")
                continue
            # Karpenter may start any of the pool's types: budget for the hungriest layout.
            per_replica = max(per_replica, fit.gpus_per_replica)
            if fit.nodes_per_replica > 1 and not multi_node_checked:
                multi_node_checked = True  # once per model, whichever of the pool's types needs it
                # charts/llm-serving runs such a replica as a LeaderWorkerSet group, one pod per node (Ray, NCCL
                # between the nodes): the pool must give its pods EFA devices, one security group open to itself
                # and one zone (interconnect: efa), and the group is not autoscaled (docs/serving.md).
                if pool.interconnect is not Interconnect.EFA:
                    yield _p(
                        f"{path}.pool",
                        f"{model.name} needs {fit.nodes_per_replica} {type_name} nodes per replica: pool "
                        f"{model_settings.pool!r} must set interconnect: efa "
                        f"(pools.{model_settings.pool}.interconnect)",
                    )
                if model_settings.replicas.max != model_settings.replicas.min:
                    yield _p(
                        f"{path}.replicas.max",
                        f"{model.name} needs {fit.nodes_per_replica} {type_name} nodes per replica, and multi-node "
                        f"replicas are not autoscaled: set max equal to min ({model_settings.replicas.min})",
                    )
                canary_replicas = model_settings.canary.replicas if model_settings.canary is not None else None
                if canary_replicas is not None and canary_replicas.max != canary_replicas.min:
                    yield _p(
                        f"{path}.canary.replicas.max",
                        f"{model.name} needs {fit.nodes_per_replica} {type_name} nodes per replica, and multi-node "
                        f"replicas are not autoscaled: set max equal to min ({canary_replicas.min})",
                    )
        # A canary runs the same layout on the same pool beside the stable servers: both sets at their maximum.
        canary = model_settings.canary
        canary_max = canary.replicas.max if canary is not None else 0
        gpus_at_max[model_settings.pool] = gpus_at_max.get(model_settings.pool, 0) + per_replica * (
            model_settings.replicas.max + canary_max
        )
        owner = s.model_owner(name)
        if owner is not None and owner in s.tenants:
            gpus_by_owner.setdefault(owner, {})[name] = per_replica * model_settings.replicas.max
            if canary is not None:
                gpus_by_owner[owner][f"{name} canary"] = per_replica * canary_max
    # The tenant's ResourceQuota admits no GPU beyond gpu_quota: Kubernetes would refuse the last pods of a
    # scale-up with "exceeded quota", while the plan and `up` succeed.
    for tenant, needs in sorted(gpus_by_owner.items()):
        quota = s.tenants[tenant].gpu_quota
        if sum(needs.values()) > quota:
            parts = ", ".join(f"{model} {gpus}" for model, gpus in sorted(needs.items()))
            yield _p(
                f"tenants.{tenant}.gpu_quota",
                f"{quota} GPUs cannot hold the servers this tenant owns at their maximum replicas: they need "
                f"{sum(needs.values())} ({parts}); raise gpu_quota to {sum(needs.values())} or lower replicas.max "
                "(or the canary's)",
            )
    for pool_name, gpus in sorted(gpus_at_max.items()):
        ceiling = s.pools[pool_name].max_gpus
        if gpus > ceiling:
            yield _p(
                f"pools.{pool_name}.max_gpus",
                f"{ceiling} GPUs cannot hold its models at their maximum replicas ({gpus} GPUs), canaries "
                "included: raise max_gpus or lower replicas.max",
            )


def serving_names(s: Settings) -> Iterator[Problem]:
    """Two models whose servers get one name in one namespace (`a` and `a-llm-serving`): Helm would refuse the
    second release at `up`, its objects being the first's."""
    by_object: dict[tuple[str, str], list[str]] = {}
    for name, model in s.models.items():
        owner = s.model_owner(name)
        if owner is not None:
            by_object.setdefault((owner, serving_fullname(name)), []).append(name)
            if model.canary is not None:
                by_object.setdefault((owner, serving_fullname(canary_release(name))), []).append(f"{name}.canary")
    for (owner, obj), names in sorted(by_object.items()):
        if len(names) > 1:
            yield _p(
                f"models.{sorted(names)[1]}",
                f"its servers would be named {obj!r} in tenant {owner!r}'s namespace, like those of "
                f"{', '.join(repr(n) for n in sorted(names)[:1])}: rename one of the models",
            )


def storage_fsx(s: Settings) -> Iterator[Problem]:
    """The FSx file system: a capacity AWS accepts for PERSISTENT_2 SSD, a zone of the network, room for the
    checkpoints of the models that read from it; and a file system for every model that asks for one."""
    from components.sizing.cold_start import pushed_checkpoint_gb

    fsx = s.storage.fsx
    users = s.fsx_models
    if fsx is None:
        for name in users:
            yield _p(
                f"models.{name}.weights.load",
                "fsx needs the stack's FSx for Lustre file system: set storage.fsx (docs/storage.md), or use stream "
                "or copy",
            )
        return
    capacity = fsx.storage_capacity_gib
    if capacity not in FSX_FIRST_CAPACITIES_GIB and capacity % FSX_CAPACITY_STEP_GIB:
        below = max(FSX_FIRST_CAPACITIES_GIB[-1], capacity // FSX_CAPACITY_STEP_GIB * FSX_CAPACITY_STEP_GIB)
        yield _p(
            "storage.fsx.storage_capacity_gib",
            f"{capacity} GiB is not a PERSISTENT_2 SSD capacity: AWS takes 1200, 2400 or a multiple of "
            f"{FSX_CAPACITY_STEP_GIB} (nearest: {below} or {below + FSX_CAPACITY_STEP_GIB})",
        )
    if fsx.zone_id is not None and fsx.zone_id not in s.network.zone_ids:
        yield _p(
            "storage.fsx.zone_id",
            f"{fsx.zone_id!r} is not one of network.zone_ids ({', '.join(s.network.zone_ids)})"
            + close_matches(fsx.zone_id, s.network.zone_ids),
        )
    if not users:
        yield _p(
            "storage.fsx",
            "no model reads from the file system (models.<name>.weights.load fsx): it would cost money for nothing; "
            "set one, or storage.fsx: null",
        )
    # Every distinct checkpoint the servers read lives on the file system once FSx has loaded it from S3.
    checkpoints: dict[str, float] = {}
    for name in users:
        spec = s.models[name]
        try:
            model = catalog.resolve_model(spec.model)
        except catalog.UnknownModelError:
            continue  # reported by models_catalog
        served = spec.dtype or model.native_dtype
        checkpoints[f"{model.name}/{spec.revision}"] = pushed_checkpoint_gb(model, served)
    needed_gib = sum(checkpoints.values()) * 1e9 / 2**30
    if needed_gib > capacity:
        yield _p(
            "storage.fsx.storage_capacity_gib",
            f"{capacity} GiB cannot hold the checkpoints its models read ({needed_gib:,.0f} GiB: "
            f"{', '.join(sorted(checkpoints))}); raise it",
        )


def models_pools(s: Settings) -> Iterator[Problem]:
    for name, model in s.models.items():
        if model.pool not in s.pools:
            yield _p(f"models.{name}.pool", f"no pool named {model.pool!r}" + close_matches(model.pool, s.pools))
        if model.replicas.max < model.replicas.min:
            yield _p(f"models.{name}.replicas.max", f"{model.replicas.max} is below min ({model.replicas.min})")


def models_canary(s: Settings) -> Iterator[Problem]:
    """A canary serves another revision than the stable servers, with replica counts in order. (Its release,
    `<model>-canary`, is within Helm's 53 characters: model keys are at most 30, tests/test_lifecycle.py.)"""
    for name, model in s.models.items():
        canary = model.canary
        if canary is None:
            continue
        path = f"models.{name}.canary"
        if canary.revision == model.revision:
            yield _p(
                f"{path}.revision",
                f"is the stable revision ({model.revision!r}): a canary runs a new one; to promote it, set "
                f"models.{name}.revision and drop canary",
            )
        if canary.replicas.max < canary.replicas.min:
            yield _p(f"{path}.replicas.max", f"{canary.replicas.max} is below min ({canary.replicas.min})")


def tenants_refs(s: Settings) -> Iterator[Problem]:
    dedicated: dict[str, str] = {}
    for name, tenant in s.tenants.items():
        if not tenant.models:
            yield _p(f"tenants.{name}.models", "give at least one model")
        for i, model in enumerate(tenant.models):
            if model not in s.models:
                yield _p(f"tenants.{name}.models[{i}]", f"no model named {model!r}" + close_matches(model, s.models))
        pool = tenant.dedicated_pool
        if pool is None:
            continue
        if pool not in s.pools:
            yield _p(f"tenants.{name}.dedicated_pool", f"no pool named {pool!r}" + close_matches(pool, s.pools))
        elif pool in dedicated:
            yield _p(f"tenants.{name}.dedicated_pool", f"pool {pool!r} is already dedicated to {dedicated[pool]!r}")
        else:
            dedicated[pool] = name


def tenant_limits(s: Settings) -> Iterator[Problem]:
    """No tenant is unlimited by accident: its keys get the limits it sets, else its share of the GPUs
    (gateway.tenant_limits x gpu_quota), else nothing only with `unlimited: true`. A tenant holding no GPU has no
    share to derive, so it must say which."""
    for name, tenant in s.tenants.items():
        if tenant.unlimited:
            for key in ("rpm_limit", "tpm_limit"):
                if getattr(tenant, key) is not None:
                    yield _p(f"tenants.{name}.{key}", f"tenants.{name}.unlimited lifts every limit: remove one of them")
            continue
        if tenant.gpu_quota > 0:
            continue
        for key, rate in (("rpm_limit", "rpm_per_gpu"), ("tpm_limit", "tpm_per_gpu")):
            if getattr(tenant, key) is None:
                yield _p(
                    f"tenants.{name}.{key}",
                    f"required: the tenant holds no GPU (gpu_quota 0), so gateway.tenant_limits.{rate} derives no "
                    f"limit for its keys; set {key}, a gpu_quota, or tenants.{name}.unlimited: true",
                )


def dedicated_pools(s: Settings) -> Iterator[Problem]:
    """A dedicated pool serves only its tenant: no other tenant may call a model placed on it."""
    owners = {t.dedicated_pool: name for name, t in s.tenants.items() if t.dedicated_pool}
    for tenant_name, tenant in s.tenants.items():
        for i, model in enumerate(tenant.models):
            pool = s.models[model].pool if model in s.models else None
            owner = owners.get(pool) if pool is not None else None
            if owner is not None and owner != tenant_name:
                yield _p(
                    f"tenants.{tenant_name}.models[{i}]",
                    f"{model!r} runs on pool {pool!r}, dedicated to tenant {owner!r}",
                )


_RFC1918 = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# More public addresses than a /8 (16.7 million) admitted by one allow-list is the internet in all but name: no
# office, VPN or client fleet needs it, and 0.0.0.0/1 + 128.0.0.0/1 is exactly 0.0.0.0/0. It takes the same
# explicit opt-in as 0.0.0.0/0.
WORLD_ADDRESSES = 2**24


def _opens_the_world(cidrs: Iterable[str]) -> int | None:
    """How many addresses the valid CIDRs admit together, when that is more than WORLD_ADDRESSES; else None."""
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.IPv4Network(cidr, strict=True))
        except ValueError:
            continue  # reported on its own
    total = sum(n.num_addresses for n in ipaddress.collapse_addresses(nets))
    return total if total > WORLD_ADDRESSES else None


def cluster_endpoint(s: Settings) -> Iterator[Problem]:
    """The private endpoint is always on; a public one only for an explicit, limited allow-list."""
    cluster = s.cluster
    public = cluster.endpoint is EndpointAccess.PUBLIC_AND_PRIVATE
    if public and not cluster.public_cidrs:
        yield _p(
            "cluster.public_cidrs",
            "a public endpoint needs the CIDRs allowed to reach it (your office or deploy runner, e.g. "
            "203.0.113.0/24); or set cluster.endpoint: private",
        )
    if not public and cluster.public_cidrs:
        yield _p("cluster.public_cidrs", "only with cluster.endpoint: public-and-private (the endpoint is private)")
    if not public and cluster.allow_public_world:
        yield _p("cluster.allow_public_world", "only with cluster.endpoint: public-and-private")
    if not public and not cluster.private_access_cidrs and s.deploy.layers is Layers.ONE_STACK:
        yield _p(
            "deploy.layers",
            "a private-only cluster needs a path for `pulumi up` to reach its Kubernetes API: set deploy.layers: "
            "split (a deploy runner inside the VPC applies the Kubernetes layer), or list in "
            "cluster.private_access_cidrs the private network you deploy from (VPN, Direct Connect, peering)",
        )
    for i, cidr in enumerate(cluster.private_access_cidrs):
        try:
            private = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            yield _p(f"cluster.private_access_cidrs[{i}]", f"{cidr!r} is not a network address ({exc})")
            continue
        if not any(private.subnet_of(ipaddress.IPv4Network(r)) for r in _RFC1918):
            yield _p(f"cluster.private_access_cidrs[{i}]", f"{private} is not a private range")
    for i, cidr in enumerate(cluster.public_cidrs):
        path = f"cluster.public_cidrs[{i}]"
        try:
            net = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            yield _p(path, f"{cidr!r} is not a network address ({exc})")
            continue
        if net.prefixlen == 0 and not cluster.allow_public_world:
            yield _p(
                path,
                "0.0.0.0/0 opens the Kubernetes API to the whole internet; list your CIDRs instead, or set "
                "cluster.allow_public_world: true if you really mean it",
            )
        elif any(net.subnet_of(ipaddress.IPv4Network(r)) for r in _RFC1918):
            yield _p(path, f"{net} is a private range: the public endpoint sees public source addresses only")
    wide = _opens_the_world(cluster.public_cidrs)
    if wide is not None and not cluster.allow_public_world and "0.0.0.0/0" not in cluster.public_cidrs:
        yield _p(
            "cluster.public_cidrs",
            f"together these CIDRs admit {wide:,} addresses, more than a /8: that opens the Kubernetes API to the "
            "internet; list narrower ranges, or set cluster.allow_public_world: true if you really mean it",
        )


def deploy_layers(s: Settings) -> Iterator[Problem]:
    """A split deployment's runner needs the state backend and secrets key it may use; nothing else has them."""
    deploy = s.deploy
    if deploy.layers is Layers.ONE_STACK:
        for key in ("kubernetes_stack", "state_bucket", "secrets_key_arn", "runner_image_tag"):
            if getattr(deploy, key) is not None:
                yield _p(f"deploy.{key}", "only with deploy.layers: split")
        return
    if deploy.state_bucket is None:
        yield _p(
            "deploy.state_bucket",
            "a split deployment's runner runs `pulumi up` of the Kubernetes layer inside the VPC, and logs in to an "
            "S3 state backend: name its bucket (the one both layers' stacks live in)",
        )
    if deploy.secrets_key_arn is None:
        yield _p(
            "deploy.secrets_key_arn",
            "the runner decrypts the Kubernetes layer's secrets with the stacks' awskms:// secrets provider: give "
            "that KMS key's ARN",
        )
    elif deploy.secrets_key_arn.split(":")[3] != s.region:
        yield _p("deploy.secrets_key_arn", f"the key is in {deploy.secrets_key_arn.split(':')[3]}, not {s.region}")
    if deploy.kubernetes_stack is not None and deploy.kubernetes_stack == s.deployment:
        yield _p("deploy.kubernetes_stack", "must differ from the AWS layer's stack")


def deploy_cell(s: Settings) -> Iterator[Problem]:
    """A cell of a global stack (deploy.global_stack) is reached through its gateway's load balancer: the entry's
    records alias it and its health check reads the alarm on it (docs/regions.md)."""
    global_stack = s.deploy.global_stack
    if global_stack is None:
        return
    if global_stack == s.deployment:
        yield _p("deploy.global_stack", "must name another stack: the global stack's file sets modelyard:global")
    if s.gateway.hostname is None:
        yield _p(
            "deploy.global_stack",
            "a cell is reached through its gateway's load balancer, which exists only with gateway.hostname: set "
            "one (this cell's own name; the global entry's records point at the same load balancer)",
        )


def monitoring_remote_write(s: Settings) -> Iterator[Problem]:
    """Remote write goes to the workspace of the cell's global stack, which the Kubernetes layer reads after the
    global stack is applied. A cell without NAT reaches a workspace of its own region through its aps-workspaces
    endpoint, one in another region over the peering the global stack makes (validated there, with every cell:
    components/settings/cells.py; docs/regions.md, "Observability across regions")."""
    remote_write = s.monitoring.remote_write
    if remote_write is None:
        return
    if s.deploy.global_stack is None:
        yield _p(
            "monitoring.remote_write",
            "a cell only: the workspace is its global stack's; set deploy.global_stack (docs/regions.md)",
        )
    if s.deploy.layers is Layers.ONE_STACK:
        yield _p(
            "monitoring.remote_write",
            "needs split layers (deploy.layers): the Kubernetes layer reads the workspace from the global stack, "
            "which is applied after the cell's AWS layer and before its Kubernetes layer",
        )


def deploy_charts(s: Settings) -> Iterator[Problem]:
    """Upstream charts must be reachable where `pulumi up` of the Kubernetes layer runs: only the deploy runner's
    image holds the bundle, and a runner in a VPC without NAT reaches no chart repository."""
    deploy = s.deploy
    if deploy.charts is ChartSource.BUNDLED and deploy.layers is Layers.ONE_STACK:
        yield _p(
            "deploy.charts",
            "bundled charts are baked into the deploy runner's image, and only a split deployment has a runner "
            "(deploy.layers: split); in one stack set deploy.charts: upstream",
        )
    if deploy.charts is ChartSource.UPSTREAM and deploy.layers is Layers.SPLIT and s.network.nat is NatMode.NONE:
        yield _p(
            "deploy.charts",
            "upstream charts are fetched from their repositories at preview and up, but the deploy runner runs in a "
            "VPC without NAT (network.nat: none) and can reach none of them; set deploy.charts: bundled (the "
            "charts baked into the runner's image, docs/deploy.md)",
        )


def cluster_system_nodes(s: Settings) -> Iterator[Problem]:
    nodes = s.cluster.system_nodes
    path = "cluster.system_nodes"
    system_types = sorted(t for t, it in catalog.instances().items() if it.gpu is None)
    instance = catalog.instances().get(nodes.instance_type)
    if instance is None:
        yield _p(
            f"{path}.instance_type",
            f"unknown instance type {nodes.instance_type!r}; choose one of {', '.join(system_types)}"
            + close_matches(nodes.instance_type, system_types),
        )
    elif instance.gpu is not None:
        yield _p(
            f"{path}.instance_type", f"{nodes.instance_type} is a GPU type; choose one of {', '.join(system_types)}"
        )
    if nodes.max_nodes < nodes.min_nodes:
        yield _p(f"{path}.max_nodes", f"{nodes.max_nodes} is below min_nodes ({nodes.min_nodes})")
    elif not nodes.min_nodes <= nodes.desired_nodes <= nodes.max_nodes:
        yield _p(f"{path}.desired_nodes", f"{nodes.desired_nodes} is outside {nodes.min_nodes}..{nodes.max_nodes}")


def image_cache_credentials(s: Settings) -> Iterator[Problem]:
    """Without NAT, the vLLM image (Docker Hub) arrives only through the cache, which needs Docker Hub credentials."""
    if s.image_cache_on and s.models and s.cluster.image_cache.docker_hub_secret_arn is None:
        yield _p(
            "cluster.image_cache.docker_hub_secret_arn",
            "required: nodes pull images through the ECR pull-through cache (network.nat is none) and the model "
            "servers' image is on Docker Hub, which ECR caches only with credentials in a Secrets Manager secret "
            "named ecr-pullthroughcache/...",
        )


def model_owners(s: Settings) -> Iterator[Problem]:
    """Every served model belongs to one tenant, which must list it (its storage role reads only what it lists)."""
    for name, model in s.models.items():
        users = sorted(t for t, tenant in s.tenants.items() if name in tenant.models)
        if model.owner is not None:
            if model.owner not in s.tenants:
                yield _p(
                    f"models.{name}.owner", f"no tenant named {model.owner!r}" + close_matches(model.owner, s.tenants)
                )
            elif model.owner not in users:
                yield _p(f"models.{name}.owner", f"tenant {model.owner!r} does not list {name!r} in its models")
        elif len(users) > 1:
            yield _p(
                f"models.{name}.owner",
                f"required: several tenants use {name!r} ({', '.join(users)}); name the one whose namespace, "
                "quota and storage role its servers use",
            )
        elif not users:
            yield _p(f"models.{name}", "no tenant lists this model: add it to a tenant's models (or remove it)")


def tenant_egress(s: Settings) -> Iterator[Problem]:
    """A tenant's egress serves what it runs: model servers need S3; the internet only exists with NAT and only
    for prompts that may leave the VPC; S3 needs the region's ranges in the kit's table."""
    needs_s3 = False
    for name, tenant in s.tenants.items():
        path = f"tenants.{name}.egress"
        owned = sorted(m for m in s.models if s.model_owner(m) == name)
        if tenant.egress is TenantEgress.NONE:
            if owned:
                yield _p(
                    path,
                    f"none, but the tenant owns the servers of {', '.join(owned)}, which copy their weights from "
                    "S3: use s3",
                )
            continue
        needs_s3 = True
        if tenant.egress is TenantEgress.INTERNET:
            if s.network.nat is NatMode.NONE:
                yield _p(path, "internet reaches nothing: network.nat is none (no route out of the VPC); use s3")
            if tenant.data is not DataPolicy.EXTERNAL_ALLOWED:
                yield _p(
                    path,
                    f"internet lets the tenant's pods, its model servers included, send prompts out of the VPC: only "
                    f"for a tenant with data: {DataPolicy.EXTERNAL_ALLOWED.value} (tenants.{name}.data is "
                    f"{tenant.data.value}); use s3",
                )
    if needs_s3 and s.region in known_regions() and not s3_ranges.region_cidrs(s.region):
        source = s3_ranges.s3_ranges().source
        yield _p(
            "region",
            f"the kit's table of S3 address ranges (components/catalog/s3_ranges.yaml, published {source.date}) has "
            f"none for {s.region}, so tenant pods could not reach S3: regenerate it from a fresh ip-ranges.json "
            "(docs/network.md#s3-address-ranges)",
        )


def licenses_accepted(s: Settings) -> Iterator[Problem]:
    """A model is served only under a license the stack accepts (modelyard:licenses)."""
    known = sorted({m.license.name for m in catalog.models().values()})
    for i, name in enumerate(s.licenses):
        if name not in known:
            yield _p(f"licenses[{i}]", f"{name!r} is not a license of the catalog; known: {', '.join(known)}")
    for name, model_settings in s.models.items():
        try:
            model = catalog.resolve_model(model_settings.model)
        except catalog.UnknownModelError:
            continue  # reported by models_catalog
        if model.license.name not in s.licenses:
            restriction = f" ({model.license.restriction})" if model.license.restriction else ""
            yield _p(
                f"models.{name}",
                f"{model.name} is licensed under {model.license.name!r}{restriction}, which modelyard:licenses does "
                "not accept; add it there once your legal review does",
            )


# Key aliases the gateway's auth module gives the admin and the scrape token (files/modelyard_auth.py).
RESERVED_KEY_NAMES = frozenset({"master", "metrics"})


def gateway_refs(s: Settings) -> Iterator[Problem]:
    """The gateway's keys, fallbacks and per-model limits name tenants and models the stack has."""
    gateway = s.gateway
    for name, key in gateway.keys.items():
        if name in RESERVED_KEY_NAMES:
            yield _p(f"gateway.keys.{name}", f"{name!r} is the alias of the proxy's own {name} key: choose another")
        tenant = key.tenant or name
        if tenant not in s.tenants:
            hint = close_matches(tenant, s.tenants)
            if key.tenant is None:
                yield _p(
                    f"gateway.keys.{name}",
                    f"no tenant {tenant!r}{hint}: set gateway.keys.{name}.tenant to the tenant this key calls for",
                )
            else:
                yield _p(f"gateway.keys.{name}.tenant", f"no tenant {tenant!r}{hint}")
    for model, fallback in gateway.fallbacks.items():
        if model not in s.models:
            yield _p(f"gateway.fallbacks.{model}", f"no model {model!r} in models" + close_matches(model, s.models))
        needs_key = fallback.provider is not FallbackProvider.BEDROCK
        if needs_key and not fallback.api_key:
            yield _p(f"gateway.fallbacks.{model}.api_key", f"{fallback.provider.value} needs an API key")
        if not needs_key and fallback.api_key:
            yield _p(f"gateway.fallbacks.{model}.api_key", "bedrock is called with the gateway's role, not a key")
    for model in gateway.model_rpm:
        if model not in s.models:
            yield _p(f"gateway.model_rpm.{model}", f"no model {model!r} in models" + close_matches(model, s.models))


def gateway_fallbacks_reachable(s: Settings) -> Iterator[Problem]:
    """Without NAT the gateway's pods have no route to the internet: a fallback some tenant uses must be
    Bedrock, which answers through its VPC interface endpoint (bedrock-runtime, network_endpoints)."""
    if s.network.nat is not NatMode.NONE:
        return
    for model in s.fallbacks_in_use:
        provider = s.gateway.fallbacks[model].provider
        if provider is not FallbackProvider.BEDROCK:
            yield _p(
                f"gateway.fallbacks.{model}.provider",
                f"with network.nat none the gateway has no route to {provider.value}'s API, so the fallback "
                "could never answer; choose bedrock (reached through a VPC interface endpoint) or set network.nat "
                "(single or per-zone)",
            )


# Names no public DNS resolves (RFC 2606, RFC 6761, RFC 6762, RFC 8375; ICANN's .internal, 2024): ACM cannot
# validate them, and no public hosted zone of yours can hold them.
_NON_PUBLIC_SUFFIXES = (
    "internal",
    "local",
    "localhost",
    "test",
    "example",
    "invalid",
    "home.arpa",
    "example.com",
    "example.net",
    "example.org",
)


def public_dns_name(hostname: str) -> bool:
    return not any(hostname == s or hostname.endswith(f".{s}") for s in _NON_PUBLIC_SUFFIXES)


def gateway_exposure(s: Settings) -> Iterator[Problem]:
    """The endpoint's load balancer: a hostname, a certificate it can have, who may connect (docs/gateway.md)."""
    g = s.gateway
    public = g.exposure is GatewayExposure.PUBLIC
    if g.hostname is None:
        if public:
            yield _p(
                "gateway.hostname",
                "required with exposure: public (the endpoint's DNS name, in public_zone_id's domain); without a "
                "hostname the kit creates no load balancer",
            )
        others = {
            "certificate_arn": g.certificate_arn,
            "public_zone_id": g.public_zone_id,
            "allowed_cidrs": g.allowed_cidrs,
            "allow_public_world": g.allow_public_world,
        }
        for key, value in others.items():
            if value:
                yield _p(
                    f"gateway.{key}",
                    "only with gateway.hostname: without one the kit creates no load balancer (the gateway is an "
                    "in-cluster Service)",
                )
        return
    if g.certificate_arn is None:
        if g.public_zone_id is None:
            yield _p(
                "gateway.certificate_arn",
                "required with gateway.hostname unless public_zone_id names the public hosted zone where the kit "
                "validates a certificate it requests: give an ACM certificate ARN (imported, or from ACM Private CA)",
            )
        elif not public_dns_name(g.hostname):
            yield _p(
                "gateway.certificate_arn",
                f"required: {g.hostname} is not a public DNS name and ACM issues public certificates only for "
                "those; give a certificate from ACM Private CA or an imported one",
            )
    else:
        region = g.certificate_arn.split(":")[3]
        if region != s.region:
            yield _p(
                "gateway.certificate_arn",
                f"the certificate is in {region}: a load balancer in {s.region} needs one from {s.region}",
            )
    if public:
        if g.public_zone_id is None:
            yield _p("gateway.public_zone_id", "required with exposure: public: the endpoint's record goes there")
        if not public_dns_name(g.hostname):
            yield _p("gateway.hostname", f"{g.hostname} is not a public DNS name; exposure public needs one")
        if not g.allowed_cidrs:
            yield _p(
                "gateway.allowed_cidrs",
                "required with exposure: public: the clients' public CIDRs (e.g. 198.51.100.0/24); 0.0.0.0/0 only "
                "with gateway.allow_public_world: true",
            )
    elif g.allow_public_world:
        yield _p("gateway.allow_public_world", "only with gateway.exposure: public")
    for i, cidr in enumerate(g.allowed_cidrs):
        path = f"gateway.allowed_cidrs[{i}]"
        try:
            net = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as exc:
            yield _p(path, f"{cidr!r} is not a network address ({exc})")
            continue
        private = any(net.subnet_of(ipaddress.IPv4Network(r)) for r in _RFC1918)
        if public and net.prefixlen == 0 and not g.allow_public_world:
            yield _p(
                path,
                "0.0.0.0/0 opens the gateway to the whole internet; list your clients' CIDRs instead, or set "
                "gateway.allow_public_world: true if you really mean it",
            )
        elif public and private:
            yield _p(path, f"{net} is a private range: an internet-facing load balancer sees public source addresses")
        elif not public and not private:
            yield _p(
                path,
                f"{net} is not a private range: an internal load balancer is reached only from the VPC and "
                "networks joined to it (set exposure: public for internet clients)",
            )
    wide = _opens_the_world(g.allowed_cidrs)
    if public and wide is not None and not g.allow_public_world and "0.0.0.0/0" not in g.allowed_cidrs:
        yield _p(
            "gateway.allowed_cidrs",
            f"together these CIDRs admit {wide:,} addresses, more than a /8: that opens the gateway to the "
            "internet; list your clients' narrower ranges, or set gateway.allow_public_world: true if you really "
            "mean it",
        )


# Geography prefixes of Bedrock's cross-region inference profiles (us.anthropic..., global.anthropic...): a
# profile routes requests to other regions, which the gateway's role (foundation models of the stack's
# region only) does not allow, and which a stack pinned to its region must not do.
_BEDROCK_PROFILE_PREFIXES = frozenset({"us", "us-gov", "eu", "apac", "jp", "au", "ca", "global"})


def gateway_state(s: Settings) -> Iterator[Problem]:
    """The gateway's database and Redis are ones the cost model prices and that hold together; Bedrock
    fallbacks name foundation models of the stack's region."""
    from components.cost.prices import default_book

    gateway = s.gateway
    priced = set(default_book().prices) | set(s.cost.prices)

    def known(prefix: str) -> str:
        return ", ".join(
            sorted(k[len(prefix) : -len("_hour")] for k in priced if k.startswith(prefix) and k.endswith("_hour"))
        )

    database = gateway.database
    if database is not None and f"rds_{database.instance_class}_hour" not in priced:
        yield _p(
            "gateway.database.instance_class",
            f"{database.instance_class} has no price in the cost model; choose one of {known('rds_db.')} "
            f"(or price it under cost.prices as rds_{database.instance_class}_hour)",
        )
    redis = gateway.redis
    if redis is not None:
        key = f"elasticache_valkey_{redis.node_type}_hour"
        if key not in priced:
            yield _p(
                "gateway.redis.node_type",
                f"{redis.node_type} has no Valkey price in the cost model; choose one of "
                f"{known('elasticache_valkey_')} (or price it under cost.prices as {key})",
            )
        if redis.nodes < 2:
            yield _p(
                "gateway.redis.nodes",
                "1 node cannot fail over (ElastiCache's automatic failover and Multi-AZ need a primary and a "
                "replica): give 2 or more",
            )
        if gateway.replicas < 2:
            yield _p(
                "gateway.redis",
                f"shares rate limits between gateway replicas, and this stack runs {gateway.replicas}: remove "
                "gateway.redis or raise gateway.replicas",
            )
    for model, fallback in gateway.fallbacks.items():
        if fallback.provider is not FallbackProvider.BEDROCK:
            continue
        head, dot, rest = fallback.model.partition(".")
        if head in _BEDROCK_PROFILE_PREFIXES:
            yield _p(
                f"gateway.fallbacks.{model}.model",
                f"{fallback.model!r} is a cross-region inference profile, which sends requests to other regions; "
                f"name a foundation model of {s.region} (such as {rest!r})",
            )
        elif not dot or "/" in fallback.model:
            yield _p(
                f"gateway.fallbacks.{model}.model",
                f"{fallback.model!r} is not a Bedrock foundation model id (<provider>.<model>, such as "
                "anthropic.claude-3-5-sonnet-20240620-v1:0)",
            )


# Tag keys Karpenter and EKS set on what they create: Karpenter's EC2NodeClass refuses them in its tags (its
# CRD's validation, v1), so an extra tag named so would break every GPU pool's NodeClass.
RESERVED_TAG_PREFIXES = ("kubernetes.io/cluster/", "karpenter.sh/", "karpenter.k8s.aws/", "eks:")


def entries_once(s: Settings) -> Iterator[Problem]:
    """Each entry of these lists names the resources made for it (an access entry by its principal, a security group
    rule by its CIDR): an entry given twice would name two resources alike."""
    lists = {
        "cluster.admins": s.cluster.admins,
        "cluster.private_access_cidrs": s.cluster.private_access_cidrs,
        "gateway.allowed_cidrs": s.gateway.allowed_cidrs,
        **{f"tenants.{name}.principals": tenant.principals for name, tenant in s.tenants.items()},
        **{f"tenants.{name}.regions": tenant.regions for name, tenant in s.tenants.items()},
        **{f"storage.replicas.{region}.tenants": r.tenants for region, r in s.storage.replicas.items()},
        **{f"storage.replicas.{region}.models": r.models for region, r in s.storage.replicas.items()},
    }
    for path, entries in lists.items():
        first: dict[str, int] = {}
        for i, entry in enumerate(entries):
            if entry in first:
                yield _p(f"{path}[{i}]", f"repeats {path}[{first[entry]}]: list each once")
            first.setdefault(entry, i)


def tags_extra(s: Settings) -> Iterator[Problem]:
    for key, value in s.tags.extra.items():
        if key in KIT_TAG_KEYS:
            yield _p(f"tags.extra.{key}", "is set by the kit and cannot be overridden")
        reserved = next((prefix for prefix in RESERVED_TAG_PREFIXES if key.startswith(prefix)), None)
        if reserved is not None:
            yield _p(f"tags.extra.{key}", f"keys starting with {reserved} are set by Karpenter and EKS; choose another")
        if len(value) > 256:
            yield _p(f"tags.extra.{key}", "tag values are at most 256 characters")
    room = MAX_TAGS_PER_RESOURCE - len(KIT_TAG_KEYS)
    if len(s.tags.extra) > room:
        yield _p("tags.extra", f"at most {room} extra tags (AWS allows {MAX_TAGS_PER_RESOURCE} per resource)")


# The longest account id S3 bucket names of the kit carry, and S3's limit on a bucket name.
_ACCOUNT_ID_CHARS = 12
_BUCKET_NAME_MAX = 63


def storage_replicas(s: Settings) -> Iterator[Problem]:
    """Each replica is in a known region other than the stack's, its bucket name fits S3's limit, and it lists
    tenants the stack has."""
    for region, replica in s.storage.replicas.items():
        path = f"storage.replicas.{region}"
        if region not in known_regions():
            yield _p(path, f"unknown AWS region {region!r}" + close_matches(region, known_regions()))
        if region == s.region:
            yield _p(path, f"{region} is the stack's own region (the model bucket is there): name another region")
        if replica.cell is not None and replica.cell == s.deployment:
            yield _p(f"{path}.cell", "must name another stack: the cell in the replica's region")
        bucket = f"{s.name}-models-{'0' * _ACCOUNT_ID_CHARS}-{region}"
        if replica.cell is None and len(bucket) > _BUCKET_NAME_MAX:
            yield _p(
                path,
                f"the replica bucket's name <project>-<stack>-models-<account id>-{region} would be {len(bucket)} "
                f"characters; S3 allows {_BUCKET_NAME_MAX}: shorten the stack's name",
            )
        for i, tenant in enumerate(replica.tenants):
            if tenant not in s.tenants:
                yield _p(f"{path}.tenants[{i}]", f"no tenant {tenant!r} in tenants" + close_matches(tenant, s.tenants))
        for i, model in enumerate(replica.models):
            if model not in s.models:
                yield _p(f"{path}.models[{i}]", f"no model {model!r} in models" + close_matches(model, s.models))


def residency(s: Settings) -> Iterator[Problem]:
    """A tenant pinned to regions (tenants.<t>.regions) is served only there, its prefix is replicated only there, and
    its prompts never go to an API that is not bound to the stack's region."""
    for name, tenant in s.tenants.items():
        if not tenant.regions:
            continue
        path = f"tenants.{name}.regions"
        pinned = ", ".join(tenant.regions)
        for i, region in enumerate(tenant.regions):
            if region not in known_regions():
                yield _p(f"{path}[{i}]", f"unknown AWS region {region!r}" + close_matches(region, known_regions()))
        if s.region not in tenant.regions:
            yield _p(
                path,
                f"the tenant is pinned to {pinned}, but this stack serves its models ({', '.join(tenant.models)}) "
                f"and keeps its data in {s.region}: deploy the tenant from a stack in one of its regions, or add "
                f"{s.region} to its regions",
            )
        for region, replica in s.storage.replicas.items():
            if name in replica.tenants and region not in tenant.regions:
                i = replica.tenants.index(name)
                yield _p(
                    f"storage.replicas.{region}.tenants[{i}]",
                    f"would replicate tenants/{name}/ to {region}, but tenant {name} is pinned to {pinned} "
                    f"({path}): remove it from this replica's tenants",
                )
        if tenant.data is not DataPolicy.EXTERNAL_ALLOWED:
            continue  # an in-VPC tenant never falls back
        for model in sorted(m for m in tenant.models if m in s.gateway.fallbacks):
            provider = s.gateway.fallbacks[model].provider
            if provider is not FallbackProvider.BEDROCK:
                yield _p(
                    f"gateway.fallbacks.{model}.provider",
                    f"tenant {name} is pinned to {pinned} ({path}) and may fall back from {model}, but "
                    f"{provider.value}'s API is not bound to a region: the prompts could be processed anywhere. Use "
                    f"bedrock (a foundation model of {s.region}), remove the fallback, or set tenants.{name}.data "
                    f"to {DataPolicy.IN_VPC.value}",
                )


# AWS Budgets and Cost Anomaly Detection take at most 10 e-mail subscribers each (a notification, a subscription).
MAX_SPEND_EMAILS = 10


def cost_budget(s: Settings) -> Iterator[Problem]:
    emails = s.cost.budget.emails
    if len(emails) > MAX_SPEND_EMAILS:
        yield _p("cost.budget.emails", f"at most {MAX_SPEND_EMAILS} addresses (AWS Budgets' and Cost Anomaly "
                 "Detection's limit); subscribe a list, or more subscribers to the spend topic")  # fmt: skip
    if len(set(emails)) != len(emails):
        yield _p("cost.budget.emails", "lists an address twice")


def traffic_refs(s: Settings) -> Iterator[Problem]:
    t = s.traffic
    if t.trace is None:
        for name in ("model", "tenant"):
            if getattr(t, name) is not None:
                yield _p(f"traffic.{name}", "set without traffic.trace")
        return
    if t.trace not in SHIPPED_TRAFFIC and not t.trace.endswith((".csv", ".jsonl")):
        yield _p("traffic.trace", f"{t.trace!r}: one of {', '.join(SHIPPED_TRAFFIC)}, or a .csv or .jsonl file's path")
    if ".." in t.trace.split("/"):
        yield _p("traffic.trace", f"{t.trace!r}: a path inside the project folder")
    if t.model is not None and t.model not in s.models:
        yield _p("traffic.model", f"{t.model!r} is not a key of models{close_matches(t.model, s.models)}")
    if t.tenant is not None and t.tenant not in s.tenants:
        yield _p("traffic.tenant", f"{t.tenant!r} is not a key of tenants{close_matches(t.tenant, s.tenants)}")
    if (
        t.model is not None
        and t.tenant is not None
        and t.tenant in s.tenants
        and t.model not in s.tenants[t.tenant].models
    ):
        yield _p("traffic.tenant", f"tenant {t.tenant!r} may not call {t.model!r} (tenants.{t.tenant}.models)")


def quality_refs(s: Settings) -> Iterator[Problem]:
    """The quality CronJob's key, models and eval sets exist; the key's tenant may call every name the runner calls
    (a model's name, or with a canary its `<model>@<revision>` names, as the gateway exposes them to the tenant); each
    set is a valid eval set (read once here, so a broken set never reaches a ConfigMap)."""
    q = s.quality
    if q is None:
        return
    tenant = None
    if q.key not in s.gateway.keys:
        yield _p("quality.key", f"no key {q.key!r} in gateway.keys{close_matches(q.key, s.gateway.keys)}")
    else:
        tenant = s.gateway.key_tenants()[q.key]
    if not q.models:
        yield _p("quality.models", "name at least one model to grade (a key of models)")
    callable_names: set[str] = set()
    if tenant is not None and tenant in s.tenants:
        # The names the gateway lets the key's tenant call, by the gateway's own rule (tenants file).
        canaries = {m: (spec.revision, spec.canary.revision) for m, spec in s.models.items() if spec.canary}
        callable_names = set(
            tenant_model_names(s.tenants[tenant].models, fallback_models=s.hybrid_models(tenant), canaries=canaries)
        )
    for model, spec in q.models.items():
        if model not in s.models:
            yield _p(f"quality.models.{model}", f"no model {model!r} in models{close_matches(model, s.models)}")
        elif tenant is not None and tenant in s.tenants:
            served = s.models[model]
            # With a canary the runner calls each revision alone (<model>@<revision>), not the model's name.
            names = [
                name
                for name, _, _ in quality_targets(
                    model, served.revision, served.canary.revision if served.canary else None
                )
            ]
            missing = [name for name in names if name not in callable_names]
            if missing:
                yield _p(
                    f"quality.models.{model}",
                    f"the key {q.key!r} calls for tenant {tenant!r}, which may not call "
                    f"{', '.join(repr(n) for n in missing)} (tenants.{tenant}.models)",
                )
        if spec.set not in shipped_sets():
            yield _p(
                f"quality.models.{model}.set",
                f"no eval set {spec.set!r} in components/tools/evalsets/ ({', '.join(shipped_sets())})"
                + close_matches(spec.set, shipped_sets()),
            )
            continue
        try:
            load_set(set_path(spec.set))
        except InputError as exc:
            for problem in exc.problems:
                yield _p(f"quality.models.{model}.set", f"{problem.path}: {problem.message}")


RULES: tuple[Rule, ...] = (
    stack_name,
    region_known,
    network_cidr,
    network_zones,
    network_endpoints,
    pools_capacity,
    pools_catalog,
    models_pools,
    models_canary,
    models_catalog,
    tenants_refs,
    tenant_limits,
    dedicated_pools,
    cluster_endpoint,
    cluster_system_nodes,
    image_cache_credentials,
    model_owners,
    tenant_egress,
    serving_names,
    licenses_accepted,
    gateway_refs,
    gateway_fallbacks_reachable,
    gateway_state,
    storage_fsx,
    storage_replicas,
    residency,
    gateway_exposure,
    entries_once,
    tags_extra,
    deploy_layers,
    deploy_cell,
    monitoring_remote_write,
    deploy_charts,
    cost_budget,
    traffic_refs,
    quality_refs,
)


def check(settings: Settings) -> list[Problem]:
    return [problem for rule in RULES for problem in rule(settings)]
