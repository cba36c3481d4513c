"""The Horizontal Pod Autoscaler as KEDA drives it, read from a rendered ScaledObject.

Everything the autoscaler does is read from a rendered ScaledObject (`Autoscaler.from_scaled_object`); the controller
(`HorizontalPodAutoscaler.sync`) is the documented algorithm of the HPA that KEDA creates for it:

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
- A controller starts with a history of proposals of its initial count (as an HPA that has run a while at it).

Both the traffic simulator (components/simulate/engine.py) and the chart's autoscaling tests (tests/hpa_sim.py, a
fluid fleet) drive this one implementation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HPA_SYNC_SECONDS = 15
HPA_TOLERANCE = 0.1
# autoscaling/v2 defaults when a ScaledObject sets no behaviour (the HPA walkthrough's "default behavior").
DEFAULT_SCALE_UP = {"window": 0, "policies": (("Percent", 100, 15), ("Pods", 4, 15)), "select": "Max"}
DEFAULT_SCALE_DOWN = {"window": 300, "policies": (("Percent", 100, 15),), "select": "Max"}

# The one query shape the chart renders: a sum of sums of gauges over one label selector.
_TERM = r"sum\((?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*\}\)"


def query_metrics(query: str) -> tuple[str, ...]:
    """The gauges a query adds up; anything but `sum(a{...}) + sum(b{...}) ...` is refused (the simulators could not
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


def _change_in_period(events: list[tuple[float, int]], now: float, period: int) -> int:
    return sum(n for t, n in events if t > now - period)


class HorizontalPodAutoscaler:
    """One HPA's state (its proposals and recent scale events) and its sync step."""

    def __init__(self, scaler: Autoscaler, *, initial_replicas: int, start: float = 0) -> None:
        if scaler.metric_type != "AverageValue":
            raise ValueError(f"metricType {scaler.metric_type} is not simulated")
        self.scaler = scaler
        self.horizon = max(scaler.up.window, scaler.down.window)
        first = int(start)
        self.proposals: list[tuple[float, int]] = [
            (t, initial_replicas) for t in range(first - self.horizon, first, HPA_SYNC_SECONDS)
        ]
        self.ups: list[tuple[float, int]] = []
        self.downs: list[tuple[float, int]] = []
        self.wanted = initial_replicas
        """The last proposal from the metric alone, before windows, policies and bounds (above max_replicas: the
        autoscaler would have added more replicas than it may)."""

    def sync(self, now: float, value: float, current: int) -> int:
        """The replica count the HPA sets at `now` for the metric's `value` with `current` replicas (ready or not)."""
        scaler = self.scaler
        ratio = value / (scaler.target * current)
        proposal = current if abs(1.0 - ratio) <= HPA_TOLERANCE else math.ceil(value / scaler.target)
        self.wanted = proposal
        self.proposals = [(t, p) for t, p in self.proposals if t > now - self.horizon - HPA_SYNC_SECONDS]
        up_floor = min([p for t, p in self.proposals if t > now - scaler.up.window] + [proposal])
        down_ceiling = max([p for t, p in self.proposals if t > now - scaler.down.window] + [proposal])
        self.proposals.append((now, proposal))
        desired = min(max(current, up_floor), down_ceiling)
        if desired > current:
            limits = []
            for kind, amount, period in scaler.up.policies:
                start = current - _change_in_period(self.ups, now, period) + _change_in_period(self.downs, now, period)
                limits.append(start + amount if kind == "Pods" else math.ceil(start * (1 + amount / 100)))
            limit = max(limits) if scaler.up.select == "Max" else min(limits)
            desired = min(desired, max(limit, current), scaler.max_replicas)
        elif desired < current:
            limits = []
            for kind, amount, period in scaler.down.policies:
                start = current - _change_in_period(self.ups, now, period) + _change_in_period(self.downs, now, period)
                limits.append(start - amount if kind == "Pods" else int(start * (1 - amount / 100)))
            limit = min(limits) if scaler.down.select == "Max" else max(limits)
            desired = max(desired, min(limit, current), scaler.min_replicas)
        desired = min(max(desired, scaler.min_replicas), scaler.max_replicas)
        if desired > current:
            self.ups.append((now, desired - current))
        elif desired < current:
            self.downs.append((now, current - desired))
        horizon = max((p for *_, p in (*scaler.up.policies, *scaler.down.policies)), default=0)
        self.ups = [e for e in self.ups if e[0] > now - horizon]
        self.downs = [e for e in self.downs if e[0] > now - horizon]
        return desired
