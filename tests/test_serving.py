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
