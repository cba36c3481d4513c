"""A model server fleet under a KEDA ScaledObject: a fluid model of vLLM around the package's HPA
(components/simulate/hpa.py, the one the traffic simulator drives too).

- vLLM (a fluid model): requests arrive at `rate(t)` per second and each runs `service_seconds`; a ready replica
  runs at most `slots` at once (its --max-num-seqs), the rest wait. The gauges are the running and waiting counts.
  A request that waits longer than `timeout_seconds` is given up (the gateway's request timeout ends it, and vLLM
  drops a request whose client is gone), so a queue holds at most that many seconds of arrivals.
- Prometheus scrapes the gauges every `scrape_seconds` (the ServiceMonitor's interval); a query reads the last scrape.
- The fleet starts at `initial_replicas` (default replicas.min), all serving, with the load of t=0 in flight.
- The Deployment: a new replica serves `cold_start_seconds` after the decision (a new GPU node, image, weights,
  load); a removed one goes at once, the newest (or one not ready yet) first, finishing what it runs.

What this cannot show: the real spread of vLLM's service times, the gateway's retries, Prometheus or KEDA outages,
Karpenter's launch failures. It shows the controller's dynamics on the signal the chart chooses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from components.simulate.hpa import HPA_SYNC_SECONDS, Autoscaler, HorizontalPodAutoscaler


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
    start = scaler.min_replicas if initial_replicas is None else initial_replicas
    hpa = HorizontalPodAutoscaler(scaler, initial_replicas=start)
    pods: list[float] = [-float(cold_start_seconds)] * start  # when each pod serves from
    running = min(rate(0) * service_seconds, start * slots)
    waiting = rate(0) * service_seconds - running
    scraped = {"running": running, "waiting": waiting}
    cached_value = 0.0
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
        current = len(pods)
        desired = hpa.sync(now, cached_value, current)
        # The Deployment: new pods serve after a cold start; the newest (not ready first) go first.
        if desired > current:
            pods += [now + cold_start_seconds] * (desired - current)
        elif desired < current:
            pods = sorted(pods)[:desired]
        run.times.append(now)
        run.replicas.append(len(pods))
        run.ready.append(sum(1 for p in pods if p <= now))
        run.waiting.append(waiting)
    return run
