"""`modelyard eval`: an eval set through the gateway, pass rates with confidence intervals, and a gate between two
revisions of a model.

An eval set is JSONL, one item a line (docs/lifecycle.md, "Eval sets"):

    {"id": "sum-1", "prompt": "What is 17 + 25? Answer with the number only.", "grader": {"type": "numeric",
     "answer": 42, "tolerance": 0}}

Graders: `exact` (the answer, trimmed, equals `answer`; `ignore_case` optional), `regex` (Python `re.search` of
`pattern` in the answer; `ignore_case` optional), `json_schema` (the answer, without a Markdown code fence, is JSON
valid under `schema`, JSON Schema draft 2020-12), `numeric` (the last number in the answer is within `tolerance` of
`answer`). Sampling is pinned: temperature 0 and a seed (vLLM honours both per request), so two runs of one revision
ask the same question the same way.

With --baseline and --candidate, each revision is addressed alone through the gateway as `<model>@<revision>` (the
names the gateway gives a model with a canary) and the command exits 4 (a failed gate, like a policy violation) when
the candidate's pass rate is below the baseline's by more than --margin. Exit 3 when the endpoint refuses or fails a
request (a result over part of the set would mean nothing), 2 for a bad set or bad arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.contract import revision_alias
from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem
from components.evalsets import GENERAL_SET, Item, load_set

DEFAULT_SEED = 1234
DEFAULT_MARGIN = 0.05
# 95% two-sided normal quantile, for Wilson score intervals.
Z_95 = 1.959963984540054


@dataclass(frozen=True, kw_only=True)
class Interval:
    low: float
    high: float


def wilson(passed: int, total: int, z: float = Z_95) -> Interval:
    """Wilson score interval of a pass rate (better than the normal approximation at small n and near 0 or 1)."""
    if total == 0:
        return Interval(low=0.0, high=1.0)
    p = passed / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return Interval(low=max(0.0, centre - half), high=min(1.0, centre + half))


def complete(*, endpoint: str, model: str, key: str | None, item: Item, seed: int, timeout: float) -> str:
    """One chat completion with pinned sampling; the answer's text. EnvironmentBlocked when the endpoint fails."""
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": item.prompt}],
            "temperature": 0,
            "seed": seed,
            "max_tokens": item.max_tokens,
        }
    ).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{endpoint.rstrip('/')}/v1/chat/completions", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        return str(answer["choices"][0]["message"].get("content") or "")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise EnvironmentBlocked(
            f"{endpoint} answered {exc.code} for model {model!r} (item {item.id}): {detail}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EnvironmentBlocked(f"cannot reach {endpoint}: {exc}") from None
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise EnvironmentBlocked(f"{endpoint} sent something that is not an OpenAI chat completion: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class RunResult:
    model: str
    passed: tuple[str, ...]
    failed: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.passed) + len(self.failed)

    @property
    def rate(self) -> float:
        return len(self.passed) / self.total if self.total else 0.0

    @property
    def interval(self) -> Interval:
        return wilson(len(self.passed), self.total)

    def as_json(self) -> dict[str, Any]:
        interval = self.interval
        return {
            "model": self.model,
            "passed": len(self.passed),
            "total": self.total,
            "pass_rate": round(self.rate, 4),
            "ci95": [round(interval.low, 4), round(interval.high, 4)],
            "failed_items": list(self.failed),
        }


def run(*, endpoint: str, model: str, key: str | None, items: Sequence[Item], seed: int, timeout: float) -> RunResult:
    passed: list[str] = []
    failed: list[str] = []
    for item in items:
        text = complete(endpoint=endpoint, model=model, key=key, item=item, seed=seed, timeout=timeout)
        (passed if item.check(text) else failed).append(item.id)
    return RunResult(model=model, passed=tuple(passed), failed=tuple(failed))


