"""The autoscaling the chart renders, driven through the HPA's documented algorithm (components/simulate/hpa.py, in
the fluid fleet of tests/hpa_sim.py) over synthetic
load curves: every parameter (signal, target, windows, policies, bounds, polling) is read from the ScaledObject that
charts/llm-serving renders with the real Helm engine for each autoscaled model of the shipped stacks; the cold start is
the one serving_values passes to the chart.

Curves are in units of what one replica is sized to carry (the trigger's threshold), so they fit every model; `needed`
is one replica above replicas.min, or one below replicas.max where that is more:
- steady: the fleet at `needed`, serving 0.3 replica less than it carries, with a +/-8% ripple (the old signal's
  counterexample: at one replica fewer, the ripple's peaks overload it);
- spike: from half of replicas.min's load to replicas.max's, for 75% of the scale-up window (the queue a spike leaves
  takes minutes to drain, and the servers hold more than they carry until it has), or 10 minutes beyond the window
  (the control that shows the window is what holds);
- lull: the steady fleet's load falls to half of replicas.min's for 90% of the cold start (or 10 minutes beyond);
- growth: from half of replicas.min's load, a ramp over an hour to half a replica below `needed`, held for three
  hours (or three cold starts), then back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import helm_python as helm
import pytest

from components.contract import GENERATION_TIMEOUT_SECONDS, VLLM_REQUESTS_RUNNING, VLLM_REQUESTS_WAITING
from components.k8s.monitoring.assets import known_metrics
from components.settings import Settings
from components.simulate.hpa import Autoscaler, query_metrics
from tests.conftest import ROOT, SHIPPED_STACKS
from tests.hpa_sim import Run, simulate
from tests.test_llm_serving_chart import CHART_DIR, namespace_of, of_kind, render, stack_settings, stack_values

# A chat request's generation (a few hundred tokens at tens of tokens a second): an assumption of the curves only;
# the autoscaler's behaviour does not depend on it beyond the queue's size.
SERVICE_SECONDS = 30
HOUR = 3600
HPA_WINDOW_LIMIT = 3600  # autoscaling/v2: stabilizationWindowSeconds is at most one hour


# Every model of the shipped stacks that has room to scale (a ScaledObject; the fixture checks the chart renders one).
CASES = [
    f"{stack}-{model}"
    for stack in SHIPPED_STACKS
    for model, settings in sorted(stack_settings(stack).models.items())
    if settings.replicas.max > settings.replicas.min
]


class Release:
    """One model's rendered release: its autoscaler, its servers' slots, Prometheus's scrape, its cold start."""

    def __init__(self, settings: Settings, model: str, chart: helm.Chart) -> None:
        values = stack_values(settings, model)
        objects = render(chart, values, name=model, namespace=namespace_of(settings, model))
        scaled = of_kind(objects, "ScaledObject")
        self.scaled_object: dict[str, Any] | None = scaled[0] if scaled else None
        (deployment,) = of_kind(objects, "Deployment")
        (server,) = deployment["spec"]["template"]["spec"]["containers"]
        (slots,) = [a.split("=", 1)[1] for a in server["args"] if a.startswith("--max-num-seqs=")]
        self.slots = int(slots)
        (monitor,) = of_kind(objects, "ServiceMonitor")
        (endpoint,) = monitor["spec"]["endpoints"]
        self.scrape_seconds = int(endpoint["interval"].removesuffix("s"))
        self.cold_start = int(values["autoscaling"]["coldStartSeconds"])

    @property
    def scaler(self) -> Autoscaler:
        assert self.scaled_object is not None
        return Autoscaler.from_scaled_object(self.scaled_object)

    @property
    def needed(self) -> int:
        scaler = self.scaler
        return max(scaler.min_replicas + 1, scaler.max_replicas - 1)

    def run(
        self, load: Callable[[float], float], duration: int, scaler: Autoscaler | None = None, start: int | None = None
    ) -> Run:
        """`load(t)`: requests in flight the clients would keep, in units of the trigger's threshold."""
        target = self.scaler.target
        return simulate(
            scaler or self.scaler,
            rate=lambda t: load(t) * target / SERVICE_SECONDS,
            service_seconds=SERVICE_SECONDS,
            slots=self.slots,
            cold_start_seconds=self.cold_start,
            duration_seconds=duration,
            scrape_seconds=self.scrape_seconds,
            timeout_seconds=GENERATION_TIMEOUT_SECONDS,
            initial_replicas=start,
        )

    def steady(self) -> Callable[[float], float]:
        base = self.needed - 0.3
        return lambda t: base * (1 + 0.05 * math.sin(2 * math.pi * t / 420) + 0.03 * math.sin(2 * math.pi * t / 1380))

    def queue_only(self) -> Autoscaler:
        """The same ScaledObject on the 0.3.0 chart's signal: the summed waiting queue, 4 per replica."""
        assert self.scaled_object is not None
        obj = {**self.scaled_object, "spec": {**self.scaled_object["spec"]}}
        (trigger,) = obj["spec"]["triggers"]
        selector = trigger["metadata"]["query"].split("{", 1)[1].split("}", 1)[0]
        metadata = {**trigger["metadata"], "query": f"sum({VLLM_REQUESTS_WAITING}{{{selector}}})", "threshold": "4"}
        obj["spec"]["triggers"] = [{**trigger, "metadata": metadata}]
        return Autoscaler.from_scaled_object(obj)


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def autoscaled(chart: helm.Chart) -> dict[str, Release]:
    out = {}
    for stack in SHIPPED_STACKS:
        settings = stack_settings(stack)
        for model in settings.models:
            release = Release(settings, model, chart)
            if release.scaled_object is not None:
                out[f"{stack}-{model}"] = release
    # Every preset autoscales something (the pilot's 8B 1..2, the product's two models, the core's four), and every
    # model with room to scale has its ScaledObject.
    assert {"pilot-llama-8b", "product-llama-70b", "core-deepseek-r1"} <= set(out)
    assert sorted(out) == sorted(CASES)
    return out


