"""Serving over every shipped stack's plan: one chart per model, rendered by Helm into the plan."""

from __future__ import annotations

import pytest

from components.errors import InputError
from components.plan.run import load_settings
from components.sizing import fit_on
from tests.conftest import ROOT, SHIPPED_STACKS, by_type

CHART = "kubernetes:helm.sh/v4:Chart"


def _deployments(plan):
    return {
        m["object"]["metadata"]["name"]: m["object"]
        for m in plan["manifests"]
        if m["object"]["kind"] == "Deployment" and m["source"].endswith(CHART)
    }


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_one_chart_per_model_in_its_owners_namespace(plans, stack):
    _, settings = load_settings(ROOT, stack)
    charts = {c["name"]: c for c in by_type(plans[stack], CHART)}
    assert set(charts) == {f"serving-{m}" for m in settings.models}
    for model in settings.models:
        chart = charts[f"serving-{model}"]
        assert chart["inputs"]["chart"] == "./charts/llm-serving"
        assert chart["inputs"]["namespace"] == f"tenant-{settings.model_owner(model)}"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_gpu_limits_equal_the_parallel_size_sizing_chose(plans, stack):
    _, settings = load_settings(ROOT, stack)
    deployments = _deployments(plans[stack])
    for name, model in settings.models.items():
        pool = settings.pools[model.pool]
        option = fit_on(
            model.model, pool.instance_types[0], dtype=model.dtype, context=model.context, concurrency=model.concurrency
        )
        pod = deployments[f"{name}-llm-serving"]["spec"]["template"]["spec"]
        (server,) = [c for c in pod["containers"] if c["name"] == "vllm"] or pod["containers"][:1]
        assert int(server["resources"]["limits"]["nvidia.com/gpu"]) == option.tensor_parallel * option.pipeline_parallel
        assert pod["nodeSelector"]["modelyard.dev/pool"] == model.pool
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["serviceAccountName"] == "model-server"


def test_no_nat_stack_pulls_the_server_image_through_the_cache(plans):
    for deployment in _deployments(plans["core"]).values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"].startswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/docker-hub/")
    for deployment in _deployments(plans["pilot"]).values():
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("docker.io/")


