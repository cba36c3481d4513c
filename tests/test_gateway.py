"""The gateway: its generated config in the real LiteLLM proxy on loopback, and its Kubernetes objects.

The proxy (tests/gateway_proxy.py) runs the generated config, tenants file and auth module against fake
OpenAI-compatible backends: one per self-hosted model and one standing for the proprietary provider; only
addresses change. What a tenant key must not reach is tests/test_gateway_attacks.py.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import contract
from components.contract import GATEWAY_NAMESPACE, GATEWAY_POD_LABELS, SECRET
from components.errors import InputError
from components.k8s.gateway import objects
from components.k8s.gateway.component import GatewayArgs, secret_value
from components.k8s.gateway.config import (
    FALLBACK_PREFIX,
    MASTER_KEY_ENV,
    METRICS_TOKEN_ENV,
    env_name,
    gateway_config,
    gateway_tenants,
    key_digest,
    model_service_url,
)
from components.k8s.monitoring.values import SCRAPE_SELECTOR_LABELS
from components.plan.run import plan_stack
from components.platform import gateway_args
from components.settings import Settings, build_settings
from components.settings.stackfile import SECRET_PLACEHOLDER
from tests.conftest import aws_layer
from tests.gateway_proxy import FakeBackend, Proxy, point_at_backends, running_proxy
from tests.tools import ROOT, background_checkov, require_tool, validate_strict

# Key name -> the key. A key named like a tenant calls for it; the others name their tenant (KEY_SETTINGS).
KEYS = {
    "alpha": "sk-alpha-0123456789abcdef",
    "beta": "sk-beta-0123456789abcdef",
    "beta-batch": "sk-beta-batch-0123456789",
    "gamma": "sk-gamma-0123456789ab",
    "gamma-batch": "sk-gamma-batch-0123456789",
    "delta": "sk-delta-0123456789ab",
}
KEY_SETTINGS: dict[str, dict[str, Any]] = {
    # beta's batch job may send 2 requests a minute, beta's other key is not limited.
    "beta-batch": {"tenant": "beta", "rpm_limit": 2},
    # gamma's limit (2 a minute) is shared by both its keys.
    "gamma-batch": {"tenant": "gamma"},
}
MASTER = "sk-master-0123456789abcdef"
PROVIDER_KEY = "sk-provider-0123456789"
METRICS_TOKEN = "scrape-0123456789abcdef"


def stack(**gateway: Any) -> Settings:
    """A minimal-preset stack: alpha keeps its data in the VPC, beta allows external APIs; both call
    `shared` (alpha's servers), which may fall back to OpenAI's gpt-4o."""
    model = {"model": "llama-3.1-8b", "pool": "l40s", "dtype": "bf16"}
    overrides: dict[str, Any] = {
        "models": {
            "llama-8b": None,
            "alpha-chat": {**model, "owner": "alpha"},
            "beta-chat": {**model, "owner": "beta"},
            "shared": {**model, "owner": "alpha"},
            "limited": {**model, "owner": "beta"},
        },
        "pools": {"l40s": {"max_gpus": 8}},
        "tenants": {
            "internal": None,
            "alpha": {"models": ["alpha-chat", "shared"], "gpu_quota": 4, "data": "in-vpc"},
            "beta": {"models": ["beta-chat", "shared", "limited"], "gpu_quota": 4, "data": "external-allowed"},
            # gamma and delta hold no GPU, so each states both its limits (tenant_limits derives none).
            "gamma": {"models": ["beta-chat"], "rpm_limit": 2, "tpm_limit": 100_000},
            "delta": {"models": ["alpha-chat"], "rpm_limit": 100, "tpm_limit": 20},
        },
        "gateway": {
            "keys": {name: {"key": key, **KEY_SETTINGS.get(name, {})} for name, key in KEYS.items()},
            "master_key": MASTER,
            "fallbacks": {"shared": {"provider": "openai", "model": "gpt-4o", "api_key": PROVIDER_KEY}},
            "model_rpm": {"limited": 2},
            **gateway,
        },
    }
    config = {"modelyard:preset": "minimal"} | {f"modelyard:{k}": json.dumps(v) for k, v in overrides.items()}
    return build_settings(project="modelyard", stack="gw", config=config)


def stack_args(**gateway: Any) -> GatewayArgs:
    """The Gateway's args as the platform builds them from stack(**gateway)."""
    return gateway_args(stack(**gateway), aws_layer())


# --- config, without the proxy ---------------------------------------------------------------------------


def test_config_routes_each_model_to_its_owner_service_and_holds_no_secret() -> None:
    args = stack_args()
    config = gateway_config(args)
    text = yaml.safe_dump(config) + json.dumps(gateway_tenants(args))
    for secret in [*KEYS.values(), MASTER, PROVIDER_KEY]:
        assert secret not in text
    bases = {m["model_name"]: m["litellm_params"].get("api_base") for m in config["model_list"]}
    assert bases["alpha-chat"] == "http://alpha-chat-llm-serving.tenant-alpha.svc.cluster.local:8000/v1"
    assert bases["beta-chat"] == model_service_url(args, "beta-chat")
    # The plain name never falls back: only the hybrid name external-allowed tenants are aliased to.
    assert config["router_settings"]["fallbacks"] == [{"shared@hybrid": [FALLBACK_PREFIX + "shared"]}]
    access = gateway_tenants(args)
    tenants = access["tenants"]
    assert tenants["alpha"]["aliases"] == {} and "shared@hybrid" not in tenants["alpha"]["models"]
    assert tenants["beta"]["aliases"] == {"shared": "shared@hybrid"}
    # Each key calls for one tenant, with its own limits beside the tenant's.
    assert access["keys"]["beta-batch"] == {"tenant": "beta", "rpm_limit": 2, "tpm_limit": None}
    assert access["keys"]["gamma-batch"]["tenant"] == access["keys"]["gamma"]["tenant"] == "gamma"
    assert tenants["gamma"]["rpm_limit"] == 2


def test_no_hybrid_route_when_no_tenant_may_leave_the_vpc() -> None:
    settings = stack()
    tenants = {**settings.tenants}
    tenants["beta"] = type(tenants["beta"])(**{**vars(tenants["beta"]), "data": tenants["alpha"].data})
    from dataclasses import replace

    config = gateway_config(gateway_args(replace(settings, tenants=tenants), aws_layer()))
    assert config["router_settings"]["fallbacks"] == []
    assert all(not m["model_name"].startswith(FALLBACK_PREFIX) for m in config["model_list"])


@pytest.mark.parametrize(("preset", "expected"), [("minimal", 1), ("moderate", 2), ("enterprise", 3)])
def test_replicas_come_from_the_preset_file(preset: str, expected: int) -> None:
    settings = build_settings(project="modelyard", stack="gw", config={"modelyard:preset": preset})
    assert settings.gateway.replicas == expected
    args = gateway_args(settings, aws_layer())
    assert args.replicas == expected
    assert objects.deployment(args)["spec"]["replicas"] == expected


def test_replicas_by_setting() -> None:
    assert stack_args(replicas=4).replicas == 4


def test_bad_gateway_settings_name_the_key() -> None:
    """Checked with every other setting, before anything is built (exit 2 from the CLI)."""
    for gateway, path, message in [
        (
            {"keys": {"nobody": {"key": KEYS["alpha"]}}},
            "modelyard:gateway.keys.nobody",
            "no tenant 'nobody': set gateway.keys.nobody.tenant",
        ),
        (
            {"keys": {"alpha-web": {"key": KEYS["alpha"], "tenant": "alfa"}}},
            "modelyard:gateway.keys.alpha-web.tenant",
            "no tenant 'alfa' (did you mean 'alpha'?)",
        ),
        ({"keys": {"alpha": {"key": "sk-short"}}}, "modelyard:gateway.keys.alpha.key", "the value does not match"),
        (
            {"keys": {"metrics": {"key": KEYS["alpha"], "tenant": "alpha"}}},
            "modelyard:gateway.keys.metrics",
            "is the alias of the proxy's own metrics key",
        ),
        ({"exposure": "public"}, "modelyard:gateway.hostname", "required with exposure: public"),
        (
            {"fallbacks": {"shared": {"provider": "anthropic", "model": "claude-sonnet-4-5"}}},
            "modelyard:gateway.fallbacks.shared.api_key",
            "anthropic needs an API key",
        ),
    ]:
        with pytest.raises(InputError) as exc:
            stack(**gateway)
        assert message in {p.path: p.message for p in exc.value.problems}[path]


# --- the real proxy --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("gateway")
    args = stack_args()
    backends = {m: FakeBackend(m).start() for m in ("alpha-chat", "beta-chat", "limited")}
    backends["shared"] = FakeBackend("shared", status=503).start()
    provider = FakeBackend("provider").start()
    backends["provider"] = provider
    config = gateway_config(args)
    point_at_backends(config, backends, provider)
    env = {
        MASTER_KEY_ENV: MASTER,
        METRICS_TOKEN_ENV: METRICS_TOKEN,
        env_name("FALLBACK_API_KEY", "shared"): PROVIDER_KEY,
    }
    try:
        with running_proxy(tmp, config=config, tenants=gateway_tenants(args), keys=KEYS, env=env) as (url, log):
            yield Proxy(url=url, backends=backends, log=log)
    finally:
        for backend in backends.values():
            backend.stop()


def test_a_tenant_key_reaches_its_model_backend(proxy: Proxy) -> None:
    status, body = proxy.chat("alpha-chat", KEYS["alpha"])
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "from alpha-chat"
    status, body = proxy.chat("beta-chat", KEYS["beta"])
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "from beta-chat"
    # The backend sees the served name, not the gateway's key.
    last = proxy.backends["beta-chat"].requests[-1]
    assert last["body"]["model"] == "beta-chat"
    assert KEYS["beta"] not in str(last["authorization"])


def test_a_tenant_cannot_call_another_tenants_model(proxy: Proxy) -> None:
    before = len(proxy.backends["beta-chat"].requests)
    status, _ = proxy.chat("beta-chat", KEYS["alpha"])
    assert status in (401, 403)
    status, _ = proxy.chat("shared@hybrid", KEYS["alpha"])
    assert status in (401, 403)
    assert len(proxy.backends["beta-chat"].requests) == before


@pytest.mark.parametrize("key", [None, "sk-wrong-0123456789", KEYS["alpha"] + "x"])
def test_a_wrong_or_missing_key_gets_401(proxy: Proxy, key: str | None) -> None:
    status, body = proxy.chat("alpha-chat", key)
    assert status == 401, body


def test_a_tenant_over_its_limit_gets_429_whichever_of_its_keys_calls(proxy: Proxy) -> None:
    # gamma may send 2 requests a minute, all its keys together.
    statuses = [proxy.chat("beta-chat", KEYS[key])[0] for key in ("gamma", "gamma-batch", "gamma-batch", "gamma")]
    assert statuses[:2] == [200, 200], statuses
    assert statuses[2:] == [429, 429], statuses


def test_a_key_over_its_own_limit_gets_429_and_its_tenants_other_keys_do_not(proxy: Proxy) -> None:
    statuses = [proxy.chat("beta-chat", KEYS["beta-batch"])[0] for _ in range(4)]
    assert statuses[:2] == [200, 200], statuses
    assert 429 in statuses[2:], statuses
    status, body = proxy.chat("beta-chat", KEYS["beta"])
    assert status == 200, body


def test_a_tenant_over_its_token_limit_gets_429(proxy: Proxy) -> None:
    # Each answer counts 8 tokens (the fake backend's usage); the limit is 20 a minute.
    statuses = [proxy.chat("alpha-chat", KEYS["delta"])[0] for _ in range(5)]
    assert statuses[0] == 200, statuses
    assert 429 in statuses, statuses


def test_a_model_over_its_limit_gets_429_whoever_calls(proxy: Proxy) -> None:
    statuses = [proxy.chat("limited", KEYS["beta"])[0] for _ in range(4)]
    assert statuses[:2] == [200, 200], statuses
    assert 429 in statuses[2:], statuses
    assert len(proxy.backends["limited"].requests) == 2


def test_failing_servers_fall_back_only_for_an_external_allowed_tenant(proxy: Proxy) -> None:
    provider = proxy.backends["provider"]
    before = len(provider.requests)
    status, body = proxy.chat("shared", KEYS["alpha"])
    assert status >= 500, body
    assert len(provider.requests) == before, "an in-vpc tenant's prompt reached the external API"
    status, body = proxy.chat("shared", KEYS["beta"])
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == "from provider"
    assert len(provider.requests) == before + 1
    assert provider.requests[-1]["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert provider.requests[-1]["body"]["model"] == "gpt-4o"


def test_metrics_are_served_without_enterprise_to_the_scrape_token_only(proxy: Proxy) -> None:
    answer = proxy.request("GET", "/metrics/", METRICS_TOKEN)
    text = answer.text
    assert answer.status == 200, text[:500]
    # Request counts by tenant (the key alias) and model, after the requests above.
    assert re.search(r'^litellm_proxy_total_requests_metric_total\{.*api_key_alias="alpha"', text, re.M), text[:3000]
    # A tenant's second key counts under its own name, and under its tenant as the user.
    series = [line for line in text.splitlines() if line.startswith("litellm_proxy_total_requests_metric_total{")]
    assert any('api_key_alias="gamma-batch"' in line and 'user="gamma"' in line for line in series), series
    for key in (None, KEYS["alpha"], MASTER + "x"):
        assert proxy.request("GET", "/metrics/", key).status == 401
    # The scrape token opens nothing else.
    assert proxy.chat("alpha-chat", METRICS_TOKEN)[0] == 401


# --- Kubernetes objects ----------------------------------------------------------------------------------

KUBERNETES_VERSION = "1.33"
CRD_GROUPS = {"monitoring.coreos.com"}
CHECKOV_SKIPS = Path(objects.__file__).with_name("checkov-skips.yaml")


def rendered_objects() -> list[dict[str, Any]]:
    args = stack_args()
    return [
        objects.namespace_object(KUBERNETES_VERSION),
        *objects.manifests(args),
        *[objects.secret_object(spec, "placeholder") for spec in objects.secret_specs(args)],
    ]


@pytest.fixture(scope="module", autouse=True)
def checkov_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """checkov over the rendered objects, started before the module's first test (it takes seconds)."""
    target = tmp_path_factory.mktemp("checkov") / "gateway.yaml"
    with background_checkov(target, rendered_objects(), CHECKOV_SKIPS) as run:
        yield run


def test_objects_are_valid_for_the_cluster_kubernetes() -> None:
    assert validate_strict(rendered_objects(), KUBERNETES_VERSION, CRD_GROUPS) == CRD_GROUPS


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


def test_each_secret_value_has_its_own_secret_and_none_is_in_the_config_map() -> None:
    args = stack_args()
    specs = objects.secret_specs(args)
    assert sorted(s.name for s in specs) == [
        "gateway-fallback-shared",
        "gateway-key-alpha",
        "gateway-key-beta",
        "gateway-key-beta-batch",
        "gateway-key-delta",
        "gateway-key-gamma",
        "gateway-key-gamma-batch",
        "gateway-master-key",
        "gateway-metrics-token",
    ]
    values = {s.name: secret_value(args.gateway, s) for s in specs}
    assert values["gateway-key-alpha"] == key_digest(KEYS["alpha"])
    assert values["gateway-master-key"] == MASTER
    assert values["gateway-fallback-shared"] == PROVIDER_KEY
    config_map = yaml.safe_dump(objects.config_map(args))
    for value in [*values.values(), *KEYS.values()]:
        assert value not in config_map


def test_a_stopping_pod_is_taken_out_of_rotation_then_finishes_its_requests() -> None:
    """A rollout or a drain must not cut a generation in flight: the pod pauses while the load balancer and the
    Service stop sending to it, then has the proxy's whole request timeout to finish."""
    args = stack_args()
    pod = objects.deployment(args)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["lifecycle"]["preStop"] == {"sleep": {"seconds": contract.SERVER_PRE_STOP_SECONDS}}
    timeout = gateway_config(args)["router_settings"]["timeout"]
    assert pod["terminationGracePeriodSeconds"] >= contract.SERVER_PRE_STOP_SECONDS + timeout


def test_pod_is_hardened_like_the_model_servers() -> None:
    deployment = objects.deployment(stack_args(replicas=3))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert pod["securityContext"]["runAsUser"] >= 10000 and pod["securityContext"]["runAsNonRoot"]
    assert security["readOnlyRootFilesystem"] and security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"} and not security["allowPrivilegeEscalation"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert deployment["spec"]["replicas"] == 3
    assert re.fullmatch(r"ghcr\.io/berriai/litellm:v[\d.]+@sha256:[0-9a-f]{64}", container["image"])
    # The image is the version the proxy tests ran.
    from importlib.metadata import version

    assert container["image"].split(":")[1].split("@")[0] == f"v{version('litellm')}"
    # Tenants' NetworkPolicies admit the gateway by these labels (components.contract.GATEWAY_POD_LABELS).
    assert GATEWAY_POD_LABELS.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["metadata"]["namespace"] == GATEWAY_NAMESPACE


def test_egress_to_the_internet_only_when_a_tenant_may_fall_back() -> None:
    def egress(args: GatewayArgs) -> list[dict[str, Any]]:
        (policy,) = [p for p in objects.network_policies(args) if p["metadata"]["name"] == "litellm-egress"]
        return policy["spec"]["egress"]

    assert any(443 in [p["port"] for p in rule["ports"]] for rule in egress(stack_args()))
    assert not any(443 in [p["port"] for p in rule["ports"]] for rule in egress(stack_args(fallbacks={})))


def test_the_service_monitor_scrapes_with_the_token_prometheus_selects() -> None:
    (monitor,) = [o for o in objects.manifests(stack_args()) if o["kind"] == "ServiceMonitor"]
    assert SCRAPE_SELECTOR_LABELS.items() <= monitor["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["authorization"]["credentials"]["name"] == objects.METRICS_TOKEN_SECRET
    assert not [o for o in objects.manifests(stack_args(master_key=None)) if o["kind"] == "ServiceMonitor"]


# --- the offline plan ------------------------------------------------------------------------------------


def _project(tmp_path: Path, gateway: str) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    body = (
        "config:\n  modelyard:preset: minimal\n"
        "  modelyard:tenants:\n    internal:\n      data: external-allowed\n      rpm_limit: 60\n"
        f"  modelyard:gateway:\n{gateway}"
    )
    (tmp_path / "stacks" / "Pulumi.gw.yaml").write_text(body)
    return tmp_path


def test_the_plan_shows_every_secret_as_secret(tmp_path: Path) -> None:
    gateway = (
        "    keys:\n      internal:\n        key:\n          secure: v1:abc==\n"
        "    master_key:\n      secure: v1:def==\n"
        "    fallbacks:\n      llama-8b:\n        provider: anthropic\n        model: claude-sonnet-4-5\n"
        "        api_key:\n          secure: v1:ghi==\n"
    )
    plan = plan_stack(_project(tmp_path, gateway), "gw")
    text = json.dumps(plan)
    for leak in (SECRET_PLACEHOLDER, key_digest(SECRET_PLACEHOLDER), objects.metrics_token(SECRET_PLACEHOLDER)):
        assert leak not in text
    secrets = [r for r in plan["resources"] if r["type"] == "kubernetes:core/v1:Secret" and "gateway" in r["key"]]
    assert len(secrets) == 4
    for resource in secrets:
        data = resource["inputs"]["stringData"]
        assert data == SECRET or list(data.values()) == [SECRET], resource


def test_keys_in_plain_text_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"plain text"):
        plan_stack(_project(tmp_path, "    keys:\n      internal:\n        key: sk-plain-0123456789abcdef\n"), "gw")
