"""What the Kubernetes API server and its admission plug-ins would refuse, checked on the plan's objects.

`pulumi up` learns these only when the cluster refuses an object, often long after the plan was approved: a
ResourceQuota refuses the last pods of a scale-up, a LimitRange refuses a container whose request exceeds the
default limit it is given, Pod Security refuses a pod of a `restricted` namespace, the API refuses a second
object of one kind, namespace and name. The plan checks the objects it can see (every `kubernetes:*` resource
and every object of the kit's own charts; upstream releases stay opaque) and refuses the stack with exit 2,
naming the setting to change where one exists.

The rules follow the Kubernetes documentation of the cluster versions the kit supports:
  - ResourceQuota ("Resource Quotas"): a pod's request is the larger of the sum of its containers' and the largest
    init container's; a quota on `limits.memory` or `requests.cpu` needs every container to state it (a
    LimitRange default counts); `services.loadbalancers` / `services.nodeports` count Services by type.
  - LimitRange ("Limit Ranges"): a container without a request gets `defaultRequest`, without a limit `default`;
    a request above the limit (its own or the default) is refused.
  - Pod Security Standards, `restricted` profile ("Pod Security Standards", v1.33).
Workloads are counted at their most: a Deployment at the largest of its replicas and the maxReplicaCount of a
KEDA ScaledObject or maxReplicas of an HPA that scales it; a LeaderWorkerSet at replicas x size.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from components.contract import TENANT_NAMESPACE_PREFIX, UNKNOWN
from components.errors import Problem
from components.policy.view import mapping

_UNITS = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}
# A quota on these makes every container state them ("Resource Quotas": compute resources); any other resource a
# container does not ask for counts as zero.
_MUST_STATE = ("cpu", "memory", "ephemeral-storage")
_QUANTITY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")


def _list(value: Any) -> list[Any]:
    """A list, or an empty one for what is not."""
    return value if isinstance(value, list) else []


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a list (containers, volumes, ports), skipping what is not one (an unknown)."""
    return [v for v in _list(value) if isinstance(v, Mapping)]


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "16Gi", 2) as a number; None for what cannot be read (an unknown)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.fullmatch(str(value))
    return Decimal(match.group(1)) * _UNITS[match.group(2) or ""] if match else None


def _show(resource: str, amount: Decimal) -> str:
    if resource.endswith("memory") and amount >= 2**30:
        return f"{(amount / 2**30).quantize(Decimal('0.1'))}Gi"
    return f"{amount.normalize():f}"


@dataclass(frozen=True)
class Workload:
    source: str
    kind: str
    namespace: str
    name: str
    templates: tuple[tuple[Mapping[str, Any], int], ...]
    """(pod spec, pods of it at the most: replicas or the autoscaler's maximum); a LeaderWorkerSet has a leader's
    (one per group) and a worker's (size - 1 per group)"""

    @property
    def pods(self) -> int:
        return sum(count for _, count in self.templates)


def _pod_templates(obj: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], int]]:
    """(pod spec, pods per replica) of a workload object; [] for what runs no pods."""
    kind, spec = obj.get("kind"), mapping(obj.get("spec"))
    if kind == "Pod":
        return [(spec, 1)]
    if kind in ("Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job"):
        return [(mapping(mapping(spec.get("template")).get("spec")), 1)]
    if kind == "CronJob":
        job = mapping(mapping(spec.get("jobTemplate")).get("spec"))
        return [(mapping(mapping(job.get("template")).get("spec")), 1)]
    if kind == "LeaderWorkerSet":
        group = mapping(spec.get("leaderWorkerTemplate"))
        size = group.get("size", 1) if isinstance(group.get("size", 1), int) else 1
        worker = mapping(mapping(group.get("workerTemplate")).get("spec"))
        leader = mapping(mapping(group.get("leaderTemplate")).get("spec")) or worker
        return [(leader, 1), (worker, size - 1)] if size > 1 else [(leader, 1)]
    return []


def workloads(manifests: Sequence[Mapping[str, Any]]) -> list[Workload]:
    scaled: dict[tuple[str, str, str], int] = {}
    for m in manifests:
        obj = m["object"]
        spec = mapping(obj.get("spec"))
        target = mapping(spec.get("scaleTargetRef"))
        most = spec.get("maxReplicaCount") if obj.get("kind") == "ScaledObject" else spec.get("maxReplicas")
        if obj.get("kind") in ("ScaledObject", "HorizontalPodAutoscaler") and isinstance(most, int):
            key = (
                mapping(obj.get("metadata")).get("namespace", ""),
                target.get("kind", "Deployment"),
                target.get("name", ""),
            )
            scaled[key] = max(scaled.get(key, 0), most)
    out = []
    for m in manifests:
        obj = m["object"]
        templates = _pod_templates(obj)
        if not templates or obj.get("kind") == "DaemonSet":
            continue  # a DaemonSet's pods scale with nodes, not with a count the plan knows
        meta = mapping(obj.get("metadata"))
        namespace, name = meta.get("namespace", "default"), meta.get("name", "")
        replicas = mapping(obj.get("spec")).get("replicas", 1)
        replicas = replicas if isinstance(replicas, int) else 1
        replicas = max(replicas, scaled.get((namespace, obj["kind"], name), 0))
        if obj.get("kind") in ("Pod", "Job", "CronJob"):
            replicas = 1
        counted = tuple((pod, per_replica * replicas) for pod, per_replica in templates)
        out.append(Workload(m["source"], obj["kind"], namespace, name, counted))
    return out


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*_objects(pod.get("containers")), *_objects(pod.get("initContainers"))]


