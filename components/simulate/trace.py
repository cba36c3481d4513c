"""Request traces: the public formats LLM-serving papers replay, read into one sorted list of requests.

- The Azure LLM inference trace CSV (Azure/AzurePublicDataset, 2023 and 2024): a header `TIMESTAMP,ContextTokens,
  GeneratedTokens`, one request a line; TIMESTAMP is a date and time (`2023-11-16 18:15:46.6805900`, seven
  fractional digits, or `2024-05-12 00:00:00.001163+00:00` with an offset). Arrivals are seconds after the first.
  The CSV names no model or tenant: the caller routes every request to one (`route`).
- JSONL, one object a line: `arrival_seconds` (from the trace's start), `model` (a key of the stack's models),
  `tenant` (a key of tenants), `input_tokens`, `output_tokens`, and optionally `key` (a key of gateway.keys).

A bad file is refused with every problem named by its line and column (`InputError`, exit 2), up to MAX_PROBLEMS.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from components.errors import InputError, Problem

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
JSONL_FIELDS = ("arrival_seconds", "model", "tenant", "input_tokens", "output_tokens")
JSONL_OPTIONAL = ("key",)
MAX_PROBLEMS = 20
# A token count beyond any context the catalog's models take (1M): a corrupt line, not a request.
MAX_TOKENS = 1_048_576
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?"
)


@dataclass(frozen=True, slots=True)
class Request:
    arrival: float  # seconds from the trace's start
    model: str  # a key of the stack's models
    tenant: str | None  # a key of tenants (None: routed to the model's owner)
    input_tokens: int
    output_tokens: int
    key: str | None = None  # a key of gateway.keys


@dataclass(frozen=True)
class Trace:
    """Requests by arrival (ties keep the file's order), and where they came from."""

    name: str
    requests: tuple[Request, ...]

    @property
    def duration_seconds(self) -> float:
        return self.requests[-1].arrival if self.requests else 0.0

    def scaled(self, rate_scale: float) -> Trace:
        """Arrivals `rate_scale` times as dense: the same requests over 1/rate_scale of the time."""
        if rate_scale == 1:
            return self
        return Trace(
            name=self.name,
            requests=tuple(
                Request(r.arrival / rate_scale, r.model, r.tenant, r.input_tokens, r.output_tokens, r.key)
                for r in self.requests
            ),
        )


def _count(text: str, where: str, problems: list[Problem], *, zero: bool) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        problems.append(Problem(path=where, message=f"{text!r} is not a whole number of tokens"))
        return 0
    if value < (0 if zero else 1) or value > MAX_TOKENS:
        low = 0 if zero else 1
        problems.append(Problem(path=where, message=f"{value} is outside {low}..{MAX_TOKENS:,} tokens"))
    return value


def parse_timestamp(text: str) -> datetime | None:
    """An Azure trace TIMESTAMP as an aware datetime (naive ones are UTC); None when it is not one."""
    match = _TIMESTAMP.fullmatch(text.strip())
    if match is None:
        return None
    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    try:
        moment = datetime.strptime(f"{match['date']} {match['time']}.{fraction}", "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return None
    zone = match["zone"]
    if zone in (None, "Z"):
        return moment.replace(tzinfo=UTC)
    sign = 1 if zone[0] == "+" else -1
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    return moment.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))


def _fail(path: Path, problems: list[Problem]) -> InputError:
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    heading = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the trace {path}"
    if more:
        heading += f" (the first {MAX_PROBLEMS} shown)"
    return InputError(shown, heading=heading)


