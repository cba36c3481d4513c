"""What a tenant's key must not reach through the gateway, proven on the real LiteLLM proxy (tests/gateway_proxy.py).

Each test is an attack a tenant with a valid key can try: read the proxy's health or model info (which call every
backend and print their internal addresses), call an admin route, find a traceback or an internal URL in any
answer, or send more than its share of the GPUs. The routes asked are every route of the proxy's app, walked in
LiteLLM's own code, and LiteLLM's route classes (litellm.proxy._types.LiteLLMRoutes), never a list written here.
(The proxy's GET /routes lists 18 of them: it does not descend into included routers.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from components.contract import GATEWAY_LIVENESS_PATH
from components.k8s.gateway.config import MASTER_KEY_ENV, TENANT_ROUTES, gateway_config, gateway_tenants
from components.platform import gateway_args
from components.settings import Settings, build_settings
from tests.conftest import aws_layer
from tests.gateway_proxy import (
    PROMPT_TOKENS,
    Answer,
    FakeBackend,
    Proxy,
    free_port,
    point_at_backends,
    proxy_env,
    running_proxy,
)

KEYS = {
    "alpha": "sk-alpha-attack-0123456789",
    "beta": "sk-beta-attack-0123456789",
    "delta": "sk-delta-attack-0123456789",
    "omega": "sk-omega-attack-0123456789",
}
MASTER = "sk-master-attack-0123456789"
# The stack's share of a GPU a minute, small enough to reach in a test.
RPM_PER_GPU = 3
TPM_PER_GPU = 1000
# delta's answers count 400 tokens each (prompt and output): a third would cross its 1,000 tokens a minute.
DELTA_COMPLETION_TOKENS = 395
# LiteLLM's classes of admin, management, spend and info routes (litellm/proxy/_types.py, LiteLLMRoutes), some of
# which LiteLLM opens to its internal users, as a tenant's key is to it.
ADMIN_ROUTE_CLASSES = (
    "management_routes",
    "key_management_routes",
    "spend_tracking_routes",
    "global_spend_tracking_routes",
    "master_key_only_routes",
    "info_routes",
    "model_info_routes",
    "internal_user_routes",
    "self_managed_routes",
    "org_admin_only_routes",
    "admin_viewer_routes",
)
# What no answer to a tenant, or to nobody, may hold: a Python traceback, a path into the proxy's code, an
# in-cluster address (the fake backends' addresses are checked besides).
LEAK = re.compile(r"Traceback|File \"/|site-packages|svc\.cluster\.local")


def attack_stack() -> Settings:
    """alpha holds 4 GPUs and calls its servers (one answering, one failing, one gone); beta and delta hold one
    GPU each (delta sets a request limit of its own, no token limit); omega holds none and opts out of limits."""
    model = {"model": "llama-3.1-8b", "pool": "l40s", "dtype": "bf16", "replicas": {"min": 1, "max": 1}}
    overrides: dict[str, Any] = {
        "models": {
            "llama-8b": None,
            "alpha-chat": {**model, "owner": "alpha"},
            "flaky": {**model, "owner": "alpha"},
            "gone": {**model, "owner": "alpha"},
            "beta-chat": {**model, "owner": "beta"},
            "delta-chat": {**model, "owner": "delta"},
        },
        "pools": {"l40s": {"max_gpus": 8}},
        "tenants": {
            "internal": None,
            "alpha": {"models": ["alpha-chat", "flaky", "gone"], "gpu_quota": 4},
            "beta": {"models": ["beta-chat"], "gpu_quota": 1},
            "delta": {"models": ["delta-chat"], "gpu_quota": 1, "rpm_limit": 1000},
            "omega": {"models": ["beta-chat"], "unlimited": True},
        },
        "gateway": {
            "keys": {name: {"key": key} for name, key in KEYS.items()},
            "master_key": MASTER,
            "tenant_limits": {"rpm_per_gpu": RPM_PER_GPU, "tpm_per_gpu": TPM_PER_GPU},
        },
    }
    config = {"modelyard:preset": "minimal"} | {f"modelyard:{k}": json.dumps(v) for k, v in overrides.items()}
    return build_settings(project="modelyard", stack="attack", config=config)


class Gone(FakeBackend):
    """A backend whose port nothing listens on (a server that went away)."""

    def __init__(self) -> None:
        super().__init__("gone")
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Gone:
        return self

    def stop(self) -> None:
        pass


# Run in a child with the proxy's environment: every (method, path) the proxy's app serves once started (routers
# included, routes hidden from its OpenAPI schema too; its lazily loaded features come in through the route
# classes) and LiteLLM's route classes. Importing the proxy takes seconds, so it runs while the proxy starts.
_ROUTE_TABLE = """
import json
from starlette.routing import Mount
from litellm.proxy._types import LiteLLMRoutes
from litellm.proxy.proxy_server import app

