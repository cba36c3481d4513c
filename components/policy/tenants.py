"""Policy rules over tenant isolation: namespaces (default deny, Pod Security, quota, defaults), NetworkPolicy
ingress and egress, the admission guard of dedicated pools, and who may administer a tenant's namespace
(Kubernetes RBAC, EKS access policies). What they hold: docs/security.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from components.contract import CLUSTER_ADMIN_POLICY, GATEWAY_NAMESPACE, MONITORING_NAMESPACE, TENANT_LABEL
from components.policy.view import (
    Plan,
    Violation,
    as_list,
    dig,
    inputs_of,
    is_tenant_namespace,
    is_unknown,
    manifests_of,
    mapping,
    namespace_of,
    resources_of,
    tenant_namespaces,
)


def _is_default_deny(spec: Mapping[str, Any]) -> bool:
    return (
        spec.get("podSelector") in ({}, {"matchLabels": {}}, None)
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or ())
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def tenant_namespaces_isolated(plan: Plan) -> list[Violation]:
    """Every tenant namespace has a default-deny NetworkPolicy (ingress and egress) and a ResourceQuota."""
    rule = "tenant-namespace-isolated"
    namespaces = tenant_namespaces(plan)
    # A policy whose spec is unknown counts as the default deny: undecided, not a violation.
    deny = {
        dig(obj, "metadata", "namespace")
        for _, obj in manifests_of(plan, "NetworkPolicy")
        if is_unknown(obj.get("spec")) or _is_default_deny(mapping(obj.get("spec")))
    }
    quota = {dig(obj, "metadata", "namespace") for _, obj in manifests_of(plan, "ResourceQuota")}
    out = []
    for name, (source, _) in sorted(namespaces.items()):
        if name not in deny:
            out.append(
                Violation(rule, source, f"namespace {name} has no default-deny NetworkPolicy (ingress and egress)")
            )
        if name not in quota:
            out.append(Violation(rule, source, f"namespace {name} has no ResourceQuota"))
    return out


# Namespaces whose pods may reach a tenant's pods: the gateway (LiteLLM) and Prometheus (components.k8s.isolation).
TENANT_INGRESS_NAMESPACES = (GATEWAY_NAMESPACE, MONITORING_NAMESPACE)


def _peer_problem(peer: Any, own: str) -> str | None:
    """Why an ingress peer of a tenant namespace's NetworkPolicy admits too much, or None."""
    if is_unknown(peer):
        return None
    peer = mapping(peer)
    if "ipBlock" in peer:
        return "an ipBlock (addresses outside the cluster or any pod's)"
    if "namespaceSelector" not in peer:
        return None  # pods of the policy's own namespace
    selector = peer["namespaceSelector"]
    if is_unknown(selector):
        return None
    labels = mapping(mapping(selector).get("matchLabels"))
    name = labels.get("kubernetes.io/metadata.name")
    if mapping(selector).get("matchExpressions") or not isinstance(name, str):
        return "a namespace selector not naming one namespace by kubernetes.io/metadata.name"
    if name not in (*TENANT_INGRESS_NAMESPACES, own):
        return f"namespace {name}"
    return None


def tenant_ingress_limited(plan: Plan) -> list[Violation]:
    """In a tenant namespace, NetworkPolicies admit only the gateway, Prometheus and the namespace itself:
    no ipBlock, no other namespace (another tenant's), no rule without sources (which admits everyone)."""
    rule = "tenant-ingress-limited"
    tenants = tenant_namespaces(plan)
    out = []
    for source, obj in manifests_of(plan, "NetworkPolicy"):
        namespace = dig(obj, "metadata", "namespace")
        spec = obj.get("spec")
        if namespace not in tenants or is_unknown(spec):
            continue
        ingress = mapping(spec).get("ingress")
        if is_unknown(ingress):
            continue
        for entry in ingress or ():
            if is_unknown(entry):
                continue
            peers = mapping(entry).get("from")
            if is_unknown(peers):
                continue
            if not peers:
                out.append(Violation(rule, source, f"{namespace}: an ingress rule without sources admits every pod"))
                continue
            for peer in peers:
                problem = _peer_problem(peer, str(namespace))
                if problem:
                    out.append(Violation(rule, source, f"{namespace}: ingress from {problem}"))
    return out


