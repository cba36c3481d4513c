"""Isolation: one locked-down namespace per tenant.

Per tenant (docs/security.md):
  - Namespace `tenant-<name>` with Pod Security `restricted` enforced, audited and warned, pinned to the
    cluster's Kubernetes version;
  - NetworkPolicies: deny all in and out, then DNS to CoreDNS, the gateway and Prometheus to the model
    servers, the Pod Identity agent, pod to pod inside the namespace (multi-node models), and what the
    tenant's `egress` setting asks for: HTTPS to the S3 ranges of the stack's region (s3, the default: the
    model servers copy their weights from the bucket), to any public address as well (internet), or nothing;
  - ResourceQuota (GPUs = gpu_quota, CPU and memory from the GPUs' share of the tenant's pools, pods, no
    load balancers nor node ports) and a LimitRange giving defaults to containers that set none;
  - the service account `model-server`, which the AWS layer binds by a Pod Identity association to the
    tenant's read role, and whose team gets view access through access entries
    (components/aws/tenant_identities.py).
Cluster-wide: a ValidatingAdmissionPolicy so that a pod may tolerate the taint `modelyard.dev/tenant=<t>`
only in namespace `tenant-<t>` (dedicated pools), with system namespaces exempt by name.
The account-level detection (GuardDuty, CloudTrail data events) is AWS's: components/aws/account_security.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components import catalog
from components.catalog import s3_ranges
from components.contract import (
    GATEWAY_NAMESPACE,
    GATEWAY_POD_LABELS,
    GATEWAY_PORT,
    MODEL_SERVER_SERVICE_ACCOUNT,
    MONITORING_NAMESPACE,
    POD_IDENTITY_AGENT,
    TENANT_LABEL,
    TENANT_NAMESPACE_PREFIX,
    tenant_namespace,
)
from components.k8s.monitoring.values import PROMETHEUS_POD_LABELS
from components.settings.types import Settings, TenantEgress

MODEL_SERVER_COMPONENT = ("app.kubernetes.io/component", "model-server")  # charts/llm-serving labels
HTTPS = 443
# A tenant with egress internet may open HTTPS to 0.0.0.0/0 minus these: nothing private, so no other pod,
# node, internal load balancer, interface endpoint or peered network (RFC 1918, CGNAT, link-local incl. IMDS)
# on 443 even then. Only tenants whose prompts may leave the VPC can ask for it (settings: tenant_egress).
PRIVATE_RANGES = ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16")
# Namespaces whose DaemonSets must run on every GPU node, dedicated ones included, so they tolerate every
# taint: the NVIDIA and EFA device plugins, EBS CSI, VPC CNI, kube-proxy, the Pod Identity agent
# (kube-system); DCGM and node exporters (monitoring). Only cluster admins can create pods there.
ADMISSION_EXEMPT_NAMESPACES = ("kube-system", MONITORING_NAMESPACE)
ADMISSION_POLICY_NAME = "modelyard-tenant-pool-tolerations"
# A pod is admitted if every toleration that could match the tenant taint (its key, or an empty key with
# Exists, which tolerates every taint) is exactly `modelyard.dev/tenant` Equal <t> in namespace tenant-<t>.
# Written with has() rather than optionals (`.?`) so that it also runs on cel-python in the tests.
TOLERATION_EXPRESSION = (
    "!has(object.spec.tolerations) || object.spec.tolerations.all(t, "
    f"!((has(t.key) && t.key == '{TENANT_LABEL}') || "
    "((!has(t.key) || t.key == '') && has(t.operator) && t.operator == 'Exists')) || "
    f"(has(t.key) && t.key == '{TENANT_LABEL}' && (!has(t.operator) || t.operator == 'Equal') && "
    f"has(t.value) && request.namespace == '{TENANT_NAMESPACE_PREFIX}' + t.value))"
)
# Room a tenant's namespace gets besides the GPU share: the weights loader and small helpers.
BASE_CPU = 2
BASE_MEMORY_GIB = 8
BASE_PODS = 10


@dataclass(frozen=True, kw_only=True)
class TenantQuota:
    gpus: int
    cpu: int
    """cores of requests.cpu"""
    memory_gib: int
    """GiB of requests.memory and limits.memory"""
    pods: int


def tenant_quota(settings: Settings, tenant: str) -> TenantQuota:
    """GPUs from gpu_quota; CPU and memory as that many GPUs' share of the hungriest node type of the
    tenant's pools (what serving_values requests is a share of the same), plus a base for helpers."""
    spec = settings.tenants[tenant]
    cpu_per_gpu = 0.0
    memory_per_gpu = 0.0
    for model in spec.models:
        pool = settings.pools[settings.models[model].pool]
        for name in pool.instance_types:
            instance = catalog.resolve_instance(name)
            if instance.gpu_count:
                cpu_per_gpu = max(cpu_per_gpu, instance.vcpu / instance.gpu_count)
                memory_per_gpu = max(memory_per_gpu, instance.memory_gib / instance.gpu_count)
    return TenantQuota(
        gpus=spec.gpu_quota,
        cpu=BASE_CPU + math.ceil(cpu_per_gpu * spec.gpu_quota),
        memory_gib=BASE_MEMORY_GIB + math.ceil(memory_per_gpu * spec.gpu_quota),
        pods=BASE_PODS + 2 * spec.gpu_quota,
    )


