"""The eval runner of quality in production (docs/lifecycle.md#quality-in-production): what the quality CronJob runs.

    python -m components.tools.quality --config /etc/modelyard/quality/runner.json

For every target of every model of the config (the model's name; with a canary, each revision alone by its
`<model>@<revision>` name) it sends the model's eval set through the gateway exactly as `modelyard eval` does
(components.tools.evaluation: temperature 0, a seed, the same graders), then pushes the result to the Pushgateway in
Prometheus' text format, one group per model and revision (`/metrics/job/<QUALITY_JOB>/model/<m>/revision/<r>`),
every series labelled with the set and the track (stable or canary):

- a complete run PUTs the group: pass rate, items, items passed, the model's min_pass_rate and max_drop, the time it
  ended, and `last_run_succeeded 1` (PUT replaces the whole group);
- a run the gateway refused or failed POSTs `last_run_succeeded 0` alone (POST replaces only the series of that name),
  so the last complete run's rate stays visible beside the failure.

Then it deletes the job's groups that no longer name a target (a promoted or rolled-back canary's old revision, a
model no longer graded, the per-model groups of runners before revisions): the Pushgateway keeps a group until it is
deleted, and a rolled-back canary's low rate would hold its alert forever.

Exit codes: 0 every target graded and pushed (a low pass rate is the alert's business, not the Job's), 2 a bad config
or set, 3 a target could not be graded or the Pushgateway refused a request (the Job then shows failed too).
The config (a ConfigMap, components/k8s/quality.py writes it):

    {"endpoint": "http://litellm.gateway.svc.cluster.local:4000", "pushgateway": "http://pushgateway.quality...:9091",
     "key_file": "/var/run/modelyard/key/key", "timeout_seconds": 120, "seed": 1234,
     "models": {"llama-8b": {"set": "general", "set_file": "/etc/modelyard/evalsets/general.jsonl",
                             "min_pass_rate": 0.9, "max_drop": 0.1,
                             "targets": [{"name": "llama-8b@v1", "revision": "v1", "track": "stable"},
                                         {"name": "llama-8b@v2", "revision": "v2", "track": "canary"}]}}}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.contract import (
    QUALITY_GROUPING_LABELS,
    QUALITY_ITEMS,
    QUALITY_ITEMS_PASSED,
    QUALITY_JOB,
    QUALITY_LAST_SUCCESS,
    QUALITY_MAX_DROP,
    QUALITY_MIN_PASS_RATE,
    QUALITY_PASS_RATE,
    QUALITY_RUN_SUCCEEDED,
    QUALITY_TRACK_CANARY,
    QUALITY_TRACK_LABEL,
    QUALITY_TRACK_STABLE,
)
from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem
from components.evalsets import load_set
from components.tools.evaluation import DEFAULT_SEED, RunResult, run

PUSH_TIMEOUT_SECONDS = 30

HELP = {
    QUALITY_PASS_RATE: "Share of the eval set's items the model passed in its last complete run (0-1).",
    QUALITY_MIN_PASS_RATE: "The model's quality.models.<m>.min_pass_rate: below it, ModelQualityBelowThreshold.",
    QUALITY_MAX_DROP: "The model's quality.models.<m>.max_drop: ModelQualityDropped and CanaryQualityWorse's margin.",
    QUALITY_ITEMS: "Items in the eval set of the last complete run.",
    QUALITY_ITEMS_PASSED: "Items the model passed in its last complete run.",
    QUALITY_LAST_SUCCESS: "Unix time the last complete run ended.",
    QUALITY_RUN_SUCCEEDED: "1: the last run graded every item; 0: the gateway refused or failed a request.",
}


TRACKS = (QUALITY_TRACK_STABLE, QUALITY_TRACK_CANARY)


@dataclass(frozen=True, kw_only=True)
class Target:
    """One run of a model's set: the name called at the gateway, and the revision and track it is pushed under."""

    name: str
    revision: str
    track: str


@dataclass(frozen=True, kw_only=True)
class ModelCheck:
    model: str
    set_name: str
    set_file: Path
    min_pass_rate: float
    max_drop: float
    targets: tuple[Target, ...]


@dataclass(frozen=True, kw_only=True)
class RunnerConfig:
    endpoint: str
    pushgateway: str
    key_file: Path
    timeout_seconds: float
    seed: int
    models: tuple[ModelCheck, ...]