def _effective(pod: Mapping[str, Any], kind: str, resource: str, defaults: Mapping[str, Any]) -> Decimal | None:
    """A pod's request or limit of one resource as quota counts it; None where a container states none and no
    LimitRange default gives one (quota then refuses the pod if it constrains that resource)."""

    def one(container: Mapping[str, Any]) -> Decimal | None:
        resources = mapping(container.get("resources"))
        stated = mapping(resources.get(kind)).get(resource)
        if stated is None and kind == "requests":
            stated = mapping(resources.get("limits")).get(resource)  # a limit alone is also the request
        if stated is None:
            stated = defaults.get(resource)
        if stated is None and resource not in _MUST_STATE:
            return Decimal(0)  # an extended resource (GPUs) not asked for is none
        return quantity(stated) if stated is not None else None

    main = [one(c) for c in _objects(pod.get("containers"))]
    init = [one(c) for c in _objects(pod.get("initContainers"))]
    if any(v is None for v in (*main, *init)):
        return None
    return max([sum(main, Decimal(0)), *init])  # type: ignore[type-var]


def _limit_defaults(manifests: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """namespace -> {"requests": defaultRequest, "limits": default} of its Container LimitRanges."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in manifests:
        obj = m["object"]
        if obj.get("kind") != "LimitRange":
            continue
        namespace = mapping(obj.get("metadata")).get("namespace", "default")
        for item in _objects(mapping(obj.get("spec")).get("limits")):
            if item.get("type") == "Container":
                slot = out.setdefault(namespace, {"requests": {}, "limits": {}})
                slot["requests"].update(mapping(item.get("defaultRequest")))
                slot["limits"].update(mapping(item.get("default")))
    return out


def _tenant_path(namespace: str, resource: str) -> str:
    if namespace.startswith(TENANT_NAMESPACE_PREFIX):
        tenant = namespace[len(TENANT_NAMESPACE_PREFIX) :]
        return (
            f"modelyard:tenants.{tenant}.gpu_quota" if "nvidia.com/gpu" in resource else f"modelyard:tenants.{tenant}"
        )
    return f"namespace {namespace}"


def quota_problems(manifests: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    defaults = _limit_defaults(manifests)
    loads = workloads(manifests)
    for m in manifests:
        obj = m["object"]
        if obj.get("kind") != "ResourceQuota":
            continue
        namespace = mapping(obj.get("metadata")).get("namespace", "default")
        hard = mapping(mapping(obj.get("spec")).get("hard"))
        here = [w for w in loads if w.namespace == namespace]
        ns_defaults = defaults.get(namespace, {"requests": {}, "limits": {}})
        for key, value in sorted(hard.items()):
            ceiling = quantity(value)
            if ceiling is None:
                continue
            if key in ("services.loadbalancers", "services.nodeports"):
                kinds = ("LoadBalancer",) if key == "services.loadbalancers" else ("NodePort", "LoadBalancer")
                services = [
                    mapping(s["object"].get("metadata")).get("name", "")
                    for s in manifests
                    if s["object"].get("kind") == "Service"
                    and mapping(s["object"].get("metadata")).get("namespace") == namespace
                    and mapping(s["object"].get("spec")).get("type") in kinds
                ]
                if len(services) > ceiling:
                    yield Problem(
                        path=_tenant_path(namespace, key),
                        message=f"the quota of namespace {namespace} allows {value} {key}, and the plan creates "
                        f"Services {', '.join(sorted(services))}: the API server would refuse them",
                    )
                continue
            if key == "pods":
                need = Decimal(sum(w.pods for w in here))
                parts = [f"{w.kind} {w.name} {w.pods}" for w in here]
            else:
                kind, _, resource = (
                    key.partition(".") if key.startswith(("requests.", "limits.")) else ("requests", "", key)
                )
                if not resource:
                    kind, resource = "requests", key
                need = Decimal(0)
                parts = []
                for w in here:
                    mine = Decimal(0)
                    for pod, count in w.templates:
                        each = _effective(pod, kind, resource, ns_defaults[kind])
                        if each is None:
                            yield Problem(
                                path=_tenant_path(namespace, resource),
                                message=f"{w.kind} {namespace}/{w.name} states no {kind} of {resource}, which the "
                                f"quota of namespace {namespace} constrains: the API server would refuse its pods",
                            )
                            continue
                        mine += each * count
                    need += mine
                    if mine:
                        parts.append(f"{w.kind} {w.name} {_show(key, mine)}")
            if need > ceiling:
                yield Problem(
                    path=_tenant_path(namespace, key),
                    message=f"the quota of namespace {namespace} allows {key} {value}; its workloads at their maximum "
                    f"replicas need {_show(key, need)} ({', '.join(parts)}): the last pods would be refused",
                )


def limit_range_problems(manifests: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    """A request above the container's limit, its own or the one a LimitRange default gives it."""
    defaults = _limit_defaults(manifests)
    for w in workloads(manifests):
        ns_defaults = defaults.get(w.namespace, {"requests": {}, "limits": {}})
        for pod, _ in w.templates:
            for container in _containers(pod):
                resources = mapping(container.get("resources"))
                requests = mapping(resources.get("requests"))
                limits = {**ns_defaults["limits"], **mapping(resources.get("limits"))}
                for resource, asked in sorted(requests.items()):
                    request, limit = quantity(asked), quantity(limits.get(resource))
                    if request is not None and limit is not None and request > limit:
                        origin = "its limit" if resource in mapping(resources.get("limits")) else "the default limit"
                        yield Problem(
                            path=f"{w.kind} {w.namespace}/{w.name}",
                            message=f"container {container.get('name')} requests {asked} of {resource}, above "
                            f"{origin} {limits[resource]}: the API server would refuse the pod",
                        )


_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_problems(pod: Mapping[str, Any]) -> list[str]:
    """What Pod Security `restricted` (v1.33) refuses in a pod spec, one line each."""
    out = []
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag) is True:
            out.append(f"{flag} is true")
    for volume in _objects(pod.get("volumes")):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            out.append(f"volume {volume.get('name')} is of type {', '.join(sorted(kinds - _RESTRICTED_VOLUMES))}")
    pod_security = mapping(pod.get("securityContext"))
    for container in [*_containers(pod), *_objects(pod.get("ephemeralContainers"))]:
        name = container.get("name")
        security = mapping(container.get("securityContext"))
        if security.get("privileged") is True:
            out.append(f"container {name} is privileged")
        if security.get("allowPrivilegeEscalation") is not False:
            out.append(f"container {name} does not set allowPrivilegeEscalation: false")
        capabilities = mapping(security.get("capabilities"))
        if "ALL" not in _list(capabilities.get("drop")):
            out.append(f"container {name} does not drop ALL capabilities")
        added = set(_list(capabilities.get("add"))) - {"NET_BIND_SERVICE"}
        if added:
            out.append(f"container {name} adds capabilities {', '.join(sorted(added))}")
        if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
            out.append(f"container {name} does not set runAsNonRoot: true")
        if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
            out.append(f"container {name} runs as user 0")
        seccomp = (security.get("seccompProfile") or mapping(pod_security.get("seccompProfile"))).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"container {name} has no seccompProfile RuntimeDefault or Localhost")
        for port in _objects(container.get("ports")):
            if port.get("hostPort"):
                out.append(f"container {name} uses hostPort {port['hostPort']}")
    return out


