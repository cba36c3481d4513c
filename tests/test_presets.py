"""Presets are data: a preset is any file of stacks/presets/, its values are settings a stack can override, and
its `tier` (not its name) picks the cost band it is judged against."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.cli import main
from components.cost.command import render_text as tco_text
from components.cost.estimate import stack_cost
from components.errors import InputError
from components.plan.diff import diff_plans
from components.plan.diff import render_markdown as diff_markdown
from components.plan.diff import render_text as diff_text
from components.plan.render import cost_summary
from components.plan.run import load_settings, plan_stack
from tests.conftest import ROOT, config_for

# A team's preset: the moderate preset's file under a name of the team's choosing.
TEAM_PRESET = "team-standard"


def _project(tmp_path: Path, *, preset: str, config: dict[str, Any] | None = None, **presets: str) -> Path:
    """A project folder with the kit's presets plus `presets` (name -> file text), and a stack `product`: the
    shipped product stack's file naming `preset`, with `config` (modelyard: keys) added."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    (tmp_path / "charts").symlink_to(ROOT / "charts")  # the plan renders the kit's charts from the project
    for name, text in presets.items():
        (tmp_path / "stacks" / "presets" / f"{name}.yaml").write_text(text)
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.product.yaml").read_text())
    stack["config"]["modelyard:preset"] = preset
    stack["config"].update({f"modelyard:{key}": value for key, value in (config or {}).items()})
    (tmp_path / "stacks" / "Pulumi.product.yaml").write_text(yaml.safe_dump(stack))
    return tmp_path


def _moderate() -> str:
    return (ROOT / "stacks" / "presets" / "moderate.yaml").read_text()


# --- (a) a team's copy of a preset plans what the shipped one plans ------------------------------------------


def test_a_team_copy_of_moderate_plans_the_product_stack_but_for_the_preset_name(tmp_path, plans) -> None:
    team = plan_stack(_project(tmp_path, preset=TEAM_PRESET, **{TEAM_PRESET: _moderate()}), "product")
    assert team["preset"] == TEAM_PRESET and team["outputs"]["preset"] == TEAM_PRESET
    # Judged against its tier's band, whatever the file is called.
    assert team["cost"]["band"] == plans["product"]["cost"]["band"]
    tags = [r["inputs"]["tags"] for r in team["resources"] if "modelyard:preset" in (r["inputs"].get("tags") or {})]
    assert tags and all(t["modelyard:preset"] == TEAM_PRESET for t in tags)
    # Nothing else differs: every resource, manifest and cost line, byte for byte.
    renamed = json.dumps(team, sort_keys=True).replace(f'"{TEAM_PRESET}"', '"moderate"')
    # Inside a JSON string input (the EBS CSI add-on's configuration carries the stack's tags) too.
    renamed = renamed.replace(f'\\"{TEAM_PRESET}\\"', '\\"moderate\\"')
    assert json.loads(renamed) == plans["product"]


# --- (b) one field overridden in a stack file changes only what it concerns -------------------------------------


def _changes(base: dict[str, Any], head: dict[str, Any]) -> dict[str, set[str]]:
    """Resource keys, manifests (by source) and cost lines that differ between two plans of one stack."""
    rb, rh = ({r["key"]: r for r in p["resources"]} for p in (base, head))
    mb, mh = (
        {(m["source"], m["object"]["kind"], m["object"]["metadata"]["name"]): m for m in p["manifests"]}
        for p in (base, head)
    )
    lb, lh = ({ln["id"]: ln for ln in p["cost"]["lines"]} for p in (base, head))
    return {
        "resources": {k for k in rb.keys() | rh.keys() if rb.get(k) != rh.get(k)},
        "manifests": {k[0] for k in mb.keys() | mh.keys() if mb.get(k) != mh.get(k)},
        "cost lines": {k for k in lb.keys() | lh.keys() if lb.get(k) != lh.get(k)},
    }


LOG_GROUP = "us-east-1/logs/logs-group::aws:cloudwatch/logGroup:LogGroup"
ALERTMANAGER_CONFIG = (
    "monitoring/monitoring-alertmanager-config::kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig"
)
MONITORING_STACK = "monitoring/monitoring-kube-prometheus-stack::kubernetes:helm.sh/v3:Release"
GATEWAY_DEPLOYMENT = "gateway/gateway-deployment-litellm::kubernetes:apps/v1:Deployment"


