"""How the policy rules read a plan (JSON v1): resources by type, Kubernetes objects by kind, tenant
namespaces, the pod templates of workloads. Shared by every rule module of components.policy.

A value printed as UNKNOWN ("(known after apply)") is undecided: readers here hand it back as it is (or as
{} where a mapping is asked for), and the rules decide nothing on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.contract import TENANT_LABEL, TENANT_NAMESPACE_PREFIX, UNKNOWN

Plan = Mapping[str, Any]


@dataclass(frozen=True, order=True)
class Violation:
    rule: str
    resource: str
    """the plan key of the resource (or the manifest's source), the pack's URN"""
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.resource}: {self.message}"


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    check: Callable[[Plan], list[Violation]]


def is_unknown(value: Any) -> bool:
    return value == UNKNOWN


def mapping(value: Any) -> Mapping[str, Any]:
    """A mapping, or {} for anything else (missing, null, unknown: callers check unknowns first)."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """A list from a value that may be one item, a list, or missing (policy documents write both)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def dig(value: Any, *keys: str) -> Any:
    """value[k1][k2]...: UNKNOWN as soon as a step is unknown, None where a step is missing."""
    for key in keys:
        if is_unknown(value):
            return UNKNOWN
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def resources_of(plan: Plan, *type_tokens: str) -> list[Mapping[str, Any]]:
    return [r for r in plan.get("resources", ()) if r.get("type") in type_tokens]


def inputs_of(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return mapping(resource.get("inputs"))


def manifests_of(plan: Plan, *kinds: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(source, object) of every Kubernetes object of these kinds (every object without kinds)."""
    for m in plan.get("manifests", ()):
        obj = mapping(m.get("object"))
        if not kinds or obj.get("kind") in kinds:
            yield str(m.get("source")), obj


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(dig(obj, "metadata", "namespace") or "default")


def tenant_namespaces(plan: Plan) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Tenant namespaces of the plan (named tenant-<t> or labelled with the tenant): name -> (source, metadata)."""
    found = {}
    for source, obj in manifests_of(plan, "Namespace"):
        meta = mapping(obj.get("metadata"))
        name = meta.get("name")
        if isinstance(name, str) and (
            name.startswith(TENANT_NAMESPACE_PREFIX) or TENANT_LABEL in mapping(meta.get("labels"))
        ):
            found[name] = (source, meta)
    return found


def is_tenant_namespace(plan: Plan, namespace: Any) -> bool:
    """A tenant's namespace: one the plan creates for a tenant, or any named tenant-<t> (an object may land in
    a tenant namespace created by another stack: the Kubernetes layer of a split deployment)."""
    return isinstance(namespace, str) and (
        namespace.startswith(TENANT_NAMESPACE_PREFIX) or namespace in tenant_namespaces(plan)
    )


# Kinds whose objects hold pod templates. LeaderWorkerSet (kubernetes-sigs/lws): a multi-node model's group
# of pods, a leader template and a worker template (charts/llm-serving/templates/leaderworkerset.yaml).
WORKLOADS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "LeaderWorkerSet")


def pod_specs(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The pod specs of a workload; one that is unknown or missing is left out (nothing is decided on it)."""
    kind = obj.get("kind")
    if kind == "Pod":
        found = [obj.get("spec")]
    elif kind == "CronJob":
        found = [dig(obj, "spec", "jobTemplate", "spec", "template", "spec")]
    elif kind == "LeaderWorkerSet":
        template = dig(obj, "spec", "leaderWorkerTemplate")
        found = [dig(template, "leaderTemplate", "spec"), dig(template, "workerTemplate", "spec")]
    else:
        found = [dig(obj, "spec", "template", "spec")]
    return [spec for spec in found if isinstance(spec, Mapping)]


def containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every container of a pod spec: init, regular and ephemeral."""
    found = [*as_list(pod.get("initContainers")), *as_list(pod.get("containers"))]
    found += as_list(pod.get("ephemeralContainers"))
    return [mapping(c) for c in found]
