"""Observability across regions (docs/regions.md): every cell's Prometheus writes to the deployment's one Amazon
Managed Service for Prometheus workspace, created by the global stack, each cell through a role that may only
aps:RemoteWrite to it; a pinned tenant's series stay in their cell; a cell without NAT outside the workspace's region
writes over a VPC peering the global stack makes to the workspace region's cell, whose endpoint admits only it; the
workspace and the peering are priced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.errors import InputError
from components.settings.cells import deployment_of
from tests.conftest import by_type
from tests.test_cells import _project

REMOTE_WRITE = {"remote_write": {"region": "us-east-1"}}
EU_NETWORK_WITH_NAT = {"cidr": "10.61.0.0/16", "zone_ids": ["euw1-az1", "euw1-az2", "euw1-az3"], "nat": "single"}
WRITING = {
    "core": {"monitoring": REMOTE_WRITE},
    "core-eu": {"monitoring": REMOTE_WRITE, "network": EU_NETWORK_WITH_NAT},
}


@pytest.fixture(scope="module")
def writing(tmp_path_factory) -> Path:
    return _project(tmp_path_factory.mktemp("writing"), WRITING)


@pytest.fixture(scope="module")
def global_plan(writing) -> dict[str, Any]:
    from components.plan.run import plan_global

    return plan_global(writing, "core-global")


def _stack_values(plan: dict[str, Any]) -> dict[str, Any]:
    (release,) = [
        r for r in by_type(plan, "kubernetes:helm.sh/v3:Release") if r["name"].endswith("kube-prometheus-stack")
    ]
    return release["inputs"]["values"]


def test_the_global_stack_creates_one_kms_encrypted_workspace_in_the_cells_region(global_plan) -> None:
    (workspace,) = by_type(global_plan, "aws:amp/workspace:Workspace")
    (key,) = [k for k in by_type(global_plan, "aws:kms/key:Key") if k["name"] == "metrics-key"]
    assert workspace["key"].startswith("us-east-1/") and key["key"].startswith("us-east-1/")
    assert workspace["inputs"]["kmsKeyArn"].startswith("arn:aws:kms:us-east-1:")
    assert workspace["protect"] and workspace["retain_on_delete"] and key["inputs"]["enableKeyRotation"]
    arn = global_plan["outputs"]["metrics_workspace_arn"]
    assert arn.startswith("arn:aws:aps:us-east-1:")
    assert global_plan["outputs"]["metrics_remote_write_url"].startswith(
        "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-"
    )


def test_each_cells_role_may_only_remote_write_to_the_workspace(global_plan) -> None:
    arn = global_plan["outputs"]["metrics_workspace_arn"]
    policies = {
        p["name"]: json.loads(p["inputs"]["policy"]) for p in by_type(global_plan, "aws:iam/rolePolicy:RolePolicy")
    }
    writers = {n: p for n, p in policies.items() if n.startswith("metrics-writer-")}
    assert sorted(writers) == ["metrics-writer-eu-west-1", "metrics-writer-us-east-1"]
    for policy in writers.values():
        (statement,) = policy["Statement"]
        assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Allow", ["aps:RemoteWrite"], arn)
    associations = {a["name"]: a for a in by_type(global_plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    eu = associations["metrics-writer-eu-west-1"]
    assert eu["key"].startswith("eu-west-1/")
    assert (eu["inputs"]["clusterName"], eu["inputs"]["namespace"], eu["inputs"]["serviceAccount"]) == (
        "modelyard-core-eu",
        "monitoring",
        "kube-prometheus-stack-prometheus",
    )


def test_a_cells_prometheus_writes_with_sigv4_and_its_cell_and_region_labels(writing) -> None:
    from components.plan.run import plan_stack

    values = _stack_values(plan_stack(writing, "core-eu"))
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["externalLabels"] == {"cluster": "modelyard-core-eu", "cell": "core-eu", "region": "eu-west-1"}
    (remote,) = spec["remoteWrite"]
    assert remote["sigv4"] == {"region": "us-east-1"}
    # eu-health is pinned to eu-west-1: its series stay in the cell (a workspace in us-east-1).
    assert remote["writeRelabelConfigs"] == [
        {"sourceLabels": ["namespace"], "regex": "tenant-eu-health", "action": "drop"},
        {"sourceLabels": ["user"], "regex": "eu-health", "action": "drop"},
    ]
    assert values["prometheus"]["serviceAccount"] == {"create": True, "name": "kube-prometheus-stack-prometheus"}


def test_the_remote_write_url_is_the_global_stacks_output() -> None:
    from components.k8s.monitoring.values import RemoteWrite, remote_write_spec

    url = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"
    spec = remote_write_spec(RemoteWrite(url=url, region="us-east-1", cell="core", cell_region="us-east-1"))
    assert spec == [{"url": url, "sigv4": {"region": "us-east-1"}}]


def test_a_cell_without_nat_in_the_workspaces_region_needs_the_aps_endpoint(writing) -> None:
    from components.plan.run import plan_stack

    plan = plan_stack(writing, "core")
    services = {r["inputs"].get("serviceName") for r in by_type(plan, "aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert "com.amazonaws.us-east-1.aps-workspaces" in services
    (remote,) = _stack_values(plan)["prometheus"]["prometheusSpec"]["remoteWrite"]
    assert "writeRelabelConfigs" not in remote  # core pins no tenant


def test_the_shipped_deployment_writes_remotely_and_the_single_region_stacks_do_not(plans) -> None:
    for stack in ("pilot", "product"):
        assert "remoteWrite" not in _stack_values(plans[stack])["prometheus"]["prometheusSpec"]
    for stack in ("core", "core-eu"):
        (remote,) = _stack_values(plans[stack])["prometheus"]["prometheusSpec"]["remoteWrite"]
        assert remote["sigv4"] == {"region": "us-east-1"}


def test_a_cell_with_nat_is_not_peered(global_plan) -> None:
    assert not by_type(global_plan, "aws:ec2/vpcPeeringConnection:VpcPeeringConnection")
    assert not [r for r in global_plan["resources"] if r["type"] == "modelyard:aws:MetricsPeering"]


@pytest.mark.parametrize(
    ("changes", "path", "words"),
    [
        ({"core-eu": {"monitoring": None}}, "global.cells.eu-west-1", "set monitoring.remote_write in every cell"),
        (
            {
                "core": {"monitoring": REMOTE_WRITE, "network": {"cidr": "10.60.0.0/16", "nat": "single"}},
                "core-eu": {"monitoring": {"remote_write": {"region": "eu-west-1"}}},
            },
            "global.cells",
            "different workspace regions",
        ),
    ],
)
def test_cells_disagreeing_on_the_workspace_are_refused(tmp_path, changes, path, words) -> None:
    project = _project(tmp_path, changes)
    with pytest.raises(InputError) as refused:
        deployment_of(project, "core-global")
    messages = [f"{p.path}: {p.message}" for p in refused.value.problems]
    assert any(m.startswith(f"modelyard:{path}:") and words in m for m in messages), messages


def test_remote_write_outside_a_cell_is_refused(make_settings) -> None:
    with pytest.raises(InputError) as refused:
        make_settings("moderate", monitoring={"remote_write": {"region": "us-east-1"}})
    paths = {p.path for p in refused.value.problems}
    assert "modelyard:monitoring.remote_write" in paths
