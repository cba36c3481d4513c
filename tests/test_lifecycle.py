"""Model lifecycle (docs/lifecycle.md): a canary revision beside the stable servers (settings, the plan's two releases
and their cost, the gateway's weighted split in the real LiteLLM proxy), `modelyard eval` through that proxy against
fake backends, and the license and version guard (settings, the plan diff)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from components import cli
from components.contract import MAX_RELEASE_NAME, REVISION_LABEL, canary_release, revision_alias, serving_fullname
from components.errors import InputError
from components.k8s.gateway.config import MASTER_KEY_ENV, gateway_config, gateway_tenants
from components.plan.diff import diff_plans, model_changes, render_markdown, render_text
from components.platform import gateway_args
from components.settings import Settings, build_settings
from components.tools.evaluation import DEFAULT_SEED, GENERAL_SET, load_set, wilson
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


@pytest.fixture(scope="module")
def plain_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return plan_with(tmp_path_factory.mktemp("plain"), "minimal", overrides(canary=None))


def test_rollback_is_dropping_the_canary(plain_plan: dict[str, Any], canary_plan: dict[str, Any]) -> None:
    plain = plain_plan
    canary_name = serving_fullname(canary_release("llama-8b"))
    assert canary_name in _objects(canary_plan, "Deployment")
    assert canary_name not in _objects(plain, "Deployment")
    assert (
        _objects(plain, "Deployment")[serving_fullname("llama-8b")]
        == _objects(canary_plan, "Deployment")[serving_fullname("llama-8b")]
    )


def test_the_canary_is_priced_as_a_fleet_of_its_own(plain_plan: dict[str, Any], canary_plan: dict[str, Any]) -> None:
    lines = {line["id"]: line for line in canary_plan["cost"]["lines"]}
    canary = lines["controllers/gpu/l40s/llama-8b-canary"]
    stable = lines["controllers/gpu/l40s/llama-8b"]
    assert canary["basis"].startswith("1 nodes always + 0 more")  # replicas 1..1
    assert "controllers/gpu/l40s/llama-8b-canary" not in {line["id"] for line in plain_plan["cost"]["lines"]}
    assert {line["id"]: line for line in plain_plan["cost"]["lines"]}["controllers/gpu/l40s/llama-8b"] == stable
    assert Decimal(canary_plan["cost"]["monthly_total"]) > Decimal(plain_plan["cost"]["monthly_total"])


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


# --- modelyard eval --------------------------------------------------------------------------------------

# A right answer to each item of the kit's general set, worded as a model may word it (a sentence around a number, a
# fenced JSON block): the graders must pass these.
GOOD_ANSWERS = {
    "arith-add": "8788",
    "arith-sub": "The result is 7242.",
    "arith-mul": "1081",
    "arith-div": "42",
    "arith-percent": "36",
    "arith-order": "3 + 20 - 3 = 20",
    "word-apples": "73",
    "word-speed": "72 km/h",
    "word-minutes": "210",
    "unit-temp": "37.8",
    "unit-pi": "3.1416",
    "extract-city": "Lisbon",
    "extract-email": "billing@example.org",
    "extract-date": "2024-03-07",
    "classify-sentiment": "Negative",
    "follow-uppercase": "GATEWAY",
    "capital": "Tokyo",
    "yes-no": "Yes, 97 is prime.",
    "list-three": "red, green, blue",
    "code-python": "s[::-1]",
    "json-person": '{"name": "Ada", "age": 36}',
    "json-list": "```json\n[2, 4, 6, 8]\n```",
    "json-invoice": '{"invoice": "INV-2041", "total": 129.5, "currency": "EUR"}',
    "json-bool": '{"is_weekend": true}',
}
# What a worse revision gets wrong: a quarter of the set, each grader kind at least once.
WRONG_ANSWERS = {
    "arith-mul": "1071",
    "unit-temp": "38.5",
    "extract-date": "March 7, 2024",
    "list-three": "red, yellow, blue",
    "json-person": "Ada is 36.",
    "json-invoice": '{"invoice": "INV-2041", "total": "129.50", "currency": "EUR"}',
}


def oracle(answers: dict[str, str]) -> Callable[[str], str]:
    by_prompt = {item.prompt: answers.get(item.id, GOOD_ANSWERS[item.id]) for item in load_set(GENERAL_SET)}
    return lambda prompt: by_prompt[prompt]


def test_the_general_set_is_graded_right_and_wrong() -> None:
    items = load_set(GENERAL_SET)
    assert 20 <= len(items) <= 30 and set(GOOD_ANSWERS) == {i.id for i in items}
    assert {i.grader["type"] for i in items} == {"exact", "regex", "json_schema", "numeric"}
    for item in items:
        assert item.check(GOOD_ANSWERS[item.id]), item.id
        if item.id in WRONG_ANSWERS:
            assert not item.check(WRONG_ANSWERS[item.id]), item.id


def test_wilson_intervals() -> None:
    # Wilson's 95% interval of 20/25 is 0.609 to 0.911 (score interval, z = 1.96).
    interval = wilson(20, 25)
    assert (round(interval.low, 3), round(interval.high, 3)) == (0.609, 0.911)
    assert wilson(0, 10).low == 0.0 and wilson(10, 10).high == pytest.approx(1.0)
    # 10/10 still leaves room below: 0.722 (the naive interval would claim 1.0 to 1.0).
    assert round(wilson(10, 10).low, 3) == 0.722


@pytest.mark.parametrize(
    ("line", "path", "message"),
    [
        ("{", "bad.jsonl:1", "not JSON"),
        ('{"id": "a", "prompt": "p", "grader": {"type": "fuzzy"}}', "bad.jsonl:1.grader.type", "one of exact"),
        (
            '{"id": "a", "prompt": "p", "grader": {"type": "regex", "pattern": "("}}',
            "bad.jsonl:1.grader.pattern",
            "not a",
        ),
        (
            '{"id": "a", "prompt": "p", "grader": {"type": "numeric", "answer": 1, "tolerance": -1}}',
            "bad.jsonl:1.grader.tolerance",
            "0 or more",
        ),
        (
            '{"id": "a", "prompt": "p", "grader": {"type": "json_schema", "schema": {"type": "thing"}}}',
            "bad.jsonl:1.grader.schema",
            "not a JSON Schema",
        ),
        ('{"id": "a", "prompt": "", "grader": {"type": "exact", "answer": "x"}}', "bad.jsonl:1.prompt", "non-empty"),
    ],
)
def test_a_bad_eval_set_names_the_line_and_field(tmp_path: Path, line: str, path: str, message: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(line + "\n")
    with pytest.raises(InputError) as exc:
        load_set(bad)
    assert message in {p.path: p.message for p in exc.value.problems}[path]


def test_bad_eval_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "--endpoint", "localhost:4000", "--model", "m"]) == 2
    assert "--endpoint" in capsys.readouterr().err
    assert cli.main(["eval", "--endpoint", "http://x", "--model", "m", "--baseline", "v1"]) == 2
    assert cli.main(["eval", "--endpoint", "http://x", "--model", "m", "--set", str(tmp_path / "none.jsonl")]) == 2


def _eval(proxy: Proxy, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setenv("MODELYARD_API_KEY", KEY)
    return cli.main(["eval", "--endpoint", proxy.url, "--model", "llama-8b", *extra])


def test_eval_passes_a_candidate_that_answers_as_well(
    canary_proxy: Proxy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    canary_proxy.backends["v1"].answer = oracle({})
    canary_proxy.backends["v2"].answer = oracle({})
    assert _eval(canary_proxy, monkeypatch, "--baseline", "v1", "--candidate", "v2", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["pass_rate"] for r in report["results"]] == [1.0, 1.0]
    assert report["candidate_worse"] is False
    # Every request was pinned: temperature 0 and the seed.
    last = canary_proxy.backends["v2"].requests[-1]["body"]
    assert last["temperature"] == 0 and last["seed"] == DEFAULT_SEED


def test_eval_fails_a_worse_candidate_with_exit_4(
    canary_proxy: Proxy, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    canary_proxy.backends["v1"].answer = oracle({})
    canary_proxy.backends["v2"].answer = oracle(WRONG_ANSWERS)
    assert _eval(canary_proxy, monkeypatch, "--baseline", "v1", "--candidate", "v2") == 4
    captured = capsys.readouterr()
    assert "18/24 passed, 75.0%" in captured.out
    assert "gate failed" in captured.err
    assert "json-person" in captured.out  # named as a regression
    # A margin wider than the drop lets it through; the baseline against itself is refused as bad input.
    assert _eval(canary_proxy, monkeypatch, "--baseline", "v1", "--candidate", "v2", "--margin", "0.3") == 0
    assert _eval(canary_proxy, monkeypatch, "--baseline", "v1", "--candidate", "v1") == 2


def test_eval_of_an_unreachable_or_refusing_endpoint_exits_3(
    canary_proxy: Proxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary_proxy.backends["v1"].answer = oracle({})
    monkeypatch.setenv("MODELYARD_API_KEY", "sk-wrong-0123456789")
    assert cli.main(["eval", "--endpoint", canary_proxy.url, "--model", "llama-8b"]) == 3
    assert cli.main(["eval", "--endpoint", "http://127.0.0.1:9", "--model", "llama-8b"]) == 3


# --- the license and version guard -----------------------------------------------------------------------


def test_changing_the_catalog_entry_rechecks_the_license() -> None:
    # qwen3-8b is Apache 2.0, which the minimal preset does not accept: refused, with a canary or without.
    for canary in (None, CANARY):
        found = problems(overrides(canary=canary, model="qwen3-8b"))
        assert "licensed under 'Apache 2.0'" in found["modelyard:models.llama-8b"]
    over = overrides(model="qwen3-8b")
    over["licenses"] = ["Llama 3.1 Community License", "Apache 2.0"]
    assert settings_of(over).models["llama-8b"].model == "qwen3-8b"


def test_the_pr_diff_names_each_model_change(
    tmp_path: Path, plain_plan: dict[str, Any], canary_plan: dict[str, Any]
) -> None:
    (tmp_path / "promoted").mkdir()
    (tmp_path / "qwen").mkdir()
    promoted = plan_with(tmp_path / "promoted", "minimal", overrides(canary=None, revision="v2"))
    qwen = overrides(canary=None, model="qwen3-8b")
    qwen["licenses"] = ["Llama 3.1 Community License", "Apache 2.0"]
    other = plan_with(tmp_path / "qwen", "minimal", qwen)
    assert model_changes(plain_plan, canary_plan) == ["llama-8b: canary of revision v2 added beside revision v1"]
    assert model_changes(canary_plan, promoted) == ["llama-8b: canary promoted, revision v1 -> v2"]
    assert model_changes(canary_plan, plain_plan) == ["llama-8b: canary of revision v2 removed (rolled back)"]
    assert model_changes(plain_plan, promoted) == ["llama-8b: revision v1 -> v2"]
    assert model_changes(plain_plan, other) == ["llama-8b: model llama-3.1-8b -> qwen3-8b (license Apache 2.0)"]
    assert model_changes(plain_plan, plain_plan) == []
    diff = diff_plans(plain_plan, promoted)
    assert "- llama-8b: revision v1 -> v2" in render_markdown(diff, promoted)
    assert "Model llama-8b: revision v1 -> v2" in render_text(diff)


def test_a_multi_node_canary_is_not_autoscaled() -> None:
    # Llama 3.1 405B in bf16 spans two p5.48xlarge nodes per replica: a LeaderWorkerSet group, fixed replicas.
    model = {"dtype": "bf16", "replicas": {"min": 1, "max": 1}, "canary": {**CANARY, "replicas": {"min": 1, "max": 2}}}
    config = {"modelyard:preset": "enterprise", "modelyard:models": json.dumps({"llama-405b": model})}
    with pytest.raises(InputError) as exc:
        build_settings(project="modelyard", stack="lc", config=config)
    found = {p.path: p.message for p in exc.value.problems}
    assert "multi-node replicas are not autoscaled" in found["modelyard:models.llama-405b.canary.replicas.max"]
    assert "modelyard:models.llama-405b.replicas.max" not in found
