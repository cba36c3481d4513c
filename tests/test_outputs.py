"""What people read: the plan's one-screen summary, `--tree`, `tco --markdown`, the diff of multi-line text, and
`--manifests` folders that hold only the kit's current output."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest

from components.cli import main
from components.plan.command import MANIFESTS_MARKER, replace_manifests
from components.plan.render import component_rows, text_report
from components.policy import Violation
from tests.conftest import SHIPPED_STACKS

CONFIG = "gateway/gateway-configmap-litellm-config::kubernetes:core/v1:ConfigMap"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_summary_fits_a_screen_and_adds_up(plans, stack):
    plan = plans[stack]
    summary = text_report(plan)
    assert len(summary.splitlines()) <= 60, summary
    assert "aws:ec2/subnet:Subnet" not in summary and "resource tree" in summary  # the tree only with --tree
    rows = component_rows(plan)
    assert sum(r["resources"] for r in rows) == len(plan["resources"])
    assert sum(r["objects"] for r in rows) == len(plan["manifests"])
    # Every AWS dollar lands on one row: the components' and what controllers create add up to the AWS total.
    assert sum((r["aws"] for r in rows), Decimal(0)) == Decimal(plan["cost"]["aws_monthly"])
    assert f"${Decimal(plan['cost']['aws_monthly']):,.2f}" in summary.split("by component:")[1]


def test_the_tree_comes_with_tree(plans):
    full = text_report(plans["pilot"], tree=True)
    assert "  aws:ec2/subnet:Subnet  network-private-use1-az1" in full
    assert "resources by type:" in full and "outputs:" in full and "by component:" in full


def test_gpu_nodes_count_where_they_are_billed(plans):
    rows = {r["component"]: r for r in component_rows(plans["core"])}
    gpu = rows["GPU nodes Karpenter launches, with their volumes"]
    assert gpu["type"] == "" and gpu["aws"] > Decimal(100_000)
    # A key is the region, the parent chain of names, then the type: the network's children start with its name.
    keys = [r["key"].removeprefix("us-east-1/") for r in plans["core"]["resources"]]
    assert rows["network"]["resources"] == sum(1 for k in keys if k.startswith(("network/", "network::")))


def test_violations_are_counted_on_their_component(plans):
    key = next(r["key"] for r in plans["pilot"]["resources"] if r["type"] == "aws:ec2/vpc:Vpc")
    found = [Violation(rule="x", resource=key, message="m"), Violation(rule="y", resource="nowhere", message="m")]
    rows = {r["component"]: r for r in component_rows(plans["pilot"], found)}
    assert rows["network"]["policy"] == 1 and rows["no component"]["policy"] == 1
    assert sum(r["policy"] for r in rows.values()) == 2


def test_plan_command_prints_the_summary_and_the_tree_on_request(tmp_path, capsys):
    assert main(["plan", "--stack", "pilot"]) == 0
    out = capsys.readouterr().out
    assert "by component:" in out and "aws:ec2/vpc:Vpc" not in out and out.endswith("policy: 0 violations\n")
    assert main(["plan", "--stack", "pilot", "--tree"]) == 0
    assert "aws:ec2/vpc:Vpc  network-vpc" in capsys.readouterr().out


def _manifest(kind: str, name: str) -> dict:
    return {"source": "x", "object": {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "a"}}}


def test_manifests_of_objects_that_no_longer_exist_are_removed(tmp_path):
    folder = tmp_path / "out"
    replace_manifests({"manifests": [_manifest("ConfigMap", "old"), _manifest("Secret", "kept")]}, folder)
    (folder / "a" / "notes.txt").write_text("mine")  # a file the kit did not write survives
    replace_manifests({"manifests": [_manifest("Secret", "kept")]}, folder)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        MANIFESTS_MARKER,
        "a/notes.txt",
        "a/secret-kept.yaml",
    ]
    assert (folder / MANIFESTS_MARKER).read_text().splitlines()[1:] == ["a/secret-kept.yaml"]


def test_manifests_refuse_a_folder_the_kit_did_not_write(tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "keep.yaml").write_text("kind: Mine\n")
    assert main(["plan", "--stack", "pilot", "--manifests", str(folder)]) == 2
    assert f"--manifests: {folder} holds files `modelyard plan` did not write" in capsys.readouterr().err
    assert [p.name for p in folder.iterdir()] == ["keep.yaml"]


def test_a_marker_cannot_make_the_kit_delete_outside_its_folder(tmp_path):
    folder, outside = tmp_path / "out", tmp_path / "precious.yaml"
    folder.mkdir()
    outside.write_text("keep")
    (folder / MANIFESTS_MARKER).write_text("# header\n../precious.yaml\n")
    replace_manifests({"manifests": []}, folder)
    assert outside.read_text() == "keep"


def test_tco_markdown_has_every_line_and_the_totals(plans, monkeypatch, capsys):
    import components.plan.run

    monkeypatch.setattr(components.plan.run, "plan_stack", lambda _root, stack: plans[stack])
    assert main(["tco", "--stack", "product", "--markdown"]) == 0
    out = capsys.readouterr().out
    cost = plans["product"]["cost"]
    assert out.startswith("### Total cost of ownership: stack `product`")
    assert f"| **Total** | **${Decimal(cost['monthly_total']):,.2f}** |" in out
    for line in cost["lines"]:
        assert f"| ${Decimal(line['monthly']):,.2f} | {line['item'].replace('|', chr(92) + '|')}" in out
    assert main(["tco", "--stack", "product", "--markdown", "--json"]) == 2


def _with_config(plan: dict, edit) -> dict:
    changed = copy.deepcopy(plan)
    resource = next(r for r in changed["resources"] if r["key"] == CONFIG)
    resource["inputs"]["data"]["config.yaml"] = edit(resource["inputs"]["data"]["config.yaml"])
    return changed


def test_diff_shows_a_changed_line_deep_in_a_config_file(plans, tmp_path, capsys):
    base = plans["pilot"]
    text = next(r for r in base["resources"] if r["key"] == CONFIG)["inputs"]["data"]["config.yaml"]
    last = text.rstrip("\n").splitlines()[-1]
    assert len(text) > 200  # the change is past what a truncated value shows
    head = _with_config(base, lambda t: t.replace(last, last + "  # changed"))
    files = []
    for name, plan in (("base", base), ("head", head)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(plan))
    assert main(["diff", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert "data.config.yaml: changed text" in out
    assert f"        -{last}\n        +{last}  # changed\n" in out
    assert main(["diff", *map(str, files), "--markdown"]) == 0
    markdown = capsys.readouterr().out
    assert "(text: diff below)" in markdown and "  ```diff" in markdown and f"  +{last}  # changed" in markdown


def test_write_paths_are_checked_before_planning(tmp_path: Path, capsys):
    assert main(["plan", "--stack", "pilot", "--json", str(tmp_path)]) == 2
    assert main(["plan", "--stack", "pilot", "--manifests", str(Path(__file__))]) == 2
    err = capsys.readouterr().err
    assert "--json:" in err and "--manifests:" in err and "Traceback" not in err