PROMETHEUS_SPEC = ("values", "prometheus", "prometheusSpec")


@pytest.mark.parametrize(
    ("override", "resource", "field", "value", "manifest", "priced"),
    [
        # The log group keeps logs longer (and its storage costs more); nothing else moves.
        ({"container_log_retention_days": 90}, LOG_GROUP, ("retentionInDays",), 90, False, True),
        (
            {"alertmanager": {"repeat_interval_hours": 2}},
            ALERTMANAGER_CONFIG,
            ("spec", "route", "repeatInterval"),
            "2h",
            True,
            False,
        ),
        (
            {"prometheus": {"retention_days": 14}},
            MONITORING_STACK,
            (*PROMETHEUS_SPEC, "retention"),
            "14d",
            False,
            False,
        ),
        (
            {"prometheus": {"memory": "6Gi"}},
            MONITORING_STACK,
            (*PROMETHEUS_SPEC, "resources", "requests", "memory"),
            "6Gi",
            False,
            False,
        ),
    ],
    ids=["container-logs", "alert-repeat", "prometheus-retention", "prometheus-memory"],
)
def test_overriding_one_monitoring_field_changes_only_what_it_concerns(
    tmp_path, plans, override, resource, field, value, manifest, priced
) -> None:
    head = plan_stack(_project(tmp_path, preset="moderate", config={"monitoring": override}), "product")
    assert _changes(plans["product"], head) == {
        "resources": {resource},
        "manifests": {resource} if manifest else set(),
        "cost lines": {resource} if priced else set(),
    }
    (changed,) = [r for r in head["resources"] if r["key"] == resource]
    found = changed["inputs"]
    for name in field:
        found = found[name]
    assert found == value


def test_overriding_the_gateway_replicas_changes_only_the_gateway_deployment(tmp_path, plans) -> None:
    head = plan_stack(_project(tmp_path, preset="moderate", config={"gateway": {"replicas": 3}}), "product")
    assert _changes(plans["product"], head) == {
        "resources": {GATEWAY_DEPLOYMENT},
        "manifests": {GATEWAY_DEPLOYMENT},
        "cost lines": set(),
    }
    (deployment,) = [m["object"] for m in head["manifests"] if m["source"] == GATEWAY_DEPLOYMENT]
    assert deployment["spec"]["replicas"] == 3


def test_a_stack_turns_container_logs_off_and_on(make_settings) -> None:
    # A null in the stack file removes the preset's value: the field's default, no log shipping.
    off = make_settings("moderate", monitoring={"container_log_retention_days": None}).monitoring
    assert off.container_log_retention_days is None
    assert off.prometheus == make_settings("moderate").monitoring.prometheus
    on = make_settings("minimal", monitoring={"container_log_retention_days": 14}).monitoring
    assert on.container_log_retention_days == 14