def tenant_pod_security(plan: Plan) -> list[Violation]:
    out = []
    for name, (source, meta) in sorted(tenant_namespaces(plan).items()):
        labels = mapping(meta.get("labels"))
        missing = [
            mode
            for mode in ("enforce", "audit", "warn")
            if labels.get(f"pod-security.kubernetes.io/{mode}") != "restricted"
        ]
        if missing:
            out.append(
                Violation(
                    "tenant-pod-security",
                    source,
                    f"namespace {name}: Pod Security restricted not set for {', '.join(missing)}",
                )
            )
    return out


# The quota items that keep a tenant inside its share: its GPUs (extended resources are quota'd by requests
# only), and no Service that opens a port on every node or a load balancer of its own.
GPU_QUOTA_ITEM = "requests.nvidia.com/gpu"
ZERO_QUOTA_ITEMS = ("services.nodeports", "services.loadbalancers")


def _by_namespace(plan: Plan, kind: str) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = {}
    for _, obj in manifests_of(plan, kind):
        found.setdefault(namespace_of(obj), []).append(obj)
    return found


def tenant_quota(plan: Plan) -> list[Violation]:
    """Every tenant namespace has a ResourceQuota that caps its GPUs (requests.nvidia.com/gpu) and allows no
    node ports and no load balancers."""
    quotas = _by_namespace(plan, "ResourceQuota")
    out = []
    for name, (source, _) in sorted(tenant_namespaces(plan).items()):
        specs = [obj.get("spec") for obj in quotas.get(name, ())]
        if any(is_unknown(s) or is_unknown(mapping(s).get("hard")) for s in specs):
            continue
        hard: dict[str, Any] = {}
        for spec in specs:
            hard.update(mapping(mapping(spec).get("hard")))
        problems = [] if GPU_QUOTA_ITEM in hard else [f"no ResourceQuota caps {GPU_QUOTA_ITEM}"]
        problems += [
            f"no ResourceQuota sets {item} to 0"
            for item in ZERO_QUOTA_ITEMS
            if not is_unknown(hard.get(item)) and str(hard.get(item)) != "0"
        ]
        if problems:
            out.append(Violation("tenant-quota", source, f"namespace {name}: {'; '.join(problems)}"))
    return out


def tenant_limit_range(plan: Plan) -> list[Violation]:
    """Every tenant namespace has a LimitRange giving containers default requests or limits (a container that
    sets none would otherwise escape the quota's accounting of what it uses)."""
    ranges = _by_namespace(plan, "LimitRange")
    out = []
    for name, (source, _) in sorted(tenant_namespaces(plan).items()):
        specs = [obj.get("spec") for obj in ranges.get(name, ())]
        if any(is_unknown(s) for s in specs):
            continue
        limits = [mapping(limit) for spec in specs for limit in as_list(mapping(spec).get("limits"))]
        if any(is_unknown(limit) for spec in specs for limit in as_list(mapping(spec).get("limits"))):
            continue
        if not any(
            limit.get("type") == "Container" and (limit.get("default") or limit.get("defaultRequest"))
            for limit in limits
        ):
            out.append(
                Violation("tenant-limit-range", source, f"namespace {name} has no LimitRange with container defaults")
            )
    return out


