"""The traffic simulator (components/simulate): closed forms, monotonicity, conservation, its inputs and outputs."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.k8s.monitoring.assets import ttft_objective
from components.simulate import generate
from components.simulate.engine import Options, Outcome, run
from components.simulate.report import render_svg
from components.simulate.result import simulate_model
from components.simulate.stack import Limit as GatewayLimit
from components.simulate.stack import StackModel, stack_model
from components.simulate.trace import Request, Trace
from components.sizing.throughput import step_seconds
from tests.test_llm_serving_chart import stack_settings

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "components" / "simulate" / "data"
MODELYARD = str(Path(sys.executable).parent / "modelyard")


@pytest.fixture(scope="module")
def pilot() -> StackModel:
    return stack_model(stack_settings("pilot"))


def unlimited(stack: StackModel) -> StackModel:
    """The stack without gateway limits: what its servers do with all the traffic."""
    return dataclasses.replace(
        stack, tenant_limits={t: GatewayLimit(rpm=None, tpm=None) for t in stack.tenant_limits}, model_rpm={}
    )


def fixed(stack: StackModel, replicas: int, *, slots: int | None = None, gpus: int = 64) -> StackModel:
    """One model at a fixed replica count (no autoscaler), room for it in the pool and quota."""
    (key,) = stack.models
    m = stack.models[key]
    m = dataclasses.replace(
        m, autoscaler=None, min_replicas=replicas, max_replicas=replicas, max_num_seqs=slots or m.max_num_seqs
    )
    pools = {name: dataclasses.replace(p, max_gpus=gpus) for name, p in stack.pools.items()}
    return dataclasses.replace(unlimited(stack), models={key: m}, pools=pools, quotas=dict.fromkeys(stack.quotas, gpus))


def poisson(rate: float, seconds: float, *, seed: int, output_mean: float = 200, prompt: int = 1) -> Trace:
    rng = random.Random(seed)
    t, out = 0.0, []
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            return Trace(name="poisson", requests=tuple(out))
        # Geometric output lengths: with a constant step, exponential service times.
        tokens = 1 + int(math.log(1 - rng.random()) / math.log(1 - 1 / output_mean))
        out.append(Request(t, "llama-8b", "internal", prompt, tokens))


def erlang_c_wait(servers: int, arrival_rate: float, service_rate: float) -> float:
    """Mean wait in queue of an M/M/c queue (Erlang C)."""
    a = arrival_rate / service_rate
    rho = a / servers
    top = a**servers / math.factorial(servers) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(servers)) + top)
    return p_wait / (servers * service_rate - arrival_rate)


# --- closed forms -----------------------------------------------------------------------------------------


def test_fixed_replicas_of_one_slot_wait_as_an_m_m_c_queue(pilot: StackModel) -> None:
    """Replicas of one slot each, Poisson arrivals, (near) exponential service: the mean wait is Erlang C's."""
    servers = 3
    stack = fixed(pilot, servers, slots=1)
    m = stack.models["llama-8b"]
    probe = poisson(1.0, 20_000, seed=7)
    tokens = sum(r.output_tokens for r in probe.requests) / len(probe.requests)
    context = 1 + tokens / 2
    step, _ = step_seconds(m.replica, batch=1, prefill_tokens=1 / tokens, context=context)
    first, _ = step_seconds(m.replica, batch=1, prefill_tokens=64, context=context)
    service = first + (tokens - 1) * step  # the prompt's one chunk, then a step a token
    rate = 0.8 * servers / service
    trace = Trace("poisson", tuple(dataclasses.replace(r, arrival=r.arrival / rate) for r in probe.requests))
    raw = run(stack, trace, Options())
    waits = [w for w, o in zip(raw.wait, raw.outcome, strict=True) if o == Outcome.SERVED]
    expected = erlang_c_wait(servers, rate, 1 / service)
    assert len(waits) == len(trace.requests)
    assert abs(sum(waits) / len(waits) - expected) / expected < 0.12, (sum(waits) / len(waits), expected)


def test_steady_load_below_capacity_meets_the_objective(pilot: StackModel) -> None:
    result = simulate_model(pilot, read(DATA / "steady.csv"))
    assert result.met and result.outcomes["served"] == result.offered
    assert result.ttft_attainment >= ttft_objective().share
    assert result.limits == []


