"""One workload, every way to serve it: self-hosting on each layout `modelyard size` offers (simulated), the hosted
offers of the same open model, the proprietary APIs, and a hybrid (self-hosted base load, overflow to an API).

Self-hosting is a one-model stack of the chosen preset: the preset's pools, models and tenants replaced by one
elastic on-demand pool of the layout's instance type, the model on it (replicas always on for the trace's busiest
minute) and one tenant. Its yearly cost is the simulated GPU node cost of the trace, repeated over
a year, plus everything else the preset's stack costs (the rest of the AWS bill, people, tools, hidden costs),
taken from one offline plan of that stack: the same lines `modelyard tco` prints. The break-even volume is
`components.cost.economics.break_even`, the function `tco` uses, over the same fixed costs and GPU nodes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import yaml

from components import catalog
from components.cost import economics
from components.cost.economics import usd
from components.cost.estimate import (
    HOURS_PER_MONTH,
    MONTHS_PER_YEAR,
    gpu_fleets,
    gpu_node_hourly,
    gpu_part,
    instance_source,
    pricer,
)
from components.cost.prices import ApiPrice, HostedOffer, PriceBook
from components.errors import InputError, Problem
from components.settings.types import Settings
from components.simulate.engine import Options, Outcome, RawResult, run
from components.simulate.result import SimulationResult, simulate_model, summarise
from components.simulate.stack import StackModel, stack_model
from components.simulate.trace import Request, Trace
from components.sizing import SizingOption, size

MODEL_KEY = "advised"
TENANT = "advise"
POOL = "advise"
CIDR = "10.0.0.0/16"  # the throwaway stack's VPC range: it prices nothing
MAX_REPLICAS = 32  # the most replicas a layout is simulated with
SECONDS_PER_YEAR = HOURS_PER_MONTH * MONTHS_PER_YEAR * 3600  # AWS's 730-hour month, as the cost model counts
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


@dataclass(frozen=True, kw_only=True)
class Workload:
    """The trace as the comparison needs it: its tokens and how busy its busiest minute is."""

    trace: Trace
    requests: tuple[Request, ...]
    window_seconds: float
    input_tokens: int
    output_tokens: int
    peak_output_tokens_per_second: float  # the busiest 60 s of arrivals
    mean_output_tokens_per_second: float

    @property
    def per_year(self) -> Decimal:
        """The factor from the trace's window to a year (the trace stands for every hour of the year)."""
        return SECONDS_PER_YEAR / Decimal(str(self.window_seconds))

    @property
    def input_per_output(self) -> Decimal:
        return (Decimal(self.input_tokens) / Decimal(max(1, self.output_tokens))).quantize(CENT)

    def api_yearly(self, api: ApiPrice) -> Decimal:
        usd = (api.input * self.input_tokens + api.output * self.output_tokens) / 1_000_000
        return usd * self.per_year


