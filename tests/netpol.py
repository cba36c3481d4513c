"""A small evaluator of Kubernetes NetworkPolicies (networking.k8s.io/v1) and of IAM-style policy documents, for
the tests of what a tenant pod may reach and what an S3 endpoint or a role admits.

NetworkPolicy semantics, from the API reference: policies are additive. A pod is isolated for a direction when
some policy of its namespace selects it and lists that direction in `policyTypes`; an isolated pod's traffic is
allowed when some rule of those policies matches both the peer and the port. A rule without `to`/`from` matches
every peer, one without `ports` every port. A peer is an ipBlock (an address in `cidr` and in no `except`), or
selectors: `namespaceSelector` and/or `podSelector` (a podSelector alone means the policy's own namespace).
What the evaluator leaves out, because the kit does not use it in tenant egress: named ports of the destination.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One side of a connection: a pod (namespace and labels, maybe an address) or an address outside the cluster."""

    ip: str | None = None
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    def ns_labels(self) -> dict[str, str]:
        labels = dict(self.namespace_labels)
        if self.namespace is not None:
            labels[NAMESPACE_NAME_LABEL] = self.namespace
        return labels


def external(ip: str) -> Endpoint:
    return Endpoint(ip=ip)


def pod(namespace: str, labels: Mapping[str, str] | None = None, ip: str | None = None) -> Endpoint:
    return Endpoint(ip=ip, namespace=namespace, labels=dict(labels or {}))


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector: every matchLabels pair and every matchExpressions requirement holds ({} matches all)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for requirement in selector.get("matchExpressions", []):
        key, operator, values = requirement["key"], requirement["operator"], requirement.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))
    if other.namespace is None:
        return False  # selectors name pods; an address outside the cluster is no pod
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.ns_labels()):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector", {}), other.labels)


def port_matches(ports: Iterable[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    ports = list(ports or [])
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        low = entry["port"]
        if isinstance(low, str):
            continue  # a named port of the destination pod: not used by the rules evaluated here
        if low <= port <= entry.get("endPort", low):
            return True
    return False


def _side(
    policies: list[Mapping[str, Any]], pod_: Endpoint, other: Endpoint, direction: str, port: int, protocol: str
) -> bool:
    if pod_.namespace is None:
        return True  # outside the cluster: no NetworkPolicy applies
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    isolating = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod_.namespace
        and direction in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"].get("podSelector", {}), pod_.labels)
    ]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key) or []
            if (not peers or any(peer_matches(p, other, policy["metadata"]["namespace"]) for p in peers)) and (
                port_matches(rule.get("ports"), port, protocol)
            ):
                return True
    return False


def egress_allows(
    policies: Iterable[Mapping[str, Any]], *, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the source pod's namespace's NetworkPolicies (full objects, with metadata.namespace) let it open
    a connection to destination:port. The destination's own ingress policies are not consulted."""
    return _side(list(policies), source, destination, "Egress", port, protocol)


def allowed(
    policies: Iterable[Mapping[str, Any]], *, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether source -> destination:port passes both the source's egress and the destination's ingress."""
    policies = list(policies)
    return _side(policies, source, destination, "Egress", port, protocol) and _side(
        policies, destination, source, "Ingress", port, protocol
    )


def world_open_rules(spec: Mapping[str, Any]) -> list[str]:
    """Rules of a NetworkPolicy spec that admit the whole IPv4 internet: a rule with no peers (every address), or
    an ipBlock of prefix length 0 (0.0.0.0/0, whatever it excepts). Each as `<direction>[<i>]`."""
    found = []
    for key, peers_key in (("egress", "to"), ("ingress", "from")):
        for i, rule in enumerate(spec.get(key, [])):
            peers = rule.get(peers_key) or []
            if not peers or any(
                "ipBlock" in p and ipaddress.ip_network(p["ipBlock"]["cidr"]).prefixlen == 0 for p in peers
            ):
                found.append(f"{key}[{i}]")
    return found


# --- IAM-style documents (endpoint, identity policies) ----------------------------------------------------------


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            actual = context.get(key)
            if operator == "StringEquals" and actual not in _listed(expected):
                return False
            if operator == "StringLike" and (
                actual is None or not any(fnmatch.fnmatchcase(actual, p) for p in _listed(expected))
            ):
                return False
            if operator not in ("StringEquals", "StringLike"):
                raise NotImplementedError(f"condition operator {operator}")
    return True


def document_allows(
    document: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str] | None = None
) -> bool:
    """Whether a policy document allows `action` on `resource` (an explicit Deny wins; nothing allowed is denied).
    Wildcards as IAM's: `*` and `?` in actions (case-insensitive) and resources."""
    context = context or {}

    def applies(statement: Mapping[str, Any]) -> bool:
        actions = _listed(statement.get("Action", []))
        resources = _listed(statement.get("Resource", []))
        return (
            any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions)
            and any(fnmatch.fnmatchcase(resource, r) for r in resources)
            and _condition_holds(statement.get("Condition", {}), context)
        )

    statements = _listed_statements(document)
    if any(s["Effect"] == "Deny" and applies(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and applies(s) for s in statements)


def _listed_statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statement = document["Statement"]
    return [statement] if isinstance(statement, Mapping) else list(statement)