def test_a_step_above_the_pool_ceiling_does_not(pilot: StackModel) -> None:
    """Twice what the pool's GPUs serve, for longer than a cold start: the ceiling bites and the objective is lost."""
    stack = unlimited(pilot)
    m = stack.models["llama-8b"]
    assert m.autoscaler is not None
    stack = dataclasses.replace(
        stack,
        models={"llama-8b": dataclasses.replace(m, autoscaler=dataclasses.replace(m.autoscaler, max_replicas=6))},
        quotas=dict.fromkeys(stack.quotas, 64),
    )
    ceiling = stack.pools[m.pool].max_gpus // m.gpus_per_replica
    per_replica = m.capacity_output_tokens_per_second / 200  # requests a second of 200 output tokens
    low = poisson(0.5 * per_replica, 600, seed=1).requests
    high = poisson(2 * ceiling * per_replica, 3 * m.cold_start.total_seconds, seed=2).requests
    trace = Trace("step", low + tuple(dataclasses.replace(r, arrival=r.arrival + 600) for r in high))
    result = simulate_model(stack, trace)
    assert not result.met
    assert "pool ceiling" in [x["limit"] for x in result.limits]
    assert max(result.models["llama-8b"].run.ready) == ceiling


# --- monotonicity -------------------------------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), scale=st.floats(1.1, 3.0))
def test_more_arrivals_never_attain_more(pilot: StackModel, seed: int, scale: float) -> None:
    """At one replica, no request of a trace fares better with more requests beside it (with several, the least busy
    replica a request lands on depends on the others: only the share is compared, on the shipped traces below)."""
    stack = fixed(pilot, 1)
    trace = poisson(3.0, 300, seed=seed, output_mean=300, prompt=800)
    base = run(stack, trace, Options(seed=seed))
    more = run(stack, trace, Options(rate_scale=scale, seed=seed))
    objective = stack.objective.seconds
    where = {(r.arrival, r.input_tokens, r.output_tokens): i for i, r in enumerate(more.requests)}
    for i, r in enumerate(base.requests):
        j = where[(r.arrival, r.input_tokens, r.output_tokens)]
        # 2%: a replica's step is priced at the trace's mean prompt and answer, which the copies move a little.
        assert more.ttft[j] >= 0.98 * base.ttft[i] or math.isnan(more.ttft[j])
    attained = lambda raw: sum(1 for t in raw.ttft if t <= objective)  # noqa: E731
    assert attained(more) / len(more.requests) <= attained(base) / len(base.requests) + 1e-9


def test_rate_scale_never_raises_attainment_on_a_shipped_trace(pilot: StackModel) -> None:
    trace = read(DATA / "bursty.csv")
    shares = [simulate_model(pilot, trace, Options(rate_scale=x)).ttft_attainment for x in (0.5, 1, 1.5, 2)]
    assert shares == sorted(shares, reverse=True), shares


@pytest.mark.parametrize("ceilings", [(1, 2, 4, 6)])
def test_a_higher_ceiling_never_attains_less(pilot: StackModel, ceilings: tuple[int, ...]) -> None:
    stack = unlimited(pilot)
    m = stack.models["llama-8b"]
    assert m.autoscaler is not None
    per_replica = m.capacity_output_tokens_per_second / 200
    trace = poisson(4 * per_replica, 2 * m.cold_start.total_seconds, seed=3)
    shares = []
    for gpus in ceilings:
        model = dataclasses.replace(m, autoscaler=dataclasses.replace(m.autoscaler, max_replicas=8))
        variant = dataclasses.replace(
            stack,
            models={"llama-8b": model},
            pools={m.pool: dataclasses.replace(stack.pools[m.pool], max_gpus=gpus)},
            quotas=dict.fromkeys(stack.quotas, 64),
        )
        shares.append(simulate_model(variant, trace).ttft_attainment)
    assert shares == sorted(shares), shares


