"""Quality in production (docs/lifecycle.md#quality-in-production): the `quality` settings, the CronJob, Pushgateway,
NetworkPolicies and alert rule with the real tools (kubernetes-validate, checkov, promtool), a stack that enables it
planned and checked by the policy rules, and the runner the CronJob invokes, run as a process against fake backends
through the real LiteLLM proxy, pushing to a recording Pushgateway."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from components import contract
from components.errors import InputError
from components.evalsets import GENERAL_SET, load_set
from components.k8s import quality
from components.k8s.gateway import objects as gateway_objects
from components.k8s.gateway.config import MASTER_KEY_ENV, gateway_config, gateway_tenants
from components.k8s.monitoring import assets
from components.platform import gateway_args, quality_args
from components.policy import evaluate
from components.settings import Settings, build_settings
from tests import netpol
from tests.conftest import aws_layer, plan_with
from tests.gateway_proxy import FakeBackend, running_proxy
from tests.test_lifecycle import WRONG_ANSWERS, oracle
from tests.tools import ROOT, background_checkov, require_tool, validate_strict

KEY = "sk-quality-0123456789abcdef"
MASTER = "sk-master-0123456789abcdef"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelyard-eval-runner:0.1.0@sha256:" + "ab" * 32
KUBERNETES_VERSION = "1.33.0"
CRD_GROUPS = frozenset({"monitoring.coreos.com"})
CHECKOV_SKIPS = Path(quality.__file__).with_name("quality-checkov-skips.yaml")
QUALITY = {"image": IMAGE, "key": "quality", "models": {"llama-8b": {"set": "general", "min_pass_rate": 0.9}}}
CANARY_MODELS = {
    "llama-8b": {
        "model": "llama-3.1-8b",
        "pool": "l40s",
        "dtype": "bf16",
        "revision": "v1",
        "replicas": {"min": 1, "max": 1},
        "canary": {"revision": "v2", "weight": 20},
    }
}
CANARY = {"models": CANARY_MODELS, "pools": {"l40s": {"max_gpus": 2}}}
"""The minimal preset's model on revision v1 with a canary of v2 (the pool and quota hold both)."""


def settings_of(q: dict[str, Any] | None = None, **config: Any) -> Settings:
    """The minimal preset (one model, llama-8b, for the tenant internal) with a gateway key for the runner."""
    values = {
        "gateway": {"keys": {"quality": {"key": KEY, "tenant": "internal"}}, "master_key": MASTER},
        "quality": QUALITY if q is None else q,
        **config,
    }
    return build_settings(
        project="modelyard",
        stack="q",
        config={"modelyard:preset": "minimal", **{f"modelyard:{k}": json.dumps(v) for k, v in values.items()}},
    )


def problems(q: dict[str, Any], **config: Any) -> dict[str, str]:
    with pytest.raises(InputError) as exc:
        settings_of(q, **config)
    return {p.path: p.message for p in exc.value.problems}


def canary_settings() -> Settings:
    return settings_of(None, tenants={"internal": {"models": ["llama-8b"], "gpu_quota": 2}}, **CANARY)


def args_of(settings: Settings | None = None) -> quality.QualityArgs:
    return quality_args(settings or settings_of(), aws_layer())


def rendered_objects(settings: Settings | None = None) -> list[dict[str, Any]]:
    return quality.manifests(args_of(settings), key=KEY)


# --- settings --------------------------------------------------------------------------------------------


def test_quality_is_off_unless_asked() -> None:
    for preset in ("minimal", "moderate", "enterprise"):
        plain = build_settings(project="modelyard", stack="q", config={"modelyard:preset": preset})
        assert plain.quality is None, preset


def test_the_image_is_required_and_pinned_by_digest() -> None:
    assert "required" in problems({k: v for k, v in QUALITY.items() if k != "image"})["modelyard:quality.image"]
    tagged = IMAGE.split("@")[0]
    assert "pinned by digest" in problems({**QUALITY, "image": tagged})["modelyard:quality.image"]
    assert "pinned by digest" in problems({**QUALITY, "image": IMAGE.replace("ab", "AB")})["modelyard:quality.image"]


