"""Isolation over the shipped stacks' plans: tenant namespaces, NetworkPolicies, quotas, scoped access,
storage roles, the admission guard of dedicated pools; GuardDuty and CloudTrail where the preset asks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.catalog import s3_ranges
from components.contract import VIEW_POLICY
from components.k8s.isolation import (
    ADMISSION_EXEMPT_NAMESPACES,
    ADMISSION_POLICY_NAME,
    MODEL_SERVER_SERVICE_ACCOUNT,
    POD_IDENTITY_AGENT,
    TOLERATION_EXPRESSION,
    tenant_namespace,
)
from tests.conftest import SHIPPED_STACKS, by_type, plan_with

TENANTS = {
    "core": ["analytics", "assistant", "core"],
    "core-eu": ["assistant", "eu-health"],
    "pilot": ["internal"],
    "product": ["internal", "product"],
}
GATEWAY_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "litellm"}},
}
PROMETHEUS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
SAME_NAMESPACE_PEER = {"podSelector": {}}


def objects(plan: dict[str, Any], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    return [
        m["object"]
        for m in plan["manifests"]
        if m["object"]["kind"] == kind and (namespace is None or m["object"]["metadata"].get("namespace") == namespace)
    ]


def test_namespace_naming_is_exported_for_serving():
    assert tenant_namespace("analytics") == "tenant-analytics"
    assert MODEL_SERVER_SERVICE_ACCOUNT == "model-server"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_one_restricted_namespace_per_tenant(plans, stack):
    namespaces = {ns["metadata"]["name"]: ns["metadata"]["labels"] for ns in objects(plans[stack], "Namespace")}
    assert sorted(n for n in namespaces if n.startswith("tenant-")) == [f"tenant-{t}" for t in TENANTS[stack]]
    for tenant in TENANTS[stack]:
        labels = namespaces[f"tenant-{tenant}"]
        assert labels["modelyard.dev/tenant"] == tenant
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.33"


def _policies(plan: dict[str, Any], namespace: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in objects(plan, "NetworkPolicy", namespace)}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_default_deny_in_and_out(plans, stack):
    for tenant in TENANTS[stack]:
        deny = _policies(plans[stack], f"tenant-{tenant}")["default-deny"]
        assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_model_servers_admit_only_the_gateway_prometheus_and_their_own_namespace(plans, stack):
    """Policies add up: the union of every ingress peer of the namespace is exactly these three."""
    for tenant in TENANTS[stack]:
        policies = _policies(plans[stack], f"tenant-{tenant}")
        peers = [
            peer
            for spec in policies.values()
            if "Ingress" in spec["policyTypes"]
            for rule in spec.get("ingress", [])
            for peer in rule["from"]
        ]

        # As a set: the model servers' own chart policy repeats the gateway and Prometheus peers.
        def canonical(items: list[dict[str, Any]]) -> set[str]:
            return {json.dumps(i, sort_keys=True) for i in items}

        assert canonical(peers) == canonical([GATEWAY_PEER, PROMETHEUS_PEER, SAME_NAMESPACE_PEER])
        # No ipBlock and no other namespace: nothing outside the cluster, no other tenant.
        assert not any("ipBlock" in p for p in peers)
        gateway = policies["allow-gateway-and-prometheus"]
        assert gateway["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "model-server"}}
        assert all(rule["ports"] == [{"protocol": "TCP", "port": "http"}] for rule in gateway["ingress"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_egress_is_dns_gateway_pod_identity_same_namespace_and_regional_s3(plans, stack):
    for tenant in TENANTS[stack]:
        policies = _policies(plans[stack], f"tenant-{tenant}")
        egress = {
            json.dumps(rule, sort_keys=True)
            for spec in policies.values()
            if "Egress" in spec["policyTypes"]
            for rule in spec.get("egress", [])
        }
        expected = [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    }
                ],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
            {"to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT}}], "ports": [{"protocol": "TCP", "port": 80}]},
            {"to": [{"podSelector": {}}]},
            {
                # Tenant workloads reach the models only through the gateway, like every other client.
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}},
                        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "litellm"}},
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 4000}],
            },
            {
                # The S3 ranges of the stack's region (tests/test_egress.py evaluates what this admits).
                "to": [
                    {"ipBlock": {"cidr": cidr}} for cidr in s3_ranges.region_cidrs(plans[stack]["outputs"]["region"])
                ],
                "ports": [{"protocol": "TCP", "port": 443}],
            },
        ]
        assert egress == {json.dumps(rule, sort_keys=True) for rule in expected}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_quota_and_defaults(plans, stack, make_settings):
    plan = plans[stack]
    for tenant in TENANTS[stack]:
        (quota,) = objects(plan, "ResourceQuota", f"tenant-{tenant}")
        hard = quota["spec"]["hard"]
        assert hard["services.loadbalancers"] == "0" and hard["services.nodeports"] == "0"
        assert {"requests.nvidia.com/gpu", "requests.cpu", "requests.memory", "limits.memory", "pods"} <= set(hard)
        (limits,) = objects(plan, "LimitRange", f"tenant-{tenant}")
        (container,) = limits["spec"]["limits"]
        assert "cpu" not in container["default"], "a default CPU limit would throttle vLLM"
        assert container["defaultRequest"] == {"cpu": "100m", "memory": "128Mi"}


def test_gpu_quota_is_the_tenants_and_cpu_memory_follow_its_pools(plans):
    hard = {q["metadata"]["namespace"]: q["spec"]["hard"] for q in objects(plans["core"], "ResourceQuota")}
    assert hard["tenant-core"]["requests.nvidia.com/gpu"] == "64"
    assert hard["tenant-analytics"]["requests.nvidia.com/gpu"] == "4"
    # analytics runs on g6e.xlarge (4 vCPU, 32 GiB per GPU): 2 + 4 x 4 cores, 8 + 4 x 32 GiB.
    assert hard["tenant-analytics"]["requests.cpu"] == "18"
    assert hard["tenant-analytics"]["requests.memory"] == "136Gi"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_model_server_account_is_bound_to_the_tenants_read_role(plans, stack):
    plan = plans[stack]
    associations = {
        r["inputs"]["namespace"]: r
        for r in by_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if r["inputs"]["namespace"].startswith("tenant-")
    }
    assert sorted(associations) == [f"tenant-{t}" for t in TENANTS[stack]]
    roles = {r["name"]: r for r in by_type(plan, "aws:iam/role:Role")}
    for tenant in TENANTS[stack]:
        association = associations[f"tenant-{tenant}"]
        assert association["inputs"]["serviceAccount"] == "model-server"
        role = roles[f"models-read-{tenant}"]
        assert role["key"] in association["depends_on"]
        assert f":role/models-read-{tenant}" in association["inputs"]["roleArn"]
    (account,) = objects(plan, "ServiceAccount", f"tenant-{TENANTS[stack][0]}")
    assert account["automountServiceAccountToken"] is False


def _read_policy(plan: dict[str, Any], tenant: str) -> dict[str, Any]:
    (policy,) = [r for r in by_type(plan, "aws:iam/rolePolicy:RolePolicy") if r["name"] == f"models-read-{tenant}"]
    return json.loads(policy["inputs"]["policy"])


def test_tenant_a_role_cannot_read_tenant_b_prefix(plans):
    """core and analytics share the llama-3.1-8b weights; each reads only its own tenants/<name>/ prefix,
    and analytics none of core's other models."""
    plan = plans["core"]
    for me, other in (("core", "analytics"), ("analytics", "core")):
        statements = {s["Sid"]: s for s in _read_policy(plan, me)["Statement"]}
        resources = statements["ReadOwnPrefixes"]["Resource"]
        prefixes = statements["ListOwnPrefixes"]["Condition"]["StringLike"]["s3:prefix"]
        assert any(r.endswith(f"/tenants/{me}/*") for r in resources)
        assert not any(f"tenants/{other}/" in r for r in resources + prefixes)
        assert all("/models/" in r or f"/tenants/{me}/" in r for r in resources)
        assert not any(r.endswith("/*") and r.count("/") == 1 for r in resources), "no whole-bucket grant"
        assert {s["Effect"] for s in statements.values()} == {"Allow"}
        assert statements["ReadOwnPrefixes"]["Action"] == "s3:GetObject"
    analytics = json.dumps(_read_policy(plan, "analytics"))
    assert "deepseek" not in analytics and "405b" not in analytics


