"""A stack's traffic profile (settings `traffic`): the trace it names, replayed by the simulator, summed up for the
plan's cost (`cost.traffic`) so that the plan diff of a pull request shows how the change moves TTFT attainment and
cost per token. Only stacks that name a profile get the section: the plans of the others do not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.errors import InputError, Problem
from components.settings.types import SHIPPED_TRAFFIC, Settings
from components.simulate.engine import Options
from components.simulate.result import simulate
from components.simulate.trace import Routes, read_trace

DATA = Path(__file__).resolve().parent / "data"


def trace_path(settings: Settings, project_dir: Path) -> Path:
    """The file `traffic.trace` names: a shipped profile, or a path from the project folder."""
    name = settings.traffic.trace
    assert name is not None
    if name in SHIPPED_TRAFFIC:
        return DATA / f"{name}.csv"
    path = project_dir / name
    if not path.is_file():
        raise InputError(
            Problem(
                path="modelyard:traffic.trace",
                message=f"{name!r}: no such file in {project_dir} (or one of the shipped profiles: "
                f"{', '.join(SHIPPED_TRAFFIC)})",
            )
        )
    return path


def traffic_summary(settings: Settings, project_dir: Path) -> dict[str, Any]:
    """The simulated profile as the plan's cost carries it: deterministic, rounded, no timeline."""
    t = settings.traffic
    routes = Routes(
        tenant_models={name: tuple(x.models) for name, x in settings.tenants.items()},
        key_tenants={name: k.tenant or name for name, k in settings.gateway.keys.items()},
    )
    trace = read_trace(trace_path(settings, project_dir), routes, model=t.model, tenant=t.tenant)
    result = simulate(settings, trace, Options(rate_scale=t.rate_scale))
    data = result.to_json()
    return {
        "trace": t.trace,
        "rate_scale": t.rate_scale,
        "requests": data["requests"]["offered"],
        "rejected": data["requests"]["rejected"],
        "timed_out": data["requests"]["timed_out"],
        "ttft_objective_seconds": data["slo"]["ttft_objective_seconds"],
        "objective_share": data["slo"]["objective_share"],
        "ttft_attainment": data["slo"]["ttft_attainment"],
        "met": data["slo"]["met"],
        "ttft_p99_seconds": data["ttft_seconds"]["p99"],
        "gpu_hours": data["gpu_hours"],
        "usd": data["usd"],
        "usd_per_million_output_tokens": data["usd_per_million_output_tokens"],
        "first_limit": data["first_limit"],
        "basis": "GPU nodes only, as `modelyard simulate` prices them (docs/simulate.md)",
    }