def pod_security_problems(manifests: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    enforced = {
        mapping(m["object"].get("metadata")).get("name", "")
        for m in manifests
        if m["object"].get("kind") == "Namespace"
        and mapping(mapping(m["object"].get("metadata")).get("labels")).get("pod-security.kubernetes.io/enforce")
        == "restricted"
    }
    for w in workloads(manifests):
        if w.namespace not in enforced:
            continue
        found = sorted({line for pod, _ in w.templates for line in restricted_problems(pod)})
        if found:
            yield Problem(
                path=f"{w.kind} {w.namespace}/{w.name}",
                message=f"Pod Security restricted, enforced in {w.namespace}, would refuse its pods: "
                + "; ".join(found),
            )


def duplicate_problems(manifests: Sequence[Mapping[str, Any]]) -> Iterator[Problem]:
    """Two objects of one kind (and API group), namespace and name: the second would overwrite the first."""

    def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        meta = mapping(obj.get("metadata"))
        return group, str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name"))

    counts = Counter(identity(m["object"]) for m in manifests)
    for (group, kind, namespace, name), count in sorted(counts.items()):
        if count > 1 and UNKNOWN not in (namespace, name):
            sources = sorted(
                {m["source"] for m in manifests if identity(m["object"]) == (group, kind, namespace, name)}
            )
            where = f"{namespace}/{name}" if namespace else name
            yield Problem(
                path=f"{kind} {where}",
                message=f"created {count} times (by {', '.join(sources)}): two settings keys give one name, e.g. "
                "models whose names differ only by the chart's suffix",
            )


def admission_problems(manifests: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Every object the cluster would refuse, each named by the setting or object at fault."""
    return [
        *duplicate_problems(manifests),
        *quota_problems(manifests),
        *limit_range_problems(manifests),
        *pod_security_problems(manifests),
    ]