def test_team_principals_get_view_access_scoped_to_their_namespaces(tmp_path):
    alice = "arn:aws:iam::111122223333:role/alice"
    bob = "arn:aws:iam::111122223333:role/bob"
    admin = "arn:aws:iam::111122223333:role/admin"
    plan = plan_with(
        tmp_path,
        "moderate",
        {
            "tenants": {
                "product": {"principals": [alice, admin]},
                "internal": {"principals": [alice, bob]},
            },
            "cluster": {"admins": [admin]},
        },
    )
    entries = {
        r["inputs"]["principalArn"]: r
        for r in by_type(plan, "aws:eks/accessEntry:AccessEntry")
        if r["key"].split("/")[1] == "isolation"
    }
    assert sorted(entries) == [alice, bob], "one entry per principal; the cluster admin has its own already"
    assert {e["inputs"]["type"] for e in entries.values()} == {"STANDARD"}
    associations = {
        r["inputs"]["principalArn"]: r["inputs"]
        for r in by_type(plan, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if r["key"].split("/")[1] == "isolation"
    }
    assert associations[alice]["accessScope"] == {
        "type": "namespace",
        "namespaces": ["tenant-internal", "tenant-product"],
    }
    assert associations[bob]["accessScope"] == {"type": "namespace", "namespaces": ["tenant-internal"]}
    # View, not edit: Kubernetes' edit role may rewrite NetworkPolicies, which would undo the isolation.
    assert {a["policyArn"] for a in associations.values()} == {VIEW_POLICY}


def test_admission_policy_guards_dedicated_pools(plans):
    plan = plans["core"]
    (policy,) = objects(plan, "ValidatingAdmissionPolicy")
    (binding,) = objects(plan, "ValidatingAdmissionPolicyBinding")
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    assert spec["matchConstraints"]["resourceRules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}
    ]
    (validation,) = spec["validations"]
    assert validation["expression"] == TOLERATION_EXPRESSION
    assert TOLERATION_EXPRESSION == (
        "!has(object.spec.tolerations) || object.spec.tolerations.all(t, "
        "!((has(t.key) && t.key == 'modelyard.dev/tenant') || "
        "((!has(t.key) || t.key == '') && has(t.operator) && t.operator == 'Exists')) || "
        "(has(t.key) && t.key == 'modelyard.dev/tenant' && (!has(t.operator) || t.operator == 'Equal') && "
        "has(t.value) && request.namespace == 'tenant-' + t.value))"
    )
    assert binding["spec"] == {
        "policyName": ADMISSION_POLICY_NAME,
        "validationActions": ["Deny"],
        "matchResources": {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "monitoring"]}
                ]
            }
        },
    }
    assert set(ADMISSION_EXEMPT_NAMESPACES) == {"kube-system", "monitoring"}
    # The dedicated pool's taint is the one the expression guards.
    (pool,) = [p for p in objects(plan, "NodePool") if p["metadata"]["name"] == "gpu-analytics"]
    assert {"key": "modelyard.dev/tenant", "value": "analytics", "effect": "NoSchedule"} in pool["spec"]["template"][
        "spec"
    ]["taints"]