def test_key_models_and_sets_must_exist_and_agree() -> None:
    assert "no key 'qualty'" in problems({**QUALITY, "key": "qualty"})["modelyard:quality.key"]
    found = problems({**QUALITY, "models": {"llama-9b": {}}})
    assert "no model 'llama-9b'" in found["modelyard:quality.models.llama-9b"]
    found = problems({**QUALITY, "models": {"llama-8b": {"set": "generl"}}})
    assert "did you mean 'general'" in found["modelyard:quality.models.llama-8b.set"]
    assert "at least one model" in problems({**QUALITY, "models": {}})["modelyard:quality.models"]
    # A key whose tenant may not call the model.
    found = problems(
        QUALITY,
        tenants={"internal": {"models": ["llama-8b"]}, "other": {"models": []}},
        gateway={"keys": {"quality": {"key": KEY, "tenant": "other"}}},
    )
    assert "may not call 'llama-8b'" in found["modelyard:quality.models.llama-8b"]


def test_with_a_canary_the_key_must_be_able_to_call_each_revision() -> None:
    # Allowed the model, its tenant may call both `<model>@<revision>` names (the gateway's tenants file lists them).
    settings = canary_settings()
    (model,) = args_of(settings).models.values()
    assert [name for name, _, _ in model.targets("llama-8b")] == ["llama-8b@v1", "llama-8b@v2"]
    tenants = gateway_tenants(gateway_args(settings, aws_layer()))["tenants"]
    assert {"llama-8b@v1", "llama-8b@v2"} <= set(tenants["internal"]["models"])
    # A key of a tenant not allowed the model: refused, naming the key and the revision names it would call.
    found = problems(
        QUALITY,
        tenants={"internal": {"models": ["llama-8b"], "gpu_quota": 2}, "other": {"models": []}},
        gateway={"keys": {"quality": {"key": KEY, "tenant": "other"}}},
        **CANARY,
    )
    message = found["modelyard:quality.models.llama-8b"]
    assert "the key 'quality'" in message and "'llama-8b@v1', 'llama-8b@v2'" in message, message


@pytest.mark.parametrize(
    ("field", "value"), [("schedule", "every hour"), ("schedule", "0 * * *"), ("timeout_seconds", 0)]
)
def test_bad_schedule_or_timeout_names_the_key(field: str, value: Any) -> None:
    assert f"modelyard:quality.{field}" in problems({**QUALITY, field: value})


def test_a_bad_set_is_refused_when_the_settings_are_built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import components.evalsets as evalsets

    (tmp_path / "general.jsonl").write_text(GENERAL_SET.read_text())
    (tmp_path / "broken.jsonl").write_text('{"id": "a", "prompt": "p", "grader": {"type": "fuzzy"}}\n')
    monkeypatch.setattr(evalsets, "EVALSETS_DIR", tmp_path)
    found = problems({**QUALITY, "models": {"llama-8b": {"set": "broken"}}})
    assert "broken.jsonl:1.grader.type" in found["modelyard:quality.models.llama-8b.set"]


