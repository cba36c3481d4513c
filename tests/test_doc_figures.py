"""Figures the docs state about the shipped stacks are what the kit computes today, rounded as printed.

Each test reads a figure from the doc's text and compares it with the session's plans (tests/conftest.py), so a change
that moves a cost, a replica count or a cold start fails here until the doc says the new figure. Figures the kit
generates between markers, and the tables other tests hold (README's TCO column, the cold-start table, the simulate
plot, the advise table), are not repeated here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from tests.conftest import ROOT

HOURS_A_MONTH = 730
SCALE = {"": Decimal(1), "K": Decimal(1000), "M": Decimal(1_000_000)}


def doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def as_printed(printed: str, actual: Decimal | float | str) -> bool:
    """Whether `actual` rounds to `printed` (`2.0K`, `731K`, `6.8M`, `2,880`, `0.36`) at the digits printed."""
    m = re.fullmatch(r"([\d,]+(?:\.\d+)?)([KM]?)", printed)
    assert m is not None, printed
    number = Decimal(m[1].replace(",", ""))
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    return (Decimal(str(actual)) / SCALE[m[2]]).quantize(Decimal(1).scaleb(exponent)) == number


def lines(plan: dict[str, Any], category: str) -> list[dict[str, Any]]:
    return [line for line in plan["cost"]["lines"] if line["category"] == category]


def monthly(plan: dict[str, Any], category: str) -> Decimal:
    return Decimal(plan["cost"]["by_category"][category])


def gpu_pool_lines(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The Karpenter pools' node lines: `N nodes always + M more for S% of hours ... x PRICE/hr x 730 h`."""
    return [line for line in lines(plan, "aws") if re.match(r"GPU pool \S+ \(Karpenter\)", line["item"])]


def always_on(line: dict[str, Any]) -> tuple[int, Decimal]:
    """A pool line's always-on nodes and what they cost a month (before bursts)."""
    m = re.match(r"(\d+) nodes always .* x ([\d.]+)/hr x 730 h", line["basis"])
    assert m is not None, line["basis"]
    return int(m[1]), int(m[1]) * Decimal(m[2]) * HOURS_A_MONTH


def pool(plan: dict[str, Any], name: str) -> dict[str, Any]:
    (line,) = [line for line in gpu_pool_lines(plan) if line["item"].startswith(f"GPU pool {name} (Karpenter)")]
    return line


# --- the calibration tables (docs/presets.md, docs/cost.md) -------------------------------------------------------


CALIBRATION_ROW = re.compile(
    r"^\| `(\w[\w-]*)` \([^)]*\) \| ~\$([\d.]+[KM]) \| ([\d.]+) FTE x \$(\d+)K \| \$([\d.]+[KM]) \| ~\$([\d.]+[KM]) \|",
    re.M,
)


def test_the_calibration_tables_are_what_tco_computes(plans, global_plans) -> None:
    """`| stack (preset) | AWS a month | people | tools + hidden a month | total a year | band |`, in both docs: every
    shipped stack with a cost of its own (the Kubernetes layers' are their AWS layers') and the global stack's total."""
    every = {**plans, **global_plans}
    expected = {stack for stack in every if not stack.endswith("-k8s")}
    for name in ("presets.md", "cost.md"):
        rows = {m[1]: m for m in CALIBRATION_ROW.finditer(doc(name))}
        assert set(rows) == expected, f"docs/{name}: calibration rows {sorted(rows)}"
        for stack, row in rows.items():
            plan = every[stack]
            cost = plan["cost"]
            # A global stack's people are its cells' (it prices only the entry itself): their staffing, summed.
            cells = [every[cell["stack"]] for cell in cost["cells"].values()] if "cells" in cost else [plan]
            staffing = []
            for cell in cells:
                (people,) = lines(cell, "people")
                staffed = re.match(r"([\d.]+) FTE \(cost.fte\) x \$([\d,]+)/yr", people["basis"])
                assert staffed is not None, people["basis"]
                staffing.append((Decimal(staffed[1]), staffed[2].replace(",", "")))
            assert len({salary for _, salary in staffing}) == 1, (stack, staffing)
            assert as_printed(row[2], cost["aws_monthly"]), (name, stack, row[2], cost["aws_monthly"])
            assert Decimal(row[3]) == sum(fte for fte, _ in staffing), (name, stack, row[3], staffing)
            assert as_printed(f"{row[4]}K", staffing[0][1]), (name, stack, row[4], staffing)
            others = sum((monthly(cell, "tools") + monthly(cell, "hidden") for cell in cells), Decimal(0))
            assert as_printed(row[5], others), (name, stack, row[5], others)
            assert as_printed(row[6], cost["annual_total"]), (name, stack, row[6], cost["annual_total"])