def _toleration(value: str, *, operator: str = "Equal") -> dict[str, str]:
    return {"key": "modelyard.dev/tenant", "operator": operator, "value": value, "effect": "NoSchedule"}


GPU = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
CASES = [
    ("tenant-analytics", [GPU, _toleration("analytics")], True),
    ("tenant-core", [GPU, _toleration("analytics")], False),  # A's pods cannot tolerate B's pool
    ("tenant-core", [GPU], True),
    ("tenant-core", None, True),
    ("tenant-core", [{"key": "modelyard.dev/tenant", "operator": "Exists", "effect": "NoSchedule"}], False),
    ("tenant-core", [{"operator": "Exists"}], False),  # tolerates every taint
    ("gateway", [_toleration("analytics")], False),
    ("tenant-analytics", [{"key": "modelyard.dev/tenant", "value": "analytics"}], True),  # operator defaults to Equal
]


@pytest.mark.parametrize(("namespace", "tolerations", "admitted"), CASES)
def test_toleration_expression_on_a_cel_evaluator(namespace, tolerations, admitted):
    """cel-python (a dev dependency, not in pyproject yet) evaluates the exact expression. It is not the
    API server's CEL (cel-go): Kubernetes' evaluation itself is only verified on a live cluster."""
    celpy = pytest.importorskip("celpy")
    env = celpy.Environment()
    program = env.program(env.compile(TOLERATION_EXPRESSION))
    pod: dict[str, Any] = {"spec": {}}
    if tolerations is not None:
        pod["spec"]["tolerations"] = tolerations
    result = program.evaluate(
        {"object": celpy.json_to_cel(pod), "request": celpy.json_to_cel({"namespace": namespace})}
    )
    assert bool(result) is admitted


