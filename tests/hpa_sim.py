"""A model server fleet under a KEDA ScaledObject, simulated with the Horizontal Pod Autoscaler's documented algorithm.

Everything the autoscaler does is read from a rendered ScaledObject (`Autoscaler.from_scaled_object`); the rest is the
documented behaviour of the pieces between vLLM and the Deployment:

- vLLM (a fluid model): requests arrive at `rate(t)` per second and each runs `service_seconds`; a ready replica
  runs at most `slots` at once (its --max-num-seqs), the rest wait. The gauges are the running and waiting counts.
  A request that waits longer than `timeout_seconds` is given up (the gateway's request timeout ends it, and vLLM
  drops a request whose client is gone), so a queue holds at most that many seconds of arrivals.
- Prometheus scrapes the gauges every `scrape_seconds` (the ServiceMonitor's interval); a query reads the last scrape.
- KEDA answers the HPA's request with the query's value, or with the value cached at its last poll when the trigger
  sets `useCachedMetrics` (KEDA 2.19's ScaledObject specification: from 1 to N replicas the HPA asks on its own).
- The HPA (pkg/controller/podautoscaler of Kubernetes, autoscaling/v2), every HPA_SYNC_SECONDS (15 s, the
  kube-controller-manager default):
  * an External metric with an AverageValue target: ratio = value / (target x current replicas); within the 10%
    tolerance the proposal is the current count, else ceil(value / target) (replica_calculator.go,
    GetExternalPerPodMetricReplicas; current is the scale's status replicas, ready or not);
  * stabilisation: the proposal is recorded; the recommendation is the current count raised to the lowest proposal
    of the scale-up window and lowered to the highest of the scale-down window (horizontal.go,
    stabilizeRecommendationWithBehaviors);
  * policies: from the replicas at the start of each policy's period (current minus added plus removed within it),
    Pods adds or removes `value`, Percent multiplies by (1 +/- value/100) (ceil up, truncate down); selectPolicy Max
    (the default) takes the largest change; then minReplicas..maxReplicas (calculateScaleUpLimitWithScalingRules,
    calculateScaleDownLimitWithBehaviors). Without a behaviour the defaults apply: scale-up window 0 with
    Percent 100 / Pods 4 every 15 s, scale-down window 300 s with Percent 100 every 15 s.
- The fleet starts at `initial_replicas` (default replicas.min), all serving, with the load of t=0 in flight and a
  history of proposals of that count (as an HPA that has run a while at it).
- The Deployment: a new replica serves `cold_start_seconds` after the decision (a new GPU node, image, weights,
  load); a removed one goes at once, the newest (or one not ready yet) first, finishing what it runs.

What this cannot show: the real spread of vLLM's service times, the gateway's retries, Prometheus or KEDA outages,
Karpenter's launch failures. It shows the controller's dynamics on the signal the chart chooses.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

HPA_SYNC_SECONDS = 15
HPA_TOLERANCE = 0.1
# autoscaling/v2 defaults when a ScaledObject sets no behaviour (the HPA walkthrough's "default behavior").
DEFAULT_SCALE_UP = {"window": 0, "policies": (("Percent", 100, 15), ("Pods", 4, 15)), "select": "Max"}
DEFAULT_SCALE_DOWN = {"window": 300, "policies": (("Percent", 100, 15),), "select": "Max"}

# The one query shape the chart renders: a sum of sums of gauges over one label selector.
_TERM = r"sum\((?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*\}\)"


def query_metrics(query: str) -> tuple[str, ...]:
    """The gauges a query adds up; anything but `sum(a{...}) + sum(b{...}) ...` is refused (the simulator could not
    evaluate it, so a change of the chart's query must come with a change here)."""
    terms = [t.strip() for t in query.split(" + ")]
    names = []
    for term in terms:
        match = re.fullmatch(_TERM, term)
        if match is None:
            raise ValueError(f"cannot evaluate the query term {term!r} of {query!r}")
        names.append(match["name"])
    return tuple(names)


@dataclass(frozen=True)
class Rules:
    """One direction's behaviour: stabilisation window, policies (type, value, period seconds), selectPolicy."""

    window: int
    policies: tuple[tuple[str, int, int], ...]
    select: str

    @classmethod
    def of(cls, behavior: Mapping[str, Any] | None, default: Mapping[str, Any]) -> Rules:
        if behavior is None:
            return cls(window=default["window"], policies=default["policies"], select=default["select"])
        policies = behavior.get("policies")
        return cls(
            window=int(behavior.get("stabilizationWindowSeconds", default["window"])),
            policies=tuple((p["type"], int(p["value"]), int(p["periodSeconds"])) for p in policies)
            if policies
            else default["policies"],
            select=behavior.get("selectPolicy", "Max"),
        )


@dataclass(frozen=True)
class Autoscaler:
    """The parameters of one ScaledObject, as KEDA hands them to the HPA it creates."""

    min_replicas: int
    max_replicas: int
    target: float
    metric_type: str
    metrics: tuple[str, ...]
    polling_seconds: int
    cached: bool
    up: Rules
    down: Rules

    @classmethod
    def from_scaled_object(cls, obj: Mapping[str, Any]) -> Autoscaler:
        spec = obj["spec"]
        (trigger,) = spec["triggers"]
        if trigger["type"] != "prometheus":
            raise ValueError(f"only a prometheus trigger is simulated, not {trigger['type']}")
        behavior = spec.get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
        return cls(
            # KEDA: minReplicaCount 0 or absent gives the HPA minReplicas 1 (its ScaledObject specification).
            min_replicas=max(1, int(spec.get("minReplicaCount", 0))),
            max_replicas=int(spec.get("maxReplicaCount", 100)),
            target=float(trigger["metadata"]["threshold"]),
            metric_type=trigger.get("metricType", "AverageValue"),
            metrics=query_metrics(trigger["metadata"]["query"]),
            polling_seconds=int(spec.get("pollingInterval", 30)),
            cached=bool(trigger.get("useCachedMetrics", False)),
            up=Rules.of(behavior.get("scaleUp"), DEFAULT_SCALE_UP),
            down=Rules.of(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN),
        )


@dataclass
class Run:
    """What happened: the replica count the HPA set at each of its syncs, and the load the servers saw."""

    times: list[int] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    ready: list[int] = field(default_factory=list)
    waiting: list[float] = field(default_factory=list)

    def changes(self) -> list[tuple[int, int, int]]:
        """(time, from, to) of every change of the replica count."""
        return [
            (self.times[i], self.replicas[i - 1], self.replicas[i])
            for i in range(1, len(self.replicas))
            if self.replicas[i] != self.replicas[i - 1]
        ]

    def reversals(self) -> int:
        """How often the count turned from growing to shrinking or back: flapping is many of them."""
        directions = [1 if to > was else -1 for _, was, to in self.changes()]
        return sum(1 for a, b in itertools.pairwise(directions) if a != b)

    def at(self, second: int) -> int:
        """The replica count the HPA had set at `second`."""
        index = max(i for i, t in enumerate(self.times) if t <= second)
        return self.replicas[index]


def _change_in_period(events: list[tuple[int, int]], now: int, period: int) -> int:
    return sum(n for t, n in events if t > now - period)


def simulate(
    scaler: Autoscaler,
    *,
    rate: Callable[[float], float],
    service_seconds: float,
    slots: int,
    cold_start_seconds: int,
    duration_seconds: int,
    scrape_seconds: int,
    timeout_seconds: int,
    initial_replicas: int | None = None,
    step_seconds: int = 5,
) -> Run:
    """Drive the fleet and the HPA over `duration_seconds` of `rate(t)` requests per second."""
    if HPA_SYNC_SECONDS % step_seconds or scrape_seconds % step_seconds:
        raise ValueError("the step must divide the HPA's sync period and the scrape interval")
    if scaler.metric_type != "AverageValue":
        raise ValueError(f"metricType {scaler.metric_type} is not simulated")
    start = scaler.min_replicas if initial_replicas is None else initial_replicas
    pods: list[float] = [-float(cold_start_seconds)] * start  # when each pod serves from
    running = min(rate(0) * service_seconds, start * slots)
    waiting = rate(0) * service_seconds - running
    scraped = {"running": running, "waiting": waiting}
    cached_value = 0.0
    horizon = max(scaler.up.window, scaler.down.window)
    proposals = [(t, start) for t in range(-horizon, 0, HPA_SYNC_SECONDS)]
    ups: list[tuple[int, int]] = []
    downs: list[tuple[int, int]] = []
    run = Run()
    gauges = {"vllm:num_requests_running": "running", "vllm:num_requests_waiting": "waiting"}
    for name in scaler.metrics:
        if name not in gauges:
            raise ValueError(f"the simulated servers expose no {name}")

    for now in range(0, duration_seconds + 1, step_seconds):
        # vLLM: completions, arrivals, admissions into free slots of ready replicas.
        capacity = sum(1 for p in pods if p <= now) * slots
        running -= running * min(1.0, step_seconds / service_seconds)
        waiting = min(waiting + rate(now) * step_seconds, rate(now) * timeout_seconds)
        admitted = max(0.0, min(waiting, capacity - running))
        running += admitted
        waiting -= admitted
        if now % scrape_seconds == 0:
            scraped = {"running": running, "waiting": waiting}
        if now % scaler.polling_seconds == 0 or not scaler.cached:
            cached_value = sum(scraped[gauges[name]] for name in scaler.metrics)
        if now % HPA_SYNC_SECONDS:
            continue

        # The HPA: proposal from the metric, stabilisation, policies, bounds.
        current = len(pods)
        ratio = cached_value / (scaler.target * current)
        proposal = current if abs(1.0 - ratio) <= HPA_TOLERANCE else math.ceil(cached_value / scaler.target)
        proposals = [(t, p) for t, p in proposals if t > now - horizon - HPA_SYNC_SECONDS]
        up_floor = min([p for t, p in proposals if t > now - scaler.up.window] + [proposal])
        down_ceiling = max([p for t, p in proposals if t > now - scaler.down.window] + [proposal])
        proposals.append((now, proposal))
        desired = min(max(current, up_floor), down_ceiling)
        if desired > current:
            limits = []
            for kind, value, period in scaler.up.policies:
                start = current - _change_in_period(ups, now, period) + _change_in_period(downs, now, period)
                limits.append(start + value if kind == "Pods" else math.ceil(start * (1 + value / 100)))
            limit = max(limits) if scaler.up.select == "Max" else min(limits)
            desired = min(desired, max(limit, current), scaler.max_replicas)
        elif desired < current:
            limits = []
            for kind, value, period in scaler.down.policies:
                start = current - _change_in_period(ups, now, period) + _change_in_period(downs, now, period)
                limits.append(start - value if kind == "Pods" else int(start * (1 - value / 100)))
            limit = min(limits) if scaler.down.select == "Max" else max(limits)
            desired = max(desired, min(limit, current), scaler.min_replicas)
        desired = min(max(desired, scaler.min_replicas), scaler.max_replicas)

        # The Deployment: new pods serve after a cold start; the newest (not ready first) go first.
        if desired > current:
            pods += [now + cold_start_seconds] * (desired - current)
            ups.append((now, desired - current))
        elif desired < current:
            pods = sorted(pods)[:desired]
            downs.append((now, current - desired))
        run.times.append(now)
        run.replicas.append(len(pods))
        run.ready.append(sum(1 for p in pods if p <= now))
        run.waiting.append(waiting)
    return run
