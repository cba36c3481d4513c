"""`modelyard advise`: the comparison a team decides on. Its break-even is `tco`'s arithmetic on the very stack it
simulated; the budget picks the cheapest configuration that meets the objective, or says why none does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "components" / "simulate" / "data"
MODELYARD = str(Path(sys.executable).parent / "modelyard")


def modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELYARD, *args], capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def advice() -> dict[str, Any]:
    done = modelyard(
        "advise", "--model", "llama-3.1-8b", "--trace", str(DATA / "diurnal.csv"), "--rate-scale", "6", "--json"
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _row(advice: dict[str, Any], kind: str, starts: str) -> dict[str, Any]:
    (row,) = [r for r in advice["rows"] if r["kind"] == kind and r["option"].startswith(starts)]
    return row


def test_every_way_to_serve_the_workload_is_a_row(advice: dict[str, Any]) -> None:
    kinds = {r["kind"] for r in advice["rows"]}
    assert kinds == {"self-hosted", "hybrid", "hosted", "proprietary"}
    for r in advice["rows"]:
        assert r["prices"] and all("<" in p and p.endswith(">") for p in r["prices"]), r["prices"]  # sourced
        assert r["data_leaves_vpc"].startswith("no" if r["kind"] == "self-hosted" else "yes")
        assert Decimal(r["yearly_usd"]) > 0
    # The hosted rows are the price book's dated offers of the same model, each with its date.
    hosted = [r for r in advice["rows"] if r["kind"] == "hosted"]
    assert len(hosted) >= 3 and all(" 20" in r["prices"][0] for r in hosted)
    # A self-hosted row's cost is its simulated GPU nodes plus the preset's other costs, a year.
    row = _row(advice, "self-hosted", "g6e.xlarge")
    fixed = Decimal(advice["fixed_monthly_usd"]) * 12
    assert Decimal(row["yearly_usd"]) == pytest.approx(fixed + Decimal(row["gpu_yearly_usd"]), abs=Decimal("0.01"))
    assert row["ttft_attainment"] >= advice["objective"]["share"] and row["meets_objective"]
    assert any("stands for every hour of the year" in a for a in advice["assumptions"])
    # Simulated: the cheapest layouts a year (at least one meeting the objective); the others priced and marked.
    self_hosted = [r for r in advice["rows"] if r["kind"] == "self-hosted"]
    assert [Decimal(r["yearly_usd"]) for r in self_hosted] == sorted(Decimal(r["yearly_usd"]) for r in self_hosted)
    ran = [r for r in self_hosted if r["ttft_attainment"] is not None]
    assert ran == self_hosted[: len(ran)] and any(r["meets_objective"] for r in ran)
    assert all("--layouts" in r["not_simulated"] for r in self_hosted[len(ran) :])


def test_a_hosted_rows_cost_is_the_traces_tokens_at_its_prices(advice: dict[str, Any]) -> None:
    w = advice["workload"]
    per_year = Decimal(730 * 12 * 3600) / Decimal(str(w["window_seconds"]))
    row = _row(advice, "proprietary", "OpenAI GPT-5")
    # GPT-5: $1.25 in, $10 out per million tokens (components/cost/prices.yaml).
    assert "$1.25 in / $10.00 out" in row["prices"][0]
    expected = (Decimal("1.25") * w["input_tokens"] + 10 * w["output_tokens"]) / 1_000_000 * per_year
    assert Decimal(row["yearly_usd"]) == pytest.approx(expected, abs=Decimal("1"))


def test_the_hybrid_overflows_what_its_base_replicas_cannot_answer(advice: dict[str, Any]) -> None:
    self_hosted = _row(advice, "self-hosted", "g6e.xlarge")
    (hybrid, *_) = [r for r in advice["rows"] if r["kind"] == "hybrid"]
    assert hybrid["replicas_max"] < self_hosted["replicas_max"]
    assert 0 < hybrid["overflow_requests"] < advice["workload"]["requests"]
    assert Decimal(hybrid["gpu_yearly_usd"]) < Decimal(self_hosted["gpu_yearly_usd"])
    assert hybrid["gateway_model_rpm"] > 0


def test_the_break_even_is_tcos_on_the_stack_it_simulated(advice: dict[str, Any], tmp_path: Path) -> None:
    """Plan the very stack advise simulated and ask `tco`: the same break-even, the same function."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "presets").symlink_to(ROOT / "stacks" / "presets")
    (tmp_path / "charts").symlink_to(ROOT / "charts")
    for layout in ("g6e.xlarge", "g6.12xlarge"):
        row = _row(advice, "self-hosted", layout)
        name = f"check-{layout.replace('.', '-')}"
        (tmp_path / "stacks" / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(row["stack_file"]))
        done = modelyard("tco", "--stack", name, "--project-dir", str(tmp_path), "--json")
        assert done.returncode == 0, done.stderr
        tco = json.loads(done.stdout)["break_even"]["hosted"]
        ours = row["break_even"]
        for key in (
            "break_even_million_output_tokens_per_month",
            "lowest_usd_per_million_output_tokens",
            "million_output_tokens_per_month_at_max",
            "against_usd_per_million_output_tokens",
            "can_break_even",
        ):
            assert ours[key] == tco[key], (layout, key)


def test_the_table_names_the_break_even(advice: dict[str, Any]) -> None:
    done = modelyard("advise", "--model", "llama-3.1-8b", "--trace", str(DATA / "steady.csv"))
    assert done.returncode == 0, done.stderr
    assert "break-even" in done.stdout and "data leaves VPC" in done.stdout
    assert "Assumptions:" in done.stdout