def test_guardduty_and_trail_only_where_the_preset_asks(plans):
    for stack in ("pilot", "product"):
        assert not by_type(plans[stack], "aws:guardduty/detector:Detector")
        assert not by_type(plans[stack], "aws:cloudtrail/trail:Trail")
    plan = plans["core"]
    (detector,) = by_type(plan, "aws:guardduty/detector:Detector")
    assert detector["inputs"]["enable"] is True
    (feature,) = [f for f in by_type(plan, "aws:guardduty/detectorFeature:DetectorFeature") if "runtime" in f["name"]]
    assert feature["inputs"]["name"] == "RUNTIME_MONITORING" and feature["inputs"]["status"] == "ENABLED"
    assert feature["inputs"]["additionalConfigurations"] == [{"name": "EKS_ADDON_MANAGEMENT", "status": "ENABLED"}]
    (trail,) = by_type(plan, "aws:cloudtrail/trail:Trail")
    inputs = trail["inputs"]
    assert inputs["enableLogFileValidation"] is True
    assert inputs["s3BucketName"] == "modelyard-core-trail-123456789012"
    (selector,) = inputs["advancedEventSelectors"]
    fields = {f["field"]: f for f in selector["fieldSelectors"]}
    assert fields["eventCategory"]["equals"] == ["Data"]
    assert fields["resources.type"]["equals"] == ["AWS::S3::Object"]
    assert fields["resources.ARN"]["startsWiths"] == ["arn:aws:s3:::modelyard-core-models-123456789012/"]
    assert any(dep.endswith("security-trail-logs::aws:s3/bucketPolicy:BucketPolicy") for dep in trail["depends_on"])
    (policy,) = [r for r in by_type(plan, "aws:s3/bucketPolicy:BucketPolicy") if r["name"] == "security-trail-logs"]
    statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
    assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    trail_arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/modelyard-core-model-data"
    assert statements["CloudTrailWrite"]["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    assert statements["CloudTrailWrite"]["Resource"].endswith("/AWSLogs/123456789012/*")
    (bucket,) = [r for r in by_type(plan, "aws:s3/bucket:Bucket") if r["name"] == "security-trail-logs"]
    assert bucket["protect"] and bucket["retain_on_delete"]
    (key,) = [r for r in by_type(plan, "aws:kms/key:Key") if r["name"] == "security-trail"]
    assert key["protect"] and key["retain_on_delete"] and key["inputs"]["enableKeyRotation"] is True
    assert inputs["kmsKeyId"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    key_statements = {s["Sid"]: s for s in json.loads(key["inputs"]["policy"])["Statement"]}
    encrypt = key_statements["CloudTrailEncryptsThisTrail"]
    assert encrypt["Action"] == "kms:GenerateDataKey*"
    assert encrypt["Condition"]["StringEquals"] == {"aws:SourceArn": trail_arn}
    assert encrypt["Condition"]["StringLike"] == {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arn}
    assert key_statements["AccountAdministersThroughIam"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