def walk(routes):
    for route in routes:
        if hasattr(route, "original_router"):
            yield from walk(route.original_router.routes)
        elif not isinstance(route, Mount):
            for method in getattr(route, "methods", None) or ():
                yield method, route.path

classes = {name: sorted(LiteLLMRoutes[name].value) for name in CLASSES}
print(json.dumps({"routes": sorted(set(walk(app.routes))), "classes": classes}))
"""


def _litellm_routes(tmp: Path) -> subprocess.Popen[str]:
    code = _ROUTE_TABLE.replace("CLASSES", repr(ADMIN_ROUTE_CLASSES))
    return subprocess.Popen(
        [sys.executable, "-c", code], env=proxy_env(tmp), cwd=tmp, stdout=subprocess.PIPE, text=True
    )


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("attacks")
    args = gateway_args(attack_stack(), aws_layer())
    backends: dict[str, FakeBackend] = {
        "alpha-chat": FakeBackend("alpha-chat"),
        "flaky": FakeBackend("flaky", status=503),
        "gone": Gone(),
        "beta-chat": FakeBackend("beta-chat"),
        "delta-chat": FakeBackend("delta-chat", completion_tokens=DELTA_COMPLETION_TOKENS),
    }
    for backend in backends.values():
        backend.start()
    config = gateway_config(args)
    point_at_backends(config, backends, None)
    table = _litellm_routes(tmp)
    try:
        with running_proxy(
            tmp, config=config, tenants=gateway_tenants(args), keys=KEYS, env={MASTER_KEY_ENV: MASTER}
        ) as (url, log):
            stdout, _ = table.communicate(timeout=120)
            routes = json.loads(stdout)
            yield {
                "proxy": Proxy(url=url, backends=backends, log=log),
                "tenants": gateway_tenants(args),
                "routes": [tuple(call) for call in routes["routes"]],
                "admin": {route for routes in routes["classes"].values() for route in routes},
            }
    finally:
        if table.poll() is None:
            table.kill()
            table.wait()
        for backend in backends.values():
            backend.stop()


def leaks(answer: Answer, backends: dict[str, FakeBackend]) -> list[str]:
    """What an answer gives away: a traceback, a path into the code, an internal address (body or headers)."""
    text = answer.text + "\n" + "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
    found = LEAK.findall(text)
    found += [b.url for b in backends.values() if b.url.removesuffix("/v1") in text]
    return found


def _concrete(path: str) -> str:
    """A request path for a route template: every parameter filled with a harmless value."""
    return re.sub(r"\{[^}]+\}", "x", path)


@pytest.fixture(scope="module")
def sweep(attacked: dict[str, Any]) -> dict[tuple[str, str], tuple[Answer, Answer]]:
    """Every (method, route) the proxy serves, and every route of LiteLLM's admin classes it does not serve from
    the start (a lazily loaded feature's, a template) with GET and POST: asked without a key and with a tenant's."""
    proxy: Proxy = attacked["proxy"]
    calls = {(method, path) for method, path in attacked["routes"] if method not in ("HEAD", "OPTIONS")}
    assert len(calls) > 300, "the route table looks truncated"
    served = {path for _, path in calls}
    calls |= {(method, path) for path in attacked["admin"] - served for method in ("GET", "POST")}

    def ask(call: tuple[str, str]) -> tuple[tuple[str, str], Answer, Answer]:
        method, path = call
        return call, proxy.request(method, _concrete(path), None), proxy.request(method, _concrete(path), KEYS["alpha"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return {call: (anonymous, tenant) for call, anonymous, tenant in pool.map(ask, sorted(calls))}


def _tenant_route(path: str) -> bool:
    """A route a tenant's key may call: one of TENANT_ROUTES or under one (LiteLLM's allowed_routes match)."""
    return any(path == route or path.startswith(route + "/") for route in TENANT_ROUTES)


def test_a_tenant_key_gets_403_on_health_and_model_info(attacked: dict[str, Any]) -> None:
    proxy: Proxy = attacked["proxy"]
    before = {name: len(b.requests) for name, b in proxy.backends.items()}
    for path in ("/health", "/model/info", "/v1/model/info", "/v2/model/info", "/model_group/info", "/routes"):
        answer = proxy.request("GET", path, KEYS["alpha"])
        assert answer.status == 403, (path, answer.status, answer.text[:300])
        assert not leaks(answer, proxy.backends), (path, leaks(answer, proxy.backends))
    # /health asked nothing of the servers: the refusal comes before its live calls.
    assert {name: len(b.requests) for name, b in proxy.backends.items()} == before


def test_every_route_but_the_tenant_api_is_closed_to_a_tenant_key(
    sweep: dict[tuple[str, str], tuple[Answer, Answer]],
) -> None:
    """Every route that refuses a caller without a key (401) answers a tenant key 403, except the OpenAI API the
    tenant calls; or exactly what it answers without a key (the admin UI's password login reads no key)."""
    open_to_tenant = [
        f"{method} {path}: {tenant.status} {tenant.text[:120]}"
        for (method, path), (anonymous, tenant) in sweep.items()
        if anonymous.status == 401
        and not _tenant_route(path)
        and tenant.status != 403
        and (tenant.status, tenant.text) != (anonymous.status, anonymous.text)
    ]
    assert open_to_tenant == [], "\n".join(open_to_tenant)


def test_no_admin_route_answers_a_tenant_key(
    attacked: dict[str, Any], sweep: dict[tuple[str, str], tuple[Answer, Answer]]
) -> None:
    """LiteLLM's own classes of admin, spend and info routes: each is refused (403), or not served at all. (Its
    info routes include the model list, /models and /v1/models, which a tenant's key does call.)"""
    admin = {path for path in attacked["admin"] if not _tenant_route(path)}
    answered = [
        f"{method} {path}: {tenant.status} {tenant.text[:120]}"
        for (method, path), (_, tenant) in sweep.items()
        if path in admin and tenant.status not in (403, 404, 405)
    ]
    assert answered == [], "\n".join(answered)
    refused = {path for (_, path), (_, tenant) in sweep.items() if path in admin and tenant.status == 403}
    # Most of them are served from the start; the rest belong to features LiteLLM loads on first use.
    assert len(refused) > 150, len(refused)
    assert {"/health", "/model/info", "/key/generate", "/user/new", "/global/spend", "/config/list"} <= refused


def test_routes_without_a_key_are_no_admin_routes_and_no_answer_leaks(
    attacked: dict[str, Any], sweep: dict[tuple[str, str], tuple[Answer, Answer]]
) -> None:
    """What answers without a key is LiteLLM's probes, its API docs and UI assets, never an admin route; and no
    answer to anyone (no key, or a tenant's) holds a traceback, a code path or an internal address."""
    proxy: Proxy = attacked["proxy"]
    public = {path for (_, path), (anonymous, _) in sweep.items() if anonymous.status not in (401, 404, 405)}
    assert GATEWAY_LIVENESS_PATH in public
    assert sorted(public & attacked["admin"]) == []
    leaked = {
        f"{method} {path} ({who})": leaks(answer, proxy.backends)
        for (method, path), answers in sweep.items()
        for who, answer in zip(("no key", "tenant"), answers, strict=True)
        if leaks(answer, proxy.backends)
    }
    assert leaked == {}


def test_answers_to_a_tenant_name_no_internal_address(attacked: dict[str, Any]) -> None:
    """A served request, a failing server and a server that went away: no internal URL in the body or headers."""
    proxy: Proxy = attacked["proxy"]
    served = proxy.chat_answer("alpha-chat", KEYS["alpha"])
    assert served.status == 200, served.text[:300]
    failing = proxy.chat_answer("flaky", KEYS["alpha"])
    assert failing.status >= 500, failing.text[:300]
    gone = proxy.chat_answer("gone", KEYS["alpha"])
    assert gone.status >= 500, gone.text[:300]
    for answer in (served, failing, gone):
        assert not leaks(answer, proxy.backends), (answer.status, leaks(answer, proxy.backends), answer.text[:300])


def test_the_operators_health_check_shows_no_traceback_or_address(attacked: dict[str, Any]) -> None:
    proxy: Proxy = attacked["proxy"]
    answer = proxy.request("GET", "/health", MASTER)
    assert answer.status == 200, answer.text[:300]
    assert answer.json()["unhealthy_count"] >= 2
    assert not leaks(answer, proxy.backends), leaks(answer, proxy.backends)


def test_liveness_is_open_and_asks_no_backend(attacked: dict[str, Any]) -> None:
    """The NLB's health check and the pods' probes ask without a key; nothing reaches a model server."""
    proxy: Proxy = attacked["proxy"]
    before = {name: len(b.requests) for name, b in proxy.backends.items()}
    for path in (GATEWAY_LIVENESS_PATH, "/health/readiness"):
        answer = proxy.request("GET", path, None)
        assert answer.status == 200, (path, answer.text[:300])
        assert not leaks(answer, proxy.backends)
    assert {name: len(b.requests) for name, b in proxy.backends.items()} == before


def test_a_tenant_without_limits_of_its_own_is_held_to_its_gpus_requests(attacked: dict[str, Any]) -> None:
    """beta holds 1 GPU and sets no rpm_limit: it may send RPM_PER_GPU requests a minute, then gets 429."""
    proxy: Proxy = attacked["proxy"]
    statuses = [proxy.chat("beta-chat", KEYS["beta"])[0] for _ in range(RPM_PER_GPU + 2)]
    assert statuses == [200] * RPM_PER_GPU + [429, 429], statuses
    assert attacked["tenants"]["tenants"]["beta"]["rpm_limit"] == RPM_PER_GPU * 1


def test_a_tenant_without_limits_of_its_own_is_held_to_its_gpus_tokens(attacked: dict[str, Any]) -> None:
    """delta holds 1 GPU and sets no tpm_limit: TPM_PER_GPU tokens a minute. LiteLLM reserves a request's output
    before sending it (max_tokens, else at most a quarter of the limit) and refuses one that could cross the
    limit: delta gets every answer that fits, less at most one, never more, then 429."""
    proxy: Proxy = attacked["proxy"]
    per_answer = DELTA_COMPLETION_TOKENS + PROMPT_TOKENS
    statuses = [proxy.chat("delta-chat", KEYS["delta"])[0] for _ in range(TPM_PER_GPU // per_answer + 2)]
    served = statuses.count(200)
    assert statuses == [200] * served + [429] * (len(statuses) - served), statuses
    assert TPM_PER_GPU - 2 * per_answer < served * per_answer <= TPM_PER_GPU, statuses
    assert attacked["tenants"]["tenants"]["delta"]["tpm_limit"] == TPM_PER_GPU * 1


def test_an_unlimited_tenant_is_the_operators_explicit_choice(attacked: dict[str, Any]) -> None:
    """omega holds no GPU and says `unlimited: true`: no limit in the tenants file, and none enforced."""
    proxy: Proxy = attacked["proxy"]
    omega = attacked["tenants"]["tenants"]["omega"]
    assert omega["rpm_limit"] is None and omega["tpm_limit"] is None
    statuses = [proxy.chat("beta-chat", KEYS["omega"])[0] for _ in range(RPM_PER_GPU * 2)]
    assert statuses == [200] * (RPM_PER_GPU * 2), statuses