def test_the_presets_reasoning_is_what_the_stacks_provision(plans) -> None:
    """docs/presets.md, "Why these numbers are defensible": each figure of its three paragraphs."""
    text = doc("presets.md").split("Why these numbers are defensible:", 1)[1].split("\n## ", 1)[0]

    def figure(pattern: str) -> str:
        m = re.search(pattern, text, re.S)
        assert m is not None, f"docs/presets.md no longer says {pattern!r}"
        return m[1]

    pilot, product, core = plans["pilot"], plans["product"], plans["core"]
    # minimal: the rest of AWS, once the GPU pool and its root volumes are set aside.
    rest = monthly(pilot, "aws") - sum(
        (Decimal(line["monthly"]) for line in lines(pilot, "aws") if line["item"].startswith("GPU pool ")), Decimal(0)
    )
    assert rest < Decimal(figure(r"rest of AWS \(EKS, two small system nodes, one NAT\) is under \$(\d+) a month"))
    tools = {line["item"].split(" ", 1)[0]: Decimal(line["monthly"]) for line in lines(pilot, "tools")}
    hidden = {line["item"].split(":", 1)[0]: Decimal(line["monthly"]) for line in lines(pilot, "hidden")}
    assert tools["tools"] == Decimal(figure(r"Tools at\s+the \$(\d+) a month"))
    assert as_printed(figure(r"\$([\d.]+K) a month of evaluation"), hidden["evaluation"])
    # moderate: two always-on replicas of each model, before bursts.
    nodes = {p: always_on(pool(product, p)) for p in ("l40s", "l40s-x4")}
    assert [n for n, _ in nodes.values()] == [2, 2]
    assert "g6e.xlarge" in pool(product, "l40s")["item"] and "g6e.12xlarge" in pool(product, "l40s-x4")["item"]
    before_bursts = sum((usd for _, usd in nodes.values()), Decimal(0))
    assert as_printed(figure(r"2 x g6e\.12xlarge, ~\$(\d+K) a month before bursts"), before_bursts), before_bursts
    tools = {line["item"].split(" ", 1)[0]: Decimal(line["monthly"]) for line in lines(product, "tools")}
    hidden = {line["item"].split(":", 1)[0]: Decimal(line["monthly"]) for line in lines(product, "hidden")}
    assert as_printed(figure(r"evaluation tools \(\$([\d.]+K)\)"), tools["tools"])
    assert as_printed(figure(r"evaluation \(\$([\d.]+K)\)"), hidden["evaluation"])
    assert as_printed(figure(r"audits \(\$([\d.]+K)\)"), hidden["compliance"])
    # enterprise: the always-on H200 and H100 nodes, AWS a year, people, tools and hidden costs a year.
    h200, h100 = always_on(pool(core, "h200")), always_on(pool(core, "h100-efa"))
    assert (h200[0], h100[0]) == (2, 1), "two always-on 8 x H200 nodes and one 8 x H100 node"
    assert "p5en.48xlarge" in pool(core, "h200")["item"] and "p5.48xlarge" in pool(core, "h100-efa")["item"]
    assert as_printed(figure(r"are ~\$(\d+K) a month on their own"), h200[1] + h100[1])
    assert as_printed(figure(r"~\$([\d.]+M) a\s+year of AWS"), core["cost"]["aws_annual"])
    assert as_printed(figure(r"a secondary source\), \$([\d.]+M)\."), monthly(core, "people") * 12)
    assert as_printed(figure(r"add ~\$([\d.]+M) a year"), (monthly(core, "tools") + monthly(core, "hidden")) * 12)


