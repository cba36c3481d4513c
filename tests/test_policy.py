"""Policy rules (components.policy): each passes on a small good plan and fails on a bad one; every shipped
stack passes all of them, in apply and in preview mode; `modelyard plan --strict` exits 4 on a violation;
the pack in policy/ adapts the same rules without starting its server."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.policy import RULES, RULES_BY_ID, evaluate
from components.policy.rules import HOST_ACCESS_EXEMPT, UNKNOWN
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
                "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"ports": [{"port": 53}]}]},
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
    def with_image(image: str) -> dict[str, Any]:
        return plan_of(
            manifests=[_workload("Deployment", "tenant-a", "m", {"containers": [{"name": "c", "image": image}]})]
        )

    digest = "sha256:" + "a" * 64
    for good in ("vllm/vllm-openai:v0.17.1", f"vllm/vllm-openai:v0.17.1@{digest}", f"localhost:5000/x@{digest}"):
        assert ids(with_image(good), "images-pinned") == [], good
    for bad in ("vllm/vllm-openai", "vllm/vllm-openai:latest", "localhost:5000/x"):
        assert ids(with_image(bad), "images-pinned") == ["Deployment/m"], bad


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
