"""Observability across regions (docs/regions.md): every cell's Prometheus writes to the deployment's one Amazon
Managed Service for Prometheus workspace, created by the global stack, each cell through a role that may only
aps:RemoteWrite to it; each cell's Grafana reads it back (the Cells dashboard) through a role that may only query it;
a pinned tenant's series stay in their cell; a cell without NAT outside the workspace's region writes over a VPC
peering the global stack makes (tests/test_metrics_peering.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from components.errors import InputError
from components.k8s.charts import BUNDLE_DIR
from components.k8s.monitoring.values import (
    DEPLOYMENT_DATASOURCE,
    GRAFANA_SERVICE_ACCOUNT,
    KUBE_PROMETHEUS_STACK,
    RemoteWrite,
    monitoring_values,
)
from components.settings.cells import deployment_of
from tests.conftest import aws_layer, by_type
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


AMP_QUERY_ACTIONS = ["aps:GetLabels", "aps:GetMetricMetadata", "aps:GetSeries", "aps:QueryMetrics"]
"""AWS's AmazonPrometheusQueryAccess, policy version v1 (docs.aws.amazon.com/aws-managed-policy/latest/reference/
AmazonPrometheusQueryAccess.html): what Grafana needs to query a workspace, written here as read there."""


@pytest.fixture(scope="module")
def writing_cell(writing) -> dict[str, Any]:
    from components.plan.run import plan_stack

    return plan_stack(writing, "core-eu")


def test_each_cells_grafana_may_only_query_the_workspace(global_plan, writing_cell) -> None:
    arn = global_plan["outputs"]["metrics_workspace_arn"]
    policies = {
        p["name"]: json.loads(p["inputs"]["policy"]) for p in by_type(global_plan, "aws:iam/rolePolicy:RolePolicy")
    }
    readers = {n: p for n, p in policies.items() if n.startswith("metrics-reader-")}
    assert sorted(readers) == ["metrics-reader-eu-west-1", "metrics-reader-us-east-1"]
    for policy in readers.values():
        (statement,) = policy["Statement"]
        assert (statement["Effect"], sorted(statement["Action"]), statement["Resource"]) == (
            "Allow",
            AMP_QUERY_ACTIONS,
            arn,
        )
    roles = {r["name"]: r for r in by_type(global_plan, "aws:iam/role:Role")}
    assert json.loads(roles["metrics-reader-eu-west-1"]["inputs"]["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "pods.eks.amazonaws.com"
    }
    # The association names the service account the cell's Grafana runs as (its values name it).
    associations = {a["name"]: a for a in by_type(global_plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    eu = associations["metrics-reader-eu-west-1"]
    grafana = _stack_values(writing_cell)["grafana"]
    assert eu["key"].startswith("eu-west-1/")
    assert (eu["inputs"]["clusterName"], eu["inputs"]["namespace"], eu["inputs"]["serviceAccount"]) == (
        "modelyard-core-eu",
        "monitoring",
        grafana["serviceAccount"]["name"],
    )
    assert grafana["serviceAccount"] == {"create": True, "name": GRAFANA_SERVICE_ACCOUNT}
    assert global_plan["outputs"]["metrics_query_url"] == global_plan["outputs"][
        "metrics_remote_write_url"
    ].removesuffix("/api/v1/remote_write")


def test_a_cells_grafana_reads_the_workspace_with_sigv4_read_only(writing_cell) -> None:
    grafana = _stack_values(writing_cell)["grafana"]
    assert grafana["grafana.ini"] == {"auth": {"sigv4_auth_enabled": True}}
    (source,) = grafana["additionalDataSources"]
    assert (source["name"], source["uid"], source["type"], source["access"]) == (
        DEPLOYMENT_DATASOURCE,
        DEPLOYMENT_DATASOURCE,
        "prometheus",
        "proxy",
    )
    # The workspace's region signs; the pod's own credentials (Pod Identity) through the SDK's default chain.
    assert source["jsonData"] == {"sigV4Auth": True, "sigV4AuthType": "default", "sigV4Region": "us-east-1"}
    assert source["editable"] is False and source["isDefault"] is False
    # The cell's own plan cannot know the workspace (the global stack is applied after it): unknown, like the write URL.
    remote = _stack_values(writing_cell)["prometheus"]["prometheusSpec"]["remoteWrite"][0]
    assert source["url"] == remote["url"]
    names = {m["object"]["metadata"]["name"] for m in writing_cell["manifests"] if m["object"]["kind"] == "ConfigMap"}
    assert "dashboard-modelyard-cells" in names


def test_the_workspace_keeps_one_copy_of_a_cells_prometheus_replicas(writing_cell) -> None:
    spec = _stack_values(writing_cell)["prometheus"]["prometheusSpec"]
    assert spec["replicas"] == 2 and spec["replicaExternalLabelName"] == "__replica__"
    assert spec["externalLabels"]["cluster"] == "modelyard-core-eu"


def test_the_query_url_is_the_global_stacks_output() -> None:
    from components.aws.metrics_workspace import query_url, remote_write_url

    assert query_url("eu-west-1", "ws-1") == "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1"
    assert remote_write_url("eu-west-1", "ws-1").startswith(query_url("eu-west-1", "ws-1") + "/api/v1/")


def _upstream_chart() -> Path | None:
    """kube-prometheus-stack at the pinned version with its subcharts: the deploy runner's bundle, or a directory of
    charts named by MODELYARD_CHART_BUNDLE (a .tgz from `helm pull`, or the unpacked chart)."""
    bundle = Path(os.environ.get("MODELYARD_CHART_BUNDLE", BUNDLE_DIR))
    for candidate in (bundle / KUBE_PROMETHEUS_STACK.bundle_file, bundle / KUBE_PROMETHEUS_STACK.name):
        if candidate.exists():
            return candidate
    return None


def test_the_pinned_chart_renders_a_writing_cells_values_into_valid_objects(make_settings) -> None:
    """Helm's engine over the real kube-prometheus-stack chart (not in the repository, and not reachable from CI: it
    runs where the chart is, the deploy runner's image or MODELYARD_CHART_BUNDLE), every object through
    kubernetes-validate; the data source and service account as Grafana gets them."""
    import helm_python as helm
    import yaml

    from components.platform import monitoring_args
    from tests.tools import validate_strict

    chart_path = _upstream_chart()
    if chart_path is None:
        pytest.skip(
            f"kube-prometheus-stack {KUBE_PROMETHEUS_STACK.version} is not at {BUNDLE_DIR} nor MODELYARD_CHART_BUNDLE"
        )
    query = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0123"
    remote_write = RemoteWrite(
        url=f"{query}/api/v1/remote_write", query_url=query, region="us-east-1", cell="product", cell_region="us-east-1"
    )
    values = monitoring_values(monitoring_args(make_settings("moderate"), aws_layer()), remote_write=remote_write)
    with helm.Chart.load(chart_path) as chart:
        assert chart.version == KUBE_PROMETHEUS_STACK.version
        rendered = chart.render(values=values, name="kube-prometheus-stack", namespace="monitoring")
    objects = [
        doc
        for path, text in sorted(rendered.items())
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    assert validate_strict(objects, "1.33.0", frozenset({"monitoring.coreos.com"})) == {"monitoring.coreos.com"}
    by_kind_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    assert ("ServiceAccount", GRAFANA_SERVICE_ACCOUNT) in by_kind_name
    (grafana,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "kube-prometheus-stack-grafana"
    ]
    assert grafana["spec"]["template"]["spec"]["serviceAccountName"] == GRAFANA_SERVICE_ACCOUNT
    ini = by_kind_name[("ConfigMap", "kube-prometheus-stack-grafana")]["data"]["grafana.ini"]
    assert "[auth]\nsigv4_auth_enabled = true" in ini
    sources = yaml.safe_load(
        by_kind_name[("ConfigMap", "kube-prometheus-stack-grafana-datasource")]["data"]["datasource.yaml"]
    )
    (deployment,) = [d for d in sources["datasources"] if d["name"] == DEPLOYMENT_DATASOURCE]
    assert deployment["url"] == query and deployment["jsonData"]["sigV4Region"] == "us-east-1"
    prometheus = by_kind_name[("Prometheus", "kube-prometheus-stack-prometheus")]["spec"]
    assert prometheus["replicaExternalLabelName"] == "__replica__" and prometheus["remoteWrite"][0]["sigv4"] == {
        "region": "us-east-1"
    }


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
    spec = remote_write_spec(
        RemoteWrite(url=url, query_url=None, region="us-east-1", cell="core", cell_region="us-east-1")
    )
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
        values = _stack_values(plans[stack])
        assert "remoteWrite" not in values["prometheus"]["prometheusSpec"]
        # Nor reads the workspace: no data source, no SigV4, no Cells dashboard.
        assert not {"additionalDataSources", "grafana.ini", "serviceAccount"} & set(values["grafana"])
        names = {m["object"]["metadata"]["name"] for m in plans[stack]["manifests"]}
        assert "dashboard-modelyard-cells" not in names and "dashboard-modelyard-serving" in names
    for stack in ("core", "core-eu"):
        values = _stack_values(plans[stack])
        (remote,) = values["prometheus"]["prometheusSpec"]["remoteWrite"]
        assert remote["sigv4"] == {"region": "us-east-1"}
        (source,) = values["grafana"]["additionalDataSources"]
        assert source["jsonData"]["sigV4Region"] == "us-east-1"
        names = {m["object"]["metadata"]["name"] for m in plans[stack]["manifests"]}
        assert "dashboard-modelyard-cells" in names


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