def test_pulumi_waits_for_the_rollout_unless_told_not_to(plans, tmp_path):
    from tests.conftest import plan_with

    (deployment,) = _deployments(plans["pilot"]).values()
    assert int(deployment["metadata"]["annotations"]["pulumi.com/timeoutSeconds"]) >= 20 * 60
    first_up = plan_with(tmp_path, "minimal", {"models": {"llama-8b": {"await_ready": False}}})
    (deployment,) = _deployments(first_up).values()
    assert deployment["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_a_model_under_a_license_the_stack_does_not_accept_is_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(licenses=["Apache 2.0"])
    (problem,) = exc.value.problems
    assert problem.path == "modelyard:models.llama-8b"
    assert "'Llama 3.1 Community License'" in problem.message and "700 million" in problem.message


def test_unknown_license_names_are_refused(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings(licenses=["Llama 3.1 Community License", "Apache-2"])
    assert "not a license of the catalog" in {p.path: p.message for p in exc.value.problems}["modelyard:licenses[1]"]


def test_a_model_shared_by_tenants_needs_an_owner(make_settings):
    with pytest.raises(InputError) as exc:
        make_settings("moderate", models={"llama-8b": {"owner": None}})
    assert (
        "several tenants use 'llama-8b'"
        in {p.path: p.message for p in exc.value.problems}["modelyard:models.llama-8b.owner"]
    )


def test_a_refused_license_exits_2_naming_the_model_and_its_license(tmp_path, capsys):
    from components.cli import main

    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks" / "presets").symlink_to(ROOT / "stacks" / "presets")
    (tmp_path / "stacks" / "Pulumi.x.yaml").write_text(
        "config:\n  modelyard:preset: minimal\n  modelyard:licenses: [Apache 2.0]\n"
    )
    assert main(["plan", "--stack", "x", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "modelyard:models.llama-8b: llama-3.1-8b is licensed under 'Llama 3.1 Community License'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_autoscaling_queries_use_metrics_the_pinned_vllm_exposes(plans, stack):
    """KEDA scales on a Prometheus query: a metric renamed by a vLLM bump would leave it at 0 forever (no
    scale-up, no error), so its series must be in monitoring/metrics.yaml like the dashboards' and rules'."""
    from components.k8s.monitoring import assets
    from tests.test_monitoring import series_names

    allowed = assets.allowed_series_names()
    scaled = [m["object"] for m in plans[stack]["manifests"] if m["object"]["kind"] == "ScaledObject"]
    if stack != "pilot":
        assert scaled, "the moderate and enterprise presets autoscale"
    for obj in scaled:
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "prometheus"
            query = trigger["metadata"]["query"]
            assert series_names(query) and series_names(query) <= allowed, query
            assert f'namespace="{obj["metadata"]["namespace"]}"' in query, query


# The enterprise preset in one stack, with its llama-405b served in bf16: two p5.48xlarge nodes per replica.
MULTI_NODE_STACK = {
    "deploy": {"layers": "one-stack", "state_bucket": None, "secrets_key_arn": None, "charts": None},
    "cluster": {"private_access_cidrs": ["10.200.0.0/16"]},
    "models": {"llama-405b": {"dtype": "bf16", "context": 16384, "concurrency": 32, "replicas": {"min": 1, "max": 1}}},
}
RELEASE = "kubernetes:helm.sh/v3:Release"


def test_the_lws_controller_comes_only_with_a_multi_node_model(plans):
    for stack, plan in plans.items():
        assert "lws" not in {r["inputs"]["name"] for r in by_type(plan, RELEASE)}, stack
        assert not [m for m in plan["manifests"] if m["object"]["kind"] == "LeaderWorkerSet"], stack


def test_a_multi_node_model_is_planned_as_a_leader_worker_set_with_its_controller(tmp_path):
    from components.k8s.charts import UPSTREAM_CHARTS
    from tests.conftest import plan_with

    plan = plan_with(tmp_path, "enterprise", MULTI_NODE_STACK)
    releases = {r["inputs"]["name"]: r for r in by_type(plan, RELEASE)}
    lws = releases["lws"]
    chart = UPSTREAM_CHARTS["lws"]
    assert lws["inputs"]["chart"] == "oci://registry.k8s.io/lws/charts/lws" == chart.reference
    assert lws["inputs"]["version"] == chart.version == "0.10.0"
    assert lws["inputs"]["namespace"] == "lws-system"
    values = lws["inputs"]["values"]
    assert values["nodeSelector"] and values["image"]["manager"]["tag"] == "v0.10.0"
    # No NAT in the enterprise preset: the controller's image comes through the pull-through cache.
    assert values["image"]["manager"]["repository"].endswith(".amazonaws.com/k8s/lws/lws")
    (group,) = [m for m in plan["manifests"] if m["object"]["kind"] == "LeaderWorkerSet"]
    assert group["object"]["metadata"]["name"] == "llama-405b-llm-serving"
    assert group["object"]["metadata"]["namespace"] == "tenant-core"
    assert group["object"]["spec"]["leaderWorkerTemplate"]["size"] == 2
    (server,) = [c for c in by_type(plan, CHART) if c["name"] == "serving-llama-405b"]
    assert lws["key"] in server["depends_on"], "the LeaderWorkerSet needs the controller's CRD and webhook first"
    others = [c for c in by_type(plan, CHART) if c["name"] != "serving-llama-405b"]
    assert others and all(lws["key"] not in c["depends_on"] for c in others)
    assert "llama-405b-llm-serving" not in _deployments(plan)


def test_a_multi_node_replica_is_priced_as_all_its_nodes(make_settings):
    from components.cost.estimate import gpu_fleets

    settings = make_settings("enterprise", models=MULTI_NODE_STACK["models"])
    (fleet,) = [f for f in gpu_fleets(settings) if f.model_key == "llama-405b"]
    assert fleet.instance.name == "p5.48xlarge"
    assert (fleet.always_nodes, fleet.burst_nodes) == (2 * 1, 0)  # nodes_per_replica x replicas, no autoscaling
    bigger = make_settings(
        "enterprise",
        models={"llama-405b": {**MULTI_NODE_STACK["models"]["llama-405b"], "replicas": {"min": 2, "max": 2}}},
        # tenant core's quota holds its servers at their maximum replicas (deepseek-r1 32, llama-8b 12, these 32)
        tenants={"core": {"gpu_quota": 76}},
    )
    (fleet,) = [f for f in gpu_fleets(bigger) if f.model_key == "llama-405b"]
    assert (fleet.always_nodes, fleet.burst_nodes) == (4, 0)


OWN_IMAGE = {
    "registry": "111122223333.dkr.ecr.us-east-1.amazonaws.com/ml",
    "repository": "vllm-openai-efa",
    "tag": "v0.17.1-efa1",
    "digest": "sha256:" + "ab" * 32,
}


def test_a_model_may_run_an_image_of_the_stacks_own_pinned_by_digest(tmp_path):
    from tests.conftest import plan_with

    plan = plan_with(tmp_path, "minimal", {"models": {"llama-8b": {"image": OWN_IMAGE}}})
    (deployment,) = [
        m["object"]
        for m in plan["manifests"]
        if m["object"]["kind"] == "Deployment" and m["object"]["metadata"]["name"].startswith("llama-8b")
    ]
    images = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    expected = f"{OWN_IMAGE['registry']}/{OWN_IMAGE['repository']}:{OWN_IMAGE['tag']}@{OWN_IMAGE['digest']}"
    assert expected in images.values(), images


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"digest": "latest"}, "modelyard:models.llama-8b.image.digest"),
        ({"registry": "Docker.IO"}, "modelyard:models.llama-8b.image.registry"),
    ],
)
def test_an_own_image_must_be_pinned_and_well_formed(make_settings, change, path):
    with pytest.raises(InputError) as exc:
        make_settings(models={"llama-8b": {"image": {**OWN_IMAGE, **change}}})
    assert path in {p.path for p in exc.value.problems}