def read_azure_csv(path: Path, *, model: str, tenant: str | None) -> Trace:
    """The Azure LLM inference trace CSV, every request routed to `model` (and `tenant`)."""
    problems: list[Problem] = []
    rows: list[tuple[datetime, int, int, int]] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != AZURE_COLUMNS:
            raise _fail(
                path,
                [Problem(path=f"{path}:1", message=f"the header must be {','.join(AZURE_COLUMNS)}, got {header}")],
            )
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 3:
                problems.append(Problem(path=f"{path}:{line}", message=f"{len(row)} columns, expected 3"))
                continue
            moment = parse_timestamp(row[0])
            if moment is None:
                problems.append(
                    Problem(
                        path=f"{path}:{line}:TIMESTAMP",
                        message=f"{row[0]!r} is not a date and time such as 2023-11-16 18:15:46.6805900",
                    )
                )
                continue
            context = _count(row[1].strip(), f"{path}:{line}:ContextTokens", problems, zero=False)
            generated = _count(row[2].strip(), f"{path}:{line}:GeneratedTokens", problems, zero=True)
            rows.append((moment, context, max(1, generated), line))
    if problems:
        raise _fail(path, problems)
    if not rows:
        raise _fail(path, [Problem(path=str(path), message="no requests")])
    start = min(r[0] for r in rows)
    ordered = sorted(rows, key=lambda r: (r[0], r[3]))
    return Trace(
        name=path.name,
        requests=tuple(
            Request((moment - start).total_seconds(), model, tenant, context, generated)
            for moment, context, generated, _ in ordered
        ),
    )


def read_jsonl(path: Path) -> Trace:
    """A JSONL trace: one request object a line (JSONL_FIELDS, optionally `key`)."""
    return _read_jsonl(path)[0]


def _read_jsonl(path: Path) -> tuple[Trace, list[int]]:
    problems: list[Problem] = []
    requests: list[tuple[float, int, Request]] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                problems.append(Problem(path=f"{where}:{exc.colno}", message=f"not JSON: {exc.msg}"))
                continue
            if not isinstance(obj, dict):
                problems.append(Problem(path=where, message="a line must be one JSON object"))
                continue
            missing = [f for f in JSONL_FIELDS if f not in obj]
            unknown = sorted(set(obj) - set(JSONL_FIELDS) - set(JSONL_OPTIONAL))
            if missing:
                problems.append(Problem(path=where, message=f"missing {', '.join(missing)}"))
            if unknown:
                allowed = ", ".join((*JSONL_FIELDS, *JSONL_OPTIONAL))
                problems.append(Problem(path=f"{where}:{unknown[0]}", message=f"unknown field; allowed: {allowed}"))
            if missing or unknown:
                continue
            arrival = obj["arrival_seconds"]
            if isinstance(arrival, bool) or not isinstance(arrival, (int, float)) or not math.isfinite(arrival):
                problems.append(Problem(path=f"{where}:arrival_seconds", message=f"{arrival!r} is not a number"))
                continue
            if arrival < 0:
                problems.append(Problem(path=f"{where}:arrival_seconds", message=f"{arrival} is negative"))
                continue
            strings = {}
            for name in ("model", "tenant", "key"):
                value = obj.get(name)
                if name in obj and not (isinstance(value, str) and value):
                    problems.append(Problem(path=f"{where}:{name}", message=f"{value!r} is not a name"))
                strings[name] = value if isinstance(value, str) else None
            counts = []
            for name, zero in (("input_tokens", False), ("output_tokens", True)):
                value = obj[name]
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append(Problem(path=f"{where}:{name}", message=f"{value!r} is not a whole number"))
                    value = 0
                else:
                    value = _count(str(value), f"{where}:{name}", problems, zero=zero)
                counts.append(value)
            request = Request(
                float(arrival), strings["model"] or "", strings["tenant"], counts[0], max(1, counts[1]), strings["key"]
            )
            requests.append((float(arrival), line_no, request))
    if problems:
        raise _fail(path, problems)
    if not requests:
        raise _fail(path, [Problem(path=str(path), message="no requests")])
    requests.sort(key=lambda r: (r[0], r[1]))
    return Trace(name=path.name, requests=tuple(r for *_, r in requests)), [line for _, line, _ in requests]


@dataclass(frozen=True)
class Routes:
    """What a stack's gateway accepts: tenant -> the models it may call; key -> its tenant."""

    tenant_models: dict[str, tuple[str, ...]]
    key_tenants: dict[str, str]

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(sorted({m for ms in self.tenant_models.values() for m in ms}))


