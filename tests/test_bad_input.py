"""Bad input is refused with exit 2 naming the key, file or argument: never a traceback, never a half-written
output (README, "Exit codes")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from components.cli import main as cli_main
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch project folder: the kit's Pulumi.yaml and presets, the pilot stack, the kit's charts."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copytree(ROOT / "stacks" / "presets", tmp_path / "stacks" / "presets")
    shutil.copy(ROOT / "stacks" / "Pulumi.pilot.yaml", tmp_path / "stacks" / "Pulumi.pilot.yaml")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    return tmp_path


def plan(project: Path, stack: str, *extra: str) -> int:
    return cli_main(["plan", "--stack", stack, "--project-dir", str(project), *extra])


def test_a_key_given_twice_is_refused_with_both_lines(project: Path, capsys) -> None:
    (project / "stacks" / "Pulumi.twice.yaml").write_text(
        "config:\n  modelyard:preset: minimal\n  modelyard:region: us-east-1\n  modelyard:region: eu-west-1\n"
    )
    assert plan(project, "twice") == 2
    err = capsys.readouterr().err
    assert "Pulumi.twice.yaml" in err and "'modelyard:region' twice (first on line 3)" in err and "line 4" in err


def test_a_key_given_twice_in_a_preset_is_refused(project: Path, capsys) -> None:
    preset = project / "stacks" / "presets" / "minimal.yaml"
    preset.write_text(preset.read_text() + "\nregion: eu-west-1\nregion: us-east-1\n")
    assert plan(project, "pilot") == 2
    assert "minimal.yaml" in capsys.readouterr().err


def test_a_yaml_merge_key_may_still_be_overridden(project: Path) -> None:
    from components.yamlio import parse_yaml

    assert parse_yaml("base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\n")["other"] == {"a": 1, "b": 3}


def test_a_stack_file_that_is_not_utf8_names_the_byte(project: Path, capsys) -> None:
    (project / "stacks" / "Pulumi.latin.yaml").write_bytes(
        b"config:\n  modelyard:preset: minimal\n  modelyard:tags:\n    extra: {team: caf\xe9}\n"
    )
    assert plan(project, "latin") == 2
    err = capsys.readouterr().err
    assert "Pulumi.latin.yaml: not UTF-8: byte 0xe9 on line 4" in err


def test_output_paths_that_cannot_be_written_are_refused_before_anything_runs(project: Path, capsys) -> None:
    existing_file = project / "taken"
    existing_file.write_text("keep me")
    assert plan(project, "pilot", "--json", str(project), "--manifests", str(existing_file / "sub")) == 2
    err = capsys.readouterr().err
    assert f"--json: {project} is a directory" in err
    assert f"--manifests: {existing_file} is a file" in err
    assert existing_file.read_text() == "keep me"
    assert plan(project, "pilot", "--markdown", str(project / "missing" / "plan.md")) == 2
    assert "--markdown: folder" in capsys.readouterr().err