# --- conservation -------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    arrivals=st.lists(
        st.tuples(st.floats(0, 900), st.integers(1, 8000), st.integers(1, 2000)), min_size=1, max_size=300
    ),
    scale=st.sampled_from([0.5, 1.0, 2.5]),
)
def test_every_request_is_accounted_for(
    pilot: StackModel, arrivals: list[tuple[float, int, int]], scale: float
) -> None:
    requests = tuple(
        sorted((Request(t, "llama-8b", "internal", p, o) for t, p, o in arrivals), key=lambda r: r.arrival)
    )
    result = simulate_model(pilot, Trace("random", requests), Options(rate_scale=scale))
    j = result.to_json()["requests"]
    assert j["served"] + j["rejected"] + j["timed_out"] == j["offered"]
    assert j["accounted_for"]
    assert sum(j["rejected_by"].values()) == j["rejected"]


def test_the_same_inputs_give_the_same_result(pilot: StackModel) -> None:
    trace = read(DATA / "diurnal.csv")
    first = simulate_model(pilot, trace, Options(rate_scale=1.3, seed=5)).to_json()
    assert simulate_model(pilot, trace, Options(rate_scale=1.3, seed=5)).to_json() == first
    assert simulate_model(pilot, trace, Options(rate_scale=1.3, seed=6)).to_json() != first


def test_the_objective_is_the_alerts_one() -> None:
    objective = ttft_objective()
    assert (objective.seconds, objective.share) == (2.5, 0.99)


# --- inputs and outputs -------------------------------------------------------------------------------------


def read(path: Path) -> Trace:
    from components.simulate.trace import read_azure_csv

    return read_azure_csv(path, model="llama-8b", tenant="internal")


def test_the_shipped_traces_are_what_the_generator_writes(tmp_path: Path) -> None:
    generate.write_all(tmp_path)
    for name in generate.SHIPPED:
        assert (tmp_path / f"{name}.csv").read_bytes() == (DATA / f"{name}.csv").read_bytes(), name


