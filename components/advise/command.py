"""`modelyard advise --model M --trace FILE`: self-hosting on each layout `size` offers (simulated), the hosted
offers of the same model, the proprietary APIs and a hybrid, side by side for one workload (docs/simulate.md)."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import ExitCode, InputError, Problem

if TYPE_CHECKING:
    from components.advise.core import Advice, Row

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard advise",
        description="For one workload (a request trace), side by side: self-hosting on each layout `modelyard size` "
        "offers (simulated on a one-model stack of the preset), the hosted offers of the same open model, the "
        "proprietary APIs, and a hybrid; yearly cost, TTFT attainment, break-even, where the data goes.",
    )
    parser.add_argument("--model", required=True, help="catalog name (llama-3.1-8b) or Hugging Face repository id")
    parser.add_argument(
        "--trace", required=True, type=Path, help="an Azure LLM inference trace CSV or a JSONL (docs/simulate.md)"
    )
    parser.add_argument("--preset", default="minimal", help="the preset whose other costs self-hosting carries")
    parser.add_argument("--budget", metavar="USD", help="USD a year: the cheapest configuration within it")
    parser.add_argument("--slo-ttft", type=float, metavar="S", help="the TTFT objective in seconds (default: alerts')")
    parser.add_argument("--rate-scale", type=float, default=1.0, metavar="X", help="arrivals x X (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --rate-scale's draws (default 0)")
    parser.add_argument(
        "--layouts",
        type=int,
        default=3,
        metavar="N",
        help="simulate the N cheapest layouts a year (more until one meets the objective); the rest are priced, not "
        "simulated (default 3)",
    )
    parser.add_argument("--json", action="store_true", help="print the advice as JSON")
    parser.add_argument("--markdown", type=Path, metavar="F", help="write the advice as markdown to F")
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_ROOT, metavar="DIR", help="the folder holding Pulumi.yaml"
    )
    return parser


def _budget(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.replace(",", "").lstrip("$"))
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value <= 0:
        raise InputError(Problem(path="--budget", message=f"{text!r}: a positive number of USD a year"))
    return value


def _check(args: argparse.Namespace) -> Decimal | None:
    from components import catalog
    from components.settings.load import preset_names

    try:
        catalog.resolve_model(args.model)
    except catalog.UnknownNameError as exc:
        raise InputError(Problem(path="--model", message=str(exc))) from None
    presets = preset_names(args.project_dir / "stacks" / "presets")
    if args.preset not in presets:
        raise InputError(Problem(path="--preset", message=f"{args.preset!r}: choose one of {', '.join(presets)}"))
    if args.slo_ttft is not None and not 0 < args.slo_ttft <= 600:
        raise InputError(Problem(path="--slo-ttft", message=f"{args.slo_ttft} is outside (0, 600] seconds"))
    if not 1 <= args.layouts <= 50:
        raise InputError(Problem(path="--layouts", message=f"{args.layouts} is outside [1, 50]"))
    if not args.rate_scale > 0 or args.rate_scale > 1000:
        raise InputError(Problem(path="--rate-scale", message=f"{args.rate_scale} is outside (0, 1000]"))
    return _budget(args.budget)


def _usd(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.0f}"


def _attainment(r: Row) -> str:
    if r.ttft_attainment is None:
        return "not simulated"  # an API's latency, or a layout --layouts or --budget left out
    return f"{r.ttft_attainment:.1%}" + ("" if r.meets_objective else " (misses)")


def _break_even(r: Row) -> str:
    v = r.break_even
    if v is None:
        return "-"
    if not v["can_break_even"]:
        return "never"
    return f"{Decimal(v['break_even_million_output_tokens_per_month']):,} Mtok/mo"


def table(advice: Advice) -> list[list[str]]:
    head = ["kind", "option", "yearly", "TTFT attainment", "break-even", "data leaves VPC"]
    return [head] + [
        [r.kind, r.option, _usd(r.yearly_usd), _attainment(r), _break_even(r), r.data_leaves_vpc] for r in advice.rows
    ]


def render_text(advice: Advice) -> str:
    w = advice.workload
    out = [
        f"Advice for {advice.model} on {advice.trace}: {len(w.requests)} requests over "
        f"{w.window_seconds / 3600:.2f} h, "
        f"{w.output_tokens:,} output and {w.input_tokens:,} input tokens; objective: "
        f"{advice.objective_share:.0%} of requests within {advice.objective_seconds:g} s to first token",
        "",
    ]
    cells = table(advice)
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for c in cells:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(c)).rstrip())
    out.append("")
    out.append(
        "Break-even: the monthly output volume (Mtok) at which self-hosting (all costs, at its maximum replicas)"
    )
    out.append("costs what the row's price does; for self-hosted rows, against the cheapest hosted offer of the model.")
    out.append("")
    out.append("What each row includes, and its prices (dated, sourced):")
    for r in advice.rows:
        out.append(f"  {r.option}: {r.included}")
        for p in r.prices:
            out.append(f"    {p}")
    if advice.skipped:
        out.append("Not simulated:")
        out += [f"  {s}" for s in advice.skipped]
    if advice.budget is not None:
        out.append("")
        if advice.choice is not None:
            out.append(
                f"Within ${advice.budget:,.0f} a year, the cheapest configuration meeting the objective: "
                f"{advice.choice.option} ({_usd(advice.choice.yearly_usd)} a year)"
            )
        else:
            out.append(f"Within ${advice.budget:,.0f} a year: none; {advice.why_none}")
    out.append("")
    out.append("Assumptions:")
    out += [f"  - {a}" for a in advice.assumptions]
    return "\n".join(out) + "\n"


def render_markdown(advice: Advice) -> str:
    rows = table(advice)
    lines = [f"## Advice: {advice.model} on {advice.trace}", ""]
    lines.append("| " + " | ".join(rows[0]) + " |")
    lines.append("|" + "---|" * len(rows[0]))
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows[1:]]
    lines.append("")
    if advice.budget is not None:
        lines.append(
            f"Within ${advice.budget:,.0f} a year: "
            + (f"**{advice.choice.option}**" if advice.choice is not None else f"none; {advice.why_none}")
        )
        lines.append("")
    lines.append("Assumptions:")
    lines += [f"- {a}" for a in advice.assumptions]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from components.advise.core import advise, to_json_text
    from components.simulate.engine import Options
    from components.simulate.trace import Routes, read_trace

    budget = _check(args)
    from components.advise.core import MODEL_KEY, TENANT

    trace = read_trace(
        args.trace, Routes(tenant_models={TENANT: (MODEL_KEY,)}, key_tenants={}), model=MODEL_KEY, tenant=TENANT
    )
    advice = advise(
        args.model,
        trace,
        project_dir=args.project_dir,
        preset=args.preset,
        budget=budget,
        slo_ttft=args.slo_ttft,
        options=Options(rate_scale=args.rate_scale, seed=args.seed),
        layouts_simulated=args.layouts,
    )
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(advice), encoding="utf-8")
    sys.stdout.write(to_json_text(advice) if args.json else render_text(advice))
    return ExitCode.OK
