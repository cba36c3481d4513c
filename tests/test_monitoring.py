"""Monitoring: rules with promtool, dashboards and rules against the metric list, objects with
kubernetes-validate and checkov, Helm values from the monitoring settings, and the component under the offline
engine."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest
import yaml

from components import contract
from components.aws.container_logs import ContainerLogGroup, ContainerLogGroupArgs
from components.contract import SECRET
from components.k8s.charts import UPSTREAM_CHARTS
from components.k8s.monitoring import assets, generate, query_proxy
from components.k8s.monitoring.component import AlertReceiver, Monitoring
from components.k8s.monitoring.logs import (
    FLUENT_BIT_VERSION,
    ContainerLogs,
    ContainerLogsArgs,
    fluent_bit_values,
)
from components.k8s.monitoring.values import (
    DCGM_EXPORTER_REPO,
    DCGM_EXPORTER_VERSION,
    DEPLOYMENT_DATASOURCE,
    GATEWAY_JOB,
    GATEWAY_JOB_NAMESPACE,
    GPU_PRESENT_LABEL,
    GPU_TAINT_KEY,
    IMAGE_HOSTS,
    KUBE_PROMETHEUS_STACK_CHART,
    KUBE_PROMETHEUS_STACK_IMAGES,
    KUBE_PROMETHEUS_STACK_REPO,
    KUBE_PROMETHEUS_STACK_VERSION,
    NODE_LABELS_FOR_COST,
    PROMETHEUS_OPERATOR_CRDS,
    SCRAPE_SELECTOR_LABELS,
    VLLM_IMAGE_TAG,
    ReceiverKind,
    ReceiverSpec,
    alertmanager_config,
    dcgm_exporter_values,
    monitoring_values,
    operator_crds_values,
)
from components.plan.engine import normalise, run_program
from components.plan.run import load_settings
from components.platform import monitoring_args
from components.settings import Settings
from components.settings.types import LOG_RETENTION_DAYS
from tests.conftest import aws_layer
from tests.tools import background_checkov, require_tool, validate_strict

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = assets.RULES_DIR / "tests"
KUBERNETES_VERSION = "1.33.0"
CRD_GROUPS = frozenset({"monitoring.coreos.com"})
TTFT_BOUND = "2.5"
# The shipped presets, smallest first.
SHIPPED_PRESETS = ("minimal", "moderate", "enterprise")


# --- rules with promtool ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each PrometheusRule's spec.groups as a plain rules file of the same name, beside the unit tests.
    Annotations are dropped from the copy: the unit tests are about when alerts fire; `promtool check
    rules` checks the annotations' templates on the full copy."""
    directory = tmp_path_factory.mktemp("promtool")
    (directory / "full").mkdir()
    for path in assets.rule_files():
        groups = assets.load_rule(path)["spec"]["groups"]
        (directory / "full" / path.name).write_text(yaml.safe_dump({"groups": groups}))
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations", None)
        (directory / path.name).write_text(yaml.safe_dump({"groups": groups}))
    for test in TESTS_DIR.glob("*.yaml"):
        (directory / test.name).write_text(test.read_text())
    return directory