def modelyard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODELYARD, *args], capture_output=True, text=True, cwd=ROOT, check=False)


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        (
            "bad.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\nyesterday,1,2\n",
            "bad.csv:3:TIMESTAMP",
        ),
        (
            "bad.csv",
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,-4,44\n",
            "bad.csv:2:ContextTokens",
        ),
        (
            "bad.jsonl",
            '{"arrival_seconds": 0, "model": "llama-8b", "tenant": "internal", "input_tokens": 5, '
            '"output_tokens": 5}\n{"arrival_seconds": "x", "model": "llama-8b", "tenant": "internal", '
            '"input_tokens": 5, "output_tokens": 5}\n',
            "bad.jsonl:2:arrival_seconds",
        ),
        (
            "bad.jsonl",
            '{"arrival_seconds": 0, "model": "gpt-9", "tenant": "internal", "input_tokens": 5, "output_tokens": 5}\n',
            "bad.jsonl:1:model",
        ),
        ("bad.jsonl", "{not json\n", "bad.jsonl:1:2"),
    ],
)
def test_a_bad_trace_is_refused_naming_line_and_column(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    done = modelyard("simulate", "--stack", "pilot", "--trace", str(path))
    assert done.returncode == 2, done.stderr
    assert where in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_command_reports_json_markdown_and_a_plot(tmp_path: Path) -> None:
    done = modelyard(
        "simulate",
        "--stack",
        "pilot",
        "--trace",
        str(DATA / "bursty.csv"),
        "--json",
        "--markdown",
        str(tmp_path / "report.markdown"),
        "--plot",
        str(tmp_path / "report.svg"),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["requests"]["accounted_for"] and result["requests"]["rejected"] > 0
    assert result["first_limit"] == "rate limit"
    assert set(result) >= {
        "slo",
        "ttft_seconds",
        "itl_seconds",
        "gpu_hours",
        "usd",
        "idle_usd",
        "usd_per_million_output_tokens",
        "limits",
    }
    assert "| requests |" in (tmp_path / "report.markdown").read_text()
    assert (tmp_path / "report.svg").read_text().startswith("<svg")


def test_the_docs_plot_is_what_the_command_draws(tmp_path: Path) -> None:
    """docs/simulate.md's plot: `modelyard simulate --stack product --trace .../diurnal.csv --rate-scale 6
    --plot docs/simulate-product-diurnal.svg`."""
    done = modelyard(
        "simulate",
        "--stack",
        "product",
        "--trace",
        str(DATA / "diurnal.csv"),
        "--model",
        "llama-8b",
        "--tenant",
        "product",
        "--rate-scale",
        "6",
        "--plot",
        str(tmp_path / "plot.svg"),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plot.svg").read_text() == (ROOT / "docs" / "simulate-product-diurnal.svg").read_text()
    doc = " ".join((ROOT / "docs" / "simulate.md").read_text().split("## 4. A walk-through", 1)[1].split())
    assert "docs/simulate-product-diurnal.svg" in doc
    # The walk-through's figures are this run's.
    result = json.loads(done.stdout)
    llama = result["models"]["llama-8b"]
    limits = {limit["limit"]: limit for limit in result["limits"]}
    timeline = llama["timeline"]
    first_new_node = next(
        s for s, n in zip(timeline["seconds"], timeline["nodes"], strict=True) if n > timeline["nodes"][0]
    )
    offered = result["requests"]["offered"]
    wanted_at = limits["replicas.max"]["at_seconds"]
    figures = {
        "about 18 requests a second at the peak": f"about {generate.SHIPPED['diurnal'][1] * 6:.0f} requests a second",
        "seventh replica at 18 minutes": f"a seventh replica {wanted_at / 60:.0f} minutes in",
        "replicas.max is 6": f"(replicas.max is {llama['replicas']['max']}: the first limit to bite)",
        "new nodes after 40 minutes": f"new nodes come only after {first_new_node // 600 * 10} minutes",
        "15% time out": f"{result['requests']['timed_out'] / offered:.0%} of the requests time out",
        "attainment 13%": f"attainment is {result['slo']['ttft_attainment']:.0%}",
    }
    assert result["first_limit"] == "replicas.max" and llama["replicas"]["max"] == 6
    assert limits["replicas.max"]["what"] == "llama-8b: wanted 7"
    assert max(timeline["queue"]) >= 1000, "the queue grows to thousands"
    for what, sentence in figures.items():
        assert sentence in doc, (what, sentence)


def test_tco_from_a_trace_says_which_utilisation_it_used() -> None:
    done = modelyard("tco", "--stack", "pilot", "--trace", str(DATA / "steady.csv"), "--json")
    assert done.returncode == 0, done.stderr
    cost = json.loads(done.stdout)
    assert cost["tokens"]["utilisation_basis"].startswith("simulated from steady.csv")
    assert cost["tokens"]["utilisation"] == str(cost["simulation"]["utilisation"])
    assert cost["simulation"]["utilisation_setting"] == 0.5
    assumed = modelyard("tco", "--stack", "pilot", "--json")
    assert json.loads(assumed.stdout)["tokens"]["utilisation_basis"] == "cost.utilisation"


def test_render_svg_is_deterministic(pilot: StackModel) -> None:
    trace = read(DATA / "steady.csv")
    assert render_svg(simulate_model(pilot, trace)) == render_svg(simulate_model(pilot, trace))


def test_a_pools_measured_node_launch_reaches_the_simulation_and_a_faster_one_never_attains_less() -> None:
    """`gpu_pools.<p>.node_launch_seconds` (a team's own measurement) replaces the catalog's per-family figure in the
    cold start the simulator replays; on a burst above the running replicas, a faster launch never attains less."""
    base = stack_settings("pilot")
    (pool_name,) = base.pools
    shares = []
    for seconds in (900, 300, 60):
        pools = {pool_name: dataclasses.replace(base.pools[pool_name], node_launch_seconds=seconds)}
        stack = unlimited(stack_model(dataclasses.replace(base, pools=pools)))
        m = stack.models["llama-8b"]
        assert m.cold_start.node_launch_seconds == seconds
        assert m.autoscaler is not None
        # Room to scale to what the burst needs: the launch time, not a ceiling, decides how long it queues.
        model = dataclasses.replace(m, autoscaler=dataclasses.replace(m.autoscaler, max_replicas=8))
        stack = dataclasses.replace(
            stack,
            models={"llama-8b": model},
            pools={m.pool: dataclasses.replace(stack.pools[m.pool], max_gpus=8)},
            quotas=dict.fromkeys(stack.quotas, 64),
        )
        per_replica = m.capacity_output_tokens_per_second / 200
        shares.append(simulate_model(stack, poisson(3 * per_replica, 3600, seed=5)).ttft_attainment)
    assert shares == sorted(shares), shares
    assert shares[0] < shares[-1], shares  # the launch time matters on this trace, so the test can fail