def _check_routes(path: Path, trace: Trace, lines: list[int], routes: Routes) -> None:
    problems: list[Problem] = []
    for line, r in zip(lines, trace.requests, strict=True):
        if r.model not in routes.models:
            problems.append(
                Problem(path=f"{path}:{line}:model", message=f"{r.model!r} is not served; choose {routes.models}")
            )
        elif r.tenant is not None and r.tenant not in routes.tenant_models:
            choices = tuple(sorted(routes.tenant_models))
            problems.append(
                Problem(path=f"{path}:{line}:tenant", message=f"{r.tenant!r} is no tenant; choose {choices}")
            )
        elif r.tenant is not None and r.model not in routes.tenant_models[r.tenant]:
            problems.append(
                Problem(path=f"{path}:{line}:tenant", message=f"tenant {r.tenant!r} may not call {r.model!r}")
            )
        elif r.key is not None and routes.key_tenants.get(r.key) != r.tenant:
            problems.append(Problem(path=f"{path}:{line}:key", message=f"{r.key!r} is no key of tenant {r.tenant!r}"))
    if problems:
        raise _fail(path, problems)


def read_trace(path: Path, routes: Routes, *, model: str | None = None, tenant: str | None = None) -> Trace:
    """A trace file by its format, `.csv` (Azure) or `.jsonl`, checked against what the gateway routes. `model` and
    `tenant` route every request (a CSV names neither: `model` defaults to the only model, `tenant` to the only
    tenant that calls it)."""
    if not path.is_file():
        raise InputError(Problem(path="--trace", message=f"{path}: no such file"))
    if model is not None and model not in routes.models:
        raise InputError(Problem(path="--model", message=f"{model!r} is not served; choose {routes.models}"))
    if tenant is not None and tenant not in routes.tenant_models:
        choices = tuple(sorted(routes.tenant_models))
        raise InputError(Problem(path="--tenant", message=f"{tenant!r} is no tenant; choose {choices}"))
    if path.suffix == ".csv":
        if model is None:
            if len(routes.models) != 1:
                raise InputError(
                    Problem(path="--model", message=f"an Azure CSV trace names no model: choose {routes.models}")
                )
            (model,) = routes.models
        if tenant is None:
            callers = sorted(t for t, ms in routes.tenant_models.items() if model in ms)
            if len(callers) != 1:
                raise InputError(Problem(path="--tenant", message=f"{model!r} is called by {callers}: name one"))
            (tenant,) = callers
        trace = read_azure_csv(path, model=model, tenant=tenant)
        lines = [0] * len(trace.requests)
    elif path.suffix == ".jsonl":
        trace, lines = _read_jsonl(path)
        if model is not None or tenant is not None:
            trace = Trace(
                name=trace.name,
                requests=tuple(
                    Request(r.arrival, model or r.model, tenant or r.tenant, r.input_tokens, r.output_tokens, r.key)
                    for r in trace.requests
                ),
            )
    else:
        raise InputError(Problem(path="--trace", message=f"{path}: a .csv (Azure LLM inference trace) or a .jsonl"))
    _check_routes(path, trace, lines, routes)
    return trace


def write_azure_csv(path: Path, requests: Iterable[Request], *, start: datetime) -> None:
    """Requests as an Azure LLM inference trace CSV from `start` (the 2023 form: seven fractional digits)."""
    lines = [",".join(AZURE_COLUMNS)]
    for r in requests:
        moment = start + timedelta(microseconds=round(r.arrival * 1_000_000))
        lines.append(f"{moment:%Y-%m-%d %H:%M:%S.%f}0,{r.input_tokens},{r.output_tokens}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_jsonl(path: Path, requests: Iterable[Request]) -> None:
    """Requests as a JSONL trace, arrivals to the millisecond (the generator's output)."""
    lines = []
    for r in requests:
        obj: dict[str, object] = {
            "arrival_seconds": round(r.arrival, 3),
            "model": r.model,
            "tenant": r.tenant,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
        }
        if r.key is not None:
            obj["key"] = r.key
        lines.append(json.dumps(obj, separators=(",", ":")))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