def _peer(namespace: str, labels: Mapping[str, str]) -> dict[str, object]:
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": dict(labels)},
    }


def network_policies(namespace: str, *, egress: TenantEgress, s3_cidrs: Sequence[str]) -> dict[str, dict[str, object]]:
    """The NetworkPolicy specs of a tenant namespace, by object name. Policies add up: what is not
    allowed by one of them is denied by `default-deny`. `s3_cidrs`: the S3 ranges of the stack's region."""
    all_pods: dict[str, object] = {}
    policies: dict[str, dict[str, object]] = {
        "default-deny": {"podSelector": all_pods, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": all_pods,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [_peer("kube-system", {"k8s-app": "kube-dns"})],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
        "allow-gateway-and-prometheus": {
            "podSelector": {"matchLabels": dict([MODEL_SERVER_COMPONENT])},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [_peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                },
                {
                    "from": [_peer(MONITORING_NAMESPACE, PROMETHEUS_POD_LABELS)],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                },
            ],
        },
        # A tenant's own workloads call the models the way everyone does: through the gateway, with a key.
        "allow-to-gateway": {
            "podSelector": all_pods,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [_peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)],
                    "ports": [{"protocol": "TCP", "port": GATEWAY_PORT}],
                }
            ],
        },
        "allow-pod-identity-agent": {
            "podSelector": all_pods,
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]}],
        },
        "allow-same-namespace": {
            "podSelector": all_pods,
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": all_pods}]}],
            "egress": [{"to": [{"podSelector": all_pods}]}],
        },
    }
    if egress is TenantEgress.NONE:
        return policies
    # The model servers' weights: S3 through the VPC's gateway endpoint, whose policy admits only the stack's
    # buckets (components/aws/network.py). The region's ranges only: another region's S3 is not behind it.
    policies["allow-s3-https"] = {
        "podSelector": all_pods,
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": cidr}} for cidr in s3_cidrs],
                "ports": [{"protocol": "TCP", "port": HTTPS}],
            }
        ],
    }
    if egress is TenantEgress.INTERNET:
        policies["allow-internet-https"] = {
            "podSelector": all_pods,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                    "ports": [{"protocol": "TCP", "port": HTTPS}],
                }
            ],
        }
    return policies


def admission_policy_spec() -> dict[str, object]:
    return {
        "failurePolicy": "Fail",
        "matchConstraints": {
            "resourceRules": [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["pods"],
                }
            ]
        },
        "validations": [
            {
                "expression": TOLERATION_EXPRESSION,
                "message": f"only pods in namespace {TENANT_NAMESPACE_PREFIX}<t> may tolerate the taint "
                f"{TENANT_LABEL}=<t> (a dedicated pool); a toleration of every taint is refused too",
                "reason": "Forbidden",
            }
        ],
    }


def admission_binding_spec() -> dict[str, object]:
    return {
        "policyName": ADMISSION_POLICY_NAME,
        "validationActions": ["Deny"],
        "matchResources": {
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "NotIn",
                        "values": list(ADMISSION_EXEMPT_NAMESPACES),
                    }
                ]
            }
        },
    }


