"""Isolation: one locked-down namespace per tenant, and the account-level detection the preset asks for.

Per tenant (design.md, Components: Isolation; docs/security.md):
  - Namespace `tenant-<name>` with Pod Security `restricted` enforced, audited and warned, pinned to the
    cluster's Kubernetes version;
  - NetworkPolicies: deny all in and out, then DNS to CoreDNS, the gateway and Prometheus to the model
    servers, the Pod Identity agent, pod to pod inside the namespace (multi-node models), HTTPS out to
    public addresses (S3 through the gateway endpoint: see S3_EGRESS_EXCEPT for why it is not narrower);
  - ResourceQuota (GPUs = gpu_quota, CPU and memory from the GPUs' share of the tenant's pools, pods, no
    load balancers nor node ports) and a LimitRange giving defaults to containers that set none;
  - the service account `model-server`, which the AWS layer binds by a Pod Identity association to the
    tenant's read role, and whose team gets view access through access entries
    (components/aws/tenant_identities.py).
Cluster-wide: a ValidatingAdmissionPolicy so that a pod may tolerate the taint `modelyard.dev/tenant=<t>`
only in namespace `tenant-<t>` (dedicated pools), with system namespaces exempt by name.

AccountSecurity (where settings.security asks): a GuardDuty detector with Runtime Monitoring for EKS
(GuardDuty manages its agent add-on), and a CloudTrail trail recording S3 data events on the model
bucket into its own private, versioned, encrypted, TLS-only log bucket.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import catalog
from components.aws.model_storage import expire_logs, harden_bucket
from components.settings.model import Settings

TENANT_NAMESPACE_PREFIX = "tenant-"
TENANT_LABEL = "modelyard.dev/tenant"  # the same key as components.k8s.gpu_pools.TENANT_LABEL (taint and label)
MODEL_SERVER_SERVICE_ACCOUNT = "model-server"
MODEL_SERVER_COMPONENT = ("app.kubernetes.io/component", "model-server")  # charts/llm-serving labels
GATEWAY = ("gateway", {"app.kubernetes.io/name": "litellm"})
# The gateway's Service port (components/k8s/gateway/objects.py PORT).
GATEWAY_PORT = 4000
PROMETHEUS = ("monitoring", {"app.kubernetes.io/name": "prometheus"})
POD_IDENTITY_AGENT = "169.254.170.23/32"  # EKS Pod Identity agent, link-local on every node, port 80
# HTTPS egress is to 0.0.0.0/0 minus these. S3 (through the VPC's gateway endpoint) answers on public
# addresses listed in the managed prefix list com.amazonaws.<region>.s3; a NetworkPolicy takes CIDRs, not
# prefix lists, and fetching the list would make the program depend on a lookup at deploy time that can
# change under it. So: every public address on 443, and nothing private: no other pod, node, internal load
# balancer, interface endpoint or peered network (RFC 1918, CGNAT, link-local incl. IMDS). What stops a pod
# from reaching the internet is the subnet: presets with nat: none have no route out (docs/security.md).
S3_EGRESS_EXCEPT = ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16")
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
# Namespaces whose DaemonSets must run on every GPU node, dedicated ones included, so they tolerate every
# taint: the NVIDIA and EFA device plugins, EBS CSI, VPC CNI, kube-proxy, the Pod Identity agent
# (kube-system); DCGM and node exporters (monitoring). Only cluster admins can create pods there.
ADMISSION_EXEMPT_NAMESPACES = ("kube-system", "monitoring")
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


def tenant_namespace(tenant: str) -> str:
    """The namespace of a tenant's model servers (Serving deploys there)."""
    return f"{TENANT_NAMESPACE_PREFIX}{tenant}"


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


def network_policies(namespace: str) -> dict[str, dict[str, object]]:
    """The NetworkPolicy specs of a tenant namespace, by object name. Policies add up: what is not
    allowed by one of them is denied by `default-deny`."""
    all_pods: dict[str, object] = {}
    return {
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
                {"from": [_peer(GATEWAY[0], GATEWAY[1])], "ports": [{"protocol": "TCP", "port": "http"}]},
                {"from": [_peer(PROMETHEUS[0], PROMETHEUS[1])], "ports": [{"protocol": "TCP", "port": "http"}]},
            ],
        },
        # A tenant's own workloads call the models the way everyone does: through the gateway, with a key.
        "allow-to-gateway": {
            "podSelector": all_pods,
            "policyTypes": ["Egress"],
            "egress": [{"to": [_peer(GATEWAY[0], GATEWAY[1])], "ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}],
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
        "allow-s3-https": {
            "podSelector": all_pods,
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(S3_EGRESS_EXCEPT)}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                }
            ],
        },
    }


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


