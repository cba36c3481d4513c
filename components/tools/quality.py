"""The eval runner of quality in production (docs/lifecycle.md#quality-in-production): what the quality CronJob runs.

    python -m components.tools.quality --config /etc/modelyard/quality/runner.json

For every model of the config it sends the model's eval set through the gateway exactly as `modelyard eval` does
(components.tools.evaluation: temperature 0, a seed, the same graders), then pushes the result to the Pushgateway in
Prometheus' text format, one group per model (`/metrics/job/<QUALITY_JOB>/model/<model>`):

- a complete run PUTs the group: pass rate, items, items passed, the model's min_pass_rate, the time it ended, and
  `last_run_succeeded 1` (PUT replaces the whole group);
- a run the gateway refused or failed POSTs `last_run_succeeded 0` alone (POST replaces only the series of that name),
  so the last complete run's rate stays visible beside the failure.

Exit codes: 0 every model graded and pushed (a low pass rate is the alert's business, not the Job's), 2 a bad config
or set, 3 a model could not be graded or the Pushgateway refused a push (the Job then shows failed too).
The config (a ConfigMap, components/k8s/quality.py writes it):

    {"endpoint": "http://litellm.gateway.svc.cluster.local:4000", "pushgateway": "http://pushgateway.quality...:9091",
     "key_file": "/var/run/modelyard/key/key", "timeout_seconds": 120, "seed": 1234,
     "models": {"llama-8b": {"set": "general", "set_file": "/etc/modelyard/evalsets/general.jsonl",
                             "min_pass_rate": 0.9}}}
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
    QUALITY_ITEMS,
    QUALITY_ITEMS_PASSED,
    QUALITY_JOB,
    QUALITY_LAST_SUCCESS,
    QUALITY_MIN_PASS_RATE,
    QUALITY_PASS_RATE,
    QUALITY_RUN_SUCCEEDED,
)
from components.errors import EnvironmentBlocked, ExitCode, InputError, Problem
from components.evalsets import load_set
from components.tools.evaluation import DEFAULT_SEED, RunResult, run

PUSH_TIMEOUT_SECONDS = 30

HELP = {
    QUALITY_PASS_RATE: "Share of the eval set's items the model passed in its last complete run (0-1).",
    QUALITY_MIN_PASS_RATE: "The model's quality.models.<m>.min_pass_rate: below it, ModelQualityBelowThreshold.",
    QUALITY_ITEMS: "Items in the eval set of the last complete run.",
    QUALITY_ITEMS_PASSED: "Items the model passed in its last complete run.",
    QUALITY_LAST_SUCCESS: "Unix time the last complete run ended.",
    QUALITY_RUN_SUCCEEDED: "1: the last run graded every item; 0: the gateway refused or failed a request.",
}


@dataclass(frozen=True, kw_only=True)
class ModelCheck:
    model: str
    set_name: str
    set_file: Path
    min_pass_rate: float


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
        rate = _require(spec, "min_pass_rate", (int, float), at)
        if not 0 < rate <= 1:
            raise InputError(Problem(path=f"{at}.min_pass_rate", message="a share above 0, at most 1"))
        models.append(
            ModelCheck(
                model=model,
                set_name=_require(spec, "set", str, at),
                set_file=Path(_require(spec, "set_file", str, at)),
                min_pass_rate=float(rate),
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


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(values: Mapping[str, float], *, set_name: str) -> str:
    """Prometheus text format (0.0.4): each gauge with its HELP and TYPE, labelled with the set."""
    lines = []
    for name, value in values.items():
        lines += [
            f"# HELP {name} {HELP[name]}",
            f"# TYPE {name} gauge",
            f'{name}{{set="{_label(set_name)}"}} {value!r}',
        ]
    return "\n".join(lines) + "\n"


def group_url(pushgateway: str, model: str) -> str:
    """The Pushgateway's group of one model: the grouping key job and model."""
    job, name = urllib.parse.quote(QUALITY_JOB, safe=""), urllib.parse.quote(model, safe="")
    return f"{pushgateway.rstrip('/')}/metrics/job/{job}/model/{name}"


def push(url: str, body: str, *, method: str) -> None:
    """PUT (replace the group) or POST (replace the series named in the body); EnvironmentBlocked if refused."""
    request = urllib.request.Request(
        url, data=body.encode(), method=method, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(request, timeout=PUSH_TIMEOUT_SECONDS) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise EnvironmentBlocked(f"the Pushgateway answered {exc.code} to {method} {url}: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise EnvironmentBlocked(f"cannot reach the Pushgateway at {url}: {exc}") from None


def result_values(result: RunResult, check: ModelCheck, *, ended: float) -> dict[str, float]:
    return {
        QUALITY_PASS_RATE: round(result.rate, 6),
        QUALITY_ITEMS: float(result.total),
        QUALITY_ITEMS_PASSED: float(len(result.passed)),
        QUALITY_MIN_PASS_RATE: check.min_pass_rate,
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
        url = group_url(config.pushgateway, check.model)
        try:
            result = run(
                endpoint=config.endpoint,
                model=check.model,
                key=key or None,
                items=sets[check.model],
                seed=config.seed,
                timeout=config.timeout_seconds,
            )
        except EnvironmentBlocked as exc:
            print(f"{check.model}: not graded: {exc}", file=sys.stderr)
            failed.append(check.model)
            push(url, exposition({QUALITY_RUN_SUCCEEDED: 0.0}, set_name=check.set_name), method="POST")
            continue
        push(url, exposition(result_values(result, check, ended=time.time()), set_name=check.set_name), method="PUT")
        verdict = "below" if result.rate < check.min_pass_rate else "at or above"
        print(
            f"{check.model} ({check.set_name}): {len(result.passed)}/{result.total} passed, {result.rate:.1%}, "
            f"{verdict} its minimum {check.min_pass_rate:.1%}"
            + (f"; failed: {', '.join(result.failed)}" if result.failed else "")
        )
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
