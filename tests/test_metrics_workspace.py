"""Observability across regions (docs/regions.md): every cell's Prometheus writes to the deployment's one Amazon
Managed Service for Prometheus workspace, created by the global stack, each cell through a role that may only
aps:RemoteWrite to it; each cell's Grafana reads it back (the Cells dashboard) through a role that may only query it;
the SigV4 signing proxy Grafana queries through (Grafana 13 signs no more) holds that role; a pinned tenant's series
stay in their cell; a cell without NAT outside the workspace's region writes over a VPC peering the global stack makes
(tests/test_metrics_peering.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from components.aws.image_cache import mirrored
from components.contract import METRICS_QUERY_PROXY, MONITORING_NAMESPACE
from components.errors import InputError
from components.k8s.charts import BUNDLE_DIR
from components.k8s.monitoring import query_proxy
from components.k8s.monitoring.values import (
    DEPLOYMENT_DATASOURCE,
    GRAFANA_POD_LABELS,
    IMAGE_HOSTS,
    KUBE_PROMETHEUS_STACK,
    QUERY_PROXY_IMAGE_DIGEST,
    QUERY_PROXY_IMAGE_HOST,
    QUERY_PROXY_IMAGE_TAG,
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


def _proxy_objects(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workspace query proxy's objects in a cell's plan, by kind."""
    found = {
        m["object"]["kind"]: m["object"]
        for m in plan["manifests"]
        if m["object"]["metadata"].get("name") == METRICS_QUERY_PROXY
        and m["object"]["metadata"].get("namespace") == MONITORING_NAMESPACE
    }
    return found


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
    # The association names the service account the cell's query proxy runs as, as the cell's plan makes it.
    associations = {a["name"]: a for a in by_type(global_plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")}
    eu = associations["metrics-reader-eu-west-1"]
    proxy = _proxy_objects(writing_cell)
    account = proxy["ServiceAccount"]["metadata"]
    assert eu["key"].startswith("eu-west-1/")
    assert (eu["inputs"]["clusterName"], eu["inputs"]["namespace"], eu["inputs"]["serviceAccount"]) == (
        "modelyard-core-eu",
        account["namespace"],
        account["name"],
    )
    assert proxy["Deployment"]["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]
    # Grafana holds no AWS identity any more: no account of its own named, none associated.
    assert "serviceAccount" not in _stack_values(writing_cell)["grafana"]
    assert not [a for a in associations.values() if "grafana" in a["inputs"]["serviceAccount"]]
    assert global_plan["outputs"]["metrics_query_url"] == global_plan["outputs"][
        "metrics_remote_write_url"
    ].removesuffix("/api/v1/remote_write")


def test_a_cells_grafana_reads_the_workspace_through_the_proxy_without_sigv4(writing_cell) -> None:
    grafana = _stack_values(writing_cell)["grafana"]
    # Grafana 13's core Prometheus data source signs no more: no SigV4 anywhere in Grafana's values.
    assert "grafana.ini" not in grafana and "sigv4" not in json.dumps(grafana).lower()
    (source,) = grafana["additionalDataSources"]
    assert source == {
        "name": DEPLOYMENT_DATASOURCE,
        "uid": DEPLOYMENT_DATASOURCE,
        "type": "prometheus",
        "access": "proxy",
        # The cell's own plan cannot know the workspace (the global stack is applied after it): null like the write URL.
        "url": None,
        "isDefault": False,
        "editable": False,
    }
    remote = _stack_values(writing_cell)["prometheus"]["prometheusSpec"]["remoteWrite"][0]
    assert remote["url"] is None
    names = {m["object"]["metadata"]["name"] for m in writing_cell["manifests"] if m["object"]["kind"] == "ConfigMap"}
    assert "dashboard-modelyard-cells" in names


def _monitoring_registrations(settings, query_url: str) -> dict[str, Any]:
    """The Monitoring component of a writing cell under the offline engine, the global stack's query URL known."""
    import dataclasses

    import pulumi
    import pulumi_kubernetes as k8s

    from components.k8s.monitoring.component import Monitoring, RemoteWriteTarget
    from components.plan.engine import run_program
    from components.plan.run import load_settings
    from components.platform import monitoring_args

    stack_file, _ = load_settings(Path(__file__).resolve().parent.parent, "pilot")
    target = RemoteWriteTarget(
        url=f"{query_url}/api/v1/remote_write",
        query_url=query_url,
        region="us-east-1",
        cell="x",
        cell_region="eu-west-1",
    )

    def program() -> None:
        Monitoring(
            "monitoring",
            args=dataclasses.replace(monitoring_args(settings, aws_layer()), remote_write=target),
            opts=pulumi.ResourceOptions(provider=k8s.Provider("k8s", kubeconfig="{}", namespace="default")),
        )

    recording = run_program(stack_file, preview=False, program=program)
    return {r.name: r.inputs for r in recording.registrations}


def test_grafanas_data_source_is_the_proxy_services_dns_name_port_and_the_workspaces_path(make_settings) -> None:
    registered = _monitoring_registrations(
        make_settings("moderate"), "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0123"
    )
    (source,) = registered["monitoring-kube-prometheus-stack"]["values"]["grafana"]["additionalDataSources"]
    service = registered[f"monitoring-service-{METRICS_QUERY_PROXY}"]
    (port,) = service["spec"]["ports"]
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert source["url"] == f"http://{host}:{int(port['port'])}/workspaces/ws-0123"
    assert source["url"] == "http://aps-query-proxy.monitoring.svc:8005/workspaces/ws-0123"
    assert "jsonData" not in source
    # The Service reaches the proxy's pods on the port the proxy listens on.
    deployment = registered[f"monitoring-deployment-{METRICS_QUERY_PROXY}"]["spec"]
    assert service["spec"]["selector"].items() <= deployment["template"]["metadata"]["labels"].items()
    (container,) = deployment["template"]["spec"]["containers"]
    (listening,) = container["ports"]
    assert (listening["name"], int(listening["containerPort"])) == (port["targetPort"], int(port["port"]))
    assert container["args"][container["args"].index("--port") + 1] == f":{int(port['port'])}"


@pytest.mark.parametrize(
    "url",
    [
        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123",  # another region than the signing one
        "https://example.com/workspaces/ws-0123",
        "http://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0123",
        "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/",
        "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0123/api/v1/remote_write",
    ],
)
def test_a_query_url_the_proxy_would_sign_wrongly_is_refused(url) -> None:
    with pytest.raises(ValueError, match="metrics_query_url"):
        query_proxy.datasource_url(url, "us-east-1")


def test_the_proxy_signs_for_aps_in_the_workspaces_region_not_the_cells(writing_cell) -> None:
    # core-eu runs in eu-west-1; the workspace is in us-east-1: the proxy signs for, and sends to, us-east-1.
    (container,) = _proxy_objects(writing_cell)["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        "--name",
        "aps",
        "--region",
        "us-east-1",
        "--host",
        "aps-workspaces.us-east-1.amazonaws.com",
        "--port",
        ":8005",
    ]


def test_the_proxys_image_is_pinned_and_pulled_through_the_cache_without_nat(plans) -> None:
    assert QUERY_PROXY_IMAGE_HOST in IMAGE_HOSTS
    pinned = f"aws-observability/aws-sigv4-proxy:{QUERY_PROXY_IMAGE_TAG}@{QUERY_PROXY_IMAGE_DIGEST}"
    assert QUERY_PROXY_IMAGE_DIGEST.startswith("sha256:") and len(QUERY_PROXY_IMAGE_DIGEST) == 71
    # core and core-eu have no NAT: the image comes through the ECR pull-through cache of the cell's own region.
    for stack, region in (("core", "us-east-1"), ("core-eu", "eu-west-1")):
        (container,) = _proxy_objects(plans[stack])["Deployment"]["spec"]["template"]["spec"]["containers"]
        account = container["image"].split(".", 1)[0]
        registry = mirrored(QUERY_PROXY_IMAGE_HOST, account=account, region=region)
        assert registry != QUERY_PROXY_IMAGE_HOST
        assert container["image"] == f"{registry}/{pinned}", stack


def test_without_the_cache_the_proxy_pulls_from_ecr_public() -> None:
    (_, deployment, *_) = query_proxy.objects("us-east-1")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == (
        f"public.ecr.aws/aws-observability/aws-sigv4-proxy:{QUERY_PROXY_IMAGE_TAG}@{QUERY_PROXY_IMAGE_DIGEST}"
    )


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_the_proxy_admits_only_grafanas_pods_and_reaches_only_dns_the_agent_and_https(writing_cell) -> None:
    proxy = _proxy_objects(writing_cell)
    policy = proxy["NetworkPolicy"]["spec"]
    pod_labels = proxy["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert _selects(policy["podSelector"]["matchLabels"], pod_labels)
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    (ingress,) = policy["ingress"]
    # One peer: pods of the proxy's namespace (no namespaceSelector) carrying Grafana's labels, on the proxy's port.
    assert ingress == {
        "from": [{"podSelector": {"matchLabels": dict(GRAFANA_POD_LABELS)}}],
        "ports": [{"protocol": "TCP", "port": 8005}],
    }
    assert not _selects(dict(GRAFANA_POD_LABELS), pod_labels)  # the proxy's own pods are not among them
    ports = sorted((p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"])
    assert ports == [("TCP", 53), ("TCP", 80), ("TCP", 443), ("UDP", 53)]
    (agent,) = [r for r in policy["egress"] if r["ports"] == [{"protocol": "TCP", "port": 80}]]
    assert agent["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]


def test_the_proxy_runs_restricted_off_gpu_nodes_without_an_api_token(writing_cell) -> None:
    proxy = _proxy_objects(writing_cell)
    assert proxy["ServiceAccount"]["automountServiceAccountToken"] is False
    pod = proxy["Deployment"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == 65532 and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": "nvidia.com/gpu.present", "operator": "DoesNotExist"}]
    # Probes open a connection only: an HTTP probe would be proxied to the workspace as a signed query.
    assert "tcpSocket" in container["readinessProbe"] and "tcpSocket" in container["livenessProbe"]


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
        url=f"{query}/api/v1/remote_write",
        datasource_url=query_proxy.datasource_url(query, "us-east-1"),
        region="us-east-1",
        cell="product",
        cell_region="us-east-1",
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
    # The query proxy's NetworkPolicy admits the pods carrying GRAFANA_POD_LABELS: Grafana's, and no other pod.
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    }
    assert [n for n, labels in pods.items() if _selects(dict(GRAFANA_POD_LABELS), labels)] == [
        "kube-prometheus-stack-grafana"
    ]
    ini = by_kind_name[("ConfigMap", "kube-prometheus-stack-grafana")]["data"]["grafana.ini"]
    assert "sigv4" not in ini
    sources = yaml.safe_load(
        by_kind_name[("ConfigMap", "kube-prometheus-stack-grafana-datasource")]["data"]["datasource.yaml"]
    )
    (deployment,) = [d for d in sources["datasources"] if d["name"] == DEPLOYMENT_DATASOURCE]
    assert deployment["url"] == "http://aps-query-proxy.monitoring.svc:8005/workspaces/ws-0123"
    assert "jsonData" not in deployment
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
        RemoteWrite(url=url, datasource_url=None, region="us-east-1", cell="core", cell_region="us-east-1")
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
        # Nor reads the workspace: no data source, no query proxy, no Cells dashboard.
        assert not {"additionalDataSources", "grafana.ini", "serviceAccount"} & set(values["grafana"])
        names = {m["object"]["metadata"]["name"] for m in plans[stack]["manifests"]}
        assert "dashboard-modelyard-cells" not in names and "dashboard-modelyard-serving" in names
        assert METRICS_QUERY_PROXY not in names
    for stack in ("core", "core-eu"):
        values = _stack_values(plans[stack])
        (remote,) = values["prometheus"]["prometheusSpec"]["remoteWrite"]
        assert remote["sigv4"] == {"region": "us-east-1"}
        (source,) = values["grafana"]["additionalDataSources"]
        assert "jsonData" not in source and "grafana.ini" not in values["grafana"]
        assert sorted(_proxy_objects(plans[stack])) == ["Deployment", "NetworkPolicy", "Service", "ServiceAccount"]
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