def isolation_args(settings: Settings) -> IsolationArgs:
    return IsolationArgs(
        kubernetes_version=settings.cluster.version,
        tenants={name: tenant_quota(settings, name) for name in settings.tenants},
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

            for policy_name, policy_spec in network_policies(ns_name).items():
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


def _trail_bucket_policy(values: list[str]) -> str:
    bucket_arn, trail_arn, account = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "CloudTrailAclCheck",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:GetBucketAcl",
                    "Resource": bucket_arn,
                    "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
                },
                {
                    "Sid": "CloudTrailWrite",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{bucket_arn}/AWSLogs/{account}/*",
                    "Condition": {
                        "StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}
                    },
                },
            ],
        },
        sort_keys=True,
    )


def _trail_key_policy(values: list[str]) -> str:
    """The account administers the key through IAM; CloudTrail may encrypt this trail's log files only."""
    account, trail_arn = values
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "CloudTrailEncryptsThisTrail",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "kms:GenerateDataKey*",
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {"aws:SourceArn": trail_arn},
                        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn},
                    },
                },
                {
                    "Sid": "CloudTrailDescribesKey",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudtrail.amazonaws.com"},
                    "Action": "kms:DescribeKey",
                    "Resource": "*",
                },
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True, kw_only=True)
class AccountSecurityArgs:
    name: str
    """`<project>-<stack>`: prefix of the trail's and its bucket's names."""
    region: str
    guardduty_runtime: bool
    cloudtrail_data_events: bool
    model_bucket_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    log_days: int = 365
    tags: Mapping[str, str]
    protect: bool = True


class AccountSecurity(pulumi.ComponentResource):
    """GuardDuty Runtime Monitoring for EKS, and CloudTrail S3 data events on the model bucket."""

    def __init__(self, name: str, *, args: AccountSecurityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("modelyard:aws:AccountSecurity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        if args.guardduty_runtime:
            # One detector per account and region: an account that has one already must import it.
            detector = aws.guardduty.Detector(f"{name}-guardduty", enable=True, tags=tags, opts=child)
            aws.guardduty.DetectorFeature(
                f"{name}-runtime-monitoring",
                detector_id=detector.id,
                name="RUNTIME_MONITORING",
                status="ENABLED",
                additional_configurations=[
                    # GuardDuty installs and updates its security agent add-on on the cluster.
                    aws.guardduty.DetectorFeatureAdditionalConfigurationArgs(
                        name="EKS_ADDON_MANAGEMENT", status="ENABLED"
                    )
                ],
                opts=child,
            )
        if args.cloudtrail_data_events:
            self._trail(name, args, tags)
        self.register_outputs({})

    def _trail(self, name: str, args: AccountSecurityArgs, tags: dict[str, str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        trail_name = f"{args.name}-model-data"
        bucket = aws.s3.Bucket(
            f"{name}-trail-logs",
            bucket=pulumi.Output.concat(args.name, "-trail-", args.account_id),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        # CloudTrail encrypts each log file with the trail's own KMS key; the bucket's default stays SSE-S3.
        harden_bucket(f"{name}-trail-logs", bucket, child, kms_key_arn=None)
        expire_logs(
            f"{name}-trail-logs", bucket, child, rule_id="expire-trail-logs", days=args.log_days, noncurrent_days=30
        )
        trail_arn = pulumi.Output.concat(
            "arn:aws:cloudtrail:", args.region, ":", args.account_id, ":trail/", trail_name
        )
        key = aws.kms.Key(
            f"{name}-trail",
            description=f"CloudTrail log files of trail {trail_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.all(args.account_id, trail_arn).apply(_trail_key_policy),
            tags=tags,
            # Stateful: without it the trail's logs cannot be read.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=True),
        )
        aws.kms.Alias(f"{name}-trail", name=f"alias/{args.name}-trail", target_key_id=key.key_id, opts=child)
        policy = aws.s3.BucketPolicy(
            f"{name}-trail-logs",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, trail_arn, args.account_id).apply(_trail_bucket_policy),
            opts=child,
        )
        aws.cloudtrail.Trail(
            f"{name}-model-data",
            name=trail_name,
            s3_bucket_name=bucket.id,
            enable_log_file_validation=True,
            kms_key_id=key.arn,
            include_global_service_events=False,
            is_multi_region_trail=False,
            advanced_event_selectors=[
                aws.cloudtrail.TrailAdvancedEventSelectorArgs(
                    name="Model bucket object reads and writes",
                    field_selectors=[
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="eventCategory", equals=["Data"]
                        ),
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="resources.type", equals=["AWS::S3::Object"]
                        ),
                        aws.cloudtrail.TrailAdvancedEventSelectorFieldSelectorArgs(
                            field="resources.ARN",
                            starts_withs=[pulumi.Output.concat(args.model_bucket_arn, "/")],
                        ),
                    ],
                )
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