def test_a_budget_picks_the_cheapest_configuration_that_meets_the_objective(
    advice: dict[str, Any], tmp_path: Path
) -> None:
    budget = "200000"
    done = modelyard(
        "advise",
        "--model",
        "llama-3.1-8b",
        "--trace",
        str(DATA / "diurnal.csv"),
        "--rate-scale",
        "6",
        "--budget",
        budget,
        "--json",
        "--markdown",
        str(tmp_path / "advice.markdown"),
    )
    assert done.returncode == 0, done.stderr
    within = json.loads(done.stdout)
    eligible = [
        r for r in within["rows"] if r["meets_objective"] is not False and Decimal(r["yearly_usd"]) <= Decimal(budget)
    ]
    cheapest = min(eligible, key=lambda r: Decimal(r["yearly_usd"]))
    assert within["choice"] == cheapest["option"] and within["why_none"] is None
    # Layouts whose nodes alone exceed the budget are not simulated, and said so.
    assert within["not_simulated"] and all("above the budget" in s for s in within["not_simulated"])

    def simulated(a: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in a["rows"] if r["kind"] == "self-hosted" and r["ttft_attainment"] is not None]

    assert 0 < len(simulated(within)) < len(simulated(advice))
    assert cheapest["option"] in (tmp_path / "advice.markdown").read_text()
    _docs_show(within)


def _docs_show(within: dict[str, Any]) -> None:
    """docs/simulate.md prints this run (`advise ... --rate-scale 6 --budget 200000`): every row it shows, the choice,
    and the figures of its reading are this run's."""
    text = (ROOT / "docs" / "simulate.md").read_text().split("## 5. The decision", 1)[1].split("## 6.", 1)[0]
    block = text.split("```\nAdvice for ", 1)[1].split("```", 1)[0]
    w = within["workload"]
    assert f"{w['requests']} requests over {w['window_seconds'] / 3600:.2f} h, {w['output_tokens']:,} output" in block
    rows = {(r["kind"], r["option"]): r for r in within["rows"]}
    shown = [ln for ln in block.splitlines() if re.match(r"(self-hosted|hybrid|hosted|proprietary) ", ln)]
    assert len(shown) >= 10, block
    for line in shown:
        kind, rest = line.split(" ", 1)
        (option,) = [o for k, o in rows if k == kind and rest.strip().startswith(o + "  ")]
        r = rows[(kind, option)]
        cells = re.split(r"\s{2,}", rest.strip())
        assert cells[1] == f"${Decimal(r['yearly_usd']):,.0f}", line
        attained = "not simulated" if r["ttft_attainment"] is None else f"{r['ttft_attainment']:.1%}"
        assert cells[2] == attained, line
        v = r["break_even"]
        even = (
            "-"
            if v is None
            else "never"
            if not v["can_break_even"]
            else f"{Decimal(v['break_even_million_output_tokens_per_month']):,} Mtok/mo"
        )
        assert cells[3] == even and cells[4] == r["data_leaves_vpc"], line
    choice = rows[next(k for k in rows if k[1] == within["choice"])]
    assert (
        "Within $200,000 a year, the cheapest configuration meeting the objective: "
        f"{within['choice']} (${Decimal(choice['yearly_usd']):,.0f} a year)"
    ) in block
    # The reading: the cheapest self-hosted layout, the preset's other costs, GPT-5's break-even, the traffic a month.
    reading = " ".join(text.split("Reading it:", 1)[1].split())
    (first, *_) = [r for r in within["rows"] if r["kind"] == "self-hosted"]
    assert (
        f"meet the objective for ${Decimal(first['yearly_usd']):,.0f} a year, "
        f"of which ${Decimal(within['fixed_monthly_usd']) * 12:,.0f}"
    ) in reading
    gpt5 = rows[("proprietary", "OpenAI GPT-5")]["break_even"]
    assert f"above {Decimal(gpt5['break_even_million_output_tokens_per_month']):,.0f} million" in reading
    hundreds = Decimal(w["million_output_tokens_per_month"]).quantize(Decimal("1E2"))
    assert f"this traffic is about {hundreds:,.0f}." in reading
    assert f"about {hundreds:,.0f} million output tokens a\nmonth" in text
    (hybrid, *_) = [r for r in within["rows"] if r["kind"] == "hybrid"]
    assert f"only at {hybrid['gateway_model_rpm']} requests a minute" in reading


def test_a_budget_too_small_says_why_nothing_fits() -> None:
    done = modelyard(
        "advise", "--model", "llama-3.1-8b", "--trace", str(DATA / "diurnal.csv"), "--budget", "1000", "--json"
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["choice"] is None
    assert "above the budget $1,000.00" in out["why_none"]
    text = modelyard("advise", "--model", "llama-3.1-8b", "--trace", str(DATA / "diurnal.csv"), "--budget", "1000")
    assert "Within $1,000 a year: none;" in text.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--model", "gpt-9"], "--model"),
        (["--budget", "lots"], "--budget"),
        (["--budget", "-5"], "--budget"),
        (["--slo-ttft", "0"], "--slo-ttft"),
        (["--preset", "huge"], "--preset"),
        (["--rate-scale", "0"], "--rate-scale"),
        (["--layouts", "0"], "--layouts"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(args: list[str], named: str) -> None:
    base = {"--model": "llama-3.1-8b", "--trace": str(DATA / "steady.csv")}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    done = modelyard("advise", *[x for kv in base.items() for x in kv])
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_missing_trace_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "none.csv"
    done = modelyard("advise", "--model", "llama-3.1-8b", "--trace", str(missing))
    assert done.returncode == 2 and str(missing) in done.stderr and "Traceback" not in done.stderr, done.stderr
