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

from components.errors import ExitCode

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard tco",
        description="Total cost of ownership of a stack: AWS from the offline plan, plus people, tools and "
        "hidden costs; band check, cost per million output tokens and API break-even.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--json", action="store_true", help="print the plan's cost object as JSON")
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
    if band is None:
        w("Band: none (the preset names no cost tier)")
    else:
        inside = "inside" if band["within"] else "OUTSIDE"
        w(f"Band ({band['preset']} tier): {usd(band['low'])} to {usd(band['high'])} a year: {inside} the band")
    w("")
    tokens = cost.get("tokens")
    if tokens:
        w(
            f"Tokens at {Decimal(tokens['utilisation']):.0%} utilisation (cost.utilisation): "
            f"{Decimal(tokens['million_output_tokens_per_month']):,} million output tokens a month"
        )
        w(
            f"  {usd(cost['per_million_output_tokens'])} per million output tokens at "
            f"{Decimal(tokens['utilisation']):.0%} utilisation (cost.utilisation), all costs; "
            f"{usd(tokens['aws_per_million_output_tokens'])} AWS alone"
        )
        for m in tokens["models"]:
            w(
                f"  {m['model']}: {m['output_tokens_per_second_per_replica']} tok/s per replica at capacity x "
                f"{m['average_replicas']} replicas on average; GPU {usd(m['gpu_per_million_output_tokens'])}/Mtok "
                f"({m['throughput_basis']})"
            )
        w(f"Break-even against APIs ({tokens['input_tokens_per_output_token']} input tokens per output token):")
        for b in cost["break_even"]:
            verdict = "self-hosting cheaper" if b["self_hosting_cheaper"] else "API cheaper"
            w(
                f"  {b['label']}: {usd(b['usd_per_million_output_tokens'])}/Mtok; same volume costs "
                f"{usd(b['api_monthly_at_same_volume'])}/month ({verdict}); break-even at "
                f"{Decimal(b['break_even_million_output_tokens_per_month']):,} Mtok/month"
            )
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


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from components.plan.run import plan_stack

    plan = plan_stack(args.project_dir, args.stack)
    cost = plan["cost"]
    if args.json:
        sys.stdout.write(json.dumps(cost, indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(cost, stack=args.stack, preset=plan["preset"]))
    return ExitCode.OK