# Addresses a tenant pod must not reach by an ipBlock: private (other pods, nodes, internal load balancers,
# endpoints, peered networks: RFC 1918, CGNAT, IPv6 ULA) and link-local (the node's IMDS). A single
# link-local host is a node-local agent (EKS Pod Identity's 169.254.170.23), unless it is the IMDS.
INTERNAL_RANGES = tuple(
    ipaddress.ip_network(c)
    for c in (
        "10.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)
IMDS = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _subtract(networks: list[Network], hole: Network) -> list[Network]:
    out: list[Network] = []
    for net in networks:
        if net.version != hole.version or not net.overlaps(hole):
            out.append(net)
        elif not net.subnet_of(hole):  # type: ignore[arg-type]
            out.extend(net.address_exclude(hole))  # type: ignore[arg-type]
    return out


def _ip_block_problem(block: Any) -> str | None:
    """Why an egress ipBlock of a tenant namespace reaches too much, or None."""
    if is_unknown(block):
        return None
    cidr, holes = mapping(block).get("cidr"), as_list(mapping(block).get("except"))
    if is_unknown(cidr) or any(is_unknown(h) for h in holes):
        return None
    try:
        net = ipaddress.ip_network(str(cidr), strict=False)
        left = [net]
        for hole in holes:
            left = _subtract(left, ipaddress.ip_network(str(hole), strict=False))
    except ValueError:
        return f"an ipBlock that is not a CIDR ({cidr}, except {holes})"
    if net.num_addresses == 1 and net.network_address.is_link_local and net.network_address not in IMDS:
        return None
    reached = sorted(
        {str(r) for r in INTERNAL_RANGES for part in left if part.version == r.version and part.overlaps(r)}
    )
    if not reached:
        return None
    return f"ipBlock {cidr} reaches private or link-local addresses ({', '.join(reached)}): other pods, nodes, the IMDS"


def _egress_peer_problem(plan: Plan, peer: Any, own: str) -> str | None:
    """Why an egress peer of a tenant namespace's NetworkPolicy reaches too much, or None."""
    if is_unknown(peer):
        return None
    peer = mapping(peer)
    if "ipBlock" in peer:
        return _ip_block_problem(peer["ipBlock"])
    if "namespaceSelector" not in peer:
        return None  # pods of the policy's own namespace
    selector = peer["namespaceSelector"]
    if is_unknown(selector):
        return None
    name = mapping(mapping(selector).get("matchLabels")).get("kubernetes.io/metadata.name")
    if mapping(selector).get("matchExpressions") or not isinstance(name, str):
        return "a namespace selector not naming one namespace by kubernetes.io/metadata.name (other tenants')"
    if name != own and is_tenant_namespace(plan, name):
        return f"namespace {name}, another tenant's"
    return None


def tenant_egress_limited(plan: Plan) -> list[Violation]:
    """In a tenant namespace, NetworkPolicies let out nothing private: no rule without destinations (which
    reaches everything), no ipBlock reaching private or link-local addresses (0.0.0.0/0 must except them), no
    other tenant's namespace."""
    rule = "tenant-egress-limited"
    out = []
    for source, obj in manifests_of(plan, "NetworkPolicy"):
        namespace = namespace_of(obj)
        spec = obj.get("spec")
        if not is_tenant_namespace(plan, namespace) or is_unknown(spec):
            continue
        egress = mapping(spec).get("egress")
        if is_unknown(egress):
            continue
        for entry in as_list(egress):
            peers = mapping(entry).get("to")
            if is_unknown(entry) or is_unknown(peers):
                continue
            if not peers:
                out.append(
                    Violation(rule, source, f"{namespace}: an egress rule without destinations reaches everything")
                )
                continue
            for peer in as_list(peers):
                problem = _egress_peer_problem(plan, peer, namespace)
                if problem:
                    out.append(Violation(rule, source, f"{namespace}: egress to {problem}"))
    return out


def _tenant_taints(taints: Any) -> list[str]:
    return [str(mapping(t).get("value")) for t in as_list(taints) if mapping(t).get("key") == TENANT_LABEL]


def _dedicated_pools(plan: Plan) -> list[tuple[str, str]] | None:
    """(source, description) of every GPU pool dedicated to a tenant (tainted with TENANT_LABEL); None when a
    pool's taints are unknown."""
    found = []
    for source, obj in manifests_of(plan, "NodePool"):
        taints = dig(obj, "spec", "template", "spec", "taints")
        if is_unknown(taints):
            return None
        found += [
            (source, f"NodePool {dig(obj, 'metadata', 'name')} ({TENANT_LABEL}={t})") for t in _tenant_taints(taints)
        ]
    for r in resources_of(plan, "aws:eks/nodeGroup:NodeGroup"):
        taints = inputs_of(r).get("taints")
        if is_unknown(taints):
            return None
        found += [(r["key"], f"node group ({TENANT_LABEL}={t})") for t in _tenant_taints(taints)]
    return found


def _guards_tolerations(spec: Mapping[str, Any]) -> bool:
    return any(TENANT_LABEL in str(mapping(v).get("expression", "")) for v in as_list(spec.get("validations")))


def _covers_pod_creation(spec: Mapping[str, Any]) -> bool:
    rules = as_list(dig(spec, "matchConstraints", "resourceRules"))
    return any(
        {"pods", "*"} & set(as_list(mapping(r).get("resources")))
        and {"CREATE", "*"} & set(as_list(mapping(r).get("operations")))
        for r in rules
    )


def _excluded_tenants(plan: Plan, binding_spec: Mapping[str, Any]) -> list[str]:
    """Tenant namespaces a binding's namespace selector leaves out (by kubernetes.io/metadata.name)."""
    tenants = sorted(tenant_namespaces(plan))
    left_out: set[str] = set()
    for expression in as_list(dig(binding_spec, "matchResources", "namespaceSelector", "matchExpressions")):
        expression = mapping(expression)
        if expression.get("key") != "kubernetes.io/metadata.name":
            continue
        values = set(map(str, as_list(expression.get("values"))))
        if expression.get("operator") == "NotIn":
            left_out |= {t for t in tenants if t in values}
        elif expression.get("operator") == "In":
            left_out |= {t for t in tenants if t not in values}
    return sorted(left_out)


def tenant_pool_admission(plan: Plan) -> list[Violation]:
    """Where a pool is dedicated to a tenant, a ValidatingAdmissionPolicy that checks tolerations of the tenant
    taint (failurePolicy Fail, on pod creation) is bound with Deny, and its binding leaves out no tenant
    namespace: without it, any pod may tolerate the taint and land on another tenant's GPUs."""
    rule = "tenant-pool-admission"
    pools = _dedicated_pools(plan)
    if not pools:
        return []
    policies = list(manifests_of(plan, "ValidatingAdmissionPolicy"))
    if any(is_unknown(obj.get("spec")) for _, obj in policies):
        return []
    guards = [(source, obj) for source, obj in policies if _guards_tolerations(mapping(obj.get("spec")))]
    if not guards:
        return [
            Violation(rule, source, f"{pool}: no ValidatingAdmissionPolicy checks tolerations of {TENANT_LABEL}")
            for source, pool in pools
        ]
    bindings = list(manifests_of(plan, "ValidatingAdmissionPolicyBinding"))
    if any(is_unknown(obj.get("spec")) for _, obj in bindings):
        return []
    out = []
    for source, obj in guards:
        name = dig(obj, "metadata", "name")
        spec = mapping(obj.get("spec"))
        if spec.get("failurePolicy", "Fail") != "Fail":
            out.append(Violation(rule, source, f"{name}: failurePolicy {spec.get('failurePolicy')} lets pods through"))
        if not _covers_pod_creation(spec):
            out.append(Violation(rule, source, f"{name}: does not match the creation of pods"))
        denying = [
            (b_source, mapping(b.get("spec")))
            for b_source, b in bindings
            if mapping(b.get("spec")).get("policyName") == name
            and "Deny" in as_list(mapping(b.get("spec")).get("validationActions"))
        ]
        if not denying:
            out.append(Violation(rule, source, f"{name}: no ValidatingAdmissionPolicyBinding applies it with Deny"))
        for b_source, b_spec in denying:
            left_out = _excluded_tenants(plan, b_spec)
            if left_out:
                out.append(
                    Violation(rule, b_source, f"{name}: binding leaves out tenant namespaces {', '.join(left_out)}")
                )
    return out


# Kubernetes roles that can rewrite a namespace's NetworkPolicies, RoleBindings or quota-free workloads:
# cluster-admin and admin, and edit (which may create and delete NetworkPolicies, so undo the isolation).
ADMIN_CLUSTER_ROLES = ("cluster-admin", "admin", "edit")
# EKS access policies that map to them (AmazonEKSClusterAdminPolicy is cluster-admin).
_ACCESS_POLICY_PREFIX = CLUSTER_ADMIN_POLICY.rsplit("/", 1)[0] + "/"
ADMIN_ACCESS_POLICIES = tuple(
    _ACCESS_POLICY_PREFIX + name
    for name in ("AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy", "AmazonEKSEditPolicy")
)
# Groups every tenant's identities belong to.
EVERYONE_GROUPS = ("system:authenticated", "system:unauthenticated", "system:serviceaccounts")


def _tenant_principals(plan: Plan) -> set[str]:
    """IAM principals of tenants' teams: those with an access policy scoped to a tenant's namespace, or an access
    entry tagged with a tenant."""
    found = set()
    for r in resources_of(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        scope = mapping(inputs_of(r).get("accessScope"))
        if scope.get("type") == "namespace" and any(
            is_tenant_namespace(plan, n) for n in as_list(scope.get("namespaces"))
        ):
            found.add(str(inputs_of(r).get("principalArn")))
    for r in resources_of(plan, "aws:eks/accessEntry:AccessEntry"):
        if TENANT_LABEL in mapping(inputs_of(r).get("tags")):
            found.add(str(inputs_of(r).get("principalArn")))
    return found


def _tenant_identities(plan: Plan, principals: set[str]) -> tuple[set[str], set[str]]:
    """(Kubernetes groups, Kubernetes user names) the access entries of tenant principals map them to."""
    groups, users = set(), set(principals)
    for r in resources_of(plan, "aws:eks/accessEntry:AccessEntry"):
        inputs = inputs_of(r)
        if inputs.get("principalArn") in principals:
            groups |= {str(g) for g in as_list(inputs.get("kubernetesGroups")) if not is_unknown(g)}
            if isinstance(inputs.get("userName"), str):
                users.add(inputs["userName"])
    return groups, users


def _admin_like_roles(plan: Plan) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of the plan's Roles and ClusterRoles that grant every verb on every resource."""
    found = set()
    for _, obj in manifests_of(plan, "Role", "ClusterRole"):
        for rule in as_list(obj.get("rules")):
            rule = mapping(rule)
            if "*" in as_list(rule.get("verbs")) and "*" in as_list(rule.get("resources")):
                namespace = namespace_of(obj) if obj.get("kind") == "Role" else ""
                found.add((str(obj.get("kind")), namespace, str(dig(obj, "metadata", "name"))))
    return found


def _tenant_subject(
    plan: Plan, subject: Mapping[str, Any], namespace: str, groups: set[str], users: set[str]
) -> str | None:
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str):
        return None
    if kind == "ServiceAccount":
        account_ns = subject.get("namespace") or namespace
        return f"service account {account_ns}/{name}" if is_tenant_namespace(plan, account_ns) else None
    if kind == "Group":
        if name in EVERYONE_GROUPS:
            return f"group {name} (every tenant's identities among them)"
        if name.startswith("system:serviceaccounts:") and is_tenant_namespace(plan, name.split(":", 2)[2]):
            return f"group {name}"
        return f"group {name} (a tenant team's)" if name in groups else None
    if kind == "User":
        parts = name.split(":")
        if name.startswith("system:serviceaccount:") and len(parts) == 4 and is_tenant_namespace(plan, parts[2]):
            return f"user {name}"
        return f"user {name} (a tenant team's)" if name in users else None
    return None


def _rbac_grants(plan: Plan, groups: set[str], users: set[str]) -> Iterator[Violation]:
    admin_like = _admin_like_roles(plan)
    for source, obj in manifests_of(plan, "RoleBinding", "ClusterRoleBinding"):
        ref, subjects = obj.get("roleRef"), obj.get("subjects")
        if is_unknown(ref) or is_unknown(subjects):
            continue
        ref = mapping(ref)
        namespace = namespace_of(obj) if obj.get("kind") == "RoleBinding" else ""
        role = (str(ref.get("kind")), namespace if ref.get("kind") == "Role" else "", str(ref.get("name")))
        if not ((role[0] == "ClusterRole" and role[2] in ADMIN_CLUSTER_ROLES) or role in admin_like):
            continue
        for subject in as_list(subjects):
            who = None if is_unknown(subject) else _tenant_subject(plan, mapping(subject), namespace, groups, users)
            if who:
                yield Violation(
                    "tenant-not-admin",
                    source,
                    f"{obj.get('kind')} {dig(obj, 'metadata', 'name')} grants {role[0]} {role[2]} to {who}",
                )


def tenant_not_admin(plan: Plan) -> list[Violation]:
    """No tenant identity administers: no RoleBinding or ClusterRoleBinding gives cluster-admin, admin, edit (or
    a role granting every verb on every resource) to a tenant's service accounts, to groups every tenant is in,
    or to a tenant team's groups and users; no EKS access policy association gives admin or edit in a tenant's
    namespace, or to a tenant team's principal. A tenant team gets view (docs/security.md)."""
    principals = _tenant_principals(plan)
    groups, users = _tenant_identities(plan, principals)
    out = list(_rbac_grants(plan, groups, users))
    for r in resources_of(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"):
        inputs = inputs_of(r)
        policy, principal, scope = inputs.get("policyArn"), inputs.get("principalArn"), inputs.get("accessScope")
        if policy not in ADMIN_ACCESS_POLICIES or is_unknown(principal) or is_unknown(scope):
            continue
        scope = mapping(scope)
        tenant_scope = [n for n in as_list(scope.get("namespaces")) if is_tenant_namespace(plan, n)]
        short = str(policy).rsplit("/", 1)[-1]
        if scope.get("type") == "namespace" and tenant_scope:
            out.append(
                Violation(
                    "tenant-not-admin", r["key"], f"{short} for {principal} in {', '.join(map(str, tenant_scope))}"
                )
            )
        elif principal in principals:
            out.append(Violation("tenant-not-admin", r["key"], f"{short} for {principal}, a tenant team's principal"))
    return out
