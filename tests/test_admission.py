"""What the API server and its admission plug-ins would refuse is refused at plan time (components/plan/admission.py),
with the setting to change: quotas, LimitRanges, Pod Security `restricted`, two objects with one name."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from components.errors import InputError
from components.plan.admission import admission_problems, quantity, restricted_problems, workloads
from tests.conftest import plan_with


def test_every_shipped_stack_is_admitted(plans, preview_plans) -> None:
    for stack, plan in {**plans, **{f"{s} (preview)": p for s, p in preview_plans.items()}}.items():
        assert admission_problems(plan["manifests"]) == [], stack


def test_quantities_read_as_kubernetes_writes_them() -> None:
    assert quantity("500m") == quantity("0.5") and quantity("2") == 2 and quantity(4) == 4
    assert quantity("16Gi") == 16 * 2**30 and quantity("1G") == 10**9 and quantity("(known after apply)") is None


def tenant_deployments(plan: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    return [
        m["object"]
        for m in plan["manifests"]
        if m["object"]["kind"] == "Deployment" and m["object"]["metadata"].get("namespace") == namespace
    ]


def with_quota(plan: dict[str, Any], namespace: str, **hard: str) -> list[dict[str, Any]]:
    manifests = copy.deepcopy(plan["manifests"])
    for m in manifests:
        obj = m["object"]
        if obj["kind"] == "ResourceQuota" and obj["metadata"]["namespace"] == namespace:
            obj["spec"]["hard"].update(hard)
    return manifests


def test_a_gpu_quota_below_the_servers_at_max_replicas_names_the_setting(plans) -> None:
    # product: llama-8b 6 x 1 GPU + llama-70b 3 x 4 GPUs at their maximum replicas (KEDA's maxReplicaCount).
    problems = admission_problems(with_quota(plans["product"], "tenant-product", **{"requests.nvidia.com/gpu": "16"}))
    assert [p.path for p in problems] == ["modelyard:tenants.product.gpu_quota"]
    assert "need 18" in problems[0].message and "llama-70b-llm-serving 12" in problems[0].message


def test_cpu_memory_and_pod_quotas_count_every_replica(plans) -> None:
    for hard in ({"requests.cpu": "1"}, {"requests.memory": "1Gi"}, {"pods": "3"}):
        problems = admission_problems(with_quota(plans["product"], "tenant-product", **hard))
        assert [p.path for p in problems] == ["modelyard:tenants.product"], hard


def test_a_load_balancer_service_in_a_tenant_namespace_is_refused(plans) -> None:
    manifests = copy.deepcopy(plans["pilot"]["manifests"])
    service = next(
        m["object"]
        for m in manifests
        if m["object"]["kind"] == "Service" and "tenant-" in m["object"]["metadata"]["namespace"]
    )
    service["spec"]["type"] = "LoadBalancer"
    problems = admission_problems(manifests)
    assert any("services.loadbalancers" in p.message for p in problems)


def test_a_request_above_the_default_limit_is_refused(plans) -> None:
    manifests = copy.deepcopy(plans["pilot"]["manifests"])
    deployment = next(
        m["object"]
        for m in manifests
        if m["object"]["kind"] == "Deployment" and "tenant-" in m["object"]["metadata"]["namespace"]
    )
    init = deployment["spec"]["template"]["spec"]["initContainers"][0]
    init["resources"] = {"requests": {"memory": "1Gi"}}  # no limit of its own: the LimitRange gives it 512Mi
    problems = admission_problems(manifests)
    assert any("requests 1Gi of memory, above the default limit 512Mi" in p.message for p in problems), problems


@pytest.mark.parametrize(
    ("weaken", "refused"),
    [
        (lambda pod, c: c["securityContext"].pop("allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
        (lambda pod, c: c["securityContext"].update(runAsNonRoot=False, runAsUser=0), "runs as user 0"),
        (lambda pod, c: c["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]), "adds capabilities SYS_ADMIN"),
        (lambda pod, c: c["securityContext"].update(privileged=True), "is privileged"),
        (lambda pod, c: pod.update(hostNetwork=True), "hostNetwork is true"),
        (lambda pod, c: pod["volumes"].append({"name": "host", "hostPath": {"path": "/"}}), "of type hostPath"),
        (lambda pod, c: c.setdefault("ports", []).append({"containerPort": 1, "hostPort": 8000}), "hostPort 8000"),
    ],
)
def test_pod_security_restricted_is_enforced_offline(plans, weaken, refused) -> None:
    manifests = copy.deepcopy(plans["pilot"]["manifests"])
    deployment = next(
        m["object"]
        for m in manifests
        if m["object"]["kind"] == "Deployment" and "tenant-" in m["object"]["metadata"]["namespace"]
    )
    pod = deployment["spec"]["template"]["spec"]
    weaken(pod, pod["containers"][0])
    problems = [p for p in admission_problems(manifests) if "Pod Security restricted" in p.message]
    assert len(problems) == 1 and refused in problems[0].message, problems
    assert problems[0].path == f"Deployment {deployment['metadata']['namespace']}/{deployment['metadata']['name']}"


def test_the_restricted_check_passes_a_compliant_pod() -> None:
    pod = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
        ],
        "volumes": [{"name": "cache", "emptyDir": {}}],
    }
    assert restricted_problems(pod) == []


def test_two_objects_with_one_kind_namespace_and_name_are_refused(plans) -> None:
    manifests = copy.deepcopy(plans["pilot"]["manifests"])
    manifests.append(copy.deepcopy(next(m for m in manifests if m["object"]["kind"] == "Deployment")))
    manifests[-1]["source"] = "elsewhere"
    problems = admission_problems(manifests)
    assert len(problems) == 1 and "created 2 times" in problems[0].message


def test_models_whose_servers_get_one_name_are_refused_by_key(tmp_path: Path) -> None:
    # `a` and `a-llm-serving` both render objects named a-llm-serving in their owner's namespace.
    models = {name: {"model": "llama-3.1-8b-instruct", "pool": "l40s"} for name in ("llama", "llama-llm-serving")}
    with pytest.raises(InputError, match=r"models\.llama-llm-serving: its servers would be named 'llama-llm-serving'"):
        plan_with(
            tmp_path, "minimal", {"models": models, "tenants": {"internal": {"models": sorted(models), "gpu_quota": 8}}}
        )


def test_workloads_are_counted_at_their_autoscaler_maximum(plans) -> None:
    counted = {w.name: w.pods for w in workloads(plans["product"]["manifests"]) if w.namespace == "tenant-product"}
    assert counted == {"llama-8b-llm-serving": 6, "llama-70b-llm-serving": 3}
