"""Policy rules over the pods the plan shows: host access, capabilities, users, privilege escalation, host and
node ports, service account tokens in tenant pods, image pinning.

Pods are read from every workload's template (view.WORKLOADS: Deployments, StatefulSets, DaemonSets, Jobs,
CronJobs, a LeaderWorkerSet's leader and worker templates). The kit's own objects are in the plan; those of
upstream Helm releases are not (docs/security.md, "Objects the plan cannot see").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.policy.view import (
    WORKLOADS,
    Plan,
    Violation,
    as_list,
    containers,
    dig,
    is_tenant_namespace,
    is_unknown,
    manifests_of,
    mapping,
    namespace_of,
    pod_specs,
)

# System DaemonSets that need the node, exempt by namespace/name from the host-level rules (no-host-access,
# capabilities-dropped, pod-non-root, no-privilege-escalation, no-host-port). They are cluster infrastructure,
# run in namespaces only cluster admins can write to, and cannot work without it. An object of that name in a
# tenant namespace is never exempt.
HOST_ACCESS_EXEMPT: Mapping[str, str] = {
    "kube-system/nvidia-device-plugin": "registers GPUs with the kubelet through its device-plugin socket (hostPath)",
    "kube-system/nvidia-device-plugin-daemonset": "the same plugin under the chart's default name",
    "kube-system/aws-efa-k8s-device-plugin": "registers EFA devices through the kubelet's device-plugin socket",
    "kube-system/aws-efa-k8s-device-plugin-daemonset": "the same plugin under the chart's default name",
    "kube-system/ebs-csi-node": "mounts volumes on the node: privileged, hostPath to the kubelet",
    "kube-system/aws-node": "the VPC CNI configures the node's network: privileged, hostNetwork, NET_ADMIN, root",
    "kube-system/kube-proxy": "programs the node's iptables: privileged, hostNetwork",
    "kube-system/eks-pod-identity-agent": "serves 169.254.170.23 on the node: hostNetwork, host port 80",
    "monitoring/dcgm-exporter": "reads GPU telemetry from the driver: hostPath and elevated capabilities",
    "monitoring/node-exporter": "reads the node's /proc and /sys: hostNetwork, hostPID, hostPath, host port",
    "monitoring/kube-prometheus-stack-prometheus-node-exporter": "node-exporter under kube-prometheus-stack's name",
}


@dataclass(frozen=True)
class _Workload:
    source: str
    kind: str
    ident: str
    """namespace/name"""
    tenant: bool
    """in a tenant's namespace"""
    exempt: bool
    """a system DaemonSet of HOST_ACCESS_EXEMPT (never in a tenant namespace)"""
    pods: list[Mapping[str, Any]]


def _workloads(plan: Plan) -> Iterator[_Workload]:
    for source, obj in manifests_of(plan, *WORKLOADS):
        namespace = namespace_of(obj)
        ident = f"{namespace}/{dig(obj, 'metadata', 'name')}"
        tenant = is_tenant_namespace(plan, namespace)
        exempt = obj.get("kind") == "DaemonSet" and ident in HOST_ACCESS_EXEMPT and not tenant
        yield _Workload(source, str(obj.get("kind")), ident, tenant, exempt, pod_specs(obj))


def _report(rule: str, workload: _Workload, problems: list[str]) -> list[Violation]:
    if not problems:
        return []
    return [Violation(rule, workload.source, f"{workload.kind} {workload.ident}: {'; '.join(problems)}")]


def _per_container(
    plan: Plan, rule: str, check: Callable[[_Workload, Mapping[str, Any], Mapping[str, Any]], Iterable[str]]
) -> list[Violation]:
    """`rule`'s violations: what `check(workload, pod, container)` finds in each container of every workload but the
    exempt system DaemonSets, one violation per workload."""
    out = []
    for w in _workloads(plan):
        if not w.exempt:
            out += _report(
                rule, w, [problem for pod in w.pods for c in containers(pod) for problem in check(w, pod, c)]
            )
    return out


def no_host_access(plan: Plan) -> list[Violation]:
    """No privileged containers, hostPath volumes, host network, PID or IPC; system DaemonSets exempt by name
    (HOST_ACCESS_EXEMPT); objects in tenant namespaces never are."""
    out = []
    for w in _workloads(plan):
        if w.exempt:
            continue
        problems = []
        for pod in w.pods:
            problems += [f"{flag}: true" for flag in ("hostNetwork", "hostPID", "hostIPC") if pod.get(flag) is True]
            problems += [
                f"hostPath volume {mapping(v).get('name')}"
                for v in as_list(pod.get("volumes"))
                if "hostPath" in mapping(v)
            ]
            problems += [
                f"privileged container {c.get('name')}"
                for c in containers(pod)
                if dig(c, "securityContext", "privileged") is True
            ]
        out += _report("no-host-access", w, problems)
    return out


def capabilities_dropped(plan: Plan) -> list[Violation]:
    """No container adds a Linux capability; in a tenant namespace every container drops ALL (Pod Security
    restricted asks the same: the rule says so before admission does)."""

    def check(w: _Workload, pod: Mapping[str, Any], c: Mapping[str, Any]) -> Iterator[str]:
        caps = dig(c, "securityContext", "capabilities")
        if is_unknown(caps):
            return
        added = mapping(caps).get("add")
        if not is_unknown(added) and added:
            yield f"container {c.get('name')} adds capabilities {', '.join(map(str, added))}"
        dropped = mapping(caps).get("drop")
        if w.tenant and not is_unknown(dropped) and "ALL" not in as_list(dropped):
            yield f"container {c.get('name')} does not drop ALL capabilities"

    return _per_container(plan, "capabilities-dropped", check)