def _require(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(Problem(path=f"{where}.{key}", message=f"required, a {getattr(kind, '__name__', kind)}"))
    return value


def load_config(path: Path) -> RunnerConfig:
    """The runner's config file, or InputError naming the field."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(path="--config", message=f"cannot read {path} as JSON: {exc}")) from None
    if not isinstance(raw, dict):
        raise InputError(Problem(path="--config", message=f"{path} must hold a JSON object"))
    where = path.name
    endpoint = _require(raw, "endpoint", str, where)
    pushgateway = _require(raw, "pushgateway", str, where)
    for key, url in (("endpoint", endpoint), ("pushgateway", pushgateway)):
        if not url.startswith(("http://", "https://")):
            raise InputError(Problem(path=f"{where}.{key}", message=f"{url!r} is not an http(s) URL"))
    timeout = _require(raw, "timeout_seconds", (int, float), where)
    if timeout <= 0:
        raise InputError(Problem(path=f"{where}.timeout_seconds", message="must be positive"))
    seed = raw.get("seed", DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(Problem(path=f"{where}.seed", message="an integer"))
    models_raw = _require(raw, "models", dict, where)
    if not models_raw:
        raise InputError(Problem(path=f"{where}.models", message="name at least one model"))
    models = []
    for model, spec in sorted(models_raw.items()):
        at = f"{where}.models.{model}"
        if not isinstance(spec, dict):
            raise InputError(Problem(path=at, message="an object with set, set_file and min_pass_rate"))
        shares = {}
        for field in ("min_pass_rate", "max_drop"):
            shares[field] = _require(spec, field, (int, float), at)
            if not 0 < shares[field] <= 1:
                raise InputError(Problem(path=f"{at}.{field}", message="a share above 0, at most 1"))
        models.append(
            ModelCheck(
                model=model,
                set_name=_require(spec, "set", str, at),
                set_file=Path(_require(spec, "set_file", str, at)),
                min_pass_rate=float(shares["min_pass_rate"]),
                max_drop=float(shares["max_drop"]),
                targets=_targets(_require(spec, "targets", list, at), f"{at}.targets"),
            )
        )
    return RunnerConfig(
        endpoint=endpoint,
        pushgateway=pushgateway,
        key_file=Path(_require(raw, "key_file", str, where)),
        timeout_seconds=float(timeout),
        seed=seed,
        models=tuple(models),
    )


def _targets(raw: list[Any], where: str) -> tuple[Target, ...]:
    if not raw:
        raise InputError(Problem(path=where, message="name at least one target"))
    targets = []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            raise InputError(Problem(path=at, message="an object with name, revision and track"))
        track = _require(item, "track", str, at)
        if track not in TRACKS:
            raise InputError(Problem(path=f"{at}.track", message=f"one of {', '.join(TRACKS)}, not {track!r}"))
        name, revision = _require(item, "name", str, at), _require(item, "revision", str, at)
        if not name or not revision or "/" in revision:
            raise InputError(Problem(path=at, message="a non-empty name and a revision without '/'"))
        targets.append(Target(name=name, revision=revision, track=track))
    return tuple(targets)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(values: Mapping[str, float], *, set_name: str, track: str) -> str:
    """Prometheus text format (0.0.4): each gauge with its HELP and TYPE, labelled with the set and the track (the
    model and revision come from the group's grouping key)."""
    labels = f'set="{_label(set_name)}",{QUALITY_TRACK_LABEL}="{_label(track)}"'
    lines = []
    for name, value in values.items():
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge", f"{name}{{{labels}}} {value!r}"]
    return "\n".join(lines) + "\n"


def _group_path(pushgateway: str, labels: Mapping[str, str]) -> str:
    """/metrics/job/<job>/<label>/<value>... for a grouping key (`job` first, as the Pushgateway's API wants it)."""
    parts = [("job", labels["job"]), *sorted((k, v) for k, v in labels.items() if k != "job")]
    path = "/".join(f"{urllib.parse.quote(k, safe='')}/{urllib.parse.quote(v, safe='')}" for k, v in parts)
    return f"{pushgateway.rstrip('/')}/metrics/{path}"


def group_labels(model: str, revision: str) -> dict[str, str]:
    """The grouping key of one graded revision."""
    return {"job": QUALITY_JOB, **dict(zip(QUALITY_GROUPING_LABELS, (model, revision), strict=True))}


def group_url(pushgateway: str, model: str, revision: str) -> str:
    """The Pushgateway's group of one revision of a model: the grouping key job, model and revision."""
    return _group_path(pushgateway, group_labels(model, revision))


def request(url: str, *, method: str, body: str | None = None) -> bytes:
    """One request to the Pushgateway; EnvironmentBlocked if it refuses or cannot be reached."""
    headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"} if body is not None else {}
    sent = urllib.request.Request(url, data=None if body is None else body.encode(), method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=PUSH_TIMEOUT_SECONDS) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise EnvironmentBlocked(f"the Pushgateway answered {exc.code} to {method} {url}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EnvironmentBlocked(f"cannot reach the Pushgateway at {url}: {exc}") from None


def push(url: str, body: str, *, method: str) -> None:
    """PUT (replace the group) or POST (replace the series named in the body); EnvironmentBlocked if refused."""
    request(url, method=method, body=body)


def delete_stale_groups(pushgateway: str, current: set[tuple[str, str]]) -> list[dict[str, str]]:
    """Delete the job's groups whose (model, revision) is not graded any more; returns their grouping keys. The
    Pushgateway lists its groups at GET /api/v1/metrics (`data[].labels` is each group's grouping key)."""
    listing = request(f"{pushgateway.rstrip('/')}/api/v1/metrics", method="GET")
    try:
        groups = json.loads(listing)["data"]
        keys = [{str(k): str(v) for k, v in group["labels"].items()} for group in groups]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EnvironmentBlocked(f"the Pushgateway's /api/v1/metrics is not its group listing: {exc}") from None
    stale = [
        labels
        for labels in keys
        if labels.get("job") == QUALITY_JOB
        and (labels.get("model", ""), labels.get(QUALITY_GROUPING_LABELS[1], "")) not in current
    ]
    for labels in stale:
        request(_group_path(pushgateway, labels), method="DELETE")
    return stale


def result_values(result: RunResult, check: ModelCheck, *, ended: float) -> dict[str, float]:
    return {
        QUALITY_PASS_RATE: round(result.rate, 6),
        QUALITY_ITEMS: float(result.total),
        QUALITY_ITEMS_PASSED: float(len(result.passed)),
        QUALITY_MIN_PASS_RATE: check.min_pass_rate,
        QUALITY_MAX_DROP: check.max_drop,
        QUALITY_LAST_SUCCESS: round(ended, 3),
        QUALITY_RUN_SUCCEEDED: 1.0,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.tools.quality", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="the runner's JSON config (mounted from a ConfigMap)")
    args = parser.parse_args(argv)
    config = load_config(Path(args.config))
    try:
        key = config.key_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(Problem(path="key_file", message=f"cannot read {config.key_file}: {exc}")) from None
    sets = {check.model: load_set(check.set_file) for check in config.models}
    failed: list[str] = []
    for check in config.models:
        for target in check.targets:
            url = group_url(config.pushgateway, check.model, target.revision)
            labels = {"set_name": check.set_name, "track": target.track}
            try:
                result = run(
                    endpoint=config.endpoint,
                    model=target.name,
                    key=key or None,
                    items=sets[check.model],
                    seed=config.seed,
                    timeout=config.timeout_seconds,
                )
            except EnvironmentBlocked as exc:
                print(f"{target.name}: not graded: {exc}", file=sys.stderr)
                failed.append(target.name)
                push(url, exposition({QUALITY_RUN_SUCCEEDED: 0.0}, **labels), method="POST")
                continue
            push(url, exposition(result_values(result, check, ended=time.time()), **labels), method="PUT")
            verdict = "below" if result.rate < check.min_pass_rate else "at or above"
            print(
                f"{target.name} ({check.set_name}, revision {target.revision}, {target.track}): "
                f"{len(result.passed)}/{result.total} passed, {result.rate:.1%}, "
                f"{verdict} its minimum {check.min_pass_rate:.1%}"
                + (f"; failed: {', '.join(result.failed)}" if result.failed else "")
            )
    current = {(check.model, target.revision) for check in config.models for target in check.targets}
    for labels in delete_stale_groups(config.pushgateway, current):
        print(f"deleted the group {labels} of a revision or model no longer graded")
    if failed:
        print(f"not graded: {', '.join(failed)}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    return ExitCode.OK


def entry(argv: list[str]) -> int:
    """main with the kit's exit codes (the image runs this module alone, without the `modelyard` command)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else ExitCode.BAD_INPUT
    except InputError as exc:
        print(exc.render(), file=sys.stderr)
        return ExitCode.BAD_INPUT
    except EnvironmentBlocked as exc:
        print(f"blocked: {exc}", file=sys.stderr)
        return ExitCode.ENVIRONMENT


if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:]))