# --- what the chart renders ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_the_signal_is_running_plus_waiting_per_replica(autoscaled: dict[str, Release], case: str) -> None:
    release = autoscaled[case]
    assert release.scaled_object is not None
    (trigger,) = release.scaled_object["spec"]["triggers"]
    assert trigger["metricType"] == "AverageValue", case
    # Both gauges, never the queue alone; names from the contract, which metrics.yaml lists as vLLM's gauges.
    assert query_metrics(trigger["metadata"]["query"]) == (VLLM_REQUESTS_RUNNING, VLLM_REQUESTS_WAITING), case
    # What one replica holds: 80% of its batch.
    assert float(trigger["metadata"]["threshold"]) == max(1, release.slots * 80 // 100), case


def test_the_metric_names_are_the_pinned_vllms_gauges() -> None:
    metrics = known_metrics()
    for name in (VLLM_REQUESTS_RUNNING, VLLM_REQUESTS_WAITING):
        assert metrics[name] == {"type": "gauge", "source": "vllm"}, name


@pytest.mark.parametrize("case", CASES)
def test_windows_follow_the_cold_start_within_the_hpa_limit(autoscaled: dict[str, Release], case: str) -> None:
    release = autoscaled[case]
    scaler = release.scaler
    assert scaler.up.window == min(release.cold_start, HPA_WINDOW_LIMIT), case
    assert scaler.down.window == min(max(release.cold_start, 300), HPA_WINDOW_LIMIT), case
    assert scaler.down.policies == (("Pods", 1, 300),), case


# --- the dynamics -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_steady_load_does_not_flap(autoscaled: dict[str, Release], case: str) -> None:
    release = autoscaled[case]
    run = release.run(release.steady(), duration=10 * release.cold_start, start=release.needed)
    assert run.changes() == [], case
    assert max(run.waiting) < 1, case


@pytest.mark.parametrize("case", CASES)
def test_the_queue_alone_flaps_on_the_same_curve(autoscaled: dict[str, Release], case: str) -> None:
    """The counterexample: the 0.3.0 chart's signal with today's windows adds a replica, the queue drains, the
    replica is removed, the queue returns; over and over."""
    release = autoscaled[case]
    run = release.run(
        release.steady(), duration=10 * release.cold_start, scaler=release.queue_only(), start=release.needed
    )
    assert run.reversals() >= 2, (case, run.changes())
    assert max(run.waiting) > 1, case


@pytest.mark.parametrize("case", CASES)
def test_a_spike_shorter_than_the_cold_start_starts_no_replica(autoscaled: dict[str, Release], case: str) -> None:
    release = autoscaled[case]
    scaler = release.scaler
    start, low, high = HOUR, 0.5 * scaler.min_replicas, float(scaler.max_replicas)

    def spike(length: int) -> Callable[[float], float]:
        return lambda t: high if start <= t < start + length else low

    cold_start = min(release.cold_start, HPA_WINDOW_LIMIT)
    short = release.run(spike(int(0.75 * cold_start)), duration=start + 3 * release.cold_start)
    assert max(short.replicas) == scaler.min_replicas, (case, short.changes())
    # The control: a spike that outlasts the window does start replicas (so the window is what held above).
    long = release.run(spike(cold_start + 600), duration=start + 3 * release.cold_start)
    assert max(long.replicas) > scaler.min_replicas, case


@pytest.mark.parametrize("case", CASES)
def test_a_lull_shorter_than_the_cold_start_removes_no_replica(autoscaled: dict[str, Release], case: str) -> None:
    """Scale-down waits as long as getting the replica back would take (up to the HPA's hour)."""
    release = autoscaled[case]
    scaler, needed = release.scaler, release.needed
    start, cold_start = HOUR, min(release.cold_start, HPA_WINDOW_LIMIT)

    def lull(length: int) -> Callable[[float], float]:
        return lambda t: 0.5 * scaler.min_replicas if start <= t < start + length else needed - 0.3

    short = release.run(lull(int(0.9 * cold_start)), duration=start + 3 * release.cold_start, start=needed)
    assert min(short.replicas) == needed, (case, short.changes())
    long = release.run(lull(cold_start + 600), duration=start + 3 * release.cold_start, start=needed)
    assert min(long.replicas) < needed, case


@pytest.mark.parametrize("case", CASES)
def test_sustained_growth_scales_up_serves_and_comes_back_down(autoscaled: dict[str, Release], case: str) -> None:
    release = autoscaled[case]
    scaler = release.scaler
    needed = release.needed
    low, high = 0.5 * scaler.min_replicas, needed - 0.5
    ramp_end = 2 * HOUR
    hold_end = ramp_end + max(3 * HOUR, 3 * release.cold_start)
    drain = scaler.down.window + (scaler.max_replicas - scaler.min_replicas) * 300 + HOUR

    def growth(t: float) -> float:
        if t < HOUR:
            return low
        if t < ramp_end:
            return low + (high - low) * (t - HOUR) / HOUR
        return high if t < hold_end else low

    run = release.run(growth, duration=hold_end + drain)
    last_high = hold_end - release.scrape_seconds  # the last scrape that saw the load
    # Up once, down once: the backlog built while replicas start may ask one replica beyond the need, which goes
    # after the scale-down window; the count never falls below the need while the load holds.
    assert run.reversals() == 1, (case, run.changes())
    assert max(run.replicas) <= needed + 1, (case, run.changes())
    assert all(to >= needed for t, _, to in run.changes() if run.at(t - 15) >= needed and t < hold_end), case
    # Settled at the need, every replica serving and the queue gone, before the load falls; then the minimum.
    assert run.at(hold_end) == needed, (case, run.changes())
    assert run.ready[run.times.index(hold_end)] == needed, case
    assert run.waiting[run.times.index(hold_end)] < 1, case
    assert run.replicas[-1] == scaler.min_replicas, case
    assert all(to > was for t, was, to in run.changes() if hold_end <= t < last_high + scaler.down.window), case


# The rows of docs/serving.md's cold-start table, by the release each describes.
DOCUMENTED_COLD_STARTS = {
    "Llama 3.1 8B bf16": "pilot-llama-8b",
    "Llama 3.3 70B fp8 from bf16": "product-llama-70b",
    "DeepSeek-R1 fp8": "core-deepseek-r1",
    "Llama 3.1 405B fp8 from bf16": "core-llama-405b",
}


def test_the_docs_cold_start_table_is_what_the_kit_computes(autoscaled: dict[str, Release]) -> None:
    text = (ROOT / "docs" / "serving.md").read_text()
    for label, case in DOCUMENTED_COLD_STARTS.items():
        release = autoscaled[case]
        (row,) = [line for line in text.splitlines() if line.startswith(f"| {label} (")]
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{release.cold_start // 60} min", row
        window = min(release.cold_start, HPA_WINDOW_LIMIT)
        assert cells[2].startswith(f"{window} s"), row