# --- (c) every new field is validated, naming its key ---------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        ({"tier": "medium"}, "tier", "'medium' is not allowed; choose one of minimal, moderate, enterprise"),
        ({"gateway": {"replicas": 0}}, "gateway.replicas", "below the minimum of 1"),
        ({"gateway": {"replicas": 21}}, "gateway.replicas", "above the maximum of 20"),
        (
            {"monitoring": {"container_log_retention_days": 45}},
            "monitoring.container_log_retention_days",
            "45 is not allowed; choose one of 1, 3, 5, 7, 14, 30, 60, 90",
        ),
        (
            {"monitoring": {"container_log_retention_days": "30"}},
            "monitoring.container_log_retention_days",
            "expected an integer",
        ),
        (
            {"monitoring": {"prometheus": {"retention_days": 0}}},
            "monitoring.prometheus.retention_days",
            "below the minimum of 1",
        ),
        (
            {"monitoring": {"prometheus": {"retention_days": 400}}},
            "monitoring.prometheus.retention_days",
            "above the maximum of 365",
        ),
        (
            {"monitoring": {"prometheus": {"storage_gib": 1}}},
            "monitoring.prometheus.storage_gib",
            "below the minimum of 2",
        ),
        (
            {"monitoring": {"prometheus": {"storage_gib": 16385}}},
            "monitoring.prometheus.storage_gib",
            "above the maximum of 16384",
        ),
        ({"monitoring": {"prometheus": {"replicas": 0}}}, "monitoring.prometheus.replicas", "below the minimum of 1"),
        ({"monitoring": {"prometheus": {"replicas": 11}}}, "monitoring.prometheus.replicas", "above the maximum of 10"),
        ({"monitoring": {"prometheus": {"cpu": "2 cores"}}}, "monitoring.prometheus.cpu", "does not match millicores"),
        ({"monitoring": {"prometheus": {"cpu": 2}}}, "monitoring.prometheus.cpu", "expected a string"),
        (
            {"monitoring": {"prometheus": {"memory": "4GB"}}},
            "monitoring.prometheus.memory",
            "does not match a whole number of Mi or Gi",
        ),
        (
            {"monitoring": {"alertmanager": {"replicas": 0}}},
            "monitoring.alertmanager.replicas",
            "below the minimum of 1",
        ),
        (
            {"monitoring": {"alertmanager": {"replicas": 11}}},
            "monitoring.alertmanager.replicas",
            "above the maximum of 10",
        ),
        (
            {"monitoring": {"alertmanager": {"storage_gib": 0}}},
            "monitoring.alertmanager.storage_gib",
            "below the minimum of 1",
        ),
        (
            {"monitoring": {"alertmanager": {"repeat_interval_hours": 0}}},
            "monitoring.alertmanager.repeat_interval_hours",
            "below the minimum of 1",
        ),
        (
            {"monitoring": {"alertmanager": {"repeat_interval_hours": 169}}},
            "monitoring.alertmanager.repeat_interval_hours",
            "above the maximum of 168",
        ),
        (
            {"monitoring": {"alertmanager": {"repeat_intervall_hours": 2}}},
            "monitoring.alertmanager.repeat_intervall_hours",
            "did you mean 'repeat_interval_hours'",
        ),
    ],
)
def test_every_new_field_refuses_a_bad_value_naming_its_key(make_settings, overrides, path, message) -> None:
    with pytest.raises(InputError) as exc:
        make_settings("moderate", **overrides)
    problems = {p.path: p.message for p in exc.value.problems}
    assert message in problems[f"modelyard:{path}"], problems


def test_a_preset_file_name_must_be_a_tag_friendly_name(tmp_path) -> None:
    presets = tmp_path / "stacks" / "presets"
    presets.mkdir(parents=True)
    (presets / "Team_Standard.yaml").write_text(_moderate())
    from components.settings import build_settings

    with pytest.raises(InputError) as exc:
        build_settings(project="modelyard", stack="x", config=config_for("Team_Standard"), presets_dir=presets)
    problems = {p.path: p.message for p in exc.value.problems}
    assert "does not match 1-64 lower-case letters" in problems["modelyard:preset"]


# --- (d) a preset that does not exist -------------------------------------------------------------------------


def test_a_misspelled_preset_is_exit_2_naming_the_key_the_files_and_a_close_match(tmp_path, capsys) -> None:
    project = _project(tmp_path, preset="team-standrd", **{TEAM_PRESET: _moderate()})
    assert main(["plan", "--stack", "product", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"modelyard:preset: 'team-standrd' is not a preset (no such file in {project / 'stacks' / 'presets'})" in err
    assert "choose one of enterprise, minimal, moderate, team-standard" in err
    assert "did you mean 'team-standard'" in err and "Traceback" not in err


# --- a preset without a tier ----------------------------------------------------------------------------------


def test_a_preset_with_no_tier_is_priced_but_judged_against_no_band(tmp_path, plans) -> None:
    sandbox = _moderate().replace("\ntier: moderate\n", "\ntier: null\n")
    assert "tier: null" in sandbox
    _, settings = load_settings(_project(tmp_path, preset="sandbox", sandbox=sandbox), "product")
    assert settings.tier is None
    base = plans["product"]
    cost = stack_cost(base, settings)
    assert cost["band"] is None
    assert cost["annual_total"] == base["cost"]["annual_total"]
    assert "Band: none (the preset names no cost tier)" in tco_text(cost, stack="product", preset="sandbox")
    head = {**base, "preset": "sandbox", "cost": cost}
    assert "no cost tier, so no band" in cost_summary(head)
    diff = diff_plans(base, head)
    assert not any("band" in w for w in diff["warnings"])
    assert "no cost tier, so no band" in diff_text(diff)
    assert "no cost tier, so no band" in diff_markdown(diff, head)
