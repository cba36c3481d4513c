"""Quality in production (docs/lifecycle.md#quality-in-production): the `quality` settings, the CronJob, Pushgateway,
NetworkPolicies and alert rule with the real tools (kubernetes-validate, checkov, promtool), a stack that enables it
planned and checked by the policy rules, and the runner the CronJob invokes, run as a process against fake backends
through the real LiteLLM proxy, pushing to a recording Pushgateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

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


def args_of(settings: Settings | None = None) -> quality.QualityArgs:
    return quality_args(settings or settings_of(), aws_layer())


def rendered_objects() -> list[dict[str, Any]]:
    return quality.manifests(args_of(), key=KEY)


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
    (config_map,) = [o for o in rendered_objects() if o["kind"] == "ConfigMap"]
    config = json.loads(config_map["data"]["runner.json"])
    assert config["endpoint"] == contract.gateway_url() and config["pushgateway"] == contract.pushgateway_url()
    assert config["models"] == {
        "llama-8b": {"set": "general", "set_file": "/etc/modelyard/quality/general.jsonl", "min_pass_rate": 0.9}
    }
    assert config_map["data"]["general.jsonl"] == GENERAL_SET.read_text()
    # The key is not in the ConfigMap; it is the Secret's only value.
    assert KEY not in json.dumps(config_map)
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
    for name in (contract.QUALITY_PASS_RATE, contract.QUALITY_MIN_PASS_RATE, contract.QUALITY_RUN_SUCCEEDED):
        assert name in exprs


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


class RecordingPushgateway:
    """Records what the runner sends (method, path, body); answers as the Pushgateway does (200 for PUT/POST)."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, str, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _record(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                gateway.pushes.append((self.command, self.path, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

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


def run_runner(tmp_path: Path, endpoint: str, pushgateway: str, key: str) -> subprocess.CompletedProcess[str]:
    """The CronJob's command, `python -m components.tools.quality --config ...`, with the config the ConfigMap holds;
    only addresses and paths change (the gateway's and Pushgateway's URLs, where the key and set are mounted)."""
    (config_map,) = [o for o in rendered_objects() if o["kind"] == "ConfigMap"]
    config = json.loads(config_map["data"]["runner.json"])
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    (tmp_path / "key").write_text(key)
    config.update(endpoint=endpoint, pushgateway=pushgateway, key_file=str(tmp_path / "key"))
    for spec in config["models"].values():
        spec["set_file"] = str(tmp_path / Path(spec["set_file"]).name)
    (tmp_path / "runner.json").write_text(json.dumps(config))
    (job,) = [o for o in rendered_objects() if o["kind"] == "CronJob"]
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
    assert "llama-8b (general): 18/24 passed, 75.0%, below its minimum 90.0%" in result.stdout
    ((method, path, body),) = pushgateway.pushes
    assert (method, path) == ("PUT", f"/metrics/job/{contract.QUALITY_JOB}/model/llama-8b")
    metrics = pushed(body)
    assert metrics[contract.QUALITY_PASS_RATE] == ({"set": "general"}, 0.75)
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
    assert method == "POST" and path.endswith("/model/llama-8b")
    assert pushed(body) == {contract.QUALITY_RUN_SUCCEEDED: ({"set": "general"}, 0.0)}


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
