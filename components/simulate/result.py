"""`simulate(settings, trace, options)`: the simulator's API, and what it returns (`SimulationResult.to_json()`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from components.settings.types import Settings
from components.simulate.engine import LIMIT_NAMES, ModelRun, Options, Outcome, RawResult, run
from components.simulate.stack import StackModel, stack_model
from components.simulate.trace import Trace

SCHEMA = "modelyard.simulation/v1"
CENT = Decimal("0.01")


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of sorted `values` (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]


def _seconds(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        f"p{int(q * 100)}": (round(v, 4) if (v := percentile(ordered, q)) is not None else None)
        for q in (0.5, 0.9, 0.99)
    }


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ModelResult:
    key: str
    instance: str
    requests: int
    served: int
    ttft_attained: int
    output_tokens: int
    ttft: dict[str, float | None]
    itl: dict[str, float | None]
    run: ModelRun
    gpu_hours: float
    usd: Decimal | None
    idle_usd: Decimal | None
    price_basis: str
    utilisation: float | None
    capacity_output_tokens_per_second: float

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.key,
            "instance": self.instance,
            "requests": self.requests,
            "served": self.served,
            "ttft_attainment": round(self.ttft_attained / self.requests, 4) if self.requests else None,
            "output_tokens": self.output_tokens,
            "ttft_seconds": self.ttft,
            "itl_seconds": self.itl,
            "replicas": {
                "min": min(self.run.replicas, default=0),
                "max": max(self.run.replicas, default=0),
                "mean_ready": round(sum(self.run.ready) / len(self.run.ready), 2) if self.run.ready else 0,
            },
            "gpu_hours": round(self.gpu_hours, 2),
            "usd": _money(self.usd) if self.usd is not None else None,
            "idle_usd": _money(self.idle_usd) if self.idle_usd is not None else None,
            "price_basis": self.price_basis,
            "utilisation": round(self.utilisation, 4) if self.utilisation is not None else None,
            "timeline": {
                "seconds": self.run.times,
                "replicas": self.run.replicas,
                "ready": self.run.ready,
                "nodes": self.run.nodes,
                "queue": self.run.queue,
            },
        }


@dataclass(frozen=True)
class SimulationResult:
    stack: str
    trace: str
    options: Options
    objective_seconds: float
    objective_share: float
    timeout_seconds: int
    offered: int
    outcomes: dict[str, int]
    rejected_by: dict[str, int]
    ttft_attained: int
    ttft: dict[str, float | None]
    itl: dict[str, float | None]
    window_seconds: float
    output_tokens: int
    models: dict[str, ModelResult]
    limits: list[dict[str, Any]]

    @property
    def ttft_attainment(self) -> float:
        """Requests with a first token within the objective, of all offered (rejected and timed out miss)."""
        return self.ttft_attained / self.offered if self.offered else 1.0

    @property
    def ttft_attainment_served(self) -> float:
        """The same of the requests served: what vLLM's histogram, and so the alerts, see."""
        served = self.outcomes["served"]
        return self.ttft_attained / served if served else 1.0

    @property
    def met(self) -> bool:
        return self.ttft_attainment >= self.objective_share

    @property
    def gpu_hours(self) -> float:
        return sum(m.gpu_hours for m in self.models.values())

    @property
    def priced(self) -> bool:
        return all(m.usd is not None for m in self.models.values())

    @property
    def usd(self) -> Decimal | None:
        return sum((m.usd for m in self.models.values() if m.usd is not None), Decimal(0)) if self.priced else None

    @property
    def idle_usd(self) -> Decimal | None:
        if not self.priced:
            return None
        return sum((m.idle_usd for m in self.models.values() if m.idle_usd is not None), Decimal(0))

    @property
    def usd_per_million_output_tokens(self) -> Decimal | None:
        usd = self.usd
        if usd is None or not self.output_tokens:
            return None
        return usd * 1_000_000 / Decimal(self.output_tokens)

    @property
    def utilisation(self) -> float | None:
        """Output tokens served over what the ready replicas could serve at their throughput optimum (the cost
        model's capacity): the simulated `cost.utilisation`."""
        capacity = sum(m.capacity_output_tokens_per_second * m.run.ready_replica_seconds for m in self.models.values())
        return min(1.0, self.output_tokens / capacity) if capacity else None

    @property
    def first_limit(self) -> str | None:
        return self.limits[0]["limit"] if self.limits else None

    def to_json(self) -> dict[str, Any]:
        usd, idle, per_token = self.usd, self.idle_usd, self.usd_per_million_output_tokens
        return {
            "schema": SCHEMA,
            "stack": self.stack,
            "trace": self.trace,
            "rate_scale": self.options.rate_scale,
            "seed": self.options.seed,
            "requests": {
                "offered": self.offered,
                **self.outcomes,
                "accounted_for": sum(self.outcomes.values()) == self.offered,
                "rejected_by": self.rejected_by,
            },
            "slo": {
                "ttft_objective_seconds": self.objective_seconds,
                "objective_share": self.objective_share,
                "ttft_attainment": round(self.ttft_attainment, 4),
                "ttft_attainment_served": round(self.ttft_attainment_served, 4),
                "met": self.met,
                "source": "components/k8s/monitoring/rules/serving.yaml (TtftBudgetBurnSlow)",
            },
            "ttft_seconds": self.ttft,
            "itl_seconds": self.itl,
            "timeout_seconds": self.timeout_seconds,
            "window_seconds": round(self.window_seconds, 1),
            "output_tokens": self.output_tokens,
            "gpu_hours": round(self.gpu_hours, 2),
            "usd": _money(usd) if usd is not None else None,
            "idle_usd": _money(idle) if idle is not None else None,
            "usd_per_million_output_tokens": _money(per_token) if per_token is not None else None,
            "utilisation": round(u, 4) if (u := self.utilisation) is not None else None,
            "limits": self.limits,
            "first_limit": self.first_limit,
            "models": {key: m.to_json() for key, m in sorted(self.models.items())},
        }


