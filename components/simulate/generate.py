"""Generated traces for the tests and docs: steady, diurnal and bursty hours of chat traffic to one model, written
in the Azure LLM inference trace's CSV form (the model and tenant are named when they are replayed).

Arrivals are a Poisson process of rate `rate(t)` (thinning of a process at the peak rate); prompts and answers are
log-normal about the medians of chat traffic below, capped at MAX_PROMPT and MAX_OUTPUT. The same seed writes the
same bytes. `python -m components.simulate.generate` rewrites components/simulate/data/ (a test checks the files
are what it writes).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from components.simulate.trace import Request, write_azure_csv

DATA_DIR = Path(__file__).parent / "data"
MODEL = "llama-8b"  # the model key every shipped stack serves
TENANT = "internal"  # a tenant of the pilot and product stacks that calls it
HOUR = 3600
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; only differences between timestamps matter
# Medians of a chat request (assumption, near the Azure 2023 conversation trace's: about 1K prompt tokens and a
# few hundred answer tokens), with log-normal spreads.
PROMPT_MEDIAN, PROMPT_SIGMA, MAX_PROMPT = 700, 0.8, 6000
OUTPUT_MEDIAN, OUTPUT_SIGMA, MAX_OUTPUT = 180, 0.7, 1500


def steady(rate: float) -> Callable[[float], float]:
    return lambda t: rate


def diurnal(low: float, high: float, period: float = HOUR) -> Callable[[float], float]:
    """A day compressed into `period`: the trough at the start and end, the peak in the middle."""
    return lambda t: low + (high - low) * (1 - math.cos(2 * math.pi * t / period)) / 2


def bursty(base: float, peak: float, every: float = 900, length: float = 240) -> Callable[[float], float]:
    """`base`, with bursts to `peak` of `length` seconds every `every` seconds (the first after one period)."""
    return lambda t: peak if t >= every and t % every < length else base


def requests(
    rate: Callable[[float], float], peak: float, *, seconds: float, seed: int, model: str = MODEL, tenant: str = TENANT
) -> list[Request]:
    rng = random.Random(seed)
    out: list[Request] = []
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= seconds:
            return out
        if rng.random() * peak > rate(t):
            continue
        prompt = min(MAX_PROMPT, max(1, round(rng.lognormvariate(math.log(PROMPT_MEDIAN), PROMPT_SIGMA))))
        output = min(MAX_OUTPUT, max(1, round(rng.lognormvariate(math.log(OUTPUT_MEDIAN), OUTPUT_SIGMA))))
        out.append(Request(round(t, 3), model, tenant, prompt, output))


# name -> (rate curve, its peak, seed): an hour each, sized to the pilot stack's one L40S replica of Llama 3.1 8B
# and its tenant's limits (about 4 requests a second of this traffic).
SHIPPED: dict[str, tuple[Callable[[float], float], float, int]] = {
    "steady": (steady(1.5), 1.5, 1),
    "diurnal": (diurnal(0.3, 3.0), 3.0, 2),
    "bursty": (bursty(0.8, 6.0), 6.0, 3),
}


def write_all(directory: Path = DATA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (rate, peak, seed) in SHIPPED.items():
        path = directory / f"{name}.csv"
        write_azure_csv(path, requests(rate, peak, seconds=HOUR, seed=seed), start=START)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.simulate.generate", description=__doc__)
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="the folder to write (default: the package's)")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(f"wrote {path} ({sum(1 for _ in path.open()) - 1} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