def test_rules_pass_promtool_check(promtool_dir: Path) -> None:
    promtool = require_tool("promtool")
    files = sorted(str(p) for p in (promtool_dir / "full").glob("*.yaml"))
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool_dir: Path) -> None:
    promtool = require_tool("promtool")
    tests = sorted(p.name for p in TESTS_DIR.glob("*.yaml"))
    # One process per file, in parallel: the slow-burn file evaluates days of data.
    runs = [
        subprocess.Popen(
            [promtool, "test", "rules", name],
            cwd=promtool_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in tests
    ]
    failures = []
    for name, run in zip(tests, runs, strict=True):
        output, _ = run.communicate(timeout=120)
        if run.returncode != 0:
            failures.append(f"{name}:\n{output}")
    assert not failures, "\n".join(failures)


_SERIES = re.compile(r"^\s*([^{\s]+)\s*(?:\{(.*)\})?\s*$")
_LABEL = re.compile(r'(\w+)\s*=\s*"([^"]*)"')


def _series_labels(text: str) -> dict[str, str]:
    match = _SERIES.match(text)
    assert match, text
    return dict(_LABEL.findall(match.group(2) or ""))


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    """For every alert, a unit test expects it to fire, and the same test feeds at least one series that
    no expected alert came from (or expects no alert at some time): promtool then proves it stays silent,
    since it compares the full list of alerts."""
    fires: set[str] = set()
    silent: set[str] = set()
    for path in TESTS_DIR.glob("*.yaml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            series = [_series_labels(s["series"]) for s in case.get("input_series", [])]
            for check in case.get("alert_rule_test", []):
                name, expected = check["alertname"], check.get("exp_alerts") or []
                if not expected:
                    silent.add(name)
                    continue
                fires.add(name)
                wanted = [
                    {k: str(v) for k, v in e["exp_labels"].items() if k not in ("severity", "alertname")}
                    for e in expected
                ]
                uncovered = [s for s in series if not any(w.items() <= s.items() for w in wanted)]
                if uncovered:
                    silent.add(name)
    names = {rule["alert"] for rule in assets.alerts()}
    assert names - fires == set(), "alerts no unit test fires"
    assert names - silent == set(), "alerts no unit test proves silent"


def test_every_alert_has_severity_summary_and_a_runbook() -> None:
    for rule in assets.alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        assert annotations["runbook_url"] == f"{assets.RUNBOOK_BASE_URL}{name}.md", name
        runbook = assets.RUNBOOKS_DIR / f"{name}.md"
        assert runbook.is_file(), f"missing {runbook}"
        assert runbook.read_text().startswith(f"# {name}"), runbook


def test_ttft_objective_sits_on_a_vllm_bucket_bound() -> None:
    buckets = assets.known_metrics()["vllm:time_to_first_token_seconds"]["buckets"]
    assert float(TTFT_BOUND) in buckets
    serving = (assets.RULES_DIR / "serving.yaml").read_text()
    assert set(re.findall(r'le="([^"]+)"', serving)) == {TTFT_BOUND}


# --- metric names ---------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)")


def series_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (a small lexer: strings, matchers, ranges, grouping
    clauses, Grafana variables and numbers removed; what is left and is not a function or keyword)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _CLAUSE.sub(" ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?\b", " ", text)
    names = set()
    for match in _NAME.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match.group(1) in _KEYWORDS:
            continue
        names.add(match.group(1))
    return names


def test_series_names_lexer() -> None:
    expr = (
        'sum by (node) (rate(vllm:generation_tokens_total{le="2.5", a=~"x|y"}[5m])) / on (node) group_left () '
        "max(up) * 1e6 > bool 5 and $__range_s"
    )
    assert series_names(expr) == {"vllm:generation_tokens_total", "up"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in assets.dashboard_files()}


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
            assert match, variable["query"]
            exprs.append(match.group(1))
    return exprs


def test_dashboards_are_grafana_json_with_known_metrics() -> None:
    allowed = assets.allowed_series_names()
    found = dashboards()
    assert set(found) == {"serving.json", "gateway.json", "gpus.json", "cost.json", "cells.json"}
    for name, dashboard in found.items():
        assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36, name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        # A cell's dashboards read the Prometheus chosen in their variable; the Cells dashboard the workspace only.
        source = (
            {"type": "prometheus", "uid": DEPLOYMENT_DATASOURCE}
            if name == assets.CELLS_DASHBOARD.name
            else {"type": "prometheus", "uid": "${datasource}"}
        )
        for panel in dashboard["panels"]:
            assert panel["datasource"] == source, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            assert all(target["datasource"] == source for target in panel["targets"]), (name, panel["title"])
        for expr in dashboard_queries(dashboard):
            unknown = series_names(expr) - allowed
            assert not unknown, f"{name}: {expr} uses {unknown}, not in metrics.yaml nor recorded"


def _cells_dashboard() -> dict[str, Any]:
    return dashboards()[assets.CELLS_DASHBOARD.name]


def test_the_cells_dashboard_reads_every_cell_from_the_deployment_data_source() -> None:
    """modelyard / Cells: `region` then `cell` variables over the external labels every remote-written series carries
    (multi-select, All by default), no data source variable, and every query narrowed to the chosen cells."""
    dashboard = _cells_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert list(variables) == ["region", "cell"]
    assert variables["region"]["query"]["query"] == "label_values(up, region)"
    assert variables["cell"]["query"]["query"] == 'label_values(up{region=~"$region"}, cell)'
    for variable in variables.values():
        assert variable["datasource"] == {"type": "prometheus", "uid": DEPLOYMENT_DATASOURCE}
        assert variable["multi"] and variable["includeAll"] and variable["current"]["value"] == ["$__all"]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    for expr in exprs:
        selectors = re.findall(r"\{[^}]*\}", expr)
        assert selectors and all('cell=~"$cell"' in sel and 'region=~"$region"' in sel for sel in selectors), expr
        assert re.search(r"\bby \([^)]*\bcell\b", expr), f"not split by cell: {expr}"
    # What the view promises: the gateway's traffic and errors, TTFT p95 per model, queues, GPUs, replicas, alerts.
    used = set().union(*(series_names(e) for e in exprs))
    assert {
        "litellm_proxy_total_requests_metric_total",
        "litellm_proxy_failed_requests_metric_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "DCGM_FI_DEV_GPU_UTIL",
        "kube_pod_status_ready",
        "ALERTS",
    } <= used


def test_the_cells_dashboard_queries_pass_promtool(tmp_path: Path) -> None:
    """Every query of the Cells dashboard, Grafana's variables replaced by what it sends for All, parsed by
    `promtool check rules` (as recording rules)."""
    promtool = require_tool("promtool")
    exprs = dashboard_queries(_cells_dashboard())
    grafana = {"$__rate_interval": "5m", "$cell": ".*", "$region": ".*"}
    rules = []
    for index, expr in enumerate(exprs):
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:cells_query_{index}", "expr": expr})
    (tmp_path / "cells.yaml").write_text(yaml.safe_dump({"groups": [{"name": "cells", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "cells.yaml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout, result.stdout


def test_rules_use_known_metrics() -> None:
    allowed = assets.allowed_series_names()
    for path in assets.rule_files():
        for group in assets.load_rule(path)["spec"]["groups"]:
            for rule in group["rules"]:
                unknown = series_names(rule["expr"]) - allowed
                assert not unknown, f"{path.name} {rule.get('alert') or rule.get('record')}: {unknown}"


def test_every_listed_metric_names_its_source() -> None:
    data = yaml.safe_load(assets.METRICS_FILE.read_text())
    for name, meta in data["metrics"].items():
        assert meta["source"] in data["sources"], name
        assert meta["type"] in {"gauge", "counter", "histogram"}, name
        if meta["type"] == "counter" and (meta["source"].startswith("vllm") or meta["source"] == "litellm"):
            assert name.endswith("_total"), f"{name}: prometheus_client exposes counters with _total"
    for key, source in data["sources"].items():
        assert source["project"] and source["version"] and source["path"], key


def test_gateway_rules_select_the_job_the_gateways_service_monitor_makes() -> None:
    """The operator names a ServiceMonitor's job after the Service (no jobLabel): the gateway's rules and
    dashboard select that job in the gateway's namespace, and LiteLLM's version is the gateway's pin."""
    from components.k8s.gateway import objects

    monitor = objects.service_monitor()
    assert "jobLabel" not in monitor["spec"]
    assert (objects.service()["metadata"]["name"], contract.GATEWAY_NAMESPACE) == (GATEWAY_JOB, GATEWAY_JOB_NAMESPACE)
    selector = f'job="{GATEWAY_JOB}"'
    for group in assets.load_rule(assets.RULES_DIR / "gateway.yaml")["spec"]["groups"]:
        for rule in group["rules"]:
            assert selector in rule["expr"], rule["alert"]
    litellm = yaml.safe_load(assets.METRICS_FILE.read_text())["sources"]["litellm"]
    assert litellm["version"].startswith(f"{objects.IMAGE_TAG.removeprefix('v')} "), litellm["version"]


def test_vllm_version_is_the_one_the_serving_chart_pins() -> None:
    chart_values = ROOT / "charts" / "llm-serving" / "values.yaml"
    if not chart_values.is_file():
        pytest.skip("charts/llm-serving is not in this tree")
    image = yaml.safe_load(chart_values.read_text())["image"]
    assert image["tag"] == VLLM_IMAGE_TAG
    assert VLLM_IMAGE_TAG.removeprefix("v") in assets.METRICS_FILE.read_text()


# --- generated files --------------------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    base = assets.RULES_DIR.parent
    for relative, text in generate.generated_files().items():
        assert (base / relative).read_text() == text, f"run: python -m components.k8s.monitoring.generate ({relative})"


def test_cost_rules_price_every_priced_gpu_type_from_the_catalog() -> None:
    prices = {
        rule["labels"]["instance_type"]: rule["expr"] for rule in generate.cost_rule()["spec"]["groups"][0]["rules"]
    }
    assert prices == {name: f"vector({price})" for name, price in generate.instance_prices().items()}
    assert "g6e.xlarge" in prices and "m7i.large" not in prices


# --- Kubernetes objects -----------------------------------------------------------------------------


def rendered_objects() -> list[dict[str, Any]]:
    return [
        assets.namespace_object(),
        *assets.dashboard_config_maps(deployment_view=True),
        *assets.prometheus_rules(),
        alertmanager_config(4),
        # A writing cell's workspace query proxy (ServiceAccount, Deployment, Service, NetworkPolicy).
        *query_proxy.objects("us-east-1"),
    ]


def test_objects_are_valid_for_the_cluster_kubernetes() -> None:
    assert validate_strict(rendered_objects(), KUBERNETES_VERSION, CRD_GROUPS) == CRD_GROUPS


def test_objects_carry_the_labels_prometheus_and_grafana_select() -> None:
    for obj in rendered_objects():
        labels = obj["metadata"]["labels"]
        if obj["kind"] in ("PrometheusRule", "AlertmanagerConfig"):
            assert obj["metadata"]["namespace"] == "monitoring"
        if obj["kind"] == "PrometheusRule":
            assert SCRAPE_SELECTOR_LABELS.items() <= labels.items()
            assert obj["metadata"]["namespace"] == "monitoring"
        if obj["kind"] == "ConfigMap":
            assert labels["grafana_dashboard"] == "1"
            assert len(json.dumps(obj["data"])) < 1_000_000


CHECKOV_SKIPS = assets.ASSETS_DIR / "checkov-skips.yaml"


@pytest.fixture(scope="module", autouse=True)
def checkov_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """checkov over the rendered objects, started before the module's first test (it takes seconds)."""
    target = tmp_path_factory.mktemp("checkov") / "monitoring.yaml"
    with background_checkov(target, rendered_objects(), CHECKOV_SKIPS) as run:
        yield run


def test_checkov_finds_nothing_outside_the_skip_list(checkov_run: dict[str, Any]) -> None:
    require_tool("checkov")
    skips = yaml.safe_load(CHECKOV_SKIPS.read_text())["skips"] or []
    assert all(s["id"].startswith("CKV") and len(s["reason"]) > 40 for s in skips)
    stdout, stderr = checkov_run["process"].communicate(timeout=300)
    assert stdout.strip(), stderr
    report = json.loads(stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [f"{f['check_id']} {f['resource']}" for r in reports for f in r["results"]["failed_checks"]]
    assert failed == []
    summary = reports[0]["summary"]
    # Every object was read; checkov also checks a Deployment's pod template (the query proxy's) as a Pod of its own.
    deployments = sum(1 for o in rendered_objects() if o["kind"] == "Deployment")
    assert deployments == 1
    assert summary["parsing_errors"] == 0 and summary["resource_count"] == len(rendered_objects()) + deployments


# --- Helm values ------------------------------------------------------------------------------------


def stack_values(settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """kube-prometheus-stack's values for the Monitoring args the platform builds from `settings`."""
    return monitoring_values(monitoring_args(settings, aws_layer()), **kwargs)


def test_sizes_grow_with_the_preset(make_settings) -> None:
    specs = [stack_values(make_settings(preset))["prometheus"]["prometheusSpec"] for preset in SHIPPED_PRESETS]
    days = [int(s["retention"].removesuffix("d")) for s in specs]
    sizes = [
        int(s["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"][:-2]) for s in specs
    ]
    assert days == sorted(days) and len(set(days)) == 3
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    for spec in specs:
        assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "gp3"
        assert int(spec["retentionSize"].removesuffix("GiB")) < int(
            spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"][:-2]
        )


def _components(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "operator": values["prometheusOperator"],
        "prometheus": values["prometheus"]["prometheusSpec"],
        "alertmanager": values["alertmanager"]["alertmanagerSpec"],
        "grafana": values["grafana"],
        "kube-state-metrics": values["kube-state-metrics"],
        "node-exporter": values["prometheus-node-exporter"],
    }


def test_every_component_requests_resources_and_stays_off_gpu_nodes(make_settings) -> None:
    values = stack_values(make_settings("moderate"))
    for name, component in _components(values).items():
        requests = component["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], name
        if name == "node-exporter":
            continue
        terms = component["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert {"key": GPU_PRESENT_LABEL, "operator": "DoesNotExist"} in terms["nodeSelectorTerms"][0][
            "matchExpressions"
        ]
        assert "tolerations" not in component, name
    assert values["grafana"]["sidecar"]["resources"]["requests"]
    assert values["prometheusOperator"]["admissionWebhooks"]["patch"]["resources"]["requests"]


def test_exporters_tolerate_the_gpu_taint_and_dcgm_runs_only_on_gpu_nodes(make_settings) -> None:
    gpu = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
    assert gpu in stack_values(make_settings())["prometheus-node-exporter"]["tolerations"]
    dcgm = dcgm_exporter_values()
    assert dcgm["tolerations"] == [gpu]
    assert dcgm["nodeSelector"] == {GPU_PRESENT_LABEL: "true"}
    assert dcgm["serviceMonitor"]["enabled"] and dcgm["serviceMonitor"]["additionalLabels"] == dict(
        SCRAPE_SELECTOR_LABELS
    )
    assert dcgm["resources"]["requests"]


def test_image_mirrors_rewrite_every_image_of_the_stack(make_settings) -> None:
    mirrors = {host: f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{host.split('.')[0]}" for host in IMAGE_HOSTS}
    values = stack_values(make_settings("enterprise"), image_mirrors=mirrors)
    for path, host in KUBE_PROMETHEUS_STACK_IMAGES:
        node = values
        for part in path.split("."):
            node = node[part]
        assert node["registry"] == mirrors[host], path
    assert dcgm_exporter_values(image_mirrors=mirrors)["image"]["repository"] == (
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/nvcr/nvidia/k8s/dcgm-exporter"
    )
    plain = stack_values(make_settings("enterprise"))
    assert "image" not in plain["prometheus"]["prometheusSpec"]
    assert dcgm_exporter_values()["image"]["repository"] == "nvcr.io/nvidia/k8s/dcgm-exporter"


def test_eks_hidden_scrapes_are_off_and_cost_labels_exported(make_settings) -> None:
    values = stack_values(make_settings())
    for key in ("kubeScheduler", "kubeControllerManager", "kubeEtcd", "kubeProxy"):
        assert values[key] == {"enabled": False}, key
    (allowlist,) = values["kube-state-metrics"]["metricLabelsAllowlist"]
    assert allowlist.startswith("nodes=[") and set(allowlist[7:-1].split(",")) == set(NODE_LABELS_FOR_COST)
    assert {"node.kubernetes.io/instance-type", "karpenter.sh/nodepool", "modelyard.dev/pool"} <= set(
        NODE_LABELS_FOR_COST
    )
    assert (
        values["alertmanager"]["enabled"] and values["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    )


def test_the_operators_crds_come_from_their_own_chart_of_the_same_operator_version(make_settings) -> None:
    """kube-prometheus-stack installs its CRDs once (its `crds` subchart's crds/ folder) and never upgrades them:
    prometheus-operator-crds, of the same Prometheus Operator, holds them instead; the stack's `crds` subchart
    (crds/ and the preview upgrade job) is off, and every CRD is kept if its release goes."""
    assert PROMETHEUS_OPERATOR_CRDS.crds_of == KUBE_PROMETHEUS_STACK_CHART
    assert PROMETHEUS_OPERATOR_CRDS.repository == KUBE_PROMETHEUS_STACK_REPO
    assert PROMETHEUS_OPERATOR_CRDS.app_version == UPSTREAM_CHARTS[KUBE_PROMETHEUS_STACK_CHART].app_version
    for preset in SHIPPED_PRESETS:
        assert stack_values(make_settings(preset))["crds"] == {"enabled": False}
    assert operator_crds_values() == {"crds": {"annotations": {"helm.sh/resource-policy": "keep"}}}


@pytest.mark.parametrize("stack", ["pilot", "product", "core"])
def test_every_stack_ships_every_rule_file(plans, stack) -> None:
    shipped = {
        m["object"]["metadata"]["name"] for m in plans[stack]["manifests"] if m["object"]["kind"] == "PrometheusRule"
    }
    assert shipped == {assets.load_rule(path)["metadata"]["name"] for path in assets.rule_files()}
    assert "modelyard-gateway" in shipped


@pytest.mark.parametrize("stack", ["pilot", "product", "core"])
def test_every_stack_installs_the_operators_crds_before_the_stack(plans, stack) -> None:
    releases = {r["name"]: r for r in plans[stack]["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"}
    crds, stack_release = releases["monitoring-prometheus-operator-crds"], releases["monitoring-kube-prometheus-stack"]
    assert crds["inputs"]["chart"] in (PROMETHEUS_OPERATOR_CRDS.name, PROMETHEUS_OPERATOR_CRDS.bundle_path)
    assert crds["inputs"]["version"] == PROMETHEUS_OPERATOR_CRDS.version
    assert crds["inputs"]["namespace"] == stack_release["inputs"]["namespace"] == "monitoring"
    assert crds["inputs"]["takeOwnership"] is True and crds["inputs"]["values"] == operator_crds_values()
    assert crds["key"] in stack_release["depends_on"]
    assert stack_release["inputs"]["skipCrds"] is True
    assert stack_release["inputs"]["values"]["crds"] == {"enabled": False}
    # What needs the CRDs and the operator still waits for the stack, which waits for the CRDs.
    assert stack_release["key"] in releases["monitoring-dcgm-exporter"]["depends_on"]


def test_alertmanager_routes_by_severity_and_repeats_sooner_for_bigger_presets(make_settings) -> None:
    repeats = []
    for preset in SHIPPED_PRESETS:
        hours = make_settings(preset).monitoring.alertmanager.repeat_interval_hours
        route = alertmanager_config(hours)["spec"]["route"]
        assert route["repeatInterval"] == f"{hours}h"
        by_severity = {
            m["value"]: r["receiver"] for r in route["routes"] for m in r["matchers"] if m["name"] == "severity"
        }
        assert by_severity == {"critical": "page", "warning": "ticket"}
        repeats.append(int(route["repeatInterval"].removesuffix("h")))
    assert repeats == sorted(repeats, reverse=True)


def test_receivers_read_their_secrets_from_secrets() -> None:
    specs = {
        "page": ReceiverSpec(kind=ReceiverKind.PAGERDUTY, secret_name="alertmanager-page"),
        "ticket": ReceiverSpec(kind=ReceiverKind.SLACK, secret_name="alertmanager-ticket", slack_channel="#llm"),
    }
    receivers = {r["name"]: r for r in alertmanager_config(4, specs)["spec"]["receivers"]}
    assert receivers["null"] == {"name": "null"}
    assert receivers["page"]["pagerdutyConfigs"][0]["routingKey"] == {"name": "alertmanager-page", "key": "secret"}
    slack = receivers["ticket"]["slackConfigs"][0]
    assert slack["apiURL"] == {"name": "alertmanager-ticket", "key": "secret"} and slack["channel"] == "#llm"
    webhook = alertmanager_config(
        24, {"page": ReceiverSpec(kind=ReceiverKind.WEBHOOK, secret_name="alertmanager-page")}
    )["spec"]["receivers"]
    assert webhook[1]["webhookConfigs"][0]["urlSecret"] == {"name": "alertmanager-page", "key": "secret"}
    assert webhook[2] == {"name": "ticket"}
    with pytest.raises(ValueError, match="unknown alert routes"):
        alertmanager_config(24, {"pager": specs["page"]})


def test_alertmanager_uses_the_kits_routing(make_settings) -> None:
    spec = stack_values(make_settings())["alertmanager"]["alertmanagerSpec"]
    assert spec["alertmanagerConfiguration"] == {"name": alertmanager_config(24)["metadata"]["name"]}


# --- the component under the offline engine ---------------------------------------------------------


def test_component_installs_pinned_charts_dashboards_and_rules_with_the_callers_provider() -> None:
    stack_file, settings = load_settings(ROOT, "pilot")

    def program() -> None:
        provider = k8s.Provider("k8s", kubeconfig="{}", namespace="default")
        receivers = {"page": AlertReceiver(kind=ReceiverKind.PAGERDUTY, secret=pulumi.Output.secret("pd-key"))}
        Monitoring(
            "monitoring",
            args=dataclasses.replace(monitoring_args(settings, aws_layer()), receivers=receivers),
            opts=pulumi.ResourceOptions(provider=provider),
        )

    recording = run_program(stack_file, preview=True, program=program)
    by_name = {r.name: r for r in recording.registrations}
    component = by_name["monitoring"]
    assert component.type == "modelyard:k8s:Monitoring"
    children = [r for r in recording.registrations if r.parent_urn == component.urn]
    assert children and all(r.provider_urn.endswith("::k8s") for r in children)

    stack = by_name["monitoring-kube-prometheus-stack"].inputs
    assert (stack["chart"], stack["version"], stack["repositoryOpts"]["repo"]) == (
        "kube-prometheus-stack",
        KUBE_PROMETHEUS_STACK_VERSION,
        KUBE_PROMETHEUS_STACK_REPO,
    )
    assert stack["name"] == "kube-prometheus-stack" and stack["namespace"] == "monitoring"
    assert (
        stack["values"]["prometheus"]["prometheusSpec"]["retention"]
        == f"{settings.monitoring.prometheus.retention_days}d"
    )
    # The operator's CRDs: a release of their own, first; the stack leaves them (and its upgrade job) out.
    crds = by_name["monitoring-prometheus-operator-crds"]
    assert crds.parent_urn == component.urn
    assert (crds.inputs["chart"], crds.inputs["version"], crds.inputs["repositoryOpts"]["repo"]) == (
        "prometheus-operator-crds",
        PROMETHEUS_OPERATOR_CRDS.version,
        KUBE_PROMETHEUS_STACK_REPO,
    )
    assert crds.inputs["name"] == "prometheus-operator-crds" and crds.inputs["takeOwnership"] is True
    assert crds.urn in by_name["monitoring-kube-prometheus-stack"].dependency_urns
    assert by_name["monitoring-namespace"].urn in crds.dependency_urns
    assert stack["skipCrds"] is True and stack["values"]["crds"] == {"enabled": False}
    dcgm = by_name["monitoring-dcgm-exporter"]
    assert (dcgm.inputs["version"], dcgm.inputs["repositoryOpts"]["repo"]) == (
        DCGM_EXPORTER_VERSION,
        DCGM_EXPORTER_REPO,
    )
    assert by_name["monitoring-kube-prometheus-stack"].urn in dcgm.dependency_urns

    rules = [r for r in children if r.type == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    maps = [r for r in children if r.type == "kubernetes:core/v1:ConfigMap"]
    # pilot does not write to a metrics workspace: no Cells dashboard.
    assert len(rules) == len(assets.rule_files()) and len(maps) == len(assets.dashboard_files(deployment_view=False))
    assert "monitoring-dashboard-modelyard-cells" not in by_name
    assert all(by_name["monitoring-kube-prometheus-stack"].urn in r.dependency_urns for r in rules)

    # The receiver's key is in a Secret of its own, marked secret; the routing references it by name.
    secret = by_name["monitoring-alertmanager-page"]
    assert secret.type == "kubernetes:core/v1:Secret" and secret.inputs["metadata"]["namespace"] == "monitoring"
    assert normalise(secret.inputs, urn_keys={})["stringData"] == SECRET
    routing = by_name["monitoring-alertmanager-config"]
    assert routing.type == "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig"
    assert secret.urn in routing.dependency_urns
    (page,) = [r for r in routing.inputs["spec"]["receivers"] if r["name"] == "page"]
    assert page["pagerdutyConfigs"][0]["routingKey"] == {"name": "alertmanager-page", "key": "secret"}


# --- docs -------------------------------------------------------------------------------------------


def test_docs_list_every_alert_and_the_sizes(make_settings) -> None:
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    for rule in assets.alerts():
        name, severity = rule["alert"], rule["labels"]["severity"]
        assert re.search(rf"^\| {name} \| {severity} \|.*\[{name}\]\(runbooks/{name}\.md\) \|$", doc, re.M), name
    for preset in SHIPPED_PRESETS:
        monitoring = make_settings(preset).monitoring
        prometheus, alertmanager = monitoring.prometheus, monitoring.alertmanager
        days = f"{monitoring.container_log_retention_days} days" if monitoring.container_log_retention_days else "none"
        row = (
            f"| {preset} | {prometheus.retention_days} days | {prometheus.storage_gib} GiB | {prometheus.replicas} "
            f"| {alertmanager.replicas} | {alertmanager.repeat_interval_hours}h | {days} |"
        )
        assert row in doc, row
    for pin in (KUBE_PROMETHEUS_STACK_VERSION, DCGM_EXPORTER_VERSION, VLLM_IMAGE_TAG.removeprefix("v")):
        assert f"`{pin}`" in doc, pin


# --- container logs ---------------------------------------------------------------------------------


def test_log_retention_grows_with_the_preset_and_is_one_cloudwatch_accepts(make_settings) -> None:
    days = [make_settings(p).monitoring.container_log_retention_days for p in SHIPPED_PRESETS]
    assert days[0] is None, "a pilot ships no container logs"
    assert all(d in LOG_RETENTION_DAYS for d in days[1:]) and days[1:] == sorted(days[1:])


def test_fluent_bit_ships_only_to_the_existing_group_from_every_node() -> None:
    values = fluent_bit_values(region="us-east-1", group_name="/aws/eks/c/containers")
    logs = values["cloudWatchLogs"]
    assert logs["enabled"] and logs["autoCreateGroup"] is False and logs["logGroupName"] == "/aws/eks/c/containers"
    assert not any(values[k]["enabled"] for k in ("cloudWatch", "firehose", "kinesis", "elasticsearch"))
    assert {"operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    assert values["resources"]["requests"]["cpu"]
    assert "image" not in values
    mirrored = fluent_bit_values(region="us-east-1", group_name="g", image_registry="1.dkr.ecr.x/ecr-public")
    assert mirrored["image"]["repository"] == "1.dkr.ecr.x/ecr-public/aws-observability/aws-for-fluent-bit"


def test_container_logs_write_only_to_their_group_through_pod_identity() -> None:
    stack_file, _ = load_settings(ROOT, "pilot")

    def program() -> None:
        aws_provider = aws.Provider("aws", region="us-east-1")
        k8s_provider = k8s.Provider("k8s", kubeconfig="{}", namespace="default")
        group = ContainerLogGroup(
            "logs",
            args=ContainerLogGroupArgs(cluster_name="modelyard-pilot", retention_days=30),
            opts=pulumi.ResourceOptions(provider=aws_provider),
        )
        ContainerLogs(
            "logs",
            args=ContainerLogsArgs(region="us-east-1", log_group_name=group.log_group_name),
            opts=pulumi.ResourceOptions(provider=k8s_provider, depends_on=[group]),
        )

    recording = run_program(stack_file, preview=False, program=program)
    by_type = {r.type: r for r in recording.registrations}
    group = by_type["aws:cloudwatch/logGroup:LogGroup"]
    assert group.inputs["retentionInDays"] == 30 and group.provider_urn.endswith("::aws")
    assert group.inputs["name"] == "/aws/eks/modelyard-pilot/containers"
    trust = json.loads(by_type["aws:iam/role:Role"].inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    (statement,) = json.loads(by_type["aws:iam/rolePolicy:RolePolicy"].inputs["policy"])["Statement"]
    assert all(":log-group:/aws/eks/modelyard-pilot/containers" in arn for arn in statement["Resource"])
    assert not any(action.startswith("logs:CreateLogGroup") or action == "logs:*" for action in statement["Action"])
    identity = by_type["aws:eks/podIdentityAssociation:PodIdentityAssociation"].inputs
    release = by_type["kubernetes:helm.sh/v3:Release"]
    assert release.provider_urn.endswith("::k8s")
    assert (release.inputs["chart"], release.inputs["version"]) == ("aws-for-fluent-bit", FLUENT_BIT_VERSION)
    assert identity["serviceAccount"] == release.inputs["values"]["serviceAccount"]["name"]
    assert identity["namespace"] == release.inputs["namespace"] == "monitoring"


@pytest.mark.parametrize(("stack", "days"), [("pilot", None), ("product", 30), ("core", 365)])
def test_container_logs_shipped_where_the_settings_keep_them(plans, stack, days):
    groups = [
        g
        for g in plans[stack]["resources"]
        if g["type"] == "aws:cloudwatch/logGroup:LogGroup" and g["name"] == "logs-group"
    ]
    releases = [r for r in plans[stack]["resources"] if r["name"] == "logs-aws-for-fluent-bit"]
    if days is None:
        assert not groups and not releases
    else:
        (group,) = groups
        assert group["inputs"]["retentionInDays"] == days
        assert len(releases) == 1


def test_alert_receivers_from_settings_keep_their_secret_out_of_the_plan(tmp_path):
    from tests.conftest import plan_with

    plan = plan_with(
        tmp_path,
        "minimal",
        {"monitoring": {"receivers": {"page": {"kind": "pagerduty", "secret": {"secure": "v1:cipher"}}}}},
    )
    text = json.dumps(plan)
    assert "offline-secret-placeholder" not in text, "a secure value never appears in the plan"
    secrets = [
        r for r in plan["resources"] if r["type"] == "kubernetes:core/v1:Secret" and r["name"].startswith("monitoring")
    ]
    for secret in secrets:
        data = secret["inputs"]["stringData"]
        assert data == "[secret]" or all(v == "[secret]" for v in data.values())
    assert secrets
    (config,) = [m["object"] for m in plan["manifests"] if m["object"]["kind"] == "AlertmanagerConfig"]
    assert "pagerdutyConfigs" in json.dumps(config["spec"]["receivers"])


def test_alert_routes_are_page_and_ticket_only(make_settings):
    from components.errors import InputError

    with pytest.raises(InputError) as exc:
        make_settings(monitoring={"receivers": {"urgent": {"kind": "webhook", "secret": "https://x"}}})
    assert "routes are page (critical) and ticket (warning)" in exc.value.problems[0].message


def test_runbook_links_follow_the_setting(tmp_path):
    from tests.conftest import plan_with

    base = "https://wiki.example.com/llm/runbooks/"
    plan = plan_with(tmp_path, "minimal", {"monitoring": {"runbook_base_url": base}})
    rules = [m["object"] for m in plan["manifests"] if m["object"]["kind"] == "PrometheusRule"]
    urls = [
        rule["annotations"]["runbook_url"]
        for obj in rules
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert urls and all(url.startswith(base) and url.endswith(".md") for url in urls)