@dataclass(frozen=True, kw_only=True)
class IsolationArgs:
    kubernetes_version: str
    """The cluster's minor version: Pod Security labels are pinned to it."""
    tenants: Mapping[str, TenantQuota]
    """Each tenant's quota, by tenant."""
    egress: Mapping[str, TenantEgress]
    """Each tenant's egress (`tenants.<t>.egress`), by tenant; every tenant of `tenants` has one."""
    s3_cidrs: Sequence[str]
    """The S3 IPv4 ranges of the stack's region (components/catalog/s3_ranges.yaml)."""


def isolation_args(settings: Settings) -> IsolationArgs:
    return IsolationArgs(
        kubernetes_version=settings.cluster.version,
        tenants={name: tenant_quota(settings, name) for name in settings.tenants},
        egress={name: tenant.egress for name, tenant in settings.tenants.items()},
        s3_cidrs=s3_ranges.region_cidrs(settings.region),
    )


class Isolation(pulumi.ComponentResource):
    """Tenant namespaces with default-deny, quotas and the model servers' account; the admission guard.

    The tenants' AWS side (Pod Identity, access entries) is components/aws/tenant_identities.py.
    """

    namespaces: dict[str, str]

    def __init__(
        self,
        name: str,
        *,
        args: IsolationArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("modelyard:k8s:Isolation", name, None, opts)
        k8s_opts = pulumi.ResourceOptions(parent=self)
        version = f"v{args.kubernetes_version}"
        self.namespaces = {}

        for tenant, quota in sorted(args.tenants.items()):
            ns_name = tenant_namespace(tenant)
            labels = {TENANT_LABEL: tenant, "app.kubernetes.io/part-of": "modelyard"}
            for mode in ("enforce", "audit", "warn"):
                labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
                labels[f"pod-security.kubernetes.io/{mode}-version"] = version
            namespace = k8s.core.v1.Namespace(
                f"{name}-{tenant}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ns_name, labels=labels),
                opts=k8s_opts,
            )
            in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

            def meta(object_name: str, ns_name: str = ns_name, tenant: str = tenant) -> k8s.meta.v1.ObjectMetaArgs:
                return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=ns_name, labels={TENANT_LABEL: tenant})

            policies = network_policies(ns_name, egress=args.egress[tenant], s3_cidrs=args.s3_cidrs)
            for policy_name, policy_spec in policies.items():
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{tenant}-{policy_name}",
                    metadata=meta(policy_name),
                    spec=cast(Any, policy_spec),
                    opts=in_ns,
                )
            k8s.core.v1.ResourceQuota(
                f"{name}-{tenant}-quota",
                metadata=meta("tenant-quota"),
                spec={
                    "hard": {
                        "requests.nvidia.com/gpu": str(quota.gpus),
                        "requests.cpu": str(quota.cpu),
                        "requests.memory": f"{quota.memory_gib}Gi",
                        "limits.memory": f"{quota.memory_gib}Gi",
                        "pods": str(quota.pods),
                        "services.loadbalancers": "0",
                        "services.nodeports": "0",
                    }
                },
                opts=in_ns,
            )
            # Defaults only: no default CPU limit, which would throttle vLLM (charts/llm-serving sets none on purpose).
            k8s.core.v1.LimitRange(
                f"{name}-{tenant}-limits",
                metadata=meta("tenant-defaults"),
                spec=cast(
                    Any,
                    {
                        "limits": [
                            {
                                "type": "Container",
                                "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                                "default": {"memory": "512Mi"},
                            }
                        ]
                    },
                ),
                opts=in_ns,
            )
            # Serving's releases use this account (serviceAccount.create false, name model-server).
            k8s.core.v1.ServiceAccount(
                f"{name}-{tenant}-model-server",
                metadata=meta(MODEL_SERVER_SERVICE_ACCOUNT),
                automount_service_account_token=False,
                opts=in_ns,
            )
            self.namespaces[tenant] = ns_name

        if args.tenants:
            policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-tolerations",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ADMISSION_POLICY_NAME),
                spec=cast(Any, admission_policy_spec()),
                opts=k8s_opts,
            )
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-tolerations",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=ADMISSION_POLICY_NAME),
                spec=cast(Any, admission_binding_spec()),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
            )
        self.register_outputs({"namespaces": self.namespaces})
