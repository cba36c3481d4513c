"""Eval sets: the JSONL files `modelyard eval` and the quality CronJob grade a model with, and their graders.

A plain module (no engine, no layer): the settings validate the sets a stack names (quality.models.<m>.set), the
Kubernetes layer mounts them into the eval runner, and `components.tools.evaluation` sends them through the gateway.
docs/lifecycle.md, "Eval sets", describes the format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.errors import InputError, Problem

EVALSETS_DIR = Path(__file__).resolve().parent / "tools" / "evalsets"
"""The sets the kit ships, one `<name>.jsonl` each; a stack names one by its file name without .jsonl."""
GENERAL_SET = EVALSETS_DIR / "general.jsonl"
"""The small general set the kit ships (arithmetic, extraction, JSON, instructions): a smoke test of a revision, not a
benchmark of it. Bring your own for what your users ask (docs/lifecycle.md)."""
GRADERS = ("exact", "regex", "json_schema", "numeric")
DEFAULT_MAX_TOKENS = 256
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass(frozen=True, kw_only=True)
class Item:
    id: str
    prompt: str
    grader: dict[str, Any]
    max_tokens: int
    check: Callable[[str], bool]


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


def set_path(name: str) -> Path:
    """The file of the shipped set `name` (quality.models.<m>.set)."""
    return EVALSETS_DIR / f"{name}.jsonl"


def shipped_sets() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in EVALSETS_DIR.glob("*.jsonl")))