@dataclass(frozen=True, kw_only=True)
class Verdict:
    baseline: RunResult
    candidate: RunResult
    margin: float

    @property
    def difference(self) -> float:
        return self.candidate.rate - self.baseline.rate

    @property
    def worse(self) -> bool:
        """The gate: the candidate's pass rate is below the baseline's by more than the margin."""
        return self.difference < -self.margin - 1e-12

    @property
    def regressions(self) -> tuple[str, ...]:
        """Items the baseline passed and the candidate failed (the ones to read first)."""
        return tuple(i for i in self.baseline.passed if i in set(self.candidate.failed))

    @property
    def within_noise(self) -> bool:
        """The two 95% intervals overlap: this set is too small to tell the revisions apart with confidence."""
        a, b = self.baseline.interval, self.candidate.interval
        return a.low <= b.high and b.low <= a.high


def _line(result: RunResult) -> str:
    interval = result.interval
    return (
        f"{result.model}: {len(result.passed)}/{result.total} passed, {result.rate:.1%} "
        f"(95% CI {interval.low:.1%} to {interval.high:.1%})"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="modelyard eval", description=__doc__)
    parser.add_argument("--endpoint", required=True, help="the gateway's base URL")
    parser.add_argument("--model", required=True, help="the model name clients ask for (a key of modelyard:models)")
    parser.add_argument("--set", default=str(GENERAL_SET), help="a JSONL eval set; default: the kit's general set")
    parser.add_argument("--baseline", help="the baseline revision (asked as <model>@<revision>)")
    parser.add_argument("--candidate", help="the candidate revision (asked as <model>@<revision>)")
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help=f"how far below the baseline's pass rate the candidate may fall (0-1; default {DEFAULT_MARGIN})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the sampling seed (temperature is 0)")
    parser.add_argument("--key-env", default="MODELYARD_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not args.endpoint.startswith(("http://", "https://")):
        raise InputError(Problem(path="--endpoint", message=f"{args.endpoint!r} is not an http(s) URL"))
    if (args.baseline is None) != (args.candidate is None):
        raise InputError(
            Problem(
                path="--candidate" if args.candidate is None else "--baseline",
                message="--baseline and --candidate go together",
            )
        )
    if args.baseline is not None and args.baseline == args.candidate:
        raise InputError(Problem(path="--candidate", message="is the baseline's revision: compare two revisions"))
    if not 0 <= args.margin < 1:
        raise InputError(Problem(path="--margin", message=f"a fraction from 0 to below 1, got {args.margin}"))
    if args.timeout <= 0:
        raise InputError(Problem(path="--timeout", message=f"must be positive, got {args.timeout}"))
    items = load_set(Path(args.set))
    key = os.environ.get(args.key_env)

    def evaluate(model: str) -> RunResult:
        return run(endpoint=args.endpoint, model=model, key=key, items=items, seed=args.seed, timeout=args.timeout)

    if args.baseline is None:
        result = evaluate(args.model)
        print(
            json.dumps({"set": str(args.set), "results": [result.as_json()]}, indent=2) if args.json else _line(result)
        )
        return ExitCode.OK
    verdict = Verdict(
        baseline=evaluate(revision_alias(args.model, args.baseline)),
        candidate=evaluate(revision_alias(args.model, args.candidate)),
        margin=args.margin,
    )
    if args.json:
        report = {
            "set": str(args.set),
            "results": [verdict.baseline.as_json(), verdict.candidate.as_json()],
            "difference": round(verdict.difference, 4),
            "margin": args.margin,
            "candidate_worse": verdict.worse,
            "within_noise": verdict.within_noise,
            "regressions": list(verdict.regressions),
        }
        print(json.dumps(report, indent=2))
    else:
        print(f"baseline  {_line(verdict.baseline)}")
        print(f"candidate {_line(verdict.candidate)}")
        print(f"difference {verdict.difference:+.1%} (margin {args.margin:.1%})")
        if verdict.regressions:
            print(f"  passed by the baseline, failed by the candidate: {', '.join(verdict.regressions)}")
        if verdict.within_noise:
            print(f"  the 95% intervals overlap: {len(items)} items cannot tell these revisions apart with confidence")
    if verdict.worse:
        print(
            f"gate failed: {args.candidate} passes {verdict.difference:+.1%} against {args.baseline}, beyond the "
            f"margin of {args.margin:.1%}",
            file=sys.stderr,
        )
        return ExitCode.POLICY
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
