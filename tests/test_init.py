"""`modelyard init`: a stack file for a preset in a region that plans; placeholders marked, and refused before `up`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from components.cli import main
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    return tmp_path


def _init(project: Path, *argv: str) -> int:
    return main(["init", *argv, "--project-dir", str(project)])


@pytest.mark.parametrize("preset", ["minimal", "enterprise"])
def test_a_stack_in_another_region_plans(project, capsys, preset):
    assert _init(project, "--stack", "eu", "--preset", preset, "--region", "eu-west-1") == 0
    written = yaml.safe_load((project / "stacks" / "Pulumi.eu.yaml").read_text())["config"]
    assert written["modelyard:region"] == "eu-west-1"
    zones = written["modelyard:network"]["zone_ids"]
    assert zones and all(z.startswith("euw1-az") for z in zones)
    for pool in (written.get("modelyard:pools") or {}).values():  # a pool pinned to one zone moved with the region
        assert set(pool["zone_ids"]) <= set(zones)
    capsys.readouterr()
    assert main(["plan", "--stack", "eu", "--project-dir", str(project)]) == 0
    assert "stack eu (preset " in capsys.readouterr().out


@pytest.mark.parametrize(("preset", "nat"), [("minimal", "single"), ("moderate", "per-zone"), ("enterprise", "none")])
def test_the_stack_file_pins_the_presets_nat_mode(project, preset, nat):
    """The NAT mode belongs to the stack like its range: a later move to another preset keeps its public subnets."""
    assert _init(project, "--stack", "s", "--preset", preset, "--region", "eu-west-1") == 0
    text = (project / "stacks" / "Pulumi.s.yaml").read_text()
    assert yaml.safe_load(text)["config"]["modelyard:network"]["nat"] == nat
    assert f"# network.nat {nat}: the preset's NAT mode, pinned here because it belongs to the stack" in text


def test_zones_are_chosen_where_the_preset_types_are_offered(project, monkeypatch):
    from components.catalog import regions as regions_module
    from components.catalog.regions import Region

    known = dict(regions_module.regions())
    # A region whose first zone does not offer the preset's L40S type: init skips it.
    known["eu-west-1"] = Region(
        name="eu-west-1",
        zones=("euw1-az1", "euw1-az2", "euw1-az3"),
        source="AWS-EC2-API",
        verified=True,
        offerings={"euw1-az1": (), "euw1-az2": ("g6e.xlarge",), "euw1-az3": ("g6e.xlarge",)},
        offerings_source="AWS-EC2-API",
        date="2026-12-07",
    )
    monkeypatch.setattr(regions_module, "regions", lambda: known)
    assert _init(project, "--stack", "eu", "--preset", "minimal", "--region", "eu-west-1") == 0
    text = (project / "stacks" / "Pulumi.eu.yaml").read_text()
    assert yaml.safe_load(text)["config"]["modelyard:network"]["zone_ids"] == ["euw1-az2", "euw1-az3"]
    assert "they offer the preset's GPU instance types" in text


def test_placeholders_are_marked_and_refused_before_up(project, capsys, monkeypatch):
    assert _init(project, "--stack", "eu", "--preset", "minimal", "--region", "eu-west-1") == 0
    text = (project / "stacks" / "Pulumi.eu.yaml").read_text()
    assert "# FILL before `pulumi up`" in text and "modelyard:cluster.public_cidrs[0]" in text
    capsys.readouterr()
    assert main(["preflight", "--stack", "eu", "--project-dir", str(project)]) == 2
    assert "modelyard:cluster.public_cidrs[0]: 203.0.113.0/24 is a documentation range" in capsys.readouterr().err


def test_the_real_engine_refuses_placeholders_the_plan_accepts(make_settings, monkeypatch):
    import pulumi

    import components.program as program

    monkeypatch.setattr(program, "settings_from_engine", lambda: make_settings("minimal"))
    monkeypatch.setattr(program, "build_platform", lambda settings: None)
    program.run()  # the offline plan's way: accepted
    with pytest.raises(pulumi.RunError, match=r"modelyard:cluster.public_cidrs\[0\]"):
        program.run(deploying=True)


def test_models_keep_only_the_named_ones_and_their_tenants(project, capsys):
    assert (
        _init(project, "--stack", "small", "--preset", "moderate", "--region", "us-east-1", "--models", "llama-8b") == 0
    )
    config = yaml.safe_load((project / "stacks" / "Pulumi.small.yaml").read_text())["config"]
    assert config["modelyard:models"] == {"llama-70b": None}
    assert config["modelyard:tenants"]["product"]["models"] == ["llama-8b"]
    assert main(["plan", "--stack", "small", "--project-dir", str(project)]) == 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--stack", "x", "--preset", "minimal", "--region", "eu-west-9"], "--region: 'eu-west-9' has no zone IDs"),
        (["--stack", "x", "--preset", "minimall", "--region", "eu-west-1"], "--preset: 'minimall' is not a preset"),
        (["--stack", "x", "--preset", "minimal", "--region", "eu-west-1", "--models", "gpt"], "--models: 'gpt'"),
        (["--stack", "a/b", "--preset", "minimal", "--region", "eu-west-1"], "--stack: 'a/b'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(project, capsys, argv, expected):
    assert _init(project, *argv) == 2
    assert expected in capsys.readouterr().err
    assert not (project / "stacks" / "Pulumi.x.yaml").exists()


def test_an_existing_stack_file_is_never_overwritten(project, capsys):
    target = project / "stacks" / "Pulumi.mine.yaml"
    target.write_text("config: {modelyard:preset: minimal}\n")
    assert _init(project, "--stack", "mine", "--preset", "minimal", "--region", "eu-west-1") == 2
    assert f"{target} exists" in capsys.readouterr().err
    assert target.read_text() == "config: {modelyard:preset: minimal}\n"