# --- break-even (docs/cost.md) -------------------------------------------------------------------------------------


def test_the_break_even_summary_is_the_stacks_verdicts(plans) -> None:
    """docs/cost.md: no shipped stack breaks even with the cheapest hosts, every one does with GPT-5 and Claude
    Sonnet; the pilot's 8B figure is its GPU nodes' lowest cost beside the cheapest host's price."""
    text = " ".join(
        doc("cost.md").split("The shipped stacks, at the prices of the book:", 1)[1].split("\n\n")[0].split()
    )
    m = re.search(r"the pilot's 8B on one L40S reaches \$([\d.]+) per million output tokens against \$([\d.]+)", text)
    assert m is not None, text
    (llama,) = [model for model in plans["pilot"]["cost"]["tokens"]["models"] if model["model"] == "llama-8b"]
    verdict = llama["break_even"]
    assert not verdict["can_break_even"]
    assert (m[1], m[2]) == (
        verdict["lowest_usd_per_million_output_tokens"],
        verdict["against_usd_per_million_output_tokens"],
    )
    assert "all three do against GPT-5 and Claude Sonnet" in text
    for stack in ("pilot", "product", "core"):
        verdicts = plans[stack]["cost"]["break_even"]
        assert not verdicts["hosted"]["can_break_even"], stack
        assert {v["api"] for v in verdicts["apis"] if v["can_break_even"]} == {"gpt-5", "claude-sonnet"}, stack


# --- what the enterprise preset's file system costs (docs/storage.md) ----------------------------------------------


def test_the_file_systems_cost_is_the_plans(plans) -> None:
    m = re.search(r"the enterprise preset's (\d+) GiB at (\d+) is \$([\d,]+) a month", doc("storage.md"))
    assert m is not None
    (line,) = [line for line in lines(plans["core"], "aws") if line["item"].startswith("FSx for Lustre")]
    assert f"({m[2]} MB/s/TiB)" in line["item"] and line["basis"].startswith(f"{m[1]} GB"), line
    assert as_printed(m[3], line["monthly"]), (m[3], line["monthly"])


# --- cold starts of the shipped models (docs/serving.md, the prose under the constants) ----------------------------


def test_the_cold_start_walk_through_is_the_plans(plans) -> None:
    """`With these, the shipped stacks: ...`: the minutes `modelyard plan` prints (rounded up), part by part for 8B."""
    text = " ".join(doc("serving.md").split("With these, the shipped stacks:", 1)[1].split("\n\n")[0].split())
    serving = plans["core"]["serving"]

    def minutes(seconds: int) -> int:
        return -(-seconds // 60)

    small = serving["llama-8b"]["cold_start"]
    parts = [
        minutes(small[k]) for k in ("node_launch_seconds", "image_pull_seconds", "weights_seconds", "engine_seconds")
    ]
    expected = (
        f"Llama 3.1 8B about {minutes(small['total_seconds'])} minutes ({small['checkpoint_gb']:.0f} GB: "
        f"{parts[0]} node + {parts[1]} image + {parts[2]} check + {parts[3]} engine)"
    )
    assert expected in text, expected
    r1 = serving["deepseek-r1"]["cold_start"]
    assert r1["weights_load"] == "stream"
    assert f"DeepSeek-R1 fp8 {minutes(r1['total_seconds'])} ({r1['checkpoint_gb']:.0f} GB streamed" in text
    big = serving["llama-405b"]["cold_start"]
    assert big["weights_load"] == "fsx"
    assert f"({big['checkpoint_gb']:.0f} GB of bf16 streamed" in text
    assert f"reads it from FSx instead: {minutes(big['total_seconds'])} (" in text
