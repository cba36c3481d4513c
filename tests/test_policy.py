"""Policy rules (components.policy): each passes on a small good plan and fails on a bad one; every shipped
stack passes all of them, in apply and in preview mode; each weakening of a copy of a shipped plan (the attack
table) is reported by its rule, in the plan and through the pack's adapter, and changes that weaken nothing are
not; `modelyard plan --strict` exits 4 on a violation; the pack in policy/ adapts the same rules without
starting its server."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.policy import RULES, RULES_BY_ID, evaluate
from components.policy.rules import UNKNOWN
from components.policy.workloads import HOST_ACCESS_EXEMPT
from tests.conftest import ROOT, SHIPPED_STACKS
from tests.tools import require_tool

KIT_TAGS = {
    "modelyard:project": "p",
    "modelyard:stack": "s",
    "modelyard:preset": "minimal",
    "modelyard:component": "c",
    "modelyard:cost-center": "cc",
}


def res(key: str, type_: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "type": type_,
        "name": key,
        "custom": True,
        "parent": None,
        "provider": None,
        "protect": False,
        "retain_on_delete": False,
        "depends_on": [],
        "inputs": inputs,
        **extra,
    }


def plan_of(*resources: dict[str, Any], manifests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"schema": "modelyard.plan/v1", "resources": list(resources), "manifests": manifests or []}


def manifest(obj: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    return {"source": source or f"{obj['kind']}/{obj['metadata']['name']}", "object": obj}


def ids(plan: dict[str, Any], rule: str) -> list[str]:
    return [v.resource for v in RULES_BY_ID[rule].check(plan)]


# --- S3 ---------------------------------------------------------------------------------------------------

BUCKET = res(
    "b", "aws:s3/bucket:Bucket", {"bucket": "my-bucket", "tags": KIT_TAGS}, protect=True, retain_on_delete=True
)


def _sub(type_: str, inputs: dict[str, Any], *, by_dependency: bool = True) -> dict[str, Any]:
    return res(
        f"b-{type_.rsplit(':', 1)[1]}",
        type_,
        {"bucket": UNKNOWN if by_dependency else "my-bucket", **inputs},
        depends_on=["b"] if by_dependency else [],
    )


SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


def test_bucket_encrypted():
    kms = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]}
    assert ids(plan_of(BUCKET, _sub(SSE, kms)), "bucket-encrypted") == []
    assert ids(plan_of(BUCKET, _sub(SSE, kms, by_dependency=False)), "bucket-encrypted") == []
    assert ids(plan_of(BUCKET), "bucket-encrypted") == ["b"]
    bad = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "none"}}]}
    assert ids(plan_of(BUCKET, _sub(SSE, bad)), "bucket-encrypted") == ["b"]
    unknown = {"rules": UNKNOWN}
    assert ids(plan_of(BUCKET, _sub(SSE, unknown)), "bucket-encrypted") == []


def test_bucket_versioned():
    assert (
        ids(plan_of(BUCKET, _sub(VERSIONING, {"versioningConfiguration": {"status": "Enabled"}})), "bucket-versioned")
        == []
    )
    assert ids(
        plan_of(BUCKET, _sub(VERSIONING, {"versioningConfiguration": {"status": "Suspended"}})), "bucket-versioned"
    ) == ["b"]
    assert ids(plan_of(BUCKET), "bucket-versioned") == ["b"]


def test_bucket_public_access_blocked():
    flags = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
    assert ids(plan_of(BUCKET, _sub(BLOCK, flags)), "bucket-public-access-blocked") == []
    assert ids(
        plan_of(BUCKET, _sub(BLOCK, {**flags, "restrictPublicBuckets": False})), "bucket-public-access-blocked"
    ) == ["b"]
    assert (
        ids(plan_of(BUCKET, _sub(BLOCK, {**flags, "blockPublicPolicy": UNKNOWN})), "bucket-public-access-blocked") == []
    )
    assert ids(plan_of(BUCKET), "bucket-public-access-blocked") == ["b"]


# --- network ----------------------------------------------------------------------------------------------

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def test_no_world_ingress():
    world_443 = {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp"}
    marked = {**world_443, "tags": {"modelyard.dev/exposure": "public-load-balancer"}}
    assert ids(plan_of(res("lb", INGRESS, marked)), "no-world-ingress") == []
    assert ids(plan_of(res("vpc", INGRESS, {**world_443, "cidrIpv4": "10.0.0.0/16"})), "no-world-ingress") == []
    assert ids(plan_of(res("unmarked", INGRESS, world_443)), "no-world-ingress") == ["unmarked"]
    ssh = {**marked, "fromPort": 22, "toPort": 22}
    assert ids(plan_of(res("ssh", INGRESS, ssh)), "no-world-ingress") == ["ssh"]
    sg = res(
        "sg",
        "aws:ec2/securityGroup:SecurityGroup",
        {"ingress": [{"cidrBlocks": ["0.0.0.0/0"], "fromPort": 0, "toPort": 65535, "protocol": "-1"}]},
    )
    assert ids(plan_of(sg), "no-world-ingress") == ["sg"]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "gw",
            "namespace": "gateway",
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"},
        },
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
    }
    assert ids(plan_of(manifests=[manifest(service)]), "no-world-ingress") == ["Service/gw"]
    internal = copy.deepcopy(service)
    internal["metadata"]["annotations"] = {}
    assert ids(plan_of(manifests=[manifest(internal)]), "no-world-ingress") == []


CLUSTER = "aws:eks/cluster:Cluster"


def test_eks_endpoint_restricted():
    private = {"vpcConfig": {"endpointPublicAccess": False, "endpointPrivateAccess": True}}
    limited = {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}}
    assert ids(plan_of(res("p", CLUSTER, private), res("l", CLUSTER, limited)), "eks-endpoint-restricted") == []
    world = {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}}
    default = {"vpcConfig": {"subnetIds": ["subnet-1"]}}  # EKS's default: public to everyone
    assert ids(plan_of(res("w", CLUSTER, world), res("d", CLUSTER, default)), "eks-endpoint-restricted") == ["w", "d"]
    assert ids(plan_of(res("u", CLUSTER, {"vpcConfig": UNKNOWN})), "eks-endpoint-restricted") == []


def test_kms_rotation():
    key = "aws:kms/key:Key"
    assert ids(plan_of(res("k", key, {"enableKeyRotation": True})), "kms-rotation") == []
    assert ids(plan_of(res("a", key, {"customerMasterKeySpec": "RSA_2048"})), "kms-rotation") == []
    assert ids(plan_of(res("k", key, {})), "kms-rotation") == ["k"]
    assert ids(plan_of(res("k", key, {"enableKeyRotation": UNKNOWN})), "kms-rotation") == []


# --- nodes ------------------------------------------------------------------------------------------------


def _node_pool(taints: Any) -> dict[str, Any]:
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu-l40s"},
        "spec": {
            "limits": {"nvidia.com/gpu": "2"},
            "template": {
                "spec": {
                    "taints": taints,
                    "requirements": [{"key": "node.kubernetes.io/instance-type", "values": ["g6e.xlarge"]}],
                }
            },
        },
    }


def test_gpu_nodes_tainted():
    good = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert ids(plan_of(manifests=[manifest(_node_pool(good))]), "gpu-nodes-tainted") == []
    assert ids(plan_of(manifests=[manifest(_node_pool([]))]), "gpu-nodes-tainted") == ["NodePool/gpu-l40s"]
    group = "aws:eks/nodeGroup:NodeGroup"
    tainted = {"amiType": "AL2023_x86_64_NVIDIA", "taints": [{"key": "nvidia.com/gpu", "effect": "NO_SCHEDULE"}]}
    assert ids(plan_of(res("ng", group, tainted)), "gpu-nodes-tainted") == []
    assert ids(plan_of(res("ng", group, {"instanceTypes": ["p5.48xlarge"]})), "gpu-nodes-tainted") == ["ng"]
    assert ids(plan_of(res("sys", group, {"instanceTypes": ["m7i.large"]})), "gpu-nodes-tainted") == []


def test_imdsv2():
    def node_class(options: Any) -> dict[str, Any]:
        return manifest(
            {
                "apiVersion": "karpenter.k8s.aws/v1",
                "kind": "EC2NodeClass",
                "metadata": {"name": "c"},
                "spec": {"metadataOptions": options},
            }
        )

    good = {"httpTokens": "required", "httpPutResponseHopLimit": 1}
    assert ids(plan_of(manifests=[node_class(good)]), "imdsv2") == []
    assert ids(plan_of(manifests=[node_class({"httpTokens": "optional"})]), "imdsv2") == ["EC2NodeClass/c"]
    assert ids(plan_of(manifests=[node_class({**good, "httpPutResponseHopLimit": 2})]), "imdsv2") == ["EC2NodeClass/c"]
    assert ids(plan_of(manifests=[node_class(None)]), "imdsv2") == ["EC2NodeClass/c"]
    template = "aws:ec2/launchTemplate:LaunchTemplate"
    assert ids(plan_of(res("lt", template, {"metadataOptions": good})), "imdsv2") == []
    assert ids(plan_of(res("lt", template, {})), "imdsv2") == ["lt"]
    assert ids(plan_of(res("lt", template, {"metadataOptions": UNKNOWN})), "imdsv2") == []


# --- tenants ----------------------------------------------------------------------------------------------


def _tenant_objects(*, deny: bool = True, quota: bool = True, restricted: bool = True) -> list[dict[str, Any]]:
    labels = {"modelyard.dev/tenant": "a"}
    if restricted:
        labels |= {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")}
    objects = [manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-a", "labels": labels}})]
    if deny:
        objects.append(
            manifest(
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "default-deny", "namespace": "tenant-a"},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
                }
            )
        )
    # An allow policy never counts as the default deny.
    objects.append(
        manifest(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": "allow-dns", "namespace": "tenant-a"},
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [
                        {
                            "to": [
                                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}
                            ],
                            "ports": [{"port": 53}],
                        }
                    ],
                },
            }
        )
    )
    if quota:
        objects.append(
            manifest(
                {
                    "apiVersion": "v1",
                    "kind": "ResourceQuota",
                    "metadata": {"name": "q", "namespace": "tenant-a"},
                    "spec": {"hard": {"pods": "1"}},
                }
            )
        )
    return objects


def test_tenant_namespace_isolated():
    assert ids(plan_of(manifests=_tenant_objects()), "tenant-namespace-isolated") == []
    assert ids(plan_of(manifests=_tenant_objects(deny=False)), "tenant-namespace-isolated") == ["Namespace/tenant-a"]
    assert ids(plan_of(manifests=_tenant_objects(quota=False)), "tenant-namespace-isolated") == ["Namespace/tenant-a"]


def test_tenant_ingress_limited():
    def with_ingress(ingress: list[dict[str, Any]]) -> dict[str, Any]:
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "extra", "namespace": "tenant-a"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress},
        }
        return plan_of(manifests=[*_tenant_objects(), manifest(policy)])

    def ns(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    good = [{"from": [ns("gateway")]}, {"from": [ns("monitoring")]}, {"from": [{"podSelector": {}}]}]
    assert ids(with_ingress(good), "tenant-ingress-limited") == []
    assert ids(with_ingress([{"from": [ns("tenant-a")]}]), "tenant-ingress-limited") == []
    for bad in (
        [{"from": [ns("tenant-b")]}],  # another tenant
        [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
        [{"from": [{"namespaceSelector": {}}]}],  # every namespace
        [{"ports": [{"port": 8000}]}],  # no sources: everyone
    ):
        assert ids(with_ingress(bad), "tenant-ingress-limited") == ["NetworkPolicy/extra"], bad
    assert ids(with_ingress([{"from": UNKNOWN}]), "tenant-ingress-limited") == []


def test_tenant_pod_security():
    assert ids(plan_of(manifests=_tenant_objects()), "tenant-pod-security") == []
    assert ids(plan_of(manifests=_tenant_objects(restricted=False)), "tenant-pod-security") == ["Namespace/tenant-a"]


def _workload(kind: str, namespace: str, name: str, pod: dict[str, Any]) -> dict[str, Any]:
    return manifest(
        {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": pod}},
        }
    )


def test_no_host_access():
    clean = {"containers": [{"name": "c", "image": "r/i:1.0", "securityContext": {"privileged": False}}]}
    assert ids(plan_of(manifests=[_workload("Deployment", "tenant-a", "m", clean)]), "no-host-access") == []
    host = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "securityContext": {"privileged": True}}],
    }
    (violation,) = RULES_BY_ID["no-host-access"].check(
        plan_of(manifests=[_workload("Deployment", "tenant-a", "m", host)])
    )
    assert "hostNetwork" in violation.message and "hostPath" in violation.message and "privileged" in violation.message
    # A named system DaemonSet is exempt (with a reason), the same name in a tenant namespace is not.
    exempt = "kube-system/nvidia-device-plugin"
    assert HOST_ACCESS_EXEMPT[exempt]
    assert (
        ids(plan_of(manifests=[_workload("DaemonSet", "kube-system", "nvidia-device-plugin", host)]), "no-host-access")
        == []
    )
    assert ids(plan_of(manifests=[_workload("DaemonSet", "tenant-a", "nvidia-device-plugin", host)]), "no-host-access")
    assert ids(plan_of(manifests=[_workload("DaemonSet", "kube-system", "other", host)]), "no-host-access")


def test_images_pinned():
    def with_image(image: str, kind: str = "Deployment") -> dict[str, Any]:
        return plan_of(manifests=[_workload(kind, "tenant-a", "m", {"containers": [{"name": "c", "image": image}]})])

    digest = "sha256:" + "a" * 64
    for good in (f"vllm/vllm-openai:v0.17.1@{digest}", f"localhost:5000/x@{digest}", UNKNOWN):
        assert ids(with_image(good), "images-pinned") == [], good
    # A tag is not a pin: it can be moved to other bytes (every shipped image has a digest).
    for bad in ("vllm/vllm-openai:v0.17.1", "vllm/vllm-openai", "vllm/vllm-openai:latest", "localhost:5000/x"):
        assert ids(with_image(bad), "images-pinned") == ["Deployment/m"], bad
    assert ids(with_image("x:1", "Job"), "images-pinned") == ["Job/m"]


def test_no_plain_secrets():
    rds = "aws:rds/instance:Instance"
    assert (
        ids(
            plan_of(res("db", rds, {"password": "[secret]", "secretName": "x", "tokenExpirationSeconds": 3600})),
            "no-plain-secrets",
        )
        == []
    )
    assert ids(plan_of(res("db", rds, {"masterPassword": "hunter2"})), "no-plain-secrets") == ["db"]
    assert ids(plan_of(res("db", rds, {"masterPassword": UNKNOWN})), "no-plain-secrets") == []
    references = {
        "master_key": "os.environ/LITELLM_MASTER_KEY",
        "apiToken": "arn:aws:secretsmanager:us-east-1:1:secret:x",
    }
    assert ids(plan_of(res("gw", rds, references)), "no-plain-secrets") == []
    env_ok = {
        "containers": [{"name": "c", "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}]
    }
    env_bad = {"containers": [{"name": "c", "env": [{"name": "OPENAI_API_KEY", "value": "sk-123"}]}]}
    assert ids(plan_of(manifests=[_workload("Deployment", "gateway", "g", env_ok)]), "no-plain-secrets") == []
    assert ids(plan_of(manifests=[_workload("Deployment", "gateway", "g", env_bad)]), "no-plain-secrets") == [
        "Deployment/g"
    ]


def test_stateful_protected():
    assert ids(plan_of(BUCKET), "stateful-protected") == []
    bare = res("b", "aws:s3/bucket:Bucket", {})
    assert ids(plan_of(bare), "stateful-protected") == ["b"]
    # The key an EKS cluster encrypts secrets with lives and dies with the cluster.
    key = res("k::aws:kms/key:Key", "aws:kms/key:Key", {"enableKeyRotation": True})
    cluster = res("c", CLUSTER, {"encryptionConfig": {"resources": ["secrets"]}}, depends_on=[key["key"]])
    assert ids(plan_of(key, cluster), "stateful-protected") == []
    assert ids(plan_of(key), "stateful-protected") == [key["key"]]


def test_tags_present():
    vpc = "aws:ec2/vpc:Vpc"
    assert ids(plan_of(res("v", vpc, {"tags": KIT_TAGS})), "tags-present") == []
    assert ids(plan_of(res("v", vpc, {"tags": {"Name": "x"}})), "tags-present") == ["v"]
    assert ids(plan_of(res("alias", "aws:kms/alias:Alias", {})), "tags-present") == []  # not taggable
    provider = res("prov", "pulumi:providers:aws", {"defaultTags": {"tags": KIT_TAGS}})
    assert ids(plan_of(provider, res("v", vpc, {}, provider="prov")), "tags-present") == []


# --- AWS policy documents ---------------------------------------------------------------------------------


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def test_resource_policy_not_public():
    def bucket(*statements: dict[str, Any], policy: Any = None) -> dict[str, Any]:
        return plan_of(res("bp", BUCKET_POLICY, {"policy": policy if policy is not None else _doc(*statements)}))

    deny_http = {**_allow("s3:*", Principal="*"), "Effect": "Deny"}
    service = _allow("s3:PutObject", Principal={"Service": "logging.s3.amazonaws.com"})
    from_trail = _allow(
        "s3:PutObject", Principal="*", Condition={"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:::trail/t"}}
    )
    assert ids(bucket(deny_http, service, from_trail), "resource-policy-not-public") == []
    assert ids(bucket(policy=UNKNOWN), "resource-policy-not-public") == []
    for bad in (
        _allow("s3:GetObject", Principal="*"),
        _allow("s3:GetObject", Principal={"AWS": ["arn:aws:iam::1:root", "*"]}),
        # TLS is not a caller; ...IfExists holds when the key is missing; "*" narrows nothing.
        _allow("s3:GetObject", Principal="*", Condition={"Bool": {"aws:SecureTransport": "true"}}),
        _allow("s3:GetObject", Principal="*", Condition={"StringEqualsIfExists": {"aws:SourceAccount": "1"}}),
        _allow("s3:GetObject", Principal="*", Condition={"StringLike": {"aws:PrincipalArn": "*"}}),
        _allow("s3:GetObject", NotPrincipal={"AWS": "arn:aws:iam::1:root"}),
    ):
        assert ids(bucket(bad), "resource-policy-not-public") == ["bp"], bad
    # An object rather than JSON text, and a key policy: the account's root is not everyone.
    key = res("k", "aws:kms/key:Key", {"policy": {"Statement": [_allow("kms:*", Principal={"AWS": "*"})]}})
    assert ids(plan_of(key), "resource-policy-not-public") == ["k"]
    root = res("k", "aws:kms/key:Key", {"policy": _doc(_allow("kms:*", Principal={"AWS": "arn:aws:iam::1:root"}))})
    assert ids(plan_of(root), "resource-policy-not-public") == []


def test_iam_no_wildcard_actions():
    def role_policy(*statements: dict[str, Any]) -> dict[str, Any]:
        return plan_of(res("rp", ROLE_POLICY, {"policy": _doc(*statements)}))

    fine = (_allow("s3:Get*", "arn:aws:s3:::b/*"), {**_allow("*"), "Effect": "Deny"}, _allow(["ec2:Describe*"]))
    assert ids(role_policy(*fine), "iam-no-wildcard-actions") == []
    for bad in (
        _allow("*"),
        _allow(["s3:GetObject", "s3:*"], "arn:aws:s3:::b/*"),
        {**_allow("x"), "NotAction": "iam:*"},
    ):
        assert ids(role_policy(bad), "iam-no-wildcard-actions") == ["rp"], bad
    inline = res("r", ROLE, {"inlinePolicies": [{"name": "i", "policy": _doc(_allow("kms:*", "arn:k"))}]})
    assert ids(plan_of(inline), "iam-no-wildcard-actions") == ["r"]
    attach = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    admin = res("a", attach, {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    s3_full = res("f", ROLE, {"managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]})
    worker = res("w", attach, {"policyArn": "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy"})
    assert ids(plan_of(admin, s3_full, worker), "iam-no-wildcard-actions") == ["a", "f"]
    assert ids(plan_of(res("rp", ROLE_POLICY, {"policy": UNKNOWN})), "iam-no-wildcard-actions") == []


def _trusted_by(key: str, service: str) -> dict[str, Any]:
    return res(key, ROLE, {"assumeRolePolicy": _doc(_allow("sts:AssumeRole", Principal={"Service": service}))})


def test_iam_writes_scoped():
    def role_policy(*statements: dict[str, Any], role: str = "codebuild.amazonaws.com") -> dict[str, Any]:
        policy = res("rp", ROLE_POLICY, {"policy": _doc(*statements)}, depends_on=["role"])
        return plan_of(_trusted_by("role", role), policy)

    reads = (
        _allow(["ec2:DescribeInstances", "ec2:Describe*", "iam:ListInstanceProfiles", "pricing:GetProducts"]),
        _allow("ecr:GetAuthorizationToken"),
        _allow("s3:PutObject", "arn:aws:s3:::b/models/*"),
        _allow("ec2:TerminateInstances", "*", Condition={"StringEquals": {"aws:ResourceTag/owner": "me"}}),
    )
    assert ids(role_policy(*reads), "iam-writes-scoped") == []
    for bad in (
        _allow("s3:PutObject"),
        _allow("s3:GetObject"),  # a read of data: every object of the account
        _allow("s3:Get*"),
        _allow("secretsmanager:GetSecretValue"),
        _allow("kms:Decrypt"),
        _allow("s3:PutObject", "arn:aws:s3:::*/*"),
        {"Effect": "Allow", "Action": "s3:PutObject", "NotResource": "arn:aws:s3:::b/*"},
        _allow("ec2:TerminateInstances", "*", Condition={"StringEqualsIfExists": {"aws:ResourceTag/owner": "me"}}),
        _allow("s3:PutObject", "*", Condition={"Bool": {"aws:SecureTransport": "true"}}),
    ):
        assert ids(role_policy(bad), "iam-writes-scoped") == ["rp"], bad
    # CodeBuild's documented VPC policy: exempt for a role only CodeBuild assumes, for those actions only.
    interfaces = _allow(["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeVpcs"])
    assert ids(role_policy(interfaces), "iam-writes-scoped") == []
    assert ids(role_policy(interfaces, role="ec2.amazonaws.com"), "iam-writes-scoped") == ["rp"]
    assert ids(role_policy(_allow("ec2:TerminateInstances")), "iam-writes-scoped") == ["rp"]
    assert ids(plan_of(res("rp", ROLE_POLICY, {"policy": _doc(interfaces)})), "iam-writes-scoped") == ["rp"]


def test_trust_policy_not_public():
    def role(*statements: dict[str, Any]) -> dict[str, Any]:
        return plan_of(res("r", ROLE, {"assumeRolePolicy": _doc(*statements)}))

    oidc = "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"
    sub = {"StringLike": {"token.actions.githubusercontent.com:sub": "repo:o/r:*"}}
    fine = (
        _allow("sts:AssumeRole", Principal={"Service": "pods.eks.amazonaws.com"}),
        _allow("sts:AssumeRole", Principal={"AWS": "arn:aws:iam::1:root"}),
        _allow("sts:AssumeRole", Principal="*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-1"}}),
        _allow("sts:AssumeRoleWithWebIdentity", Principal={"Federated": oidc}, Condition=sub),
    )
    assert ids(role(*fine), "trust-policy-not-public") == []
    audience_only = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
    for bad in (
        _allow("sts:AssumeRole", Principal={"AWS": "*"}),
        _allow("sts:AssumeRole", Principal="*"),
        _allow("sts:AssumeRoleWithWebIdentity", Principal={"Federated": oidc}, Condition=audience_only),
        _allow("sts:AssumeRoleWithSAML", Principal={"Federated": "arn:aws:iam::1:saml-provider/idp"}),
    ):
        assert ids(role(bad), "trust-policy-not-public") == ["r"], bad
    assert ids(plan_of(res("r", ROLE, {"assumeRolePolicy": UNKNOWN})), "trust-policy-not-public") == []


# --- databases, logs, cluster encryption ------------------------------------------------------------------

RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
GOOD_RDS = {
    "engine": "postgres",
    "engineVersion": "17",
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "finalSnapshotIdentifier": "db-final",
}
GOOD_CACHE = {
    "atRestEncryptionEnabled": True,
    "transitEncryptionEnabled": True,
    "transitEncryptionMode": "required",
    "snapshotRetentionLimit": 7,
}


def test_database_encrypted():
    assert ids(plan_of(res("db", RDS, GOOD_RDS), res("c", CACHE, GOOD_CACHE)), "database-encrypted") == []
    assert ids(plan_of(res("db", RDS, {**GOOD_RDS, "storageEncrypted": False})), "database-encrypted") == ["db"]
    assert ids(plan_of(res("db", RDS, {**GOOD_RDS, "storageEncrypted": UNKNOWN})), "database-encrypted") == []
    # PostgreSQL's default group forces TLS from 15 (RDS user guide); before, only a group that says so.
    assert ids(plan_of(res("db", RDS, {**GOOD_RDS, "engineVersion": "14.12"})), "database-encrypted") == ["db"]
    named = {**GOOD_RDS, "engineVersion": "14.12", "parameterGroupName": "tls-only"}
    assert ids(plan_of(res("db", RDS, named)), "database-encrypted") == []
    group = "aws:rds/parameterGroup:ParameterGroup"
    off = {"family": "postgres17", "parameters": [{"name": "rds.force_ssl", "value": "0"}]}
    assert ids(plan_of(res("pg", group, off)), "database-encrypted") == ["pg"]
    on = {"family": "postgres17", "parameters": [{"name": "rds.force_ssl", "value": "1"}]}
    assert ids(plan_of(res("pg", group, on)), "database-encrypted") == []
    for bad in (
        {"transitEncryptionEnabled": False},
        {"atRestEncryptionEnabled": None},
        {"transitEncryptionMode": "preferred"},
    ):
        assert ids(plan_of(res("c", CACHE, {**GOOD_CACHE, **bad})), "database-encrypted") == ["c"], bad


def test_database_private():
    assert ids(plan_of(res("db", RDS, GOOD_RDS)), "database-private") == []
    assert ids(plan_of(res("db", RDS, {**GOOD_RDS, "publiclyAccessible": True})), "database-private") == ["db"]


def test_database_retained():
    assert ids(plan_of(res("db", RDS, GOOD_RDS), res("c", CACHE, GOOD_CACHE)), "database-retained") == []
    for bad in ({"deletionProtection": False}, {"skipFinalSnapshot": True}, {"finalSnapshotIdentifier": None}):
        assert ids(plan_of(res("db", RDS, {**GOOD_RDS, **bad})), "database-retained") == ["db"], bad
    assert ids(plan_of(res("c", CACHE, {**GOOD_CACHE, "snapshotRetentionLimit": 0})), "database-retained") == ["c"]
    final = {**GOOD_CACHE, "snapshotRetentionLimit": 0, "finalSnapshotIdentifier": "last"}
    assert ids(plan_of(res("c", CACHE, final)), "database-retained") == []


def test_log_retention():
    group = "aws:cloudwatch/logGroup:LogGroup"
    assert (
        ids(
            plan_of(res("g", group, {"retentionInDays": 90}), res("u", group, {"retentionInDays": UNKNOWN})),
            "log-retention",
        )
        == []
    )
    assert ids(plan_of(res("g", group, {}), res("z", group, {"retentionInDays": 0})), "log-retention") == ["g", "z"]


def test_vpc_flow_logs():
    vpc = res("v", "aws:ec2/vpc:Vpc", {})
    flow = "aws:ec2/flowLog:FlowLog"
    assert ids(plan_of(vpc, res("f", flow, {"vpcId": UNKNOWN}, depends_on=["v"])), "vpc-flow-logs") == []
    assert ids(plan_of(vpc), "vpc-flow-logs") == ["v"]
    assert ids(plan_of(vpc, res("f", flow, {"subnetId": "s"}, depends_on=["s"])), "vpc-flow-logs") == ["v"]
    assert ids(plan_of(vpc, res("f", flow, {"vpcId": UNKNOWN})), "vpc-flow-logs") == []  # which VPC: undecided


def test_eks_secrets_encrypted():
    good = {"encryptionConfig": {"resources": ["secrets"], "provider": {"keyArn": "arn:aws:kms:k"}}}
    assert ids(plan_of(res("c", CLUSTER, good)), "eks-secrets-encrypted") == []
    assert (
        ids(
            plan_of(res("c", CLUSTER, {"encryptionConfig": {"resources": ["secrets"], "provider": UNKNOWN}})),
            "eks-secrets-encrypted",
        )
        == []
    )
    assert ids(plan_of(res("c", CLUSTER, {})), "eks-secrets-encrypted") == ["c"]
    assert ids(
        plan_of(res("c", CLUSTER, {"encryptionConfig": {"resources": [], "provider": {"keyArn": "k"}}})),
        "eks-secrets-encrypted",
    ) == ["c"]


# --- tenants: quota, egress, admission, administration ----------------------------------------------------


def _object(kind: str, name: str, namespace: str | None = "tenant-a", **fields: Any) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return manifest({"apiVersion": "v1", "kind": kind, "metadata": metadata, **fields})


GPU_QUOTA = {"requests.nvidia.com/gpu": "2", "services.nodeports": "0", "services.loadbalancers": "0"}


def test_tenant_quota():
    def with_hard(hard: Any) -> dict[str, Any]:
        objects = [o for o in _tenant_objects(quota=False)]
        return plan_of(manifests=[*objects, _object("ResourceQuota", "q", spec={"hard": hard})])

    assert ids(with_hard(GPU_QUOTA), "tenant-quota") == []
    assert ids(with_hard(UNKNOWN), "tenant-quota") == []
    no_gpus = {k: v for k, v in GPU_QUOTA.items() if k != "requests.nvidia.com/gpu"}
    for bad in (no_gpus, {**GPU_QUOTA, "services.nodeports": "3"}, {"requests.nvidia.com/gpu": "2"}):
        assert ids(with_hard(bad), "tenant-quota") == ["Namespace/tenant-a"], bad
    assert ids(plan_of(manifests=_tenant_objects(quota=False)), "tenant-quota") == ["Namespace/tenant-a"]


def test_tenant_limit_range():
    defaults = {"limits": [{"type": "Container", "defaultRequest": {"cpu": "100m"}}]}
    base = _tenant_objects()
    assert ids(plan_of(manifests=[*base, _object("LimitRange", "d", spec=defaults)]), "tenant-limit-range") == []
    assert ids(plan_of(manifests=[*base, _object("LimitRange", "d", spec=UNKNOWN)]), "tenant-limit-range") == []
    assert ids(plan_of(manifests=base), "tenant-limit-range") == ["Namespace/tenant-a"]
    pods_only = {"limits": [{"type": "Pod", "max": {"cpu": "4"}}]}
    assert ids(plan_of(manifests=[*base, _object("LimitRange", "d", spec=pods_only)]), "tenant-limit-range") == [
        "Namespace/tenant-a"
    ]


def test_tenant_egress_limited():
    def with_egress(egress: Any) -> dict[str, Any]:
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "out", "namespace": "tenant-a"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": egress},
        }
        return plan_of(manifests=[*_tenant_objects(), manifest(policy)])

    def ns(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    private = ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]
    good = [
        {"to": [ns("kube-system")], "ports": [{"port": 53}]},
        {"to": [ns("gateway"), ns("tenant-a"), {"podSelector": {}}]},
        {"to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}]},  # the Pod Identity agent on the node
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": private}}], "ports": [{"port": 443}]},
        {"to": [{"ipBlock": {"cidr": "52.216.0.0/15"}}]},
        {"to": UNKNOWN},
    ]
    assert ids(with_egress(good), "tenant-egress-limited") == []
    for bad in (
        [{"ports": [{"port": 443}]}],  # no destinations: everything
        [{"to": []}],
        [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}],
        [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": private[:2] + private[3:]}}]}],  # the IMDS
        [{"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]}],
        [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]}],
        [{"to": [{"ipBlock": {"cidr": "::/0"}}]}],
        [{"to": [ns("tenant-b")]}],
        [{"to": [{"namespaceSelector": {}}]}],
    ):
        assert ids(with_egress(bad), "tenant-egress-limited") == ["NetworkPolicy/out"], bad


def _dedicated_pool(tenant: str = "a") -> dict[str, Any]:
    pool = _node_pool(
        [
            {"key": "nvidia.com/gpu", "effect": "NoSchedule"},
            {"key": "modelyard.dev/tenant", "value": tenant, "effect": "NoSchedule"},
        ]
    )
    return manifest(pool)


def _admission(*, policy: dict[str, Any] | None = None, binding: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    policy_spec = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"resources": ["pods"], "operations": ["CREATE", "UPDATE"]}]},
        "validations": [{"expression": "object.spec.tolerations.all(t, t.key != 'modelyard.dev/tenant')"}],
        **(policy or {}),
    }
    binding_spec = {"policyName": "guard", "validationActions": ["Deny"], **(binding or {})}
    return [
        _object("ValidatingAdmissionPolicy", "guard", None, spec=policy_spec),
        _object("ValidatingAdmissionPolicyBinding", "guard", None, spec=binding_spec),
    ]


def test_tenant_pool_admission():
    pool = _dedicated_pool()
    assert ids(plan_of(manifests=[*_tenant_objects(), pool, *_admission()]), "tenant-pool-admission") == []
    # No dedicated pool, nothing to guard; a pool's taints unknown: undecided.
    shared = manifest(_node_pool([{"key": "nvidia.com/gpu", "effect": "NoSchedule"}]))
    assert ids(plan_of(manifests=[shared]), "tenant-pool-admission") == []
    assert ids(plan_of(manifests=[manifest(_node_pool(UNKNOWN))]), "tenant-pool-admission") == []
    assert ids(plan_of(manifests=[pool]), "tenant-pool-admission") == ["NodePool/gpu-l40s"]
    policy_source, binding_source = "ValidatingAdmissionPolicy/guard", "ValidatingAdmissionPolicyBinding/guard"
    for weakened, where in (
        (_admission(policy={"failurePolicy": "Ignore"}), policy_source),
        (_admission(policy={"validations": [{"expression": "true"}]}), "NodePool/gpu-l40s"),
        (
            _admission(
                policy={"matchConstraints": {"resourceRules": [{"resources": ["pods"], "operations": ["UPDATE"]}]}}
            ),
            policy_source,
        ),
        (_admission(binding={"validationActions": ["Audit"]}), policy_source),
        (_admission(binding={"policyName": "other"}), policy_source),
        (_admission()[:1], policy_source),
        (
            _admission(
                binding={
                    "matchResources": {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/metadata.name",
                                    "operator": "NotIn",
                                    "values": ["kube-system", "tenant-a"],
                                }
                            ]
                        }
                    }
                }
            ),
            binding_source,
        ),
    ):
        assert ids(plan_of(manifests=[*_tenant_objects(), pool, *weakened]), "tenant-pool-admission") == [where], (
            weakened
        )
    static = res(
        "ng",
        "aws:eks/nodeGroup:NodeGroup",
        {"taints": [{"key": "modelyard.dev/tenant", "value": "a", "effect": "NO_SCHEDULE"}]},
    )
    assert ids(plan_of(static), "tenant-pool-admission") == ["ng"]


def _binding(kind: str, role: str, *subjects: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    obj = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "b", **({"namespace": namespace} if namespace else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": list(subjects),
    }
    return manifest(obj)


ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
CLUSTER_ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def test_tenant_not_admin():
    tenant_sa = {"kind": "ServiceAccount", "name": "model-server", "namespace": "tenant-a"}
    base = _tenant_objects()
    fine = [
        _binding("ClusterRoleBinding", "view", tenant_sa),
        _binding("ClusterRoleBinding", "cluster-admin", {"kind": "Group", "name": "platform-admins"}),
        _binding(
            "RoleBinding", "admin", {"kind": "ServiceAccount", "name": "x", "namespace": "gateway"}, namespace="gateway"
        ),
    ]
    assert ids(plan_of(manifests=[*base, *fine]), "tenant-not-admin") == []
    for bad in (
        _binding("ClusterRoleBinding", "cluster-admin", tenant_sa),
        _binding("RoleBinding", "admin", {"kind": "ServiceAccount", "name": "default"}, namespace="tenant-a"),
        _binding(
            "RoleBinding", "edit", {"kind": "Group", "name": "system:serviceaccounts:tenant-a"}, namespace="tenant-a"
        ),
        _binding("ClusterRoleBinding", "admin", {"kind": "Group", "name": "system:authenticated"}),
        _binding("ClusterRoleBinding", "cluster-admin", {"kind": "User", "name": "system:serviceaccount:tenant-a:m"}),
    ):
        assert ids(plan_of(manifests=[*base, bad]), "tenant-not-admin") == [
            "ClusterRoleBinding/b" if bad["object"]["kind"] == "ClusterRoleBinding" else "RoleBinding/b"
        ], bad
    # A role of the plan that grants every verb on every resource is admin too.
    star = _object("ClusterRole", "everything", None, rules=[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}])
    custom = _binding("ClusterRoleBinding", "everything", tenant_sa)
    assert ids(plan_of(manifests=[*base, star, custom]), "tenant-not-admin") == ["ClusterRoleBinding/b"]
    # EKS: a tenant team is known by its view association scoped to its namespace.
    team = "arn:aws:iam::1:role/team-a"
    view = res(
        "view",
        ASSOCIATION,
        {"principalArn": team, "policyArn": VIEW, "accessScope": {"type": "namespace", "namespaces": ["tenant-a"]}},
    )
    entry = res("entry", "aws:eks/accessEntry:AccessEntry", {"principalArn": team, "kubernetesGroups": ["team-a"]})
    assert ids(plan_of(view, entry, manifests=base), "tenant-not-admin") == []
    admin = res(
        "admin", ASSOCIATION, {"principalArn": team, "policyArn": CLUSTER_ADMIN, "accessScope": {"type": "cluster"}}
    )
    assert ids(plan_of(view, entry, admin, manifests=base), "tenant-not-admin") == ["admin"]
    scoped = res(
        "scoped",
        ASSOCIATION,
        {
            "principalArn": "arn:aws:iam::1:role/x",
            "policyArn": CLUSTER_ADMIN.replace("ClusterAdmin", "Edit"),
            "accessScope": {"type": "namespace", "namespaces": ["tenant-a"]},
        },
    )
    assert ids(plan_of(scoped, manifests=base), "tenant-not-admin") == ["scoped"]
    deployer = res(
        "d",
        ASSOCIATION,
        {
            "principalArn": "arn:aws:iam::1:role/deployer",
            "policyArn": CLUSTER_ADMIN,
            "accessScope": {"type": "cluster"},
        },
    )
    assert ids(plan_of(view, deployer, manifests=base), "tenant-not-admin") == []
    group_admin = _binding("ClusterRoleBinding", "cluster-admin", {"kind": "Group", "name": "team-a"})
    assert ids(plan_of(view, entry, manifests=[*base, group_admin]), "tenant-not-admin") == ["ClusterRoleBinding/b"]


# --- pods and services ------------------------------------------------------------------------------------

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 10001,
}


def _pod(security: dict[str, Any] | None = None, **pod: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "r/i@sha256:" + "a" * 64, "securityContext": {**RESTRICTED, **(security or {})}}
    return {"automountServiceAccountToken": False, "containers": [container], **pod}


def test_capabilities_dropped():
    assert ids(plan_of(manifests=[_workload("Deployment", "tenant-a", "m", _pod())]), "capabilities-dropped") == []
    added = _pod({"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}})
    assert ids(plan_of(manifests=[_workload("Deployment", "gateway", "g", added)]), "capabilities-dropped") == [
        "Deployment/g"
    ]
    kept = _pod({"capabilities": {}})
    assert ids(plan_of(manifests=[_workload("Deployment", "tenant-a", "m", kept)]), "capabilities-dropped") == [
        "Deployment/m"
    ]
    assert ids(plan_of(manifests=[_workload("Deployment", "gateway", "g", kept)]), "capabilities-dropped") == []
    exempt = _workload("DaemonSet", "monitoring", "dcgm-exporter", added)
    assert ids(plan_of(manifests=[exempt]), "capabilities-dropped") == []
    unknown = _pod({"capabilities": UNKNOWN})
    assert ids(plan_of(manifests=[_workload("Deployment", "tenant-a", "m", unknown)]), "capabilities-dropped") == []


def test_pod_non_root():
    def check(namespace: str, pod: dict[str, Any]) -> list[str]:
        return ids(plan_of(manifests=[_workload("Deployment", namespace, "m", pod)]), "pod-non-root")

    assert check("tenant-a", _pod()) == []
    assert check("gateway", _pod({"runAsNonRoot": None, "runAsUser": None})) == []  # unset, outside tenants
    assert check("gateway", _pod({"runAsUser": 0})) == ["Deployment/m"]
    assert check("gateway", _pod({"runAsNonRoot": False, "runAsUser": None})) == ["Deployment/m"]
    assert check("gateway", _pod({"runAsNonRoot": False})) == []  # a non-root user is set
    # The container's own setting wins over the pod's.
    container_root = _pod({"runAsUser": 0}, securityContext={"runAsUser": 10001})
    assert check("gateway", container_root) == ["Deployment/m"]
    pod_level = _pod(securityContext={"runAsNonRoot": True})
    del pod_level["containers"][0]["securityContext"]["runAsNonRoot"]
    assert check("tenant-a", pod_level) == []
    unset = _pod()
    del unset["containers"][0]["securityContext"]["runAsNonRoot"]
    assert check("tenant-a", unset) == ["Deployment/m"]
    assert check("tenant-a", _pod({"runAsUser": UNKNOWN})) == []


def test_no_privilege_escalation():
    def check(namespace: str, pod: dict[str, Any]) -> list[str]:
        return ids(plan_of(manifests=[_workload("StatefulSet", namespace, "m", pod)]), "no-privilege-escalation")

    assert check("tenant-a", _pod()) == []
    assert check("gateway", _pod({"allowPrivilegeEscalation": True})) == ["StatefulSet/m"]
    unset = _pod()
    del unset["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    assert check("tenant-a", unset) == ["StatefulSet/m"]
    assert check("gateway", unset) == []
    assert check("tenant-a", _pod({"allowPrivilegeEscalation": UNKNOWN})) == []


def test_no_host_port_and_no_node_port():
    pod = _pod()
    pod["containers"][0]["ports"] = [{"containerPort": 8000, "hostPort": 8000}]
    assert ids(plan_of(manifests=[_workload("Deployment", "tenant-a", "m", pod)]), "no-host-port") == ["Deployment/m"]
    pod["containers"][0]["ports"] = [{"containerPort": 8000}]
    assert ids(plan_of(manifests=[_workload("Deployment", "tenant-a", "m", pod)]), "no-host-port") == []

    def service(spec: Any) -> dict[str, Any]:
        return plan_of(manifests=[_object("Service", "s", spec=spec)])

    assert ids(service({"type": "ClusterIP", "ports": [{"port": 80}]}), "no-node-port") == []
    assert ids(service(UNKNOWN), "no-node-port") == []
    assert ids(service({"type": "NodePort", "ports": [{"port": 80}]}), "no-node-port") == ["Service/s"]
    assert ids(service({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30080}]}), "no-node-port") == [
        "Service/s"
    ]


def test_tenant_token_not_automounted():
    account = _object("ServiceAccount", "model-server", automountServiceAccountToken=False)

    def check(pod: dict[str, Any], *objects: dict[str, Any], namespace: str = "tenant-a") -> list[str]:
        return ids(
            plan_of(manifests=[*objects, _workload("Deployment", namespace, "m", pod)]), "tenant-token-not-automounted"
        )

    assert check(_pod()) == []
    assert check(_pod(automountServiceAccountToken=None, serviceAccountName="model-server"), account) == []
    assert check(_pod(automountServiceAccountToken=True, serviceAccountName="model-server"), account) == [
        "Deployment/m"
    ]
    assert check(_pod(automountServiceAccountToken=None)) == ["Deployment/m"]  # the default account mounts
    mounting = _object("ServiceAccount", "model-server")
    assert check(_pod(automountServiceAccountToken=None, serviceAccountName="model-server"), mounting) == [
        "Deployment/m"
    ]
    assert check(_pod(automountServiceAccountToken=None), namespace="gateway") == []
    assert check(_pod(automountServiceAccountToken=UNKNOWN)) == []


def test_pod_rules_read_every_pod_template():
    """CronJobs and LeaderWorkerSets (a multi-node model's leader and worker templates) are judged like Deployments."""
    bad = _pod({"runAsUser": 0, "allowPrivilegeEscalation": True})
    lws = manifest(
        {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "metadata": {"name": "m", "namespace": "tenant-a"},
            "spec": {"leaderWorkerTemplate": {"leaderTemplate": {"spec": _pod()}, "workerTemplate": {"spec": bad}}},
        }
    )
    cron = manifest(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "c", "namespace": "tenant-a"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": bad}}}},
        }
    )
    for rule in ("pod-non-root", "no-privilege-escalation"):
        assert ids(plan_of(manifests=[lws, cron]), rule) == ["LeaderWorkerSet/m", "CronJob/c"], rule