def summarise(stack: StackModel, trace: Trace, options: Options, raw: RawResult) -> SimulationResult:
    objective = stack.objective.seconds
    counts = Counter(raw.outcome)
    outcomes = {
        "served": counts[Outcome.SERVED],
        "rejected": counts[Outcome.REJECTED],
        "timed_out": counts[Outcome.TIMED_OUT],
    }
    attained = [i for i, t in enumerate(raw.ttft) if t <= objective and raw.outcome[i] == Outcome.SERVED]
    served = [i for i, o in enumerate(raw.outcome) if o == Outcome.SERVED]
    models: dict[str, ModelResult] = {}
    for key, m in sorted(stack.models.items()):
        mine = [i for i, r in enumerate(raw.requests) if r.model == key]
        mine_served = [i for i in mine if raw.outcome[i] == Outcome.SERVED]
        fleet = raw.models[key]
        price = m.node_usd_per_hour
        tokens = sum(raw.requests[i].output_tokens for i in mine_served)
        capacity = m.capacity_output_tokens_per_second * fleet.ready_replica_seconds
        models[key] = ModelResult(
            key=key,
            instance=m.instance,
            requests=len(mine),
            served=len(mine_served),
            ttft_attained=sum(1 for i in mine_served if raw.ttft[i] <= objective),
            output_tokens=tokens,
            ttft=_seconds([raw.ttft[i] for i in mine_served]),
            itl=_seconds([raw.itl[i] for i in mine_served]),
            run=fleet,
            gpu_hours=fleet.gpu_seconds / 3600,
            usd=price * Decimal(str(fleet.node_seconds)) / 3600 if price is not None else None,
            idle_usd=price * Decimal(str(fleet.idle_node_seconds)) / 3600 if price is not None else None,
            price_basis=m.price_basis,
            utilisation=min(1.0, tokens / capacity) if capacity else None,
            capacity_output_tokens_per_second=m.capacity_output_tokens_per_second,
        )
    return SimulationResult(
        stack=stack.name,
        trace=trace.name,
        options=options,
        objective_seconds=objective,
        objective_share=stack.objective.share,
        timeout_seconds=stack.timeout_seconds,
        offered=len(raw.requests),
        outcomes=outcomes,
        rejected_by=dict(sorted(Counter(r for r in raw.rejected_by if r).items())),
        ttft_attained=len(attained),
        ttft=_seconds([raw.ttft[i] for i in served]),
        itl=_seconds([raw.itl[i] for i in served]),
        window_seconds=raw.end_seconds,
        output_tokens=sum(raw.requests[i].output_tokens for i in served),
        models=models,
        limits=[
            {"limit": LIMIT_NAMES[limit], "at_seconds": round(at, 1), "what": what}
            for limit, (at, what) in raw.limits.items()
        ],
    )


def simulate_model(stack: StackModel, trace: Trace, options: Options | None = None) -> SimulationResult:
    """Replay `trace` against a StackModel (built by `stack_model`, or altered from one)."""
    options = options or Options()
    return summarise(stack, trace, options, run(stack, trace, options))


def simulate(settings: Settings, trace: Trace, options: Options | None = None) -> SimulationResult:
    """Replay `trace` against the stack `settings` describe, as the plan would build it."""
    return simulate_model(stack_model(settings), trace, options)
