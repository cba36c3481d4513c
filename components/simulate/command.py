"""`modelyard simulate --stack S --trace FILE`: replay a request trace against a stack as planned (docs/simulate.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from components.errors import ExitCode, InputError, Problem

if TYPE_CHECKING:
    from components.settings import Settings
    from components.simulate.trace import Trace

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelyard simulate",
        description="Replay a request trace against a stack as planned: the gateway's limits, each model's queue, "
        "replicas with continuous batching, the autoscaler, node launches and cold starts. Reports TTFT "
        "attainment against the alerts' objective, latency percentiles, replicas over time, GPU cost.",
    )
    parser.add_argument("--stack", required=True, help="a stack of stacks/Pulumi.<stack>.yaml")
    parser.add_argument(
        "--trace", required=True, type=Path, help="an Azure LLM inference trace CSV or a JSONL (docs/simulate.md)"
    )
    parser.add_argument("--model", help="route every request to this model (a key of models)")
    parser.add_argument("--tenant", help="route every request as this tenant (a key of tenants)")
    parser.add_argument("--rate-scale", type=float, default=1.0, metavar="X", help="arrivals x X (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --rate-scale's draws (default 0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--markdown", type=Path, metavar="F", help="write the result as markdown to F")
    parser.add_argument("--plot", type=Path, metavar="F.svg", help="write replicas and nodes over time to F.svg")
    parser.add_argument(
        "--project-dir", type=Path, default=PROJECT_ROOT, metavar="DIR", help="the folder holding Pulumi.yaml"
    )
    return parser


def load(args: argparse.Namespace) -> tuple[Settings, Trace]:
    """Settings and trace for the arguments (InputError names what is wrong)."""
    from components.plan.run import load_settings
    from components.simulate.trace import Routes, read_trace

    if not args.rate_scale > 0 or args.rate_scale > 1000:
        raise InputError(Problem(path="--rate-scale", message=f"{args.rate_scale} is outside (0, 1000]"))
    plot = getattr(args, "plot", None)
    if plot is not None and plot.suffix != ".svg":
        raise InputError(Problem(path="--plot", message=f"{plot}: an .svg file"))
    _, settings = load_settings(args.project_dir, args.stack)
    routes = Routes(
        tenant_models={name: tuple(t.models) for name, t in settings.tenants.items()},
        key_tenants={name: k.tenant or name for name, k in settings.gateway.keys.items()},
    )
    return settings, read_trace(args.trace, routes, model=args.model, tenant=args.tenant)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from components.simulate.engine import Options
    from components.simulate.report import render_markdown, render_svg, render_text
    from components.simulate.result import simulate

    settings, trace = load(args)
    result = simulate(settings, trace, Options(rate_scale=args.rate_scale, seed=args.seed))
    if args.markdown is not None:
        args.markdown.write_text(render_markdown(result), encoding="utf-8")
    if args.plot is not None:
        args.plot.write_text(render_svg(result), encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return ExitCode.OK
