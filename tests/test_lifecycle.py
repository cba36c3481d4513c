"""Model lifecycle: a canary revision beside the stable servers (settings, the plan's two releases, the gateway's
weighted split in the real LiteLLM proxy)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.contract import MAX_RELEASE_NAME, REVISION_LABEL, canary_release, revision_alias, serving_fullname
from components.errors import InputError
from components.k8s.gateway.config import MASTER_KEY_ENV, gateway_config, gateway_tenants
from components.platform import gateway_args
from components.settings import Settings, build_settings
from tests.conftest import aws_layer, plan_with
from tests.gateway_proxy import FakeBackend, Proxy, running_proxy

KEY = "sk-alpha-0123456789abcdef"
MASTER = "sk-master-0123456789abcdef"
CANARY = {"revision": "v2", "weight": 20, "replicas": {"min": 1, "max": 1}}


def overrides(canary: dict[str, Any] | None = CANARY, **model: Any) -> dict[str, Any]:
    """The minimal preset with its one model on revision v1 and a canary of v2 (one replica more: the pool and the
    tenant's quota are raised to hold it)."""
    return {
        "models": {
            "llama-8b": {
                "model": "llama-3.1-8b",
                "pool": "l40s",
                "dtype": "bf16",
                "revision": "v1",
                "replicas": {"min": 1, "max": 2},
                **({"canary": canary} if canary is not None else {}),
                **model,
            }
        },
        "pools": {"l40s": {"max_gpus": 3}},
        "tenants": {"internal": {"models": ["llama-8b"], "gpu_quota": 3}},
    }


def settings_of(over: dict[str, Any], **gateway: Any) -> Settings:
    config = {"modelyard:preset": "minimal"} | {f"modelyard:{k}": json.dumps(v) for k, v in over.items()}
    if gateway:
        config["modelyard:gateway"] = json.dumps(gateway)
    return build_settings(project="modelyard", stack="lc", config=config)


def problems(over: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InputError) as exc:
        settings_of(over)
    return {p.path: p.message for p in exc.value.problems}


# --- settings --------------------------------------------------------------------------------------------


def test_a_canary_of_the_stable_revision_is_refused() -> None:
    found = problems(overrides(canary={**CANARY, "revision": "v1"}))
    assert "is the stable revision ('v1')" in found["modelyard:models.llama-8b.canary.revision"]


@pytest.mark.parametrize("weight", [0, 100])
def test_a_canary_weight_outside_1_to_99_is_refused(weight: int) -> None:
    assert "modelyard:models.llama-8b.canary.weight" in problems(overrides(canary={**CANARY, "weight": weight}))


def test_a_canary_must_fit_the_pool_and_the_tenants_quota_with_the_stable_servers() -> None:
    over = overrides()
    over["pools"] = {"l40s": {"max_gpus": 2}}
    over["tenants"] = {"internal": {"models": ["llama-8b"], "gpu_quota": 2}}
    found = problems(over)
    assert "canaries included" in found["modelyard:pools.l40s.max_gpus"]
    assert "llama-8b canary 1" in found["modelyard:tenants.internal.gpu_quota"]
    # Without the canary the same pool and quota hold the stable servers.
    over_without = {**over, "models": {"llama-8b": {**over["models"]["llama-8b"]}}}
    del over_without["models"]["llama-8b"]["canary"]
    assert settings_of(over_without).models["llama-8b"].canary is None


def test_the_longest_model_key_leaves_room_for_its_canary_release() -> None:
    name = "m" * 30
    over = overrides()
    spec = over["models"]["llama-8b"]
    over["models"] = {"llama-8b": None, name: spec}
    over["tenants"] = {"internal": {"models": [name], "gpu_quota": 3}}
    settings_of(over)
    assert len(canary_release(name)) <= MAX_RELEASE_NAME
    over["models"] = {"llama-8b": None, name + "m": spec}
    assert "names are 1-30 characters" in problems(over)[f"modelyard:models.{name}m"]


def test_a_revision_must_be_a_label_value() -> None:
    assert "modelyard:models.llama-8b.canary.revision" in problems(overrides(canary={**CANARY, "revision": "-v2"}))


# --- the plan --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def canary_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return plan_with(tmp_path_factory.mktemp("canary"), "minimal", overrides())


def _objects(plan: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {m["object"]["metadata"]["name"]: m["object"] for m in plan["manifests"] if m["object"]["kind"] == kind}


def test_the_plan_has_two_server_sets_with_their_own_revision_and_replicas(canary_plan: dict[str, Any]) -> None:
    deployments = _objects(canary_plan, "Deployment")
    stable = deployments[serving_fullname("llama-8b")]
    canary = deployments[serving_fullname(canary_release("llama-8b"))]
    for deployment, revision in ((stable, "v1"), (canary, "v2")):
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["labels"][REVISION_LABEL] == revision
        args = " ".join(a for c in pod["spec"]["containers"] for a in c.get("args", []) + c.get("command", []))
        # The same served name: clients keep calling llama-8b.
        assert "--served-model-name=llama-8b" in args
        # Its own revision's weights.
        assert f"models/llama-3.1-8b/{revision}" in json.dumps(pod)
        assert f"models/llama-3.1-8b/{'v2' if revision == 'v1' else 'v1'}" not in json.dumps(pod)
    # The canary is not autoscaled (replicas 1..1): a fixed replica count; the stable one scales 1..2.
    assert canary["spec"]["replicas"] == 1
    scaled = _objects(canary_plan, "ScaledObject")
    assert set(scaled) == {serving_fullname("llama-8b")}
    # The autoscaler reads the stable servers' load only (the ServiceMonitor labels every series with the revision).
    query = scaled[serving_fullname("llama-8b")]["spec"]["triggers"][0]["metadata"]["query"]
    assert 'revision="v1"' in query
    monitors = _objects(canary_plan, "ServiceMonitor")
    for name in (serving_fullname("llama-8b"), serving_fullname(canary_release("llama-8b"))):
        relabel = monitors[name]["spec"]["endpoints"][0]["relabelings"]
        assert {
            "sourceLabels": ["__meta_kubernetes_pod_label_modelyard_dev_revision"],
            "targetLabel": "revision",
            "action": "replace",
        } in relabel


def test_rollback_is_dropping_the_canary(tmp_path: Path, canary_plan: dict[str, Any]) -> None:
    plain = plan_with(tmp_path, "minimal", overrides(canary=None))
    canary_name = serving_fullname(canary_release("llama-8b"))
    assert canary_name in _objects(canary_plan, "Deployment")
    assert canary_name not in _objects(plain, "Deployment")
    assert (
        _objects(plain, "Deployment")[serving_fullname("llama-8b")]
        == _objects(canary_plan, "Deployment")[serving_fullname("llama-8b")]
    )


# --- the gateway -----------------------------------------------------------------------------------------


def canary_settings(weight: int = 20, **gateway: Any) -> Settings:
    return settings_of(
        overrides(canary={**CANARY, "weight": weight}),
        keys={"alpha": {"key": KEY, "tenant": "internal"}},
        master_key=MASTER,
        **gateway,
    )


def test_the_gateway_splits_the_model_by_weight_and_names_each_revision() -> None:
    args = gateway_args(canary_settings(model_rpm={"llama-8b": 10}), aws_layer())
    config = gateway_config(args)
    routes = [m for m in config["model_list"] if m["model_name"] == "llama-8b"]
    assert [r["litellm_params"]["weight"] for r in routes] == [80, 20]
    assert [r["model_info"]["modelyard_revision"] for r in routes] == ["v1", "v2"]
    assert routes[1]["litellm_params"]["api_base"].startswith(f"http://{serving_fullname(canary_release('llama-8b'))}.")
    # The model's rpm is split, so both together admit what the limit says.
    assert sum(r["litellm_params"]["rpm"] for r in routes) == 10
    assert config["router_settings"]["routing_strategy"] == "simple-shuffle"
    names = {m["model_name"] for m in config["model_list"]}
    assert {revision_alias("llama-8b", "v1"), revision_alias("llama-8b", "v2")} <= names
    assert gateway_tenants(args)["tenants"]["internal"]["models"] == ["llama-8b", "llama-8b@v1", "llama-8b@v2"]


def point_by_revision(config: dict[str, Any], backends: dict[str, FakeBackend]) -> None:
    """Each route's address becomes the fake backend of the revision it serves."""
    for entry in config["model_list"]:
        entry["litellm_params"]["api_base"] = backends[entry["model_info"]["modelyard_revision"]].url
    config["router_settings"]["num_retries"] = 0


@pytest.fixture(scope="module")
def canary_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    args = gateway_args(canary_settings(weight=20), aws_layer())
    backends = {"v1": FakeBackend("v1").start(), "v2": FakeBackend("v2").start()}
    config = gateway_config(args)
    point_by_revision(config, backends)
    # No per-tenant limit gets in the way of a few hundred requests.
    tenants = gateway_tenants(args)
    tenants["tenants"]["internal"].update(rpm_limit=None, tpm_limit=None)
    tmp = tmp_path_factory.mktemp("canary-proxy")
    try:
        with running_proxy(tmp, config=config, tenants=tenants, keys={"alpha": KEY}, env={MASTER_KEY_ENV: MASTER}) as (
            url,
            log,
        ):
            yield Proxy(url=url, backends=backends, log=log)
    finally:
        for backend in backends.values():
            backend.stop()


def test_the_real_proxy_sends_the_canary_about_its_weight(canary_proxy: Proxy) -> None:
    requests = 400
    answers: Counter[str] = Counter()
    for _ in range(requests):
        status, body = canary_proxy.chat("llama-8b", KEY)
        assert status == 200, body
        answers[body["choices"][0]["message"]["content"]] += 1
    share = answers["from v2"] / requests
    # 20% of 400: binomial standard deviation 2%; 5 of them either side fails about once in 3.5 million runs.
    assert abs(share - 0.20) < 0.10, answers
    assert answers["from v1"] + answers["from v2"] == requests
    # Both server sets got the model's served name.
    assert {r["body"]["model"] for b in canary_proxy.backends.values() for r in b.requests} == {"llama-8b"}


def test_each_revision_is_reachable_alone(canary_proxy: Proxy) -> None:
    for revision in ("v1", "v2"):
        for _ in range(5):
            status, body = canary_proxy.chat(revision_alias("llama-8b", revision), KEY)
            assert status == 200, body
            assert body["choices"][0]["message"]["content"] == f"from {revision}"