def test_bad_quality_settings_exit_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from components import cli

    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (stacks / "presets").symlink_to(ROOT / "stacks" / "presets")
    q = {"key": "quality", "models": {"llama-8b": {}}, "image": "registry.example.com/eval-runner:1"}
    config = {"modelyard:preset": "minimal", "modelyard:quality": q}
    (stacks / "Pulumi.q.yaml").write_text(yaml.safe_dump({"config": config}))
    assert cli.main(["plan", "--stack", "q", "--project-dir", str(tmp_path)]) == 2
    assert "modelyard:quality.image" in capsys.readouterr().err
    # A canary's revisions the runner's key may not call: exit 2, naming the key.
    config = {
        "modelyard:preset": "minimal",
        "modelyard:quality": QUALITY,
        "modelyard:gateway": {"keys": {"quality": {"key": KEY, "tenant": "other"}}},
        "modelyard:tenants": {"internal": {"models": ["llama-8b"], "gpu_quota": 2}, "other": {"models": []}},
        **{f"modelyard:{k}": v for k, v in CANARY.items()},
    }
    (stacks / "Pulumi.q.yaml").write_text(yaml.safe_dump({"config": config}))
    assert cli.main(["plan", "--stack", "q", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "modelyard:quality.models.llama-8b" in err and "the key 'quality'" in err and "llama-8b@v2" in err, err


def test_max_drop_is_a_share() -> None:
    found = problems({**QUALITY, "models": {"llama-8b": {"max_drop": 0}}})
    assert "modelyard:quality.models.llama-8b.max_drop" in found


# --- objects ---------------------------------------------------------------------------------------------


def test_objects_are_valid_for_the_cluster_kubernetes() -> None:
    assert validate_strict(rendered_objects(), KUBERNETES_VERSION, CRD_GROUPS) == CRD_GROUPS


@pytest.fixture(scope="module", autouse=True)
def checkov_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    target = tmp_path_factory.mktemp("checkov") / "quality.yaml"
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
    # Every object was read; checkov also checks a Deployment's pod template as a Pod of its own.
    deployments = sum(1 for o in rendered_objects() if o["kind"] == "Deployment")
    assert summary["parsing_errors"] == 0 and summary["resource_count"] == len(rendered_objects()) + deployments
    assert summary["passed"] > 100


def test_the_cron_job_is_restricted_bounded_and_never_overlaps() -> None:
    (job,) = [o for o in rendered_objects() if o["kind"] == "CronJob"]
    spec = job["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["schedule"] == "0 */6 * * *"
    run = spec["jobTemplate"]["spec"]
    # 24 items at 120 s each, one after another, plus a minute.
    assert run["activeDeadlineSeconds"] == 24 * 120 + 60 and run["backoffLimit"] == 0
    pod = run["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == contract.QUALITY_RUNNER
    assert pod["securityContext"]["runAsNonRoot"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert container["image"] == IMAGE
    assert "env" not in container, "the key is a mounted file, not an environment variable"
    (sa,) = [o for o in rendered_objects() if o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "eval-runner"]
    assert sa["automountServiceAccountToken"] is False


def test_the_runner_config_and_set_are_what_the_settings_name() -> None:
    (config_map,) = [
        o for o in rendered_objects() if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "eval-runner"
    ]
    config = json.loads(config_map["data"]["runner.json"])
    assert config["endpoint"] == contract.gateway_url() and config["pushgateway"] == contract.pushgateway_url()
    assert config["models"] == {
        "llama-8b": {
            "set": "general",
            "set_file": "/etc/modelyard/quality/general.jsonl",
            "min_pass_rate": 0.9,
            "max_drop": 0.1,
            # No canary: the name clients call, under the stable revision (the minimal preset's default, main).
            "targets": [{"name": "llama-8b", "revision": "main", "track": "stable"}],
        }
    }
    assert config_map["data"]["general.jsonl"] == GENERAL_SET.read_text()
    # With a canary: each revision alone, and a run's deadline counts both.
    objects = rendered_objects(canary_settings())
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "eval-runner"]
    targets = json.loads(config_map["data"]["runner.json"])["models"]["llama-8b"]["targets"]
    assert targets == [
        {"name": "llama-8b@v1", "revision": "v1", "track": "stable"},
        {"name": "llama-8b@v2", "revision": "v2", "track": "canary"},
    ]
    (job,) = [o for o in objects if o["kind"] == "CronJob"]
    assert job["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 2 * 24 * 120 + 60
    # The key is not in a ConfigMap; it is the Secret's only value.
    assert KEY not in json.dumps([o for o in rendered_objects() if o["kind"] == "ConfigMap"])
    (secret,) = [o for o in rendered_objects() if o["kind"] == "Secret"]
    assert secret["stringData"] == {"key": KEY}


def test_network_policies_admit_only_the_gateway_the_pushgateway_and_prometheus() -> None:
    policies = [o for o in rendered_objects() if o["kind"] == "NetworkPolicy"]
    policies += gateway_objects.network_policies(gateway_args(settings_of(), aws_layer()))
    runner = netpol.pod(contract.QUALITY_NAMESPACE, dict(quality.RUNNER_LABELS))
    pushgateway = netpol.pod(contract.QUALITY_NAMESPACE, dict(quality.PUSHGATEWAY_LABELS))
    gateway = netpol.pod(contract.GATEWAY_NAMESPACE, dict(contract.GATEWAY_POD_LABELS))
    prometheus = netpol.pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    dns = netpol.pod("kube-system", {"k8s-app": "kube-dns"})
    port = contract.PUSHGATEWAY_PORT
    assert netpol.allowed(policies, source=runner, destination=gateway, port=contract.GATEWAY_PORT)
    assert netpol.allowed(policies, source=runner, destination=pushgateway, port=port)
    assert netpol.allowed(policies, source=prometheus, destination=pushgateway, port=port)
    assert netpol.egress_allows(policies, source=runner, destination=dns, port=53, protocol="UDP")
    # Nothing else: not a model server, not the internet, not the Pushgateway from elsewhere, no way out for it.
    server = netpol.pod("tenant-internal", {"app.kubernetes.io/component": "model-server"})
    assert not netpol.egress_allows(policies, source=runner, destination=server, port=8000)
    assert not netpol.egress_allows(policies, source=runner, destination=netpol.external("8.8.8.8"), port=443)
    assert not netpol.allowed(policies, source=netpol.pod("tenant-internal"), destination=pushgateway, port=port)
    assert not netpol.egress_allows(policies, source=pushgateway, destination=gateway, port=contract.GATEWAY_PORT)


def test_the_pushgateway_is_pinned_and_scraped_with_its_pushed_labels() -> None:
    by_kind = {o["kind"]: o for o in rendered_objects() if o["metadata"]["name"] == contract.PUSHGATEWAY_NAME}
    (container,) = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"docker.io/prom/pushgateway:v1.11.3@{quality.PUSHGATEWAY_DIGEST}"
    assert container["securityContext"]["readOnlyRootFilesystem"]
    (endpoint,) = by_kind["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True
    assert by_kind["ServiceMonitor"]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


# --- the alert rules with promtool ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("promtool")
    groups = quality.prometheus_rule()["spec"]["groups"]
    (directory / "full.yaml").write_text(yaml.safe_dump({"groups": groups}))
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (directory / "quality.yaml").write_text(yaml.safe_dump({"groups": groups}))
    (directory / "quality.test.yaml").write_text((ROOT / "tests" / "quality.test.yaml").read_text())
    return directory


def test_rules_pass_promtool_check(promtool_dir: Path) -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(promtool_dir / "full.yaml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool_dir: Path) -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", "quality.test.yaml"],
        cwd=promtool_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_quality_alert_is_tested_and_documented() -> None:
    tests = yaml.safe_load((ROOT / "tests" / "quality.test.yaml").read_text())["tests"]
    checks = [c for case in tests for c in case["alert_rule_test"]]
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    for rule in quality.alert_rules():
        name = rule["alert"]
        assert any(c["alertname"] == name and c.get("exp_alerts") for c in checks), f"{name} never fires"
        assert any(c["alertname"] == name and not c.get("exp_alerts") for c in checks), f"{name} never silent"
        assert rule["annotations"]["runbook_url"] == f"{assets.RUNBOOK_BASE_URL}{name}.md"
        assert (assets.RUNBOOKS_DIR / f"{name}.md").read_text().startswith(f"# {name}")
        assert f"| {name} | {rule['labels']['severity']} |" in doc, name
    # The rule reads the names the runner pushes (one contract).
    exprs = " ".join(rule["expr"] for rule in quality.alert_rules())
    for name in (
        contract.QUALITY_PASS_RATE,
        contract.QUALITY_MIN_PASS_RATE,
        contract.QUALITY_RUN_SUCCEEDED,
        contract.QUALITY_MAX_DROP,
        f'{contract.QUALITY_TRACK_LABEL}="{contract.QUALITY_TRACK_CANARY}"',
    ):
        assert name in exprs


def test_the_dashboard_queries_parse_and_read_what_the_runner_pushes(tmp_path: Path) -> None:
    """Every query of "modelyard / Quality" through `promtool check rules` (as recording rules, the model variable
    replaced by what Grafana sends for All), and only the metric names of the contract."""
    promtool = require_tool("promtool")
    (config_map,) = [o for o in rendered_objects() if o["metadata"]["name"] == f"dashboard-{quality.DASHBOARD_UID}"]
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["quality.json"])
    assert dashboard == quality.quality_dashboard() and dashboard["uid"] == quality.DASHBOARD_UID
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) == 4
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    exprs.append(variable["query"]["query"].removeprefix("label_values(").removesuffix(", model)"))
    pushed_names = {
        v for k, v in vars(contract).items() if k.startswith("QUALITY_") and str(v).startswith("modelyard_")
    }
    for expr in exprs:
        used = set(re.findall(r"\bmodelyard_[a-z_]+", expr))
        assert used and used <= pushed_names, expr
    rules = [{"record": f"dashboard:query_{i}", "expr": e.replace("$model", ".*")} for i, e in enumerate(exprs)]
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "dashboard.yaml")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_only_in_stacks_with_quality(
    quality_plan: dict[str, Any], plans: dict[str, dict[str, Any]]
) -> None:
    def dashboards(plan: dict[str, Any]) -> set[str]:
        return {m["object"]["metadata"]["name"] for m in plan["manifests"] if m["object"]["kind"] == "ConfigMap"}

    assert f"dashboard-{quality.DASHBOARD_UID}" in dashboards(quality_plan)
    # The shipped stacks have quality off: neither the dashboard nor any other object of the component.
    for stack, plan in plans.items():
        assert f"dashboard-{quality.DASHBOARD_UID}" not in dashboards(plan), stack
        assert not [m for m in plan["manifests"] if m["source"].startswith("quality/")], stack


# --- a stack with quality on, planned --------------------------------------------------------------------


@pytest.fixture(scope="module")
def quality_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    overrides = {
        "gateway": {"keys": {"quality": {"key": {"secure": "v1:cipher"}, "tenant": "internal"}}},
        "quality": QUALITY,
    }
    return plan_with(tmp_path_factory.mktemp("quality"), "minimal", overrides)


def test_the_plan_holds_every_object_and_passes_the_policies(quality_plan: dict[str, Any]) -> None:
    planned = {
        (m["object"]["kind"], m["object"]["metadata"]["name"])
        for m in quality_plan["manifests"]
        if m["source"].startswith("quality/")
    }
    assert planned == {(o["kind"], o["metadata"]["name"]) for o in rendered_objects()}
    assert evaluate(quality_plan) == []
    # The key stays a secret in the plan.
    (secret,) = [
        m["object"] for m in quality_plan["manifests"] if m["object"]["metadata"]["name"] == quality.KEY_SECRET
    ]
    assert secret["stringData"] == {"key": contract.SECRET}
    objects = [m["object"] for m in quality_plan["manifests"] if m["source"].startswith("quality/")]
    validate_strict([o for o in objects if o["kind"] != "Secret"], KUBERNETES_VERSION, CRD_GROUPS)


def test_quality_waits_for_the_gateway_and_the_monitoring_stack(quality_plan: dict[str, Any]) -> None:
    by_key = {r["key"]: r for r in quality_plan["resources"]}
    (job,) = [r for r in quality_plan["resources"] if r["type"] == "kubernetes:batch/v1:CronJob"]
    waits = set(job["depends_on"])
    # The components' dependencies reach the CronJob as their children's keys.
    assert any(k.startswith("gateway/") and "Deployment" in k for k in waits), waits
    assert any(k.startswith("monitoring/") and "kube-prometheus-stack" in k for k in waits), waits
    assert by_key[job["parent"]]["type"] == "modelyard:k8s:Quality"


def test_with_the_image_cache_the_pushgateway_comes_through_it(tmp_path: Path) -> None:
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/docker-hub"
    overrides = {
        "cluster": {"image_cache": {"mode": "on", "docker_hub_secret_arn": secret, "github_secret_arn": secret}},
        "gateway": {"keys": {"quality": {"key": {"secure": "v1:cipher"}, "tenant": "internal"}}},
        "quality": QUALITY,
    }
    plan = plan_with(tmp_path, "minimal", overrides)
    (deployment,) = [
        m["object"]
        for m in plan["manifests"]
        if m["object"]["kind"] == "Deployment" and m["object"]["metadata"]["name"] == contract.PUSHGATEWAY_NAME
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == (
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/prom/pushgateway:v1.11.3@{quality.PUSHGATEWAY_DIGEST}"
    )
    assert evaluate(plan) == []


# --- the runner, as the CronJob runs it ------------------------------------------------------------------


def grouping_key(path: str) -> tuple[tuple[str, str], ...]:
    """/metrics/job/<job>/<label>/<value>... -> the grouping key's (label, value) pairs, job first."""
    parts = [unquote(part) for part in path.removeprefix("/metrics/").split("/")]
    return tuple(zip(parts[::2], parts[1::2], strict=True))


class RecordingPushgateway:
    """Records what the runner sends (method, path, body) and keeps groups as the Pushgateway does: PUT and POST
    (200) create or change the group of their path's grouping key, DELETE (202) removes it, GET /api/v1/metrics lists
    every group's grouping key under `data[].labels` (the Pushgateway's query API, README "Query API")."""

    def __init__(self, groups: list[dict[str, str]] | None = None) -> None:
        self.pushes: list[tuple[str, str, str]] = []
        self.deleted: list[str] = []
        self.groups: set[tuple[tuple[str, str], ...]] = {tuple(g.items()) for g in groups or []}
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                gateway.pushes.append((self.command, self.path, body))
                gateway.groups.add(grouping_key(self.path))
                self._answer(200)

            def do_DELETE(self) -> None:
                gateway.deleted.append(self.path)
                gateway.groups.discard(grouping_key(self.path))
                self._answer(202)

            def do_GET(self) -> None:
                if self.path != "/api/v1/metrics":
                    self._answer(404)
                    return
                data = [{"labels": dict(key), "last_push_successful": True} for key in sorted(gateway.groups)]
                self._answer(200, json.dumps({"status": "success", "data": data}).encode())

            do_PUT = _record
            do_POST = _record

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FakeBackend]]:
    """The real proxy with the gateway config of a stack with quality on; llama-8b's servers are a fake backend."""
    args = gateway_args(settings_of(), aws_layer())
    backend = FakeBackend("v1").start()
    config = gateway_config(args)
    for entry in config["model_list"]:
        entry["litellm_params"]["api_base"] = backend.url
    config["router_settings"]["num_retries"] = 0
    tenants = gateway_tenants(args)
    tenants["tenants"]["internal"].update(rpm_limit=None, tpm_limit=None)
    tmp = tmp_path_factory.mktemp("quality-proxy")
    try:
        keys, env = {"quality": KEY}, {MASTER_KEY_ENV: MASTER}
        with running_proxy(tmp, config=config, tenants=tenants, keys=keys, env=env) as (url, _):
            yield url, backend
    finally:
        backend.stop()


def run_runner(
    tmp_path: Path, endpoint: str, pushgateway: str, key: str, settings: Settings | None = None
) -> subprocess.CompletedProcess[str]:
    """The CronJob's command, `python -m components.tools.quality --config ...`, with the config the ConfigMap holds;
    only addresses and paths change (the gateway's and Pushgateway's URLs, where the key and set are mounted)."""
    objects = rendered_objects(settings)
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "eval-runner"]
    config = json.loads(config_map["data"]["runner.json"])
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    (tmp_path / "key").write_text(key)
    config.update(endpoint=endpoint, pushgateway=pushgateway, key_file=str(tmp_path / "key"))
    for spec in config["models"].values():
        spec["set_file"] = str(tmp_path / Path(spec["set_file"]).name)
    (tmp_path / "runner.json").write_text(json.dumps(config))
    (job,) = [o for o in objects if o["kind"] == "CronJob"]
    (container,) = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    command = [sys.executable if c == "python" else c for c in container["command"]]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "http_proxy"))}
    return subprocess.run(
        [*command, "--config", str(tmp_path / "runner.json")],
        cwd=ROOT,
        env={**env, "NO_PROXY": "127.0.0.1,localhost"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def pushed(body: str) -> dict[str, tuple[dict[str, str], float]]:
    """Metric name -> (labels, value), parsed with prometheus_client's own text-format parser."""
    return {
        sample.name: (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_the_runner_pushes_each_models_pass_rate(proxy: tuple[str, FakeBackend], tmp_path: Path) -> None:
    url, backend = proxy
    backend.answer = oracle(WRONG_ANSWERS)
    pushgateway = RecordingPushgateway()
    result = run_runner(tmp_path, url, pushgateway.url, KEY)
    assert result.returncode == 0, result.stderr
    assert "llama-8b (general, revision main, stable): 18/24 passed, 75.0%, below its minimum 90.0%" in result.stdout
    ((method, path, body),) = pushgateway.pushes
    assert (method, path) == ("PUT", f"/metrics/job/{contract.QUALITY_JOB}/model/llama-8b/revision/main")
    metrics = pushed(body)
    assert metrics[contract.QUALITY_PASS_RATE] == ({"set": "general", "track": "stable"}, 0.75)
    assert metrics[contract.QUALITY_MAX_DROP][1] == 0.1
    assert metrics[contract.QUALITY_ITEMS][1] == 24 and metrics[contract.QUALITY_ITEMS_PASSED][1] == 18
    assert metrics[contract.QUALITY_MIN_PASS_RATE][1] == 0.9 and metrics[contract.QUALITY_RUN_SUCCEEDED][1] == 1
    assert metrics[contract.QUALITY_LAST_SUCCESS][1] > 1.7e9
    # Every item went through the gateway once, pinned, under the name clients call.
    asked = backend.requests[-24:]
    assert len(backend.requests) == 24 and {r["body"]["temperature"] for r in asked} == {0}
    assert {r["body"]["model"] for r in asked} == {"llama-8b"}


def test_a_refused_run_pushes_a_failure_and_keeps_the_last_rate(proxy: tuple[str, FakeBackend], tmp_path: Path) -> None:
    url, backend = proxy
    backend.answer = oracle({})
    pushgateway = RecordingPushgateway()
    result = run_runner(tmp_path, url, pushgateway.url, "sk-wrong-0123456789abcdef")
    assert result.returncode == 3, result.stdout + result.stderr
    ((method, path, body),) = pushgateway.pushes
    # POST replaces only the series it names: the last complete run's rate stays.
    assert method == "POST" and path.endswith("/model/llama-8b/revision/main")
    assert pushed(body) == {contract.QUALITY_RUN_SUCCEEDED: ({"set": "general", "track": "stable"}, 0.0)}


@pytest.fixture(scope="module")
def canary_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, FakeBackend]]]:
    """The real proxy with the gateway config of a stack with a canary of llama-8b and quality on; each revision's
    servers are a fake backend of their own (each route's address is its revision's backend)."""
    args = gateway_args(canary_settings(), aws_layer())
    backends = {"v1": FakeBackend("v1").start(), "v2": FakeBackend("v2").start()}
    config = gateway_config(args)
    for entry in config["model_list"]:
        entry["litellm_params"]["api_base"] = backends[entry["model_info"]["modelyard_revision"]].url
    config["router_settings"]["num_retries"] = 0
    tenants = gateway_tenants(args)
    tenants["tenants"]["internal"].update(rpm_limit=None, tpm_limit=None)
    tmp = tmp_path_factory.mktemp("quality-canary-proxy")
    try:
        keys, env = {"quality": KEY}, {MASTER_KEY_ENV: MASTER}
        with running_proxy(tmp, config=config, tenants=tenants, keys=keys, env=env) as (url, _):
            yield url, backends
    finally:
        for backend in backends.values():
            backend.stop()


def test_with_a_canary_each_revision_is_graded_alone(
    canary_proxy: tuple[str, dict[str, FakeBackend]], tmp_path: Path
) -> None:
    """The canary answers a quarter of the set wrong, the stable servers none: the canary's revision alone shows the
    lower rate (graded through the mix, both would show about 95%)."""
    url, backends = canary_proxy
    backends["v1"].answer = oracle({})
    backends["v2"].answer = oracle(WRONG_ANSWERS)
    # What an earlier runner left: the per-model group of runners before revisions, and a rolled-back canary's.
    job = contract.QUALITY_JOB
    stale = [{"job": job, "model": "llama-8b"}, {"job": job, "model": "llama-8b", "revision": "v0"}]
    other_job = {"job": "some-batch-job", "model": "llama-8b"}
    pushgateway = RecordingPushgateway([*stale, other_job])
    result = run_runner(tmp_path, url, pushgateway.url, KEY, canary_settings())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "llama-8b@v1 (general, revision v1, stable): 24/24 passed, 100.0%" in result.stdout
    assert "llama-8b@v2 (general, revision v2, canary): 18/24 passed, 75.0%, below its minimum 90.0%" in result.stdout
    by_path = {path: pushed(body) for method, path, body in pushgateway.pushes if method == "PUT"}
    assert by_path.keys() == {f"/metrics/job/{job}/model/llama-8b/revision/{r}" for r in ("v1", "v2")}
    stable = by_path[f"/metrics/job/{job}/model/llama-8b/revision/v1"]
    canary = by_path[f"/metrics/job/{job}/model/llama-8b/revision/v2"]
    assert stable[contract.QUALITY_PASS_RATE] == ({"set": "general", "track": "stable"}, 1.0)
    assert canary[contract.QUALITY_PASS_RATE] == ({"set": "general", "track": "canary"}, 0.75)
    # Each revision's servers got the whole set once, by the served name; none went by the weighted mix.
    assert len(backends["v1"].requests) == 24 and len(backends["v2"].requests) == 24
    assert {r["body"]["model"] for b in backends.values() for r in b.requests} == {"llama-8b"}
    # The stale groups of this job are gone; another job's group and the graded revisions' stay.
    assert sorted(pushgateway.deleted) == [
        f"/metrics/job/{job}/model/llama-8b",
        f"/metrics/job/{job}/model/llama-8b/revision/v0",
    ]
    assert {dict(key).get("revision") for key in pushgateway.groups if dict(key)["job"] == job} == {"v1", "v2"}
    assert tuple(other_job.items()) in pushgateway.groups


def test_the_runner_exits_3_when_the_pushgateway_is_unreachable(proxy: tuple[str, FakeBackend], tmp_path: Path) -> None:
    url, backend = proxy
    backend.answer = oracle({})
    result = run_runner(tmp_path, url, "http://127.0.0.1:9", KEY)
    assert result.returncode == 3 and "Pushgateway" in result.stderr


def test_a_bad_runner_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "runner.json").write_text(json.dumps({"endpoint": "gateway:4000", "pushgateway": "http://127.0.0.1:9"}))
    result = subprocess.run(
        [sys.executable, "-m", "components.tools.quality", "--config", str(tmp_path / "runner.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "runner.json.endpoint" in result.stderr


# --- the image and the docs ------------------------------------------------------------------------------


def test_the_runner_image_pins_its_base_and_the_locked_jsonschema() -> None:
    dockerfile = (ROOT / "deploy" / "eval-runner" / "Dockerfile").read_text()
    (base,) = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert "@sha256:" in base and len(base.split("@sha256:")[1]) == 64
    pins = dict(p.split("==") for p in dockerfile.split() if "==" in p)
    assert pins and all(metadata.version(name) == version for name, version in pins.items()), pins
    # Everything the runner imports from the kit is copied in.
    for module in ("contract.py", "errors.py", "evalsets.py", "tools/evaluation.py", "tools/quality.py"):
        assert f"components/{module}" in dockerfile, module
    assert f"--uid {quality.RUNNER_USER}" in dockerfile


def test_the_docs_give_the_token_cost_of_a_run() -> None:
    items = load_set(GENERAL_SET)
    cap = sum(item.max_tokens for item in items)
    doc = (ROOT / "docs" / "lifecycle.md").read_text()
    assert f"{len(items)} requests" in doc and f"{cap:,} output tokens" in doc
