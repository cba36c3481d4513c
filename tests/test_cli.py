"""The command line: exit codes and messages as the README's table promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.cli import main
from tests.conftest import ROOT, SHIPPED_STACKS


def _write_stack(tmp_path: Path, body: str) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks" / "presets").symlink_to(ROOT / "stacks" / "presets")
    (tmp_path / "stacks" / "Pulumi.x.yaml").write_text(body)
    return tmp_path


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_plan_writes_json_markdown_and_manifests(tmp_path, capsys, stack):
    code = main(
        [
            "plan",
            "--stack",
            stack,
            "--json",
            str(tmp_path / "plan.json"),
            "--markdown",
            str(tmp_path / "plan.md"),
            "--manifests",
            str(tmp_path / "manifests"),
        ]
    )
    assert code == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["stack"] == stack
    assert (tmp_path / "manifests").is_dir()
    assert f"`{stack}`" in (tmp_path / "plan.md").read_text()
    out = capsys.readouterr().out
    assert f"stack {stack} (preset {plan['preset']}" in out and "modelyard:aws:Network" in out


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("config:\n  modelyard:preset: minimal\n  modelyard:netwrk:\n    nat: none\n", "modelyard:netwrk: unknown key"),
        ("config:\n  modelyard:preset: medium\n", "modelyard:preset: 'medium' is not a preset"),
        (
            "config:\n  modelyard:preset: minimal\n  modelyard:models:\n    llama-8b:\n      context: long\n",
            "modelyard:models.llama-8b.context: expected an integer, got string 'long'",
        ),
        ("config: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_stack_files_exit_2_naming_the_key(tmp_path, capsys, body, expected):
    project = _write_stack(tmp_path, body)
    assert main(["plan", "--stack", "x", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err


def test_unknown_stack_exits_2_with_the_shipped_stacks(capsys):
    assert main(["plan", "--stack", "pilt"]) == 2
    err = capsys.readouterr().err
    assert "--stack: no stack 'pilt'" in err and "did you mean 'pilot'" in err


def test_bad_arguments_exit_2(capsys):
    assert main(["plan"]) == 2
    assert "--stack" in capsys.readouterr().err


def test_unknown_command_exits_2_with_a_close_match(capsys):
    assert main(["plna"]) == 2
    assert "did you mean 'plan'" in capsys.readouterr().err


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "plan" in out and "size" in out and "exit codes" in out


def test_output_folder_must_exist(tmp_path, capsys):
    assert main(["plan", "--stack", "pilot", "--json", str(tmp_path / "missing" / "p.json")]) == 2
    assert "--json: folder" in capsys.readouterr().err


def test_installed_command_runs_in_a_fresh_process(tmp_path):
    """The README's first command, as a user runs it: the console script, a fresh interpreter."""
    exe = Path(sys.executable).parent / "modelyard"
    env = {**os.environ, "PYTHONWARNINGS": "error::DeprecationWarning:components"}
    result = subprocess.run(
        [str(exe), "plan", "--stack", "pilot", "--json", str(tmp_path / "p.json")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((tmp_path / "p.json").read_text())["preset"] == "minimal"


def test_shipped_stack_files_name_a_preset(root):
    from components.settings.load import preset_names

    for stack in SHIPPED_STACKS:
        config = yaml.safe_load((root / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["modelyard:preset"] in preset_names(root / "stacks" / "presets")
