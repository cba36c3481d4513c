"""A stack that names a traffic profile (settings `traffic`): its plan carries the simulated attainment and cost per
token, and the plan diff of a pull request shows how the change moves them. Plans of other stacks do not change."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MODELYARD = str(Path(sys.executable).parent / "modelyard")
PROFILE = {"trace": "diurnal", "rate_scale": 2}


def modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELYARD, *args], capture_output=True, text=True, timeout=300, check=False)


def project(where: Path, extra: dict[str, Any]) -> Path:
    """A project whose stack `pilot` is the shipped pilot plus `extra` config."""
    where.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", where / "Pulumi.yaml")
    (where / "stacks").mkdir()
    (where / "stacks" / "presets").symlink_to(ROOT / "stacks" / "presets")
    (where / "charts").symlink_to(ROOT / "charts")
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.pilot.yaml").read_text())
    stack["config"].update(extra)
    (where / "stacks" / "Pulumi.pilot.yaml").write_text(yaml.safe_dump(stack))
    return where


def plan(project_dir: Path, out: Path) -> dict[str, Any]:
    done = modelyard("plan", "--stack", "pilot", "--project-dir", str(project_dir), "--json", str(out))
    assert done.returncode == 0, done.stderr
    return dict(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("traffic")
    base = project(tmp / "base", {"modelyard:traffic": PROFILE})
    # The pull request: two replicas always on instead of one to two.
    head = project(
        tmp / "head",
        {"modelyard:traffic": PROFILE, "modelyard:models": {"llama-8b": {"replicas": {"min": 2, "max": 2}}}},
    )
    base_plan, head_plan = tmp / "base.json", tmp / "head.json"
    plan(base, base_plan)
    plan(head, head_plan)
    return base_plan, head_plan


def test_the_plan_carries_what_simulate_reports(plans: tuple[Path, Path], tmp_path: Path) -> None:
    traffic = json.loads(plans[0].read_text())["cost"]["traffic"]
    done = modelyard(
        "simulate",
        "--stack",
        "pilot",
        "--trace",
        str(ROOT / "components" / "simulate" / "data" / "diurnal.csv"),
        "--rate-scale",
        "2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    simulated = json.loads(done.stdout)
    assert traffic["ttft_attainment"] == simulated["slo"]["ttft_attainment"]
    assert traffic["usd_per_million_output_tokens"] == simulated["usd_per_million_output_tokens"]
    assert traffic["requests"] == simulated["requests"]["offered"]
    # Deterministic: the same settings give the same bytes.
    again = plan(project(tmp_path / "again", {"modelyard:traffic": PROFILE}), tmp_path / "again.json")
    assert again["cost"]["traffic"] == traffic


def test_a_stack_without_a_profile_has_no_traffic_section() -> None:
    done = modelyard("tco", "--stack", "pilot", "--json")
    assert done.returncode == 0, done.stderr
    assert "traffic" not in json.loads(done.stdout)


def test_the_diff_shows_the_change_in_attainment_and_cost_per_token(plans: tuple[Path, Path]) -> None:
    base, head = (json.loads(p.read_text())["cost"]["traffic"] for p in plans)
    # Two replicas always on: never a worse attainment, twice the GPU node-hours for the same tokens.
    assert head["ttft_attainment"] >= base["ttft_attainment"]
    assert float(head["usd_per_million_output_tokens"]) > float(base["usd_per_million_output_tokens"])
    done = modelyard("diff", str(plans[0]), str(plans[1]), "--markdown")
    assert done.returncode == 0, done.stderr
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("**Traffic `diurnal` x2")]
    assert f"{base['ttft_attainment']:.1%} -> {head['ttft_attainment']:.1%}" in line
    assert f"${float(base['usd_per_million_output_tokens']):,.2f} -> " in line
    assert f"${float(head['usd_per_million_output_tokens']):,.2f}" in line
    text = modelyard("diff", str(plans[0]), str(plans[1]))
    (printed,) = [ln.strip() for ln in text.stdout.splitlines() if "Traffic `diurnal` x2 (simulated): TTFT" in ln]
    # docs/simulate.md shows this very pull request's line.
    assert f"\n{printed}\n" in (ROOT / "docs" / "simulate.md").read_text(), printed


@pytest.mark.parametrize(
    ("traffic", "named"),
    [
        ({"trace": "diurnal", "model": "llama-70b"}, "modelyard:traffic.model"),
        ({"trace": "traces/missing.csv"}, "modelyard:traffic.trace"),
        ({"trace": "weekly"}, "modelyard:traffic.trace"),
        ({"tenant": "internal"}, "modelyard:traffic.tenant"),
        ({"trace": "diurnal", "rate_scale": 0}, "modelyard:traffic.rate_scale"),
    ],
)
def test_a_bad_profile_exits_2_naming_the_key(tmp_path: Path, traffic: dict[str, Any], named: str) -> None:
    where = project(tmp_path / "bad", {"modelyard:traffic": traffic})
    done = modelyard("plan", "--stack", "pilot", "--project-dir", str(where))
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr
