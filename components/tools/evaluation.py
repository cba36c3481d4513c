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
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.contract import revision_alias
from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem

GENERAL_SET = Path(__file__).resolve().parent / "evalsets" / "general.jsonl"
"""The small general set the kit ships (arithmetic, extraction, JSON, instructions): a smoke test of a revision, not a
benchmark of it. Bring your own for what your users ask (docs/lifecycle.md)."""
GRADERS = ("exact", "regex", "json_schema", "numeric")
DEFAULT_SEED = 1234
DEFAULT_MAX_TOKENS = 256
DEFAULT_MARGIN = 0.05
# 95% two-sided normal quantile, for Wilson score intervals.
Z_95 = 1.959963984540054
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class Item:
    id: str
    prompt: str
    grader: dict[str, Any]
    max_tokens: int
    check: Callable[[str], bool]


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


def last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def strip_fence(text: str) -> str:
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _grader(where: str, grader: Any) -> Callable[[str], bool]:
    """The check of one item's grader, or InputError naming the field."""
    if not isinstance(grader, dict):
        raise InputError(Problem(path=f"{where}.grader", message="must be an object with a type"))
    kind = grader.get("type")
    if kind not in GRADERS:
        raise InputError(Problem(path=f"{where}.grader.type", message=f"{kind!r}; one of {', '.join(GRADERS)}"))
    ignore_case = grader.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise InputError(Problem(path=f"{where}.grader.ignore_case", message="must be true or false"))
    if kind == "exact":
        answer = grader.get("answer")
        if not isinstance(answer, str):
            raise InputError(Problem(path=f"{where}.grader.answer", message="an exact grader needs a string answer"))
        want = answer.strip().casefold() if ignore_case else answer.strip()
        return lambda text: (text.strip().casefold() if ignore_case else text.strip()) == want
    if kind == "regex":
        pattern = grader.get("pattern")
        if not isinstance(pattern, str):
            raise InputError(Problem(path=f"{where}.grader.pattern", message="a regex grader needs a string pattern"))
        try:
            compiled = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            raise InputError(
                Problem(path=f"{where}.grader.pattern", message=f"not a regular expression: {exc}")
            ) from None
        return lambda text: compiled.search(text) is not None
    if kind == "json_schema":
        import jsonschema

        schema = grader.get("schema")
        if not isinstance(schema, dict):
            raise InputError(
                Problem(path=f"{where}.grader.schema", message="a json_schema grader needs a schema object")
            )
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InputError(
                Problem(path=f"{where}.grader.schema", message=f"not a JSON Schema: {exc.message}")
            ) from None
        validator = jsonschema.Draft202012Validator(schema)

        def valid_json(text: str) -> bool:
            try:
                document = json.loads(strip_fence(text))
            except json.JSONDecodeError:
                return False
            return validator.is_valid(document)

        return valid_json
    answer_number = grader.get("answer")
    tolerance = grader.get("tolerance", 0)
    if isinstance(answer_number, bool) or not isinstance(answer_number, int | float):
        raise InputError(Problem(path=f"{where}.grader.answer", message="a numeric grader needs a number answer"))
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance < 0:
        raise InputError(Problem(path=f"{where}.grader.tolerance", message="must be a number, 0 or more"))

    def close(text: str) -> bool:
        got = last_number(text)
        return got is not None and abs(got - answer_number) <= tolerance

    return close


def load_set(path: Path) -> list[Item]:
    """The items of a JSONL eval set; every problem of the file at once, each naming its line and field."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(Problem(path="--set", message=f"cannot read {path}: {exc}")) from None
    items: list[Item] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(path=where, message=f"not JSON: {exc.msg}"))
            continue
        if not isinstance(raw, dict):
            problems.append(Problem(path=where, message="each line is a JSON object"))
            continue
        item_id, prompt, max_tokens = raw.get("id"), raw.get("prompt"), raw.get("max_tokens", DEFAULT_MAX_TOKENS)
        if not isinstance(item_id, str) or not item_id:
            problems.append(Problem(path=f"{where}.id", message="a non-empty string is required"))
            continue
        if item_id in seen:
            problems.append(Problem(path=f"{where}.id", message=f"{item_id!r} is used by an earlier line"))
        seen.add(item_id)
        if not isinstance(prompt, str) or not prompt.strip():
            problems.append(Problem(path=f"{where}.prompt", message="a non-empty string is required"))
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 32768:
            problems.append(Problem(path=f"{where}.max_tokens", message="an integer from 1 to 32768"))
        unknown = sorted(set(raw) - {"id", "prompt", "grader", "max_tokens"})
        if unknown:
            problems.append(Problem(path=where, message=f"unknown field(s) {', '.join(unknown)}"))
        try:
            check = _grader(where, raw.get("grader"))
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if isinstance(prompt, str) and isinstance(max_tokens, int):
            items.append(Item(id=item_id, prompt=prompt, grader=raw["grader"], max_tokens=max_tokens, check=check))
    if problems:
        raise InputError(problems, heading=f"{path}: {len(problems)} problem(s) in the eval set")
    if not items:
        raise InputError(Problem(path="--set", message=f"{path} holds no item"))
    return items


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