# --- secrets in ConfigMaps --------------------------------------------------------------------------------


def test_configmap_no_secrets():
    def config_map(**data: str) -> dict[str, Any]:
        return plan_of(manifests=[_object("ConfigMap", "cm", "gateway", data=data)])

    fine = {
        "config.yaml": "api_key: none\nmaster_key: os.environ/LITELLM_MASTER_KEY\ntoken_ttl: 3600\npassword: ''\n",
        "auth.py": 'token = os.environ.get("TOKEN")\napi_key = api_key[7:].strip()\nf(api_key=offered,\n',
        "settings.json": '{"secret_name": "litellm", "keys": {}}',
        "url.txt": "postgresql://litellm@db:5432/litellm?sslmode=require",
    }
    assert ids(config_map(**fine), "configmap-no-secrets") == []
    assert ids(plan_of(manifests=[_object("ConfigMap", "cm", data=UNKNOWN)]), "configmap-no-secrets") == []
    for key, text in (
        ("config.yaml", "general_settings:\n  master_key: sk-litellm-1234\n"),
        ("config.yaml", "  - password: hunter2hunter2\n"),
        ("app.env", "export API_TOKEN=abcdef123456\n"),
        ("settings.json", '{\n  "client_secret": "s3cr3t-value",\n}'),
        ("auth.py", 'API_KEY = "sk-abc"\n'),
        ("notes.txt", "key AKIAIOSFODNN7EXAMPLE in the text"),
        ("tls.pem", "-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n"),
        ("hub.txt", "hf_" + "a" * 34),
        ("db.txt", "DATABASE_URL is postgresql://litellm:pw12345@db:5432/litellm"),
        ("ci.txt", "ghp_" + "A" * 36),
    ):
        assert ids(config_map(**{key: text}), "configmap-no-secrets") == ["ConfigMap/cm"], (key, text)


