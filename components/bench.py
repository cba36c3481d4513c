"""Benchmark: wall time of `modelyard plan` per shipped stack, beside the floor Pulumi itself sets.

The floor is a fresh process that only imports pulumi, pulumi_aws and pulumi_kubernetes and touches
the SDK classes the stack's plan uses (first use of a pulumi-aws module costs about 0.2 s). What the
plan adds above that floor is the kit's own cost. Run: `python -m components.bench [--runs N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from components.settings.stackfile import StackFile

ROOT = Path(__file__).resolve().parent.parent


def _time(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _sdk_path(token: str) -> str | None:
    """The SDK attribute a resource type lives at (CRD objects: the generic CustomResource class)."""
    import importlib

    package, module, name = token.split(":")
    if package == "aws":
        return f"pulumi_aws.{module.split('/')[0]}.{name}"
    if package != "kubernetes" or "/" not in module:
        return None
    group, version = module.split("/")
    group = {"core": "core", "helm.sh": "helm"}.get(group, group.replace(".k8s.io", "").replace(".", "_"))
    try:
        getattr(importlib.import_module(f"pulumi_kubernetes.{group}.{version}"), name)
    except (ImportError, AttributeError):
        return "pulumi_kubernetes.apiextensions.CustomResource"
    return f"pulumi_kubernetes.{group}.{version}.{name}"


def _floor_script(types: set[str]) -> str:
    """Import the SDKs and touch each class the plan registers: what any program of this shape pays."""
    paths = sorted({path for token in types if (path := _sdk_path(token))})
    return "\n".join(["import pulumi, pulumi_aws, pulumi_kubernetes", *paths])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.bench", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the median is shown")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs: at least 1")

    modelyard = str(Path(sys.executable).parent / "modelyard")
    ratios: dict[str, float] = {}
    print(f"{'stack':<12}{'resources':>10}{'plan s':>10}{'floor s':>10}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for stack in StackFile.deployments(ROOT):
            plan_file = Path(tmp) / f"{stack}.json"
            command = [modelyard, "plan", "--stack", stack, "--json", str(plan_file)]
            plan_seconds = _time(command, args.runs)
            plan = json.loads(plan_file.read_text())
            types = {r["type"] for r in plan["resources"] if r["custom"] or "helm.sh" in r["type"]}
            floor_seconds = _time([sys.executable, "-c", _floor_script(types)], args.runs)
            ratios[stack] = plan_seconds / floor_seconds
            print(
                f"{stack:<12}{len(plan['resources']):>10}{plan_seconds:>10.2f}{floor_seconds:>10.2f}"
                f"{ratios[stack]:>8.2f}"
            )
    print(goal_line(ratios))
    return 0


GOAL_RATIO = 1.2


def goal_line(ratios: dict[str, float]) -> str:
    """Whether the slowest stack plans within GOAL_RATIO of its floor, and by how much it misses."""
    worst = max(ratios, key=lambda stack: ratios[stack])
    if ratios[worst] <= GOAL_RATIO:
        return f"goal {GOAL_RATIO}x the floor: met (slowest: {worst} {ratios[worst]:.2f}x)"
    return (
        f"goal {GOAL_RATIO}x the floor: missed by {ratios[worst] / GOAL_RATIO - 1:.0%} on {worst} "
        f"({ratios[worst]:.2f}x); why: the SDK's per-resource cost (registration, its Args classes' typing), "
        "measured in docs/benchmarks.md"
    )


if __name__ == "__main__":
    sys.exit(main())
