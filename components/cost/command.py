"""`modelyard tco --stack S [--json]`: the stack's total cost of ownership, line by line.

AWS (priced from what the stack provisions and what its controllers will start) on its own, then
people, tools and hidden costs; monthly and annual totals; the band of the stack's cost tier and whether the
stack is inside it; cost per million output tokens at the stated utilisation; break-even against API prices.
Lines resting on an unverified price or an assumed usage figure are marked and listed.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from components.errors import ExitCode, InputError, Problem

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard tco",
        description="Total cost of ownership of a stack: AWS from the offline plan, plus people, tools and "
        "hidden costs; band check, cost per million output tokens and API break-even.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--json", action="store_true", help="print the plan's cost object as JSON")
    view.add_argument("--markdown", action="store_true", help="print markdown: a table per category, for a page or PR")
    parser.add_argument(
        "--trace",
        type=Path,
        metavar="FILE",
        help="a request trace (Azure CSV or JSONL, docs/simulate.md): the utilisation `modelyard simulate` finds "
        "replaces cost.utilisation",
    )
    parser.add_argument("--model", help="with --trace: route every request to this model")
    parser.add_argument("--tenant", help="with --trace: route every request as this tenant")
    parser.add_argument("--rate-scale", type=float, default=1.0, metavar="X", help="with --trace: arrivals x X")
    parser.add_argument("--seed", type=int, default=0, help="with --trace: the seed of --rate-scale's draws")
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_ROOT, metavar="DIR", help="the folder holding Pulumi.yaml"
    )
    return parser


def usd(value: str | Decimal | None, *, sign: bool = False) -> str:
    if value is None:
        return "-"
    amount = Decimal(value)
    text = f"${abs(amount):,.2f}"
    if amount < 0:
        return f"-{text}"
    return f"+{text}" if sign else text


def rate(value: str) -> str:
    """A per-token price as the table gives it, with at least cents ($0.075, $0.10)."""
    amount = Decimal(value)
    return f"${amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else f"${amount.normalize()}"


def economics_lines(cost: dict[str, Any], *, detailed: bool) -> list[str]:
    """Cost per million output tokens per model beside its hosted offers and the proprietary APIs, and the
    break-even at the stack's maximum replicas. `detailed`: every offer with its date and source (tco);
    otherwise the cheapest offer only (the plan's cost section)."""
    tokens = cost.get("tokens")
    if not tokens:
        return ["Tokens: no GPU model served, no cost per token"]
    out: list[str] = []
    w = out.append
    utilisation = f"{Decimal(tokens['utilisation']):.0%}"
    ratio = tokens["input_tokens_per_output_token"]
    basis = tokens.get("utilisation_basis", "cost.utilisation")
    w(
        f"Tokens at {utilisation} utilisation ({basis}): "
        f"{Decimal(tokens['million_output_tokens_per_month']):,} million output tokens a month, "
        f"{ratio} input tokens each (cost.input_tokens_per_output_token)"
    )
    w(
        f"  {usd(cost['per_million_output_tokens'])} per million output tokens at {utilisation} utilisation "
        f"({basis}), all costs; "
        f"{usd(tokens['aws_per_million_output_tokens'])} AWS alone"
    )
    apis = ", ".join(f"{a['label']} {usd(a['usd_per_million_output_tokens'])}" for a in cost["apis"])
    w(f"Per model, USD per million output tokens with their {ratio} input tokens (proprietary: {apis})")
    for m in tokens["models"]:
        w(f"  {m['model']} ({m['catalog_model']}), up to {m['max_replicas']} replicas:")
        if detailed:
            w(
                f"    {m['output_tokens_per_second_per_replica']} tok/s per replica at capacity x "
                f"{m['average_replicas']} replicas on average ({m['throughput_basis']})"
            )
        gpu = m["gpu_per_million_output_tokens"]
        verdict = m["break_even"]
        lowest = f"; {usd(verdict['lowest_usd_per_million_output_tokens'])} at its maximum replicas fully used"
        w(
            f"    self-hosted (GPU nodes): {usd(gpu) if gpu else '-'} at {utilisation} utilisation"
            + (lowest if verdict else "")
        )
        if gpu:
            own = Decimal(gpu)
            cheaper = [a for a in cost["apis"] if Decimal(a["usd_per_million_output_tokens"]) < own]
            dearer = [a for a in cost["apis"] if a not in cheaper]
            parts = [
                f"{label} {', '.join(a['label'] for a in group)}"
                for label, group in (("below", dearer), ("above", cheaper))
                if group
            ]
            w(f"    against proprietary APIs at {utilisation} utilisation: {'; '.join(parts)}")
        offers = m["hosted"]
        same = [o for o in offers if o["same_model"]]
        if detailed:
            for o in offers:
                mark = " <- cheapest" if o["same_model"] and o["provider"] == m["cheapest_hosted"] else ""
                stand_in = "" if o["same_model"] else " [stand-in, not the same model]"
                note = f"; {o['note']}" if o["note"] else ""
                w(
                    f"    hosted {o['provider']} {o['offer']}: {usd(o['usd_per_million_output_tokens'])} "
                    f"({rate(o['input'])} in / {rate(o['output'])} out){stand_in}{mark}  "
                    f"<{o['source']} {o['date']} ({o['quality']}){note}>"
                )
        elif same:
            w(
                f"    hosted: {len(same)} offers of {m['catalog_model']}, from "
                f"{usd(same[0]['usd_per_million_output_tokens'])} ({same[0]['provider']}, {same[0]['date']}) to "
                f"{usd(same[-1]['usd_per_million_output_tokens'])}"
            )
        if verdict:
            w(f"    {verdict['statement']}")
        else:
            w(f"    break-even not computed: {m['break_even_not_computed']}")
    stack = cost["break_even"]
    w("Break-even at the stack's own maximum replicas (all costs: AWS, people, tools, hidden):")
    if stack["hosted"] is None:
        w(f"  not computed: {stack['not_computed']}")
    else:
        w(f"  {stack['hosted']['statement']}")
        for a in stack["apis"]:
            label = next(x["label"] for x in cost["apis"] if x["api"] == a["api"])
            if a["can_break_even"]:
                share = f"{Decimal(a['break_even_share_of_max']):.0%}"
                verdict = (
                    f"breaks even at {Decimal(a['break_even_million_output_tokens_per_month']):,} million output "
                    f"tokens a month ({share} of its maximum replicas)"
                )
            else:
                verdict = "cannot break even at its maximum replicas"
            w(f"  against {label} ({usd(a['against_usd_per_million_output_tokens'])}): {verdict}")
    return out


def render_text(cost: dict[str, Any], *, stack: str, preset: str) -> str:
    out: list[str] = []
    w = out.append
    w(f"Total cost of ownership: stack {stack}, preset {preset}, region {cost['region']} ({cost['currency']})")
    if cost["region_price_multiplier"] != "1":
        w(f"  prices x{cost['region_price_multiplier']} for the region (cost.region_price_multiplier: an assumption)")
    w("")
    sections = (("aws", "AWS"), ("people", "People"), ("tools", "Tools"), ("hidden", "Hidden costs"))
    for category, title in sections:
        lines = [ln for ln in cost["lines"] if ln["category"] == category]
        w(f"{title}")
        for ln in lines:
            mark = " [U]" if ln["quality"] == "U" and ln["status"] == "priced" else ""
            status = f" [{ln['status'].upper()}]" if ln["status"] != "priced" else ""
            w(f"  {usd(ln['monthly']):>14}  {ln['item']}{mark}{status}")
            w(f"  {'':>14}    {ln['basis']}  <{ln['source']}>")
        subtotal = cost["aws_monthly"] if category == "aws" else cost["by_category"][category]
        w(f"  {usd(subtotal):>14}  {title} subtotal a month" + (" (AWS alone)" if category == "aws" else ""))
        if category == "aws":
            w(f"  {usd(cost['aws_annual']):>14}  AWS a year")
        w("")
    w(f"Monthly total  {usd(cost['monthly_total'])}")
    w(f"Annual total   {usd(cost['annual_total'])}")
    band = cost["band"]
    out += cell_lines(cost)
    if band is None and cost.get("deployment"):
        w(
            f"Band: judged with its deployment (a cell of {cost['deployment']}: "
            f"modelyard tco --stack {cost['deployment']})"
        )
    elif band is None:
        w("Band: none (the preset names no cost tier)")
    else:
        inside = "inside" if band["within"] else "OUTSIDE"
        w(f"Band ({band['preset']} tier): {usd(band['low'])} to {usd(band['high'])} a year: {inside} the band")
    w("")
    if cost.get("tokens"):
        out += economics_lines(cost, detailed=True)
        w("")
    assumptions = cost["assumptions"]
    w("Assumptions (U: unverified; check before relying on them):")
    for text in assumptions["prices"]:
        w(f"  [U] price {text}")
    for key, value in assumptions["usage"].items():
        w(f"  [U] usage {key} = {value}")
    if cost["unpriced"]:
        w("Not priced (counted as zero): " + ", ".join(cost["unpriced"]))
    free = sum(f["count"] for f in cost["free"])
    w(f"Free resources: {free} ({len(cost['free'])} types; --json lists them with the reason)")
    return "\n".join(out) + "\n"


def _cost_from_trace(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's cost with cost.utilisation replaced by what the trace's simulation finds."""
    import dataclasses

    from components.cost.estimate import stack_cost
    from components.simulate.command import load
    from components.simulate.engine import Options
    from components.simulate.result import simulate

    settings, trace = load(args)
    result = simulate(settings, trace, Options(rate_scale=args.rate_scale, seed=args.seed))
    simulated = result.utilisation
    if simulated is None:
        raise InputError(Problem(path="--trace", message="no replica served in the simulation: no utilisation"))
    # The setting's own floor (cost.utilisation >= 0.01): a trace that uses less prices its tokens at the floor.
    used = round(max(0.01, simulated), 4)
    simulated_settings = dataclasses.replace(settings, cost=dataclasses.replace(settings.cost, utilisation=used))
    cost = stack_cost(plan, simulated_settings)
    if cost.get("tokens"):
        cost["tokens"]["utilisation_basis"] = (
            f"simulated from {trace.name} at rate x{args.rate_scale:g}, seed {args.seed}: {simulated:.2%} of the "
            f"ready replicas' capacity, in place of cost.utilisation {settings.cost.utilisation:g}"
        )
    cost["simulation"] = {
        "trace": trace.name,
        "rate_scale": args.rate_scale,
        "seed": args.seed,
        "utilisation": round(simulated, 4),
        "utilisation_setting": settings.cost.utilisation,
        "ttft_attainment": round(result.ttft_attainment, 4),
        "gpu_hours": round(result.gpu_hours, 2),
        "window_seconds": round(result.window_seconds, 1),
    }
    return cost


def cell_lines(cost: dict[str, Any]) -> list[str]:
    """A global stack's cost: each cell's total beside the entry's own resources (docs/regions.md)."""
    cells = cost.get("cells")
    if not cells:
        return []
    out = ["By region (each cell's own TCO, at its region's prices; the entry's resources in AWS above):"]
    for region, c in cells.items():
        out.append(
            f"  {region:<16}{c['stack']:<14}{usd(c['monthly_total']):>14} a month  {usd(c['annual_total']):>16} a year"
            f"  (AWS {usd(c['aws_monthly'])} a month, prices x{c['region_price_multiplier']})"
        )
    out.append(f"  {'global entry':<30}{usd(cost['global_monthly']):>14} a month")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(cost: dict[str, Any], *, stack: str, preset: str) -> str:
    """The same lines as the text view: one table per category with its subtotal, the totals and the band, then
    the unit economics and the assumptions folded."""
    out = [
        f"### Total cost of ownership: stack `{stack}` "
        f"(preset `{preset}`, region {cost['region']}, {cost['currency']})",
        "",
    ]
    if cost["region_price_multiplier"] != "1":
        out += [
            f"Prices x{cost['region_price_multiplier']} for the region (cost.region_price_multiplier: an assumption).",
            "",
        ]
    band = cost["band"]
    verdict = (
        f"a cell, judged with its deployment (`modelyard tco --stack {cost['deployment']}`)"
        if band is None and cost.get("deployment")
        else "no cost tier, so no band"
        if band is None
        else f"{'inside' if band['within'] else '**outside**'} the {band['preset']} band, "
        f"{usd(band['low'])} to {usd(band['high'])} a year"
    )
    out += [
        f"**{usd(cost['monthly_total'])} a month, {usd(cost['annual_total'])} a year** "
        f"(AWS {usd(cost['aws_monthly'])} a month); {verdict}.",
        "",
        "| category | a month | a year |",
        "|---|---:|---:|",
    ]
    sections = (("aws", "AWS"), ("people", "People"), ("tools", "Tools"), ("hidden", "Hidden costs"))
    for category, title in sections:
        monthly = Decimal(cost["aws_monthly"] if category == "aws" else cost["by_category"][category])
        out.append(f"| {title} | {usd(monthly)} | {usd(monthly * 12)} |")
    out += [f"| **Total** | **{usd(cost['monthly_total'])}** | **{usd(cost['annual_total'])}** |", ""]
    if cost.get("cells"):
        out += ["| region | cell | a month | a year | AWS a month |", "|---|---|---:|---:|---:|"]
        out += [
            f"| {region} | `{c['stack']}` | {usd(c['monthly_total'])} | {usd(c['annual_total'])} "
            f"| {usd(c['aws_monthly'])} |"
            for region, c in cost["cells"].items()
        ]
        out += [f"| global entry | | {usd(cost['global_monthly'])} | | {usd(cost['global_monthly'])} |", ""]
    for category, title in sections:
        out += [f"#### {title}", "", "| a month | item | basis | source |", "|---:|---|---|---|"]
        for ln in (ln for ln in cost["lines"] if ln["category"] == category):
            mark = " [U]" if ln["quality"] == "U" and ln["status"] == "priced" else ""
            status = f" [{ln['status'].upper()}]" if ln["status"] != "priced" else ""
            out.append(
                f"| {usd(ln['monthly'])} | {_cell(ln['item'])}{mark}{status} "
                f"| {_cell(ln['basis'])} | {_cell(ln['source'])} |"
            )
        out.append("")
    if cost.get("tokens"):
        out += ["<details><summary>Cost per token and break-even</summary>", "", "```"]
        out += [*economics_lines(cost, detailed=True), "```", "", "</details>", ""]
    assumptions = cost["assumptions"]
    out += ["Assumptions (U: unverified; check before relying on them):", ""]
    out += [f"- [U] price {_cell(text)}" for text in assumptions["prices"]]
    out += [f"- [U] usage `{key}` = {value}" for key, value in assumptions["usage"].items()]
    if cost["unpriced"]:
        out += ["", "Not priced (counted as zero): " + ", ".join(f"`{t}`" for t in cost["unpriced"])]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from components.plan.run import plan_stack

    plan = plan_stack(args.project_dir, args.stack)
    if args.trace is not None and plan.get("cells"):
        raise InputError(Problem(path="--trace", message="a trace replays against one cell: name a cell's stack"))
    if args.trace is not None:
        plan["cost"] = _cost_from_trace(args, plan)
    elif any(v is not None for v in (args.model, args.tenant)) or args.rate_scale != 1 or args.seed:
        raise InputError(Problem(path="--trace", message="--model, --tenant, --rate-scale and --seed need --trace"))
    cost = plan["cost"]
    if args.json:
        sys.stdout.write(json.dumps(cost, indent=2, sort_keys=True) + "\n")
    elif args.markdown:
        sys.stdout.write(render_markdown(cost, stack=args.stack, preset=plan["preset"]))
    else:
        sys.stdout.write(render_text(cost, stack=args.stack, preset=plan["preset"]))
    return ExitCode.OK