def test_the_plan_says_what_each_model_survives(plans):
    """Read from the rendered objects: replicas (fixed or the ScaledObject's bounds), zone spread, do-not-disrupt."""
    core = {m: s["availability"] for m, s in plans["core"]["serving"].items()}
    assert core["deepseek-r1"] == {
        "replicas": {"min": 2, "max": 4},
        "high_availability": "always",
        "zone_spread": "DoNotSchedule",
        "do_not_disrupt": False,
    }
    # One replica when quiet, on an EFA pool in one zone: no HA then, and the spread can only be best effort.
    assert core["llama-405b"]["high_availability"] == "when-scaled-out"
    assert core["llama-405b"]["zone_spread"] == "ScheduleAnyway"
    product = {m: s["availability"] for m, s in plans["product"]["serving"].items()}
    assert {a["high_availability"] for a in product.values()} == {"always"}, "the HA preset"
    assert {a["zone_spread"] for a in product.values()} == {"DoNotSchedule"}, "the HA preset spreads as a requirement"
    assert plans["pilot"]["serving"]["llama-8b"]["availability"]["high_availability"] == "when-scaled-out"


def test_a_model_capped_at_one_replica_is_told_it_has_no_ha(tmp_path, capsys):
    from components.plan.render import markdown_report, text_report
    from tests.conftest import plan_with

    plan = plan_with(tmp_path, "minimal", {"models": {"llama-8b": {"replicas": {"min": 1, "max": 1}}}})
    assert plan["serving"]["llama-8b"]["availability"] == {
        "replicas": {"min": 1, "max": 1},
        "high_availability": "none",
        "zone_spread": None,
        "do_not_disrupt": True,
    }
    for view in (text_report(plan), markdown_report(plan)):
        (line,) = [line for line in view.splitlines() if "llama-8b: 1 replica;" in line]
        assert "no HA" in line and "replicas.max to 2" in line, line