def test_the_security_doc_lists_every_rule():
    """docs/security.md's rules table names each rule of RULES, and no other."""
    doc = (ROOT / "docs" / "security.md").read_text()
    table = doc[doc.index("| rule | holds |") : doc.index("**What the rules can and cannot tell")]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    listed = {name for row in rows for name in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    assert listed == {r.id for r in RULES}


def test_every_rule_has_a_test_here():
    source = Path(__file__).read_text()
    for rule in RULES:
        assert f'"{rule.id}"' in source, rule.id


# --- shipped stacks, plan command -------------------------------------------------------------------------


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_shipped_stacks_pass_every_rule(plans, preview_plans, stack):
    assert evaluate(plans[stack]) == []
    assert evaluate(preview_plans[stack]) == []


def test_rules_see_the_shipped_objects(plans):
    """The rules are not vacuous: the shipped plans hold what they judge."""
    plan = plans["core"]
    kinds = {m["object"]["kind"] for m in plan["manifests"]}
    assert {"Namespace", "NetworkPolicy", "ResourceQuota", "NodePool", "EC2NodeClass"} <= kinds
    broken = copy.deepcopy(plan)
    broken["manifests"] = [m for m in broken["manifests"] if m["object"]["metadata"].get("name") != "default-deny"]
    assert {v.rule for v in evaluate(broken)} == {"tenant-namespace-isolated"}


def test_plan_strict_exits_4_on_a_violation(tmp_path):
    """Violations are printed on every plan; with --strict the command exits 4 (a subprocess: the exit code
    is what CI sees)."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    config = {
        "modelyard:preset": "minimal",
        "modelyard:cluster": {"public_cidrs": ["0.0.0.0/0"], "allow_public_world": True},
    }
    (tmp_path / "stacks" / "Pulumi.open.yaml").write_text(yaml.safe_dump({"config": config}))
    command = [sys.executable, "-m", "components.cli", "plan", "--stack", "open", "--project-dir", str(tmp_path)]
    result = subprocess.run([*command, "--strict"], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 4, result.stderr[-2000:]
    assert "policy: 1 violation\n" in result.stdout
    assert "[eks-endpoint-restricted]" in result.stdout


# --- the pack ---------------------------------------------------------------------------------------------


def _load_pack_rules():
    spec = importlib.util.spec_from_file_location("modelyard_policy_rules", ROOT / "policy" / "rules_adapter.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _Opts:
    def __init__(self, protect: bool) -> None:
        self.protect = protect


class _Res:
    """The attributes of pulumi_policy.PolicyResource the adapter reads."""

    def __init__(self, urn: str, type_: str, props: dict[str, Any], *, deps=(), protect=False, provider=None) -> None:
        self.urn, self.resource_type, self.props, self.name = urn, type_, props, urn.rsplit("::", 1)[-1]
        self.dependencies, self.opts, self.provider, self.parent = list(deps), _Opts(protect), provider, None


def test_pack_adapts_the_same_rules_without_starting_a_server():
    pack = _load_pack_rules()
    assert [p.id for p in pack.policies()] == [r.id for r in RULES]
    assert "pulumi_policy" not in sys.modules or pack.__name__  # importing the adapter never builds the pack
    bucket = _Res("urn:b", "aws:s3/bucket:Bucket", {"bucket": "x", "tags": KIT_TAGS}, protect=True)
    plan = pack.plan_from_resources([bucket])
    assert plan["resources"][0]["key"] == "urn:b" and plan["resources"][0]["retain_on_delete"] is None
    found = {v.rule for v in evaluate(plan)}
    assert {"bucket-encrypted", "bucket-versioned", "bucket-public-access-blocked"} <= found
    assert "stateful-protected" not in found  # protect known, retain-on-delete unknown to the pack: undecided
    # Unknown values (the pack's sentinel) become the plan's "(known after apply)": undecided.
    key = _Res("urn:k", "aws:kms/key:Key", {"enableKeyRotation": pack.UNKNOWN_SENTINELS[0], "tags": KIT_TAGS})
    assert RULES_BY_ID["kms-rotation"].check(pack.plan_from_resources([key])) == []
    namespace = _Res(
        "urn:ns",
        "kubernetes:core/v1:Namespace",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tenant-z"}},
    )
    assert {v.rule for v in evaluate(pack.plan_from_resources([namespace]))} == {
        "tenant-namespace-isolated",
        "tenant-pod-security",
        "tenant-quota",
        "tenant-limit-range",
    }


def test_pack_entry_point_builds_one_stack_policy_per_rule(monkeypatch):
    """policy/__main__.py run against a stand-in pulumi_policy (the real PolicyPack starts a server)."""
    import runpy
    import types

    built: dict[str, Any] = {}
    fake = types.ModuleType("pulumi_policy")

    class StackValidationPolicy:
        def __init__(self, *, name, description, validate):
            self.name, self.description, self.validate = name, description, validate

    fake.EnforcementLevel = types.SimpleNamespace(MANDATORY="mandatory")  # type: ignore[attr-defined]
    fake.StackValidationPolicy = StackValidationPolicy  # type: ignore[attr-defined]
    fake.PolicyPack = lambda **kwargs: built.update(kwargs)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pulumi_policy", fake)
    monkeypatch.syspath_prepend(str(ROOT / "policy"))
    runpy.run_path(str(ROOT / "policy" / "__main__.py"), run_name="__main__")
    assert built["name"] == "modelyard" and built["enforcement_level"] == "mandatory"
    assert [p.name for p in built["policies"]] == [r.id for r in RULES]
    reported: list[tuple[str, str]] = []
    (kms,) = [p for p in built["policies"] if p.name == "kms-rotation"]
    key = _Res("urn:key", "aws:kms/key:Key", {"enableKeyRotation": False, "tags": KIT_TAGS})
    kms.validate(types.SimpleNamespace(resources=[key]), lambda message, urn: reported.append((message, urn)))
    assert reported == [("enableKeyRotation is not true", "urn:key")]


def test_pack_files_are_complete():
    pack_yaml = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert pack_yaml["runtime"] == "python"
    requirements = (ROOT / "policy" / "requirements.txt").read_text()
    assert "pulumi-policy" in requirements
    assert "PolicyPack(" in (ROOT / "policy" / "__main__.py").read_text()


# --- attacks: each weakening of a shipped plan is caught by its rule --------------------------------------
# An attack review weakened shipped plans one setting at a time; each weakening below is one such change on a
# copy of a real shipped plan, with the rule that must catch it. Every rule has at least one.


def _find(plan: dict[str, Any], type_: str, key_part: str = "") -> dict[str, Any]:
    found = [r for r in plan["resources"] if r["type"] == type_ and key_part in r["key"]]
    assert found, (type_, key_part)
    return found[0]


def _obj(plan: dict[str, Any], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    found = [
        m["object"]
        for m in plan["manifests"]
        if m["object"]["kind"] == kind
        and m["object"]["metadata"].get("name") == name
        and namespace in (None, m["object"]["metadata"].get("namespace"))
    ]
    assert found, (kind, name, namespace)
    return found[0]


def _drop(plan: dict[str, Any], kind: str, name: str, namespace: str | None = None) -> None:
    target = _obj(plan, kind, name, namespace)
    plan["manifests"] = [m for m in plan["manifests"] if m["object"] is not target]


def _drop_resource(plan: dict[str, Any], type_: str, key_part: str = "") -> None:
    target = _find(plan, type_, key_part)
    plan["resources"] = [r for r in plan["resources"] if r is not target]


def _add(plan: dict[str, Any], obj: dict[str, Any]) -> None:
    plan["manifests"].append({"source": f"weakening/{obj['kind']}/{obj['metadata']['name']}", "object": obj})


def _edit_doc(resource: dict[str, Any], edit: Callable[[dict[str, Any]], None], field: str = "policy") -> None:
    doc = json.loads(resource["inputs"][field])
    edit(doc)
    resource["inputs"][field] = json.dumps(doc)


def _sid(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in doc["Statement"] if s.get("Sid") == sid]
    return found


def _pod_of(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def _container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in _pod_of(obj)["containers"] + _pod_of(obj).get("initContainers", []) if c["name"] == name]
    return found


SERVER = {"pilot": "llama-8b-llm-serving", "product": "llama-70b-llm-serving", "core": "analytics-8b-llm-serving"}
WEAKENINGS: list[Any] = []


def weakening(stack: str, rule: str) -> Callable[[Callable[[dict[str, Any]], None]], Callable[[dict[str, Any]], None]]:
    def register(weaken: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        WEAKENINGS.append(pytest.param(stack, rule, weaken, id=weaken.__name__))
        return weaken

    return register


def _server(plan: dict[str, Any]) -> dict[str, Any]:
    return _obj(plan, "Deployment", SERVER[plan["stack"]])


@weakening("pilot", "bucket-encrypted")
def bucket_encryption_removed(plan):
    _drop_resource(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")


@weakening("product", "bucket-versioned")
def bucket_versioning_suspended(plan):
    _find(plan, VERSIONING, "models-bucket")["inputs"]["versioningConfiguration"]["status"] = "Suspended"


@weakening("core", "bucket-public-access-blocked")
def bucket_public_policy_allowed(plan):
    _find(plan, BLOCK, "models-bucket")["inputs"]["blockPublicPolicy"] = False


@weakening("core", "kms-rotation")
def key_rotation_off(plan):
    _find(plan, "aws:kms/key:Key", "models-key")["inputs"]["enableKeyRotation"] = False


@weakening("pilot", "resource-policy-not-public")
def bucket_policy_lets_everyone_read(plan):
    policy = _find(plan, BUCKET_POLICY, "models-bucket")
    _edit_doc(policy, lambda d: d["Statement"].append(_allow("s3:GetObject", "arn:aws:s3:::*", Principal="*")))


@weakening("core", "resource-policy-not-public")
def trail_key_described_by_anyone(plan):
    key = _find(plan, "aws:kms/key:Key", "security-trail")
    # The statement is conditioned on the trail (aws:SourceArn): open it to anyone, unconditioned.
    _edit_doc(key, lambda d: _sid(d, "CloudTrailDescribesKey").update(Principal={"AWS": "*"}, Condition={}))


@weakening("core", "resource-policy-not-public")
def trail_key_condition_dropped_for_everyone(plan):
    def edit(doc: dict[str, Any]) -> None:
        statement = _sid(doc, "CloudTrailEncryptsThisTrail")
        statement.update(Principal="*", Condition={"Bool": {"aws:SecureTransport": "true"}})

    _edit_doc(_find(plan, "aws:kms/key:Key", "security-trail"), edit)


@weakening("product", "resource-policy-not-public")
def interruption_queue_open_to_all(plan):
    queue = _find(plan, "aws:sqs/queuePolicy:QueuePolicy")
    _edit_doc(queue, lambda d: _sid(d, "EventBridgeAndHealth").update(Principal="*"))


@weakening("pilot", "iam-no-wildcard-actions")
def karpenter_may_do_all_of_ec2(plan):
    policy = _find(plan, "aws:iam/policy:Policy", "karpenter-controller")
    _edit_doc(policy, lambda d: _sid(d, "AllowScopedDeletion").update(Action="ec2:*"))


@weakening("product", "iam-no-wildcard-actions")
def model_writer_may_do_anything(plan):
    policy = _find(plan, ROLE_POLICY, "models-writer")
    _edit_doc(policy, lambda d: _sid(d, "WriteModels").update(Action="*"))


@weakening("core", "iam-no-wildcard-actions")
def system_nodes_get_administrator_access(plan):
    attachment = _find(plan, "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "system-nodes-AmazonEKSWorkerNode")
    attachment["inputs"]["policyArn"] = "arn:aws:iam::aws:policy/AdministratorAccess"


@weakening("core", "iam-writes-scoped")
def deploy_runner_writes_every_bucket(plan):
    policy = _find(plan, ROLE_POLICY, "deploy-runner-role")
    _edit_doc(policy, lambda d: _sid(d, "StateReadWrite").update(Resource="*"))


@weakening("core", "iam-writes-scoped")
def deploy_runner_decrypts_with_every_key(plan):
    policy = _find(plan, ROLE_POLICY, "deploy-runner-role")
    _edit_doc(policy, lambda d: _sid(d, "StackSecrets").update(Resource="*"))


@weakening("pilot", "iam-writes-scoped")
def karpenter_terminates_any_instance(plan):
    def edit(doc: dict[str, Any]) -> None:
        statement = _sid(doc, "AllowScopedDeletion")
        statement["Resource"] = "*"
        del statement["Condition"]

    _edit_doc(_find(plan, "aws:iam/policy:Policy", "karpenter-controller"), edit)


@weakening("product", "iam-writes-scoped")
def tenant_reads_every_object(plan):
    policy = _find(plan, ROLE_POLICY, "models-read-product")
    _edit_doc(policy, lambda d: _sid(d, "ReadOwnPrefixes").update(Resource="arn:aws:s3:::*/*"))


@weakening("pilot", "iam-writes-scoped")
def flow_logs_write_every_log_group(plan):
    policy = _find(plan, ROLE_POLICY, "network-flow-logs")
    _edit_doc(policy, lambda d: d["Statement"][0].update(Resource="*"))


@weakening("pilot", "trust-policy-not-public")
def karpenter_role_assumable_by_anyone(plan):
    role = _find(plan, ROLE, "karpenter-controller")
    _edit_doc(role, lambda d: d["Statement"][0].update(Principal={"AWS": "*"}), "assumeRolePolicy")


@weakening("core", "trust-policy-not-public")
def deploy_runner_assumable_by_anyone(plan):
    def edit(doc: dict[str, Any]) -> None:
        doc["Statement"][0]["Principal"] = "*"
        del doc["Statement"][0]["Condition"]

    _edit_doc(_find(plan, ROLE, "deploy-runner-role"), edit, "assumeRolePolicy")


@weakening("product", "trust-policy-not-public")
def writer_role_trusts_any_github_repository(plan):
    oidc = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    audience = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
    statement = _allow("sts:AssumeRoleWithWebIdentity", Principal={"Federated": oidc}, Condition=audience)
    del statement["Resource"]
    _edit_doc(_find(plan, ROLE, "models-writer"), lambda d: d["Statement"].append(statement), "assumeRolePolicy")


@weakening("pilot", "eks-endpoint-restricted")
def api_endpoint_open_to_the_internet(plan):
    _find(plan, CLUSTER)["inputs"]["vpcConfig"]["publicAccessCidrs"] = ["0.0.0.0/0"]


@weakening("core", "eks-secrets-encrypted")
def cluster_secrets_unencrypted(plan):
    del _find(plan, CLUSTER)["inputs"]["encryptionConfig"]


@weakening("product", "vpc-flow-logs")
def flow_logs_removed(plan):
    _drop_resource(plan, "aws:ec2/flowLog:FlowLog")


@weakening("core", "log-retention")
def control_plane_logs_kept_forever(plan):
    del _find(plan, "aws:cloudwatch/logGroup:LogGroup", "cluster-logs")["inputs"]["retentionInDays"]


@weakening("product", "log-retention")
def flow_logs_kept_forever(plan):
    _find(plan, "aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")["inputs"]["retentionInDays"] = 0


@weakening("product", "no-world-ingress")
def database_open_to_the_internet(plan):
    rule = _find(plan, INGRESS, "gateway-state-database-from-cluster")["inputs"]
    del rule["referencedSecurityGroupId"]
    rule["cidrIpv4"] = "0.0.0.0/0"


@weakening("pilot", "gpu-nodes-tainted")
def gpu_pool_untainted(plan):
    _obj(plan, "NodePool", "gpu-l40s")["spec"]["template"]["spec"]["taints"] = []


@weakening("core", "imdsv2")
def node_class_imds_two_hops(plan):
    _obj(plan, "EC2NodeClass", "gpu-h200")["spec"]["metadataOptions"]["httpPutResponseHopLimit"] = 2


@weakening("product", "database-encrypted")
def database_unencrypted_at_rest(plan):
    _find(plan, RDS)["inputs"]["storageEncrypted"] = False


@weakening("product", "database-encrypted")
def database_takes_plain_connections(plan):
    _find(plan, "aws:rds/parameterGroup:ParameterGroup")["inputs"]["parameters"][0]["value"] = "0"


@weakening("core", "database-encrypted")
def database_on_an_engine_without_forced_tls(plan):
    _find(plan, RDS)["inputs"]["engineVersion"] = "14"


@weakening("product", "database-encrypted")
def valkey_plain_text(plan):
    inputs = _find(plan, CACHE)["inputs"]
    inputs["transitEncryptionEnabled"] = False
    del inputs["transitEncryptionMode"]


@weakening("core", "database-encrypted")
def valkey_transit_preferred(plan):
    _find(plan, CACHE)["inputs"]["transitEncryptionMode"] = "preferred"


@weakening("core", "database-encrypted")
def valkey_unencrypted_at_rest(plan):
    del _find(plan, CACHE)["inputs"]["atRestEncryptionEnabled"]


@weakening("product", "database-private")
def database_public(plan):
    _find(plan, RDS)["inputs"]["publiclyAccessible"] = True


@weakening("product", "database-retained")
def database_deletion_protection_off(plan):
    _find(plan, RDS)["inputs"]["deletionProtection"] = False


@weakening("core", "database-retained")
def database_final_snapshot_skipped(plan):
    inputs = _find(plan, RDS)["inputs"]
    inputs["skipFinalSnapshot"] = True
    del inputs["finalSnapshotIdentifier"]


@weakening("product", "database-retained")
def valkey_snapshots_off(plan):
    _find(plan, CACHE)["inputs"]["snapshotRetentionLimit"] = 0


@weakening("product", "stateful-protected")
def database_unprotected(plan):
    _find(plan, RDS)["protect"] = False


@weakening("pilot", "tenant-namespace-isolated")
def tenant_default_deny_removed(plan):
    _drop(plan, "NetworkPolicy", "default-deny", "tenant-internal")


@weakening("pilot", "tenant-quota")
def tenant_gpu_quota_removed(plan):
    del _obj(plan, "ResourceQuota", "tenant-quota", "tenant-internal")["spec"]["hard"]["requests.nvidia.com/gpu"]


@weakening("product", "tenant-quota")
def tenant_may_open_node_ports(plan):
    _obj(plan, "ResourceQuota", "tenant-quota", "tenant-product")["spec"]["hard"]["services.nodeports"] = "5"


@weakening("core", "tenant-limit-range")
def tenant_limit_range_removed(plan):
    _drop(plan, "LimitRange", "tenant-defaults", "tenant-core")


@weakening("pilot", "tenant-ingress-limited")
def tenant_admits_the_vpc(plan):
    policy = _obj(plan, "NetworkPolicy", "allow-gateway-and-prometheus", "tenant-internal")
    policy["spec"]["ingress"].append({"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]})


@weakening("pilot", "tenant-egress-limited")
def tenant_https_to_private_addresses(plan):
    # Egress is to S3's ranges of the region; one of them widened to the VPC's private space.
    _obj(plan, "NetworkPolicy", "allow-s3-https", "tenant-internal")["spec"]["egress"][0]["to"][0]["ipBlock"] = {
        "cidr": "10.0.0.0/8"
    }


@weakening("product", "tenant-egress-limited")
def tenant_https_to_the_imds(plan):
    egress = _obj(plan, "NetworkPolicy", "allow-s3-https", "tenant-product")["spec"]["egress"][0]
    egress["to"].append({"ipBlock": {"cidr": "169.254.169.254/32"}})


@weakening("core", "tenant-egress-limited")
def tenant_egress_to_everything(plan):
    del _obj(plan, "NetworkPolicy", "allow-same-namespace", "tenant-core")["spec"]["egress"][0]["to"]


@weakening("core", "tenant-egress-limited")
def tenant_egress_to_another_tenant(plan):
    policy = _obj(plan, "NetworkPolicy", "allow-to-gateway", "tenant-core")
    policy["spec"]["egress"][0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] = (
        "tenant-analytics"
    )


@weakening("pilot", "tenant-pod-security")
def tenant_pod_security_baseline(plan):
    _obj(plan, "Namespace", "tenant-internal")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"


@weakening("core", "tenant-pool-admission")
def pool_admission_policy_removed(plan):
    _drop(plan, "ValidatingAdmissionPolicy", "modelyard-tenant-pool-tolerations")


@weakening("core", "tenant-pool-admission")
def pool_admission_binding_removed(plan):
    _drop(plan, "ValidatingAdmissionPolicyBinding", "modelyard-tenant-pool-tolerations")


@weakening("core", "tenant-pool-admission")
def pool_admission_audit_only(plan):
    _obj(plan, "ValidatingAdmissionPolicyBinding", "modelyard-tenant-pool-tolerations")["spec"]["validationActions"] = [
        "Audit"
    ]


@weakening("core", "tenant-pool-admission")
def pool_admission_fails_open(plan):
    _obj(plan, "ValidatingAdmissionPolicy", "modelyard-tenant-pool-tolerations")["spec"]["failurePolicy"] = "Ignore"


@weakening("core", "tenant-pool-admission")
def pool_admission_exempts_a_tenant(plan):
    binding = _obj(plan, "ValidatingAdmissionPolicyBinding", "modelyard-tenant-pool-tolerations")
    binding["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"].append("tenant-core")


@weakening("core", "tenant-not-admin")
def tenant_service_account_cluster_admin(plan):
    binding = _binding(
        "ClusterRoleBinding",
        "cluster-admin",
        {"kind": "ServiceAccount", "name": "model-server", "namespace": "tenant-core"},
    )["object"]
    _add(plan, binding)


@weakening("product", "tenant-not-admin")
def tenant_accounts_admin_of_their_namespace(plan):
    group = {"kind": "Group", "name": "system:serviceaccounts:tenant-product"}
    _add(plan, _binding("RoleBinding", "admin", group, namespace="tenant-product")["object"])


@weakening("core", "tenant-not-admin")
def tenant_team_made_cluster_admin(plan):
    runner = _find(plan, ASSOCIATION, "deploy-runner")
    team = "arn:aws:iam::123456789012:role/analytics-team"
    view = copy.deepcopy(runner)
    view["key"] = "weakening/team-view"
    view["inputs"].update(
        principalArn=team, policyArn=VIEW, accessScope={"type": "namespace", "namespaces": ["tenant-analytics"]}
    )
    admin = copy.deepcopy(view)
    admin["key"] = "weakening/team-admin"
    admin["inputs"].update(policyArn=CLUSTER_ADMIN, accessScope={"type": "cluster"})
    plan["resources"] += [view, admin]


@weakening("pilot", "no-host-access")
def tenant_server_on_the_host_network(plan):
    _pod_of(_server(plan))["hostNetwork"] = True


@weakening("core", "no-host-access")
def gateway_privileged(plan):
    _container(_obj(plan, "Deployment", "litellm"), "litellm")["securityContext"]["privileged"] = True


@weakening("pilot", "capabilities-dropped")
def tenant_server_adds_net_admin(plan):
    _container(_server(plan), "vllm")["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]


@weakening("product", "capabilities-dropped")
def tenant_loader_keeps_capabilities(plan):
    del _container(_server(plan), "check-weights")["securityContext"]["capabilities"]


@weakening("core", "pod-non-root")
def gateway_runs_as_root(plan):
    _container(_obj(plan, "Deployment", "litellm"), "litellm")["securityContext"]["runAsUser"] = 0


@weakening("product", "pod-non-root")
def gateway_may_run_as_root(plan):
    gateway = _obj(plan, "Deployment", "litellm")
    for context in (_pod_of(gateway)["securityContext"], _container(gateway, "litellm")["securityContext"]):
        context["runAsNonRoot"] = False
        del context["runAsUser"]


@weakening("pilot", "pod-non-root")
def tenant_server_non_root_unset(plan):
    server = _server(plan)
    del _pod_of(server)["securityContext"]["runAsNonRoot"]
    del _container(server, "vllm")["securityContext"]["runAsNonRoot"]


@weakening("pilot", "no-privilege-escalation")
def tenant_server_escalation_unset(plan):
    del _container(_server(plan), "check-weights")["securityContext"]["allowPrivilegeEscalation"]


@weakening("core", "no-privilege-escalation")
def gateway_allows_escalation(plan):
    _container(_obj(plan, "Deployment", "litellm"), "litellm")["securityContext"]["allowPrivilegeEscalation"] = True


@weakening("product", "no-host-port")
def tenant_server_on_a_host_port(plan):
    _container(_server(plan), "vllm")["ports"][0]["hostPort"] = 8000


@weakening("pilot", "no-node-port")
def gateway_service_node_port(plan):
    _obj(plan, "Service", "litellm")["spec"]["type"] = "NodePort"


@weakening("core", "tenant-token-not-automounted")
def tenant_server_mounts_its_token(plan):
    del _pod_of(_server(plan))["automountServiceAccountToken"]
    del _obj(plan, "ServiceAccount", "model-server", "tenant-analytics")["automountServiceAccountToken"]


@weakening("pilot", "tenant-token-not-automounted")
def tenant_server_asks_for_its_token(plan):
    _pod_of(_server(plan))["automountServiceAccountToken"] = True


@weakening("product", "tenant-token-not-automounted")
def tenant_server_on_the_default_account(plan):
    pod = _pod_of(_server(plan))
    pod["serviceAccountName"] = "default"
    del pod["automountServiceAccountToken"]


@weakening("pilot", "images-pinned")
def tenant_server_image_by_tag(plan):
    container = _container(_server(plan), "vllm")
    container["image"] = container["image"].split("@")[0]


@weakening("core", "images-pinned")
def gateway_image_latest(plan):
    container = _container(_obj(plan, "Deployment", "litellm"), "litellm")
    container["image"] = container["image"].split(":v")[0] + ":latest"


@weakening("core", "no-plain-secrets")
def gateway_redis_password_in_plain_env(plan):
    (env,) = [
        e for e in _container(_obj(plan, "Deployment", "litellm"), "litellm")["env"] if e["name"] == "REDIS_PASSWORD"
    ]
    del env["valueFrom"]
    env["value"] = "a-plain-password"


@weakening("pilot", "configmap-no-secrets")
def gateway_master_key_in_config(plan):
    data = _obj(plan, "ConfigMap", "litellm-config")["data"]
    data["config.yaml"] += "  master_key: sk-proxy-0123456789abcdefghij\n"


@weakening("core", "configmap-no-secrets")
def gateway_redis_password_in_config(plan):
    data = _obj(plan, "ConfigMap", "litellm-config")["data"]
    data["config.yaml"] = data["config.yaml"].replace(
        "password: os.environ/REDIS_PASSWORD", "password: Valkey2024rocks"
    )


@weakening("product", "configmap-no-secrets")
def gateway_database_url_in_config(plan):
    data = _obj(plan, "ConfigMap", "litellm-config")["data"]
    data["config.yaml"] += "  database_url: postgresql://litellm:Zx81pw77@db.internal:5432/litellm\n"


@weakening("pilot", "tags-present")
def vpc_untagged(plan):
    _find(plan, "aws:ec2/vpc:Vpc")["inputs"]["tags"] = {"Name": "vpc"}


def test_every_rule_has_a_weakening_on_a_shipped_plan():
    assert {p.values[1] for p in WEAKENINGS} == {r.id for r in RULES}
    assert len(WEAKENINGS) >= 47


@pytest.mark.parametrize(("stack", "rule", "weaken"), WEAKENINGS)
def test_each_weakening_of_a_shipped_plan_is_caught_by_its_rule(plans, stack, rule, weaken):
    """The plan as shipped passes the rule; one weakening later the rule reports it, in the plan and through the
    policy pack's adapter (the same rule source)."""
    plan = copy.deepcopy(plans[stack])
    assert RULES_BY_ID[rule].check(plan) == []
    weaken(plan)
    caught = RULES_BY_ID[rule].check(plan)
    assert caught, f"{rule} missed {weaken.__name__}"
    (pack_policy,) = [p for p in _load_pack_rules().policies() if p.id == rule]
    assert {v.message for v in pack_policy.violations(_as_pack_resources(plan))} == {v.message for v in caught}


def _as_pack_resources(plan: dict[str, Any]) -> list[_Res]:
    """A plan as the pack sees a stack: AWS (and other) resources with their inputs, options, dependencies and
    provider; each Kubernetes object as a resource of its own, its object as props."""
    by_key: dict[str, _Res] = {}
    for r in plan["resources"]:
        if r["type"].startswith("kubernetes:") and not r["type"].startswith("kubernetes:helm.sh"):
            continue
        by_key[r["key"]] = _Res(r["key"], r["type"], r["inputs"], protect=bool(r.get("protect")))
    for r in plan["resources"]:
        if r["key"] in by_key:
            found = by_key[r["key"]]
            found.dependencies = [by_key[d] for d in r.get("depends_on") or () if d in by_key]
            found.provider = by_key.get(r.get("provider") or "")
    out = [r for r in by_key.values() if not r.resource_type.startswith("pulumi:providers:")]
    for index, m in enumerate(plan["manifests"]):
        obj = m["object"]
        group, _, version = obj["apiVersion"].rpartition("/")
        type_ = f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"
        # The plan keys an object by its source (a chart's objects share one); the pack by the object's URN.
        out.append(_Res(m["source"] if m["source"].endswith(type_) else f"{m['source']}#{index}", type_, obj))
    return out


def test_the_pack_sees_no_violation_on_shipped_stacks(plans):
    pack = _load_pack_rules()
    for stack, plan in plans.items():
        resources = _as_pack_resources(plan)
        assert [str(v) for p in pack.policies() for v in p.violations(resources)] == [], stack


TOLERATED: list[Any] = []


def tolerated(stack: str) -> Callable[[Callable[[dict[str, Any]], None]], Callable[[dict[str, Any]], None]]:
    def register(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        TOLERATED.append(pytest.param(stack, change, id=change.__name__))
        return change

    return register


@tolerated("pilot")
def karpenter_reads_in_every_region(plan):
    policy = _find(plan, "aws:iam/policy:Policy", "karpenter-controller")
    _edit_doc(policy, lambda d: _sid(d, "AllowRegionalReadActions").pop("Condition"))


@tolerated("core")
def deploy_runner_lists_every_bucket(plan):
    policy = _find(plan, ROLE_POLICY, "deploy-runner-role")
    _edit_doc(policy, lambda d: d["Statement"].append(_allow(["s3:ListAllMyBuckets", "ec2:Describe*"])))


@tolerated("product")
def gateway_config_grows(plan):
    data = _obj(plan, "ConfigMap", "litellm-config")["data"]
    data["config.yaml"] += "  master_key: os.environ/LITELLM_MASTER_KEY\n  token_budget: 100000\n"


@tolerated("core")
def tenant_egress_to_one_more_public_range(plan):
    policy = _obj(plan, "NetworkPolicy", "allow-s3-https", "tenant-core")
    policy["spec"]["egress"][0]["to"].append({"ipBlock": {"cidr": "3.5.0.0/16"}})


@pytest.mark.parametrize(("stack", "change"), TOLERATED)
def test_changes_that_weaken_nothing_pass(plans, stack, change):
    """The rules are precise: the kit's own kind of statement (reads on every resource, references to secrets,
    public ranges) stays silent."""
    plan = copy.deepcopy(plans[stack])
    change(plan)
    assert evaluate(plan) == []


# --- checkov over every manifest of every shipped stack --------------------------------------------------

SKIPS_FILE = ROOT / "components" / "policy" / "checkov-skips.yaml"


def test_checkov_skips_each_have_a_reason():
    skips = yaml.safe_load(SKIPS_FILE.read_text())["skips"]
    assert isinstance(skips, list), "an empty list is written as []"
    for skip in skips:
        assert skip["id"].startswith("CKV") and len(skip["reason"]) > 40, skip


def test_checkov_finds_nothing_outside_the_skip_list(plans, tmp_path):
    checkov = require_tool("checkov")
    from components.plan.render import write_manifests

    written = []
    for stack, plan in plans.items():
        written += write_manifests(plan, tmp_path / stack)
    assert written
    skips = yaml.safe_load(SKIPS_FILE.read_text())["skips"]
    result = subprocess.run(
        [
            checkov,
            "--framework",
            "kubernetes",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--skip-check",
            ",".join(s["id"] for s in skips),
            "-d",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['file_path']} {c.get('resource')}"
        for report in reports
        for c in (report.get("results") or {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    # --quiet lists failures only: the summary says every file was read as a Kubernetes object.
    summaries = [r["summary"] for r in reports]
    assert sum(x["parsing_errors"] for x in summaries) == 0
    assert sum(x["resource_count"] for x in summaries) >= len(written)  # workloads' containers count on their own