def workload(trace: Trace, options: Options) -> Workload:
    from components.simulate.engine import scale_requests

    requests = scale_requests(trace, options.rate_scale, options.seed)
    if not requests:
        raise InputError(Problem(path="--trace", message=f"{trace.name}: no requests"))
    window = max(60.0, requests[-1].arrival)
    minute: dict[int, int] = {}
    for r in requests:
        minute[int(r.arrival // 60)] = minute.get(int(r.arrival // 60), 0) + r.output_tokens
    output = sum(r.output_tokens for r in requests)
    return Workload(
        trace=trace,
        requests=requests,
        window_seconds=window,
        input_tokens=sum(r.input_tokens for r in requests),
        output_tokens=output,
        peak_output_tokens_per_second=max(minute.values()) / 60,
        mean_output_tokens_per_second=output / window,
    )


@dataclass(frozen=True, kw_only=True)
class Layout:
    option: SizingOption
    context: int
    concurrency: int

    @property
    def name(self) -> str:
        return f"{self.option.instance} ({self.option.dtype.value}, TP{self.option.tensor_parallel})"

    def replicas_for(self, output_tokens_per_second: float) -> int:
        per_replica = self.option.throughput.capacity_output_tokens_per_second
        return max(1, min(MAX_REPLICAS, math.ceil(output_tokens_per_second / per_replica)))

    def gpus(self, replicas: int) -> int:
        o = self.option
        nodes = math.ceil(replicas / max(1, o.replicas_per_node)) * o.nodes_per_replica
        gpus_per_node = catalog.instances()[o.instance].gpu_count
        return nodes * gpus_per_node


def layouts(model: catalog.Model) -> list[Layout]:
    """What `modelyard size --model M` offers on one node, with a sourced price, cheapest per token first."""
    result = size(model)
    return [
        Layout(option=o, context=result.context, concurrency=result.concurrency)
        for o in result.options
        if not o.multi_node and o.usd_per_hour is not None
    ]


class Scratch:
    """A throwaway project (its stack files beside links to the kit's presets and charts) that the kit's own loaders
    and offline plan read as they read a team's: nothing of the stack is built another way."""

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self.root = Path(tempfile.mkdtemp(prefix="modelyard-advise-"))
        shutil.copy(project_dir / "Pulumi.yaml", self.root / "Pulumi.yaml")
        (self.root / "stacks").mkdir()
        (self.root / "stacks" / "presets").symlink_to((project_dir / "stacks" / "presets").resolve())
        (self.root / "charts").symlink_to((project_dir / "charts").resolve())

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def write(self, name: str, config: dict[str, Any]) -> None:
        text = yaml.safe_dump({"config": config}, sort_keys=True)
        (self.root / "stacks" / f"Pulumi.{name}.yaml").write_text(text, encoding="utf-8")


def stack_config(
    model: catalog.Model,
    layout: Layout,
    *,
    preset: str,
    presets_dir: Path,
    replicas_max: int,
    ratio: Decimal,
    model_rpm: int | None = None,
) -> dict[str, Any]:
    """The stack file of a one-model stack of `preset` on `layout` (see the module docstring)."""
    from components.settings.load import load_preset

    base = load_preset(preset, presets_dir)

    def drop(section: str) -> dict[str, None]:
        return dict.fromkeys(base.get(section) or {})

    gpus = layout.gpus(replicas_max)
    ns = "modelyard"
    gateway = {f"{ns}:gateway": {"model_rpm": {MODEL_KEY: model_rpm}}} if model_rpm is not None else {}
    return {
        **gateway,
        f"{ns}:preset": preset,
        f"{ns}:network": {"cidr": CIDR},
        f"{ns}:licenses": [model.license.name],
        f"{ns}:pools": {
            **drop("pools"),
            POOL: {
                "kind": "elastic",
                "capacity": "on-demand",
                "instance_types": [layout.option.instance],
                "max_gpus": gpus,
            },
        },
        f"{ns}:models": {
            **drop("models"),
            MODEL_KEY: {
                "model": model.name,
                "pool": POOL,
                "dtype": layout.option.dtype.value,
                "context": layout.context,
                "concurrency": layout.concurrency,
                "replicas": {"min": replicas_max, "max": replicas_max},
            },
        },
        f"{ns}:tenants": {**drop("tenants"), TENANT: {"models": [MODEL_KEY], "gpu_quota": gpus, "unlimited": True}},
        f"{ns}:cost": {"input_tokens_per_output_token": float(ratio)},
    }


def _stack_name(layout: Layout, replicas_max: int) -> str:
    return f"advise-{layout.option.instance.replace('.', '-')}-{replicas_max}"


@dataclass(frozen=True, kw_only=True)
class Fixed:
    """What the preset's one-model stack costs a month beside its GPU nodes, from its offline plan."""

    monthly: Decimal
    by_category: dict[str, Decimal]  # aws (GPU nodes excluded), people, tools, hidden
    stack: str
    aws_lines: int


def fixed_costs(plan: dict[str, Any]) -> Fixed:
    cost = plan["cost"]
    gpu = [ln for ln in cost["lines"] if ln["id"].startswith("controllers/gpu/")]
    gpu_monthly = sum((Decimal(ln["monthly"]) for ln in gpu), Decimal(0))
    by_category = {k: Decimal(v) for k, v in cost["by_category"].items()}
    by_category["aws"] -= gpu_monthly
    return Fixed(
        monthly=Decimal(cost["monthly_total"]) - gpu_monthly,
        by_category=by_category,
        stack=plan["stack"],
        aws_lines=sum(1 for ln in cost["lines"] if ln["category"] == "aws") - len(gpu),
    )


@dataclass(frozen=True, kw_only=True)
class Row:
    kind: str  # self-hosted, hybrid, hosted, proprietary
    option: str
    yearly_usd: Decimal | None
    ttft_attainment: float | None  # None: not simulated (an API's own latency)
    meets_objective: bool | None
    break_even: dict[str, Any] | None  # economics.to_json
    data_leaves_vpc: str
    prices: list[str]
    included: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "option": self.option,
            "yearly_usd": None if self.yearly_usd is None else money(self.yearly_usd),
            "ttft_attainment": None if self.ttft_attainment is None else round(self.ttft_attainment, 4),
            "meets_objective": self.meets_objective,
            "break_even": self.break_even,
            "data_leaves_vpc": self.data_leaves_vpc,
            "prices": self.prices,
            "included": self.included,
            **self.details,
        }


@dataclass(frozen=True, kw_only=True)
class Advice:
    model: str
    preset: str
    trace: str
    workload: Workload
    objective_seconds: float
    objective_share: float
    fixed: Fixed | None
    rows: list[Row]
    budget: Decimal | None
    choice: Row | None
    why_none: str | None
    skipped: list[str]
    assumptions: list[str]

    def to_json(self) -> dict[str, Any]:
        w = self.workload
        return {
            "schema": "modelyard.advice/v1",
            "model": self.model,
            "preset": self.preset,
            "trace": self.trace,
            "workload": {
                "requests": len(w.requests),
                "window_seconds": round(w.window_seconds, 1),
                "input_tokens": w.input_tokens,
                "output_tokens": w.output_tokens,
                "input_tokens_per_output_token": str(w.input_per_output),
                "million_output_tokens_per_month": str(
                    (Decimal(w.output_tokens) * w.per_year / MONTHS_PER_YEAR / 1_000_000).quantize(Decimal("0.1"))
                ),
                "peak_output_tokens_per_second": round(w.peak_output_tokens_per_second, 1),
            },
            "objective": {"ttft_seconds": self.objective_seconds, "share": self.objective_share},
            "fixed_monthly_usd": None if self.fixed is None else money(self.fixed.monthly),
            "fixed_by_category": None
            if self.fixed is None
            else {k: money(v) for k, v in sorted(self.fixed.by_category.items())},
            "rows": [r.to_json() for r in self.rows],
            "budget_usd": None if self.budget is None else money(self.budget),
            "choice": None if self.choice is None else self.choice.option,
            "why_none": self.why_none,
            "not_simulated": self.skipped,
            "assumptions": self.assumptions,
        }


def _dated(api: ApiPrice) -> str:
    from components.cost.command import rate

    offer = f"{api.provider} {api.offer}" if isinstance(api, HostedOffer) else api.label
    return f"{offer}: {rate(str(api.input))} in / {rate(str(api.output))} out per million tokens <{api.cite}>"


def _with_objective(stack: StackModel, slo_ttft: float | None) -> StackModel:
    if slo_ttft is None:
        return stack
    return dataclasses.replace(stack, objective=dataclasses.replace(stack.objective, seconds=slo_ttft))


def _base_limit(stack: StackModel, w: Workload, options: Options) -> tuple[int, tuple[RawResult, SimulationResult]]:
    """The largest gateway.model_rpm (to 5% of the busiest minute's requests) at which the base replicas answer every
    request they admit within the objective (at the objective's share), found by bisection over the simulator: the
    rest overflows."""
    objective = stack.objective

    def simulated(rpm: int) -> tuple[RawResult, SimulationResult]:
        limited = dataclasses.replace(stack, model_rpm={MODEL_KEY: rpm})
        raw = run(limited, w.trace, options)
        return raw, summarise(limited, w.trace, options, raw)

    def holds(result: SimulationResult) -> bool:
        return result.outcomes["timed_out"] == 0 and result.ttft_attainment_served >= objective.share

    per_minute: dict[int, int] = {}
    for r in w.requests:
        per_minute[int(r.arrival // 60)] = per_minute.get(int(r.arrival // 60), 0) + 1
    low, high = 0, max(per_minute.values())
    best: tuple[int, tuple[RawResult, SimulationResult]] | None = None
    while high - low > max(1, high // 20):
        middle = (low + high + 1) // 2
        outcome = simulated(middle)
        if holds(outcome[1]):
            low, best = middle, (middle, outcome)
        else:
            high = middle - 1
    return best if best is not None else (max(1, low), simulated(max(1, low)))


def _hybrid_row(
    *,
    base: Row,
    stack: StackModel,
    w: Workload,
    api: ApiPrice,
    fixed: Fixed,
    options: Options,
    replicas_max: int,
) -> Row:
    """Self-host the base load (replicas for the trace's mean rate, a gateway limit at what they serve); what the
    servers do not answer within the objective (refused by the limit, timed out, or a first token later than the
    objective) goes to `api`."""
    rpm, (raw, result) = _base_limit(stack, w, options)
    objective = stack.objective.seconds
    overflow = [i for i, o in enumerate(raw.outcome) if o != Outcome.SERVED or raw.ttft[i] > objective]
    api_usd = (
        sum(
            (api.input * raw.requests[i].input_tokens + api.output * raw.requests[i].output_tokens for i in overflow),
            Decimal(0),
        )
        / 1_000_000
    )
    assert result.usd is not None
    gpu_yearly = result.usd * w.per_year
    yearly = fixed.monthly * MONTHS_PER_YEAR + gpu_yearly + api_usd * w.per_year
    attained = (result.ttft_attained + len(overflow)) / max(1, result.offered)
    name = api.provider if isinstance(api, HostedOffer) else api.label
    return Row(
        kind="hybrid",
        option=f"{base.option.split(' ')[0]} x{replicas_max}, model_rpm {rpm}, overflow to {name}",
        yearly_usd=yearly,
        ttft_attainment=attained,
        meets_objective=attained >= stack.objective.share,
        break_even=None,
        data_leaves_vpc=f"yes, the overflow ({len(overflow) / max(1, result.offered):.1%} of requests)",
        prices=[*base.prices, _dated(api)],
        included=f"{base.included}; the overflow at the API's price",
        details={
            "replicas_max": replicas_max,
            "gateway_model_rpm": rpm,
            "overflow_requests": len(overflow),
            "gpu_yearly_usd": money(gpu_yearly),
            "api_yearly_usd": money(api_usd * w.per_year),
        },
    )


def advise(
    model_name: str,
    trace: Trace,
    *,
    project_dir: Path,
    preset: str,
    budget: Decimal | None = None,
    slo_ttft: float | None = None,
    options: Options | None = None,
    book: PriceBook | None = None,
    layouts_simulated: int = 3,
) -> Advice:
    from components.plan.run import load_settings, plan_stack

    options = options or Options()
    model = catalog.resolve_model(model_name)
    w = workload(trace, options)
    ratio = w.input_per_output
    candidates = layouts(model)
    scratch = Scratch(project_dir)
    presets_dir = project_dir / "stacks" / "presets"
    rows: list[Row] = []
    skipped: list[str] = []
    fixed: Fixed | None = None
    objective = (0.0, 0.0)
    try:
        # First what each layout costs: its replicas are always on, so its GPU nodes cost the same whatever the
        # traffic, and the cheapest layouts can be simulated first.
        priced: list[tuple[Decimal, Layout, int, dict[str, Any], Settings, economics.Part]] = []
        for layout in candidates:
            replicas = layout.replicas_for(w.peak_output_tokens_per_second)
            name = _stack_name(layout, replicas)
            config = stack_config(
                model, layout, preset=preset, presets_dir=presets_dir, replicas_max=replicas, ratio=ratio
            )
            scratch.write(name, config)
            _, settings = load_settings(scratch.root, name)
            if fixed is None:  # one plan: what the stack costs beside its GPU nodes does not depend on their type
                fixed = fixed_costs(plan_stack(scratch.root, name))
            (fleet,) = gpu_fleets(settings)
            part = gpu_part(fleet, settings, pricer(settings, book))
            assert part is not None, f"{layout.option.instance} has a sourced price (size offered it)"
            priced.append(
                ((fixed.monthly + part.floor_monthly) * MONTHS_PER_YEAR, layout, replicas, config, settings, part)
            )
        priced.sort(key=lambda x: (x[0], x[1].name))
        simulated: list[tuple[Row, Layout, Settings, StackModel, SimulationResult, int]] = []
        for yearly, layout, replicas, config, settings, part in priced:
            assert fixed is not None
            (fleet,) = gpu_fleets(settings)
            p = pricer(settings, book)
            hourly = gpu_node_hourly(settings, fleet, p)
            assert hourly is not None
            hosted = sorted(
                (o for o in p.book.hosted_open.get(model.name, ()) if o.same_model),
                key=lambda o: (o.per_million_output(ratio), o.provider, o.offer),
            )
            verdict = None
            if hosted:
                v = economics.break_even(fixed.monthly, [part], hosted[0].per_million_output(ratio))
                against = f"the cheapest hosted {model.name}, {hosted[0].provider} ({hosted[0].date})"
                verdict = economics.to_json(
                    v,
                    economics.statement(
                        v, who="The stack (all costs)", replicas="its models' maximum replicas", against=against
                    ),
                )
            why_not = None
            if budget is not None and yearly > budget:
                why_not = f"its nodes and the stack's other costs come to {usd(yearly)} a year, above the budget"
            elif len(simulated) >= layouts_simulated and any(r.meets_objective for r, *_ in simulated):
                why_not = (
                    f"{len(simulated)} cheaper layouts were simulated and one meets the objective "
                    "(--layouts simulates more)"
                )
            details: dict[str, Any] = {
                "replicas_max": replicas,
                # The stack priced: saved as stacks/Pulumi.<env>.yaml, `modelyard plan` and `tco` read it.
                "stack_file": {"config": config},
            }
            result = None
            if why_not is None:
                stack = _with_objective(stack_model(settings), slo_ttft)
                objective = (stack.objective.seconds, stack.objective.share)
                result = simulate_model(stack, trace, options)
                assert result.usd is not None
                gpu_yearly = result.usd * w.per_year
                details.update(
                    gpu_yearly_usd=money(gpu_yearly),
                    first_limit=result.first_limit,
                    utilisation=None if result.utilisation is None else round(result.utilisation, 4),
                )
                yearly = fixed.monthly * MONTHS_PER_YEAR + gpu_yearly
            else:
                skipped.append(f"{layout.name} x{replicas}: {why_not}")
                details.update(gpu_yearly_usd=money(part.floor_monthly * MONTHS_PER_YEAR), not_simulated=why_not)
            row = Row(
                kind="self-hosted",
                option=f"{layout.name} x{replicas}",
                yearly_usd=yearly,
                ttft_attainment=None if result is None else result.ttft_attainment,
                meets_objective=None if result is None else result.met,
                break_even=verdict,
                data_leaves_vpc="no",
                prices=[f"{hourly[1]}: ${hourly[0]:.4f} a node-hour <{instance_source(fleet.instance)[0]}>"],
                included=f"GPU nodes ({'as simulated' if result else 'all year'}), plus the {preset} stack's other "
                "AWS lines, people, tools and hidden costs",
                details=details,
            )
            rows.append(row)
            if result is not None:
                simulated.append((row, layout, settings, stack, result, replicas))
        book_ = pricer(simulated[0][2], book).book if simulated else (book or _default_book())
        hosted_offers = sorted(
            book_.hosted_open.get(model.name, ()),
            key=lambda o: (o.per_million_output(ratio), o.provider, o.offer),
        )
        apis = sorted(book_.proprietary.values(), key=lambda a: (a.per_million_output(ratio), a.key))
        # The best self-hosted layout: the cheapest a year that meets the objective (else the cheapest). The hybrid cuts
        # its replicas to the mean rate; the APIs' break-even is against it.
        best = min(simulated, key=lambda s: (not s[0].meets_objective, s[0].yearly_usd or 0, s[0].option), default=None)
        if best is not None and fixed is not None:
            best_row, layout, _, _, _, replicas_max = best
            base_max = layout.replicas_for(w.mean_output_tokens_per_second)
            if base_max < replicas_max:
                name = _stack_name(layout, base_max)
                scratch.write(
                    name,
                    stack_config(
                        model,
                        layout,
                        preset=preset,
                        presets_dir=presets_dir,
                        replicas_max=base_max,
                        ratio=ratio,
                    ),
                )
                _, hybrid_settings = load_settings(scratch.root, name)
                hybrid_stack = _with_objective(stack_model(hybrid_settings), slo_ttft)
                targets: list[ApiPrice] = [o for o in hosted_offers if o.same_model][:1] + apis[:1]
                for api in targets:
                    rows.append(
                        _hybrid_row(
                            base=best_row,
                            stack=hybrid_stack,
                            w=w,
                            api=api,
                            fixed=fixed,
                            options=options,
                            replicas_max=base_max,
                        )
                    )
            else:
                skipped.append(f"hybrid: the trace's mean rate needs the same {replicas_max} replicas as its peak")
        best_part = None
        if best is not None:
            (fleet,) = gpu_fleets(best[2])
            best_part = gpu_part(fleet, best[2], pricer(best[2], book))
        for api in [*hosted_offers, *apis]:
            is_hosted = isinstance(api, HostedOffer)
            label = f"{api.provider} {api.offer}" if isinstance(api, HostedOffer) else api.label
            verdict = None
            if best is not None and best_part is not None and fixed is not None:
                v = economics.break_even(fixed.monthly, [best_part], api.per_million_output(ratio))
                verdict = economics.to_json(
                    v,
                    economics.statement(
                        v,
                        who=f"Self-hosting on {best[0].option} (all costs)",
                        replicas="its replicas",
                        against=f"{label} ({api.date or api.source.date})",
                    ),
                )
            stand_in = " [stand-in, not the same model]" if isinstance(api, HostedOffer) and not api.same_model else ""
            rows.append(
                Row(
                    kind="hosted" if is_hosted else "proprietary",
                    option=f"{label}{stand_in}",
                    yearly_usd=w.api_yearly(api),
                    ttft_attainment=None,
                    meets_objective=None,
                    break_even=verdict,
                    data_leaves_vpc="yes",
                    prices=[_dated(api)],
                    included="the trace's input and output tokens at the listed prices; nothing else",
                )
            )
    finally:
        scratch.close()
    kinds = ("self-hosted", "hybrid", "hosted", "proprietary")
    rows.sort(key=lambda r: (kinds.index(r.kind), r.yearly_usd or Decimal(0), r.option))
    choice, why_none = _choose(rows, budget)
    if not simulated and not candidates:
        skipped.append(f"no layout: `modelyard size --model {model.name}` offers none on one node with a price")
    return Advice(
        model=model.name,
        preset=preset,
        trace=trace.name,
        workload=w,
        objective_seconds=objective[0],
        objective_share=objective[1],
        fixed=fixed,
        rows=rows,
        budget=budget,
        choice=choice,
        why_none=why_none,
        skipped=skipped,
        assumptions=_assumptions(w, preset, fixed, options),
    )


def _default_book() -> PriceBook:
    from components.cost.prices import default_book

    return default_book()


def _choose(rows: Sequence[Row], budget: Decimal | None) -> tuple[Row | None, str | None]:
    """The cheapest row meeting the objective within the budget (an API's own latency is taken to meet it; a layout
    not simulated is not a candidate)."""
    if budget is None:
        return None, None
    meeting = [
        r
        for r in rows
        if r.yearly_usd is not None
        and (r.meets_objective or (r.meets_objective is None and r.kind in ("hosted", "proprietary")))
    ]
    within = sorted((r for r in meeting if r.yearly_usd is not None and r.yearly_usd <= budget), key=_cost)
    if within:
        return within[0], None
    if not meeting:
        return None, "no configuration meets the TTFT objective on this trace"
    cheapest = min(meeting, key=_cost)
    return None, (
        f"the cheapest configuration meeting the objective, {cheapest.option}, costs "
        f"{usd(cheapest.yearly_usd or Decimal(0))} a year, above the budget {usd(budget)}"
    )


def _cost(r: Row) -> tuple[Decimal, str]:
    return (r.yearly_usd or Decimal(0), r.option)


def _assumptions(w: Workload, preset: str, fixed: Fixed | None, options: Options) -> list[str]:
    out = [
        f"the trace ({w.trace.name}, {len(w.requests)} requests over {w.window_seconds / 3600:.2f} h at rate "
        f"x{options.rate_scale:g}) stands for every hour of the year: yearly = its cost x {w.per_year:.1f}",
        f"self-hosting is a one-model stack of preset {preset}: one elastic on-demand pool of the layout's type, "
        "replicas always on (replicas.min = replicas.max) for the trace's busiest minute at the layout's throughput "
        f"optimum (at most {MAX_REPLICAS}): a model's cold start (minutes) is longer than a surge takes to build, so "
        "the autoscaler cannot carry the peak (docs/simulate.md, 4.); the preset's other settings (network, "
        "monitoring, gateway, people) unchanged",
        "the one tenant is unlimited at the gateway (tenants.<t>.unlimited): its rate limits would be set to the "
        "traffic, so the servers, the autoscaler and the nodes decide the attainment",
        "an API's time to first token is its provider's and is not simulated: it is taken to meet the objective",
        "API rows price the trace's own input and output tokens; break-even volumes use its ratio of input to "
        f"output tokens ({w.input_per_output}) as cost.input_tokens_per_output_token",
        "hybrid: replicas always on for the trace's mean rate, and gateway.model_rpm at the most requests a minute "
        "they answer within the objective (searched with the simulator, to 5% of the busiest minute's requests); "
        "LiteLLM refuses the rest "
        "(enforce_model_rate_limits) and its router falls back to the API; a request the servers time out or answer "
        "later than the objective is counted as overflow too (priced at the API, its GPU time still paid), and the "
        "API meets the objective for all of them",
    ]
    if fixed is not None:
        out.append(
            f"the stack's costs beside its GPU nodes ({usd(fixed.monthly)} a month: AWS "
            f"{usd(fixed.by_category['aws'])} over {fixed.aws_lines} lines, people "
            f"{usd(fixed.by_category['people'])}, tools {usd(fixed.by_category['tools'])}, hidden "
            f"{usd(fixed.by_category['hidden'])}) come from the offline plan of the first layout's stack and "
            "are the same for every layout"
        )
    return out


def to_json_text(advice: Advice) -> str:
    return json.dumps(advice.to_json(), indent=2, sort_keys=True) + "\n"
