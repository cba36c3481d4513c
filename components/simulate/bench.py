"""Benchmark: requests the simulator replays a second. `python -m components.simulate.bench [--requests N]`.

An hour of N requests (default 20,000) of generated chat traffic to the product stack's llama-8b, timed without the
stack's rendering (reported apart), median of --runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from components.plan.run import load_settings
from components.simulate import generate
from components.simulate.result import simulate_model
from components.simulate.stack import stack_model
from components.simulate.trace import Trace

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.simulate.bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000, help="requests in the hour (default 20,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is shown")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    _, settings = load_settings(ROOT, "product")
    stack = stack_model(settings)
    built = time.perf_counter() - start
    rate = args.requests / generate.HOUR
    requests = generate.requests(generate.steady(rate), rate, seconds=generate.HOUR, seed=1, tenant="product")
    trace = Trace("bench", tuple(requests))
    samples = []
    for _ in range(max(1, args.runs)):
        start = time.perf_counter()
        result = simulate_model(stack, trace)
        samples.append(time.perf_counter() - start)
    seconds = statistics.median(samples)
    print(
        f"{len(requests):,} requests over an hour (product, llama-8b): simulated in {seconds:.2f} s, "
        f"{len(requests) / seconds:,.0f} requests a second (stack built in {built:.2f} s; "
        f"TTFT attainment {result.ttft_attainment:.2%})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
