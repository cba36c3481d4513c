"""Docs that cannot drift: generated references match the code, the README's commands are the real ones."""

from __future__ import annotations

import re

from components.settings.reference import BEGIN, END, PRESETS_BEGIN, PRESETS_END, render_markdown, render_presets
from tests.conftest import ROOT


def test_settings_reference_matches_the_code():
    text = (ROOT / "docs" / "settings.md").read_text()
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert generated.strip() == render_markdown().strip(), "run: python -m components.settings.reference --write"


def test_presets_doc_matches_the_presets():
    text = (ROOT / "docs" / "presets.md").read_text()
    generated = text.split(PRESETS_BEGIN, 1)[1].split(PRESETS_END, 1)[0]
    assert generated.strip() == render_presets().strip(), "run: python -m components.settings.reference --write"


def test_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None
    commands = block.group(1).strip().splitlines()
    assert len(commands) == 2
    assert "modelyard plan --stack pilot" in commands[0]
    assert commands[1].endswith("pytest")
    assert readme.index(block.group(0)) < 400, "the commands come first"


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme_test = re.search(r"```sh\n.*\n(.*)\n```", (ROOT / "README.md").read_text()).group(1)
    assert readme_test in ci


def test_the_readme_stack_example_is_a_valid_stack(tmp_path):
    """The stack file the README shows must pass validation as it is printed."""
    import yaml

    from components.settings import build_settings
    from components.settings.stackfile import StackFile

    block = re.search(r"```yaml\n(config:.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block is not None
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks" / "Pulumi.example.yaml").write_text(block.group(1))
    stack_file = StackFile.load(tmp_path, "example")
    settings = build_settings(project="modelyard", stack="example", config=stack_file.engine_config())
    assert "qwen-32b" in settings.models and "llama-70b" not in settings.models
    assert yaml.safe_load(block.group(1))["config"]["modelyard:preset"] == "moderate"


def test_readme_tco_figures_are_the_cost_models(plans, global_plans):
    """The README's "its TCO today" column is what `modelyard tco` computes, rounded as printed: a deployment across
    regions by its global stack (the cells' total), every other by its stack."""
    from decimal import Decimal

    readme = (ROOT / "README.md").read_text()
    deployments = {s: p for s, p in plans.items() if "deployment" not in p["cost"]} | global_plans
    assert set(deployments) > set(global_plans)
    for stack, plan in deployments.items():
        row = re.search(rf"\| `{stack}` \| \$([\d.]+)([KM]) \|", readme)
        assert row is not None, stack
        annual = Decimal(plan["cost"]["annual_total"])
        if row.group(2) == "K":
            assert Decimal(row.group(1)) == round(annual / 1000), stack
        else:
            assert Decimal(row.group(1)) == round(annual / 1_000_000, 2), stack


def test_the_deploy_guide_lists_every_output_of_the_aws_layer():
    """docs/deploy.md's table of what crosses from the AWS layer to the Kubernetes layer is AwsLayer's fields."""
    import dataclasses

    from components.platform import AwsLayer

    text = (ROOT / "docs" / "deploy.md").read_text()
    table = text.split("| output | what the Kubernetes layer does with it |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)`", table))
    assert listed == {field.name for field in dataclasses.fields(AwsLayer)}


# An issue number of this project means nothing to a reader of the docs; an upstream one names its repository.
UPSTREAM_ISSUE = re.compile(r"[\w.-]+/[\w.-]+ issues? \d+")


def test_docs_name_no_internal_issue_numbers():
    found = []
    for path in sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            bare = UPSTREAM_ISSUE.sub("", line)
            if re.search(r"\bissues? \d+", bare) or re.search(r"\bthe \w+ issue\b", bare):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "say what the text means instead of an internal issue number:\n" + "\n".join(found)


def test_benchmark_resource_counts_are_the_plans(plans):
    """The resource column of docs/benchmarks.md's plan-speed table is what each shipped stack plans today."""
    text = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    rows = {
        m[1]: int(m[2]) for m in re.finditer(r"^\| (\w[\w-]*) \| (\d+) \| [\d.]+ \| [\d.]+ \| [\d.]+ \|$", text, re.M)
    }
    assert rows, "docs/benchmarks.md has no plan-speed table"
    assert rows == {stack: len(plans[stack]["resources"]) for stack in rows}, "re-run python -m components.bench"


def test_the_benchmark_says_whether_the_speed_goal_is_met_and_by_how_much_it_is_missed():
    from components.bench import goal_line

    assert goal_line({"pilot": 1.1, "core": 1.19}) == "goal 1.2x the floor: met (slowest: core 1.19x)"
    missed = goal_line({"pilot": 1.63, "core": 2.0})
    assert missed.startswith("goal 1.2x the floor: missed by 67% on core (2.00x); why: ")