def _effective(pod: Mapping[str, Any], container: Mapping[str, Any], field: str) -> Any:
    """A security context field as it applies to a container: its own, else the pod's."""
    own = container.get("securityContext")
    if is_unknown(own):
        return own
    if field in mapping(own):
        return mapping(own)[field]
    return dig(pod, "securityContext", field)


def pod_non_root(plan: Plan) -> list[Violation]:
    """No container runs as root: runAsUser 0, or runAsNonRoot false without a non-root runAsUser; in a tenant
    namespace runAsNonRoot must be true (Pod Security restricted)."""

    def check(w: _Workload, pod: Mapping[str, Any], c: Mapping[str, Any]) -> Iterator[str]:
        user = _effective(pod, c, "runAsUser")
        non_root = _effective(pod, c, "runAsNonRoot")
        if is_unknown(user) or is_unknown(non_root):
            return
        name = c.get("name")
        if user == 0:
            yield f"container {name} runs as root (runAsUser 0)"
        elif non_root is False and not (isinstance(user, int) and user > 0):
            yield f"container {name} may run as root (runAsNonRoot: false and no runAsUser)"
        elif w.tenant and non_root is not True:
            yield f"container {name} does not set runAsNonRoot: true"

    return _per_container(plan, "pod-non-root", check)


def no_privilege_escalation(plan: Plan) -> list[Violation]:
    """No container sets allowPrivilegeEscalation: true; in a tenant namespace each sets it false (unset means
    true in Kubernetes)."""

    def check(w: _Workload, pod: Mapping[str, Any], c: Mapping[str, Any]) -> Iterator[str]:
        escalation = dig(c, "securityContext", "allowPrivilegeEscalation")
        if escalation is True:
            yield f"container {c.get('name')} sets allowPrivilegeEscalation: true"
        elif w.tenant and escalation is not False and not is_unknown(escalation):
            yield f"container {c.get('name')} leaves allowPrivilegeEscalation unset (true)"

    return _per_container(plan, "no-privilege-escalation", check)


def no_host_port(plan: Plan) -> list[Violation]:
    """No container port bound on the node (hostPort): it bypasses Services and NetworkPolicies' pod selection."""

    def check(w: _Workload, pod: Mapping[str, Any], c: Mapping[str, Any]) -> Iterator[str]:
        for port in as_list(c.get("ports")):
            bound = mapping(port).get("hostPort")
            if not is_unknown(bound) and bound:
                yield f"container {c.get('name')} binds host port {bound}"

    return _per_container(plan, "no-host-port", check)


def no_node_port(plan: Plan) -> list[Violation]:
    """No Service of type NodePort and no Service port pinned to a node port: every node would listen for it.
    (Load balancers reach the gateway through a TargetGroupBinding to pod IPs, docs/gateway.md.)"""
    out = []
    for source, obj in manifests_of(plan, "Service"):
        spec = obj.get("spec")
        if is_unknown(spec):
            continue
        ident = f"{namespace_of(obj)}/{dig(obj, 'metadata', 'name')}"
        if mapping(spec).get("type") == "NodePort":
            out.append(Violation("no-node-port", source, f"Service {ident} is of type NodePort"))
            continue
        for port in as_list(mapping(spec).get("ports")):
            node_port = mapping(port).get("nodePort")
            if not is_unknown(node_port) and node_port:
                out.append(Violation("no-node-port", source, f"Service {ident} pins node port {node_port}"))
    return out


def tenant_token_not_automounted(plan: Plan) -> list[Violation]:
    """A tenant pod gets no Kubernetes API token: the pod sets automountServiceAccountToken false, or leaves it
    unset and runs as a service account of the plan that sets it false (Pod Identity mounts its own token)."""
    accounts = {
        (namespace_of(obj), dig(obj, "metadata", "name")): obj.get("automountServiceAccountToken")
        for _, obj in manifests_of(plan, "ServiceAccount")
    }
    out = []
    for w in _workloads(plan):
        if not w.tenant:
            continue
        namespace = w.ident.split("/", 1)[0]
        problems = []
        for pod in w.pods:
            mount = pod.get("automountServiceAccountToken")
            if is_unknown(mount) or mount is False:
                continue
            if mount is True:
                problems.append("the pod sets automountServiceAccountToken: true")
                continue
            account = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
            by_account = accounts.get((namespace, account))
            if is_unknown(account) or is_unknown(by_account) or by_account is False:
                continue
            problems.append(
                f"service account {account} mounts its token (neither the pod nor the account sets "
                "automountServiceAccountToken: false)"
            )
        out += _report("tenant-token-not-automounted", w, problems)
    return out


_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def images_pinned(plan: Plan) -> list[Violation]:
    """Every image the plan can see is pinned by digest (a tag can be moved to other bytes)."""
    out = []
    for w in _workloads(plan):
        for pod in w.pods:
            for c in containers(pod):
                image = c.get("image")
                if isinstance(image, str) and not is_unknown(image) and not _DIGEST.search(image):
                    out.append(
                        Violation(
                            "images-pinned",
                            w.source,
                            f"{w.kind} {w.ident}: container {c.get('name')}: image {image} is not pinned by digest",
                        )
                    )
    return out
