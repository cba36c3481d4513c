"""The discrete-event simulator: a trace's requests through the gateway, each model's queue and replicas, the
autoscaler, Karpenter's nodes and the cold start, on one clock. Deterministic: the same stack, trace and options
give the same result (the only randomness is `Options.seed`, in how `rate_scale` adds or drops requests).

What happens to a request, in order:
  gateway    its key's, its tenant's and its model's limits a minute (LiteLLM's v3 limiter: a window opens at the
             first request after the last one closed, and counts requests on arrival and prompt plus output tokens,
             the output reserved up front); over one: rejected (429), counted by the limit that refused it
  queue      the model's queue (vLLM's waiting requests, shared by its replicas), first come first served
  replica    admitted to the least busy ready replica with a free slot (below --max-num-seqs); its prompt is
             prefilled in chunks of --max-num-batched-tokens beside the running decodes, then its output decoded
             one token a step with everything in the batch (continuous batching): a step lasts what the
             throughput model gives for the replica's batch at that moment, with the steady share of prefill work
             its requests bring (components.sizing.throughput.step_seconds)
  timeout    a request not finished GENERATION_TIMEOUT_SECONDS after arrival is ended by the gateway (queued or
             running), and counted as timed out
Every request ends as one of served, rejected, timed out.

The fleet: replicas.min replicas serve from the start (a stack that has run a while). Every `tick` the controls run:
Prometheus scrapes vLLM's gauges (running and waiting) every ServiceMonitor interval; KEDA polls; the HPA syncs every
15 s (components/simulate/hpa.py, the ScaledObject's parameters). A new replica needs the tenant's GPU quota (else it
stays pending: ResourceQuota refuses its pod), a free slot on one of its model's nodes (then it starts in the weights
and engine time) or new nodes within the pool's GPU limit (else pending: Karpenter's NodePool limit; then it starts
in the full cold start: node launch, image, weights, engine). A removed replica takes no new request and goes once
its batch is empty; a node empty for the NodePool's consolidateAfter is removed. Pending replicas are placed as soon
as room appears.

Not modelled: the gateway's retries and fallbacks, preemption when the KV cache fills (the batch is capped below it
by --max-num-seqs), prefix caching, Karpenter's launch failures and spot interruptions, several models sharing a
node, the per-pod split of vLLM's queue (one queue per model here), pools' min_nodes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from components.simulate.hpa import HPA_SYNC_SECONDS, HorizontalPodAutoscaler
from components.simulate.stack import ServedModel, StackModel
from components.simulate.trace import Request, Trace
from components.sizing.throughput import step_seconds

SAMPLE_SECONDS = 60  # the timeline's resolution (replicas, nodes, queue)


class Outcome(IntEnum):
    PENDING = 0
    SERVED = 1
    REJECTED = 2
    TIMED_OUT = 3


class Limit(IntEnum):
    """What can hold a stack back, in the order the report names them."""

    RATE_LIMIT = 0
    QUOTA = 1
    POOL_CEILING = 2
    MAX_REPLICAS = 3
    COLD_START = 4


LIMIT_NAMES = {
    Limit.RATE_LIMIT: "rate limit",
    Limit.QUOTA: "quota",
    Limit.POOL_CEILING: "pool ceiling",
    Limit.MAX_REPLICAS: "replicas.max",
    Limit.COLD_START: "cold start",
}


@dataclass(frozen=True, kw_only=True)
class Options:
    rate_scale: float = 1.0
    """Arrivals x this: each request kept floor(x) times, once more with probability frac(x) (copies spread over
    the gap to the next arrival), so a higher scale only adds requests."""
    seed: int = 0
    """The seed of rate_scale's draws."""
    initial_replicas: Mapping[str, int] | None = None
    """Replicas each model starts with (ready); default replicas.min."""


# Event kinds, in the order simultaneous events run.
_READY, _FIRST, _DONE, _TIMEOUT, _CONTROL, _NODE_EMPTY = range(6)


class _Node:
    __slots__ = ("empty_since", "gpus", "launched", "model", "ready_at", "removed", "replicas")

    def __init__(self, model: str, gpus: int, launched: float, ready_at: float) -> None:
        self.model = model
        self.gpus = gpus
        self.launched = launched
        self.ready_at = ready_at
        self.removed: float | None = None
        self.replicas = 0
        self.empty_since: float | None = None


class _Replica:
    __slots__ = (
        "batch",
        "decoding",
        "draining",
        "first_start",
        "gone",
        "ident",
        "nodes",
        "ready_at",
        "started",
        "updated",
        "version",
        "virtual",
    )

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.nodes: list[_Node] = []
        self.started: float | None = None  # placed (its pod scheduled)
        self.ready_at: float | None = None
        self.first_start = False
        self.draining = False
        self.gone = False
        self.batch = 0  # requests in the batch (prefilling or decoding)
        self.decoding: list[tuple[float, int]] = []  # (virtual step it finishes at, request)
        self.virtual = 0.0  # steps every sequence of the batch has advanced since the replica started
        self.updated = 0.0
        self.version = 0


@dataclass
class ModelRun:
    """What happened to one model's fleet over time."""

    times: list[int] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)  # wanted by the autoscaler (pending and starting included)
    ready: list[int] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    queue: list[int] = field(default_factory=list)
    node_seconds: float = 0.0
    idle_node_seconds: float = 0.0
    gpu_seconds: float = 0.0
    ready_replica_seconds: float = 0.0


@dataclass
class RawResult:
    """Per request: outcome, arrival, TTFT, mean inter-token latency, wait in the queue, refusing limit."""

    requests: tuple[Request, ...]
    outcome: list[int]
    ttft: list[float]
    itl: list[float]
    wait: list[float]
    rejected_by: list[str]
    end_seconds: float
    models: dict[str, ModelRun]
    limits: dict[Limit, tuple[float, str]]  # first time each bit, and what


def scale_requests(trace: Trace, rate_scale: float, seed: int) -> tuple[Request, ...]:
    """The trace's requests with arrivals x rate_scale: nested in rate_scale for one seed (a higher scale keeps
    every request a lower one keeps, at the same times)."""
    if rate_scale == 1:
        return trace.requests
    requests = trace.requests
    keep = random.Random(seed).random
    draws = [keep() for _ in requests]
    whole, part = int(rate_scale), rate_scale - int(rate_scale)
    copies_needed = whole + (1 if part else 0)
    jitters = [random.Random(seed * 1_000_003 + j).random for j in range(1, copies_needed)]
    out: list[Request] = []
    for i, r in enumerate(requests):
        count = whole + (1 if draws[i] < part else 0)
        gap = (requests[i + 1].arrival - r.arrival) if i + 1 < len(requests) else 0.0
        if count:
            out.append(r)
        for j in range(1, copies_needed):
            offset = jitters[j - 1]() * gap  # drawn for every request, so a copy's time is the same at any scale
            if j < count:
                out.append(Request(r.arrival + offset, r.model, r.tenant, r.input_tokens, r.output_tokens, r.key))
    out.sort(key=lambda q: q.arrival)
    return tuple(out)


class _Window:
    """A LiteLLM v3 limiter window: opens at the first request after the last one closed, 60 s long."""

    __slots__ = ("requests", "start", "tokens")

    def __init__(self) -> None:
        self.start = -math.inf
        self.requests = 0
        self.tokens = 0

    def fits(self, now: float, tokens: int, rpm: int | None, tpm: int | None) -> str | None:
        if int(now) - self.start >= 60:
            self.start, self.requests, self.tokens = int(now), 0, 0
        if rpm is not None and self.requests + 1 > rpm:
            return "rpm"
        if tpm is not None and self.tokens + tokens > tpm:
            return "tpm"
        return None

    def take(self, tokens: int) -> None:
        self.requests += 1
        self.tokens += tokens


class _Fleet:
    """One model: its queue, replicas, nodes and autoscaler."""

    def __init__(self, model: ServedModel, sim: _Simulation, initial: int, requests: list[Request]) -> None:
        self.m = model
        self.sim = sim
        self.queue: deque[int] = deque()
        self.queued = 0  # live requests in the queue (timed-out ones leave lazily)
        self.replicas: list[_Replica] = []
        self.nodes: list[_Node] = []
        self.pending: list[_Replica] = []
        self.run = ModelRun()
        mine = [r for r in requests if r.model == model.key] or requests[:1]
        prompt = sum(r.input_tokens for r in mine) / max(1, len(mine)) if mine else 768.0
        output = sum(r.output_tokens for r in mine) / max(1, len(mine)) if mine else 256.0
        self.prefill_share = prompt / max(1.0, output)
        self.context = prompt + output / 2
        self.step_table = [0.0] + [self._step(b) for b in range(1, model.max_num_seqs + 1)]
        self.hpa = HorizontalPodAutoscaler(model.autoscaler, initial_replicas=initial) if model.autoscaler else None
        self.scraped = 0.0
        self.polled = 0.0
        self.chunk_steps: dict[tuple[int, int], float] = {}
        for _ in range(initial):
            replica = self._new_replica()
            if not self._place(replica, now=0.0, warm=True):
                self.pending.append(replica)

    def _step(self, batch: int) -> float:
        seconds, _ = step_seconds(
            self.m.replica, batch=batch, prefill_tokens=batch * self.prefill_share, context=self.context
        )
        return seconds

    def _chunk_step(self, batch: int, tokens: int) -> float:
        key = (batch, tokens)
        seconds = self.chunk_steps.get(key)
        if seconds is None:
            seconds, _ = step_seconds(self.m.replica, batch=batch, prefill_tokens=tokens, context=self.context)
            self.chunk_steps[key] = seconds
        return seconds

    def prefill_seconds(self, prompt: int, batch: int) -> float:
        """The prompt's prefill in chunks of what a step batches beside `batch` decodes (the throughput model's)."""
        chunk = self.m.max_num_batched_tokens
        room = max(chunk - batch, chunk // 2)
        chunks = -(-prompt // room)
        tokens = min(prompt, room)
        return chunks * self._chunk_step(batch, -(-tokens // 64) * 64)

    # --- replicas and nodes ------------------------------------------------------------------------

    def _new_replica(self) -> _Replica:
        replica = _Replica(self.sim.next_id())
        self.replicas.append(replica)
        self.sim.replica_by_id[replica.ident] = replica
        return replica

    def live(self) -> list[_Replica]:
        """Replicas the Deployment counts: pending, starting and serving, not the draining."""
        return [r for r in self.replicas if not r.draining and not r.gone]

    def _place(self, replica: _Replica, *, now: float, warm: bool = False) -> bool:
        m, sim = self.m, self.sim
        quota = sim.stack.quotas.get(m.owner)
        if quota is not None and sim.quota_used(m.owner) + m.gpus_per_replica > quota:
            sim.bit(Limit.QUOTA, now, f"{m.key}: tenant {m.owner}'s gpu_quota of {quota} GPUs")
            return False
        cold = m.cold_start
        if m.replicas_per_node > 1:
            for node in self.nodes:
                if node.removed is None and node.replicas < m.replicas_per_node:
                    node.replicas += 1
                    node.empty_since = None
                    replica.nodes = [node]
                    replica.started = now
                    start = max(now, node.ready_at) + (0 if warm else cold.on_a_running_node_seconds)
                    self._starting(replica, now, 0 if warm else start - now)
                    return True
        gpus = m.gpus_per_node * m.nodes_per_replica
        pool = sim.stack.pools[m.pool]
        if sim.pool_used(m.pool) + gpus > pool.max_gpus:
            sim.bit(Limit.POOL_CEILING, now, f"{m.key}: pool {m.pool}'s max_gpus of {pool.max_gpus}")
            return False
        launch = 0 if warm else cold.node_launch_seconds
        nodes = [_Node(m.key, m.gpus_per_node, now, now + launch) for _ in range(m.nodes_per_replica)]
        for node in nodes:
            node.replicas = 1
        self.nodes += nodes
        sim.pool_gpus[m.pool] += gpus
        replica.nodes = nodes
        replica.started = now
        self._starting(replica, now, 0 if warm else cold.total_seconds)
        return True

    def _starting(self, replica: _Replica, now: float, seconds: float) -> None:
        self.sim.quota_gpus[self.m.owner] += self.m.gpus_per_replica
        replica.first_start = seconds > 0
        replica.ready_at = now + seconds
        replica.updated = replica.ready_at
        if seconds <= 0:
            return
        self.sim.push(replica.ready_at, _READY, self.m.key, replica.ident, 0)

    def ready(self, replica: _Replica, now: float) -> None:
        if replica.gone or replica.draining:
            return
        self.admit(now)

    def scale_to(self, desired: int, now: float) -> None:
        live = self.live()
        if desired > len(live):
            for _ in range(desired - len(live)):
                replica = self._new_replica()
                if not self._place(replica, now=now):
                    self.pending.append(replica)
        elif desired < len(live):
            # Pending first, then those not ready yet (newest first), then the newest serving.
            def order(r: _Replica) -> tuple[int, float, int]:
                if r.started is None:
                    return (0, 0.0, -r.ident)
                ready = r.ready_at is not None and r.ready_at <= now
                return (2 if ready else 1, -(r.ready_at or 0.0), -r.ident)

            for replica in sorted(live, key=order)[: len(live) - desired]:
                self.remove(replica, now)

    def remove(self, replica: _Replica, now: float) -> None:
        if replica.started is None:
            replica.gone = True
            self.pending.remove(replica)
            return
        replica.draining = True
        if replica.batch == 0:
            self.release(replica, now)

    def release(self, replica: _Replica, now: float) -> None:
        """A replica's pod is gone: its GPUs leave the quota; its nodes empty."""
        if replica.gone:
            return
        replica.gone = True
        replica.version += 1
        self.sim.quota_gpus[self.m.owner] -= self.m.gpus_per_replica
        for node in replica.nodes:
            node.replicas -= 1
            if node.replicas == 0:
                node.empty_since = now
                after = self.sim.stack.pools[self.m.pool].consolidate_after_seconds
                self.sim.push(now + after, _NODE_EMPTY, self.m.key, id(node), 0)
                self.sim.nodes_by_id[id(node)] = node
        self.sim.place_pending(now)

    def consolidate(self, node: _Node, now: float) -> None:
        after = self.sim.stack.pools[self.m.pool].consolidate_after_seconds
        if node.removed is not None or node.replicas or node.empty_since is None or node.empty_since + after > now:
            return
        node.removed = now
        self.sim.pool_gpus[self.m.pool] -= node.gpus
        self.sim.place_pending(now)

    def retry_pending(self, now: float) -> None:
        while self.pending:
            if not self._place(self.pending[0], now=now):
                return
            self.pending.pop(0)

    # --- requests ------------------------------------------------------------------------------------

    def _advance(self, replica: _Replica, now: float) -> None:
        if replica.batch and now > replica.updated:
            replica.virtual += (now - replica.updated) / self.step_table[replica.batch]
        replica.updated = max(now, replica.updated)

    def _reschedule(self, replica: _Replica, now: float) -> None:
        replica.version += 1
        sim = self.sim
        heap = replica.decoding
        while heap and sim.outcome[heap[0][1]] != Outcome.PENDING:
            heapq.heappop(heap)
        if heap:
            due = now + max(0.0, heap[0][0] - replica.virtual) * self.step_table[replica.batch]
            sim.push(due, _DONE, self.m.key, replica.ident, replica.version)

    def enqueue(self, index: int, now: float) -> None:
        self.queue.append(index)
        self.queued += 1
        self.admit(now)

    def admit(self, now: float) -> None:
        sim = self.sim
        cap = self.m.max_num_seqs
        while self.queued:
            best = None
            for r in self.replicas:
                if r.gone or r.draining or r.ready_at is None or r.ready_at > now or r.batch >= cap:
                    continue
                if best is None or r.batch < best.batch:
                    best = r
            if best is None:
                return
            while self.queue and sim.outcome[self.queue[0]] != Outcome.PENDING:
                self.queue.popleft()
            index = self.queue.popleft()
            self.queued -= 1
            self._advance(best, now)
            best.batch += 1
            sim.wait[index] = now - sim.requests[index].arrival
            sim.where[index] = best.ident
            first = now + self.prefill_seconds(sim.requests[index].input_tokens, best.batch)
            sim.push(first, _FIRST, self.m.key, index, 0)
            self._reschedule(best, now)

    def first_token(self, index: int, now: float) -> None:
        sim = self.sim
        if sim.outcome[index] != Outcome.PENDING:
            return
        replica = sim.replica_by_id[sim.where[index]]
        sim.ttft[index] = now - sim.requests[index].arrival
        sim.first_at[index] = now
        if sim.ttft[index] > sim.stack.objective.seconds and any(
            r.first_start and r.ready_at is not None and r.ready_at > now for r in self.live()
        ):
            sim.bit(Limit.COLD_START, now, f"{self.m.key}: first tokens late while replicas start")
        self._advance(replica, now)
        heapq.heappush(replica.decoding, (replica.virtual + sim.requests[index].output_tokens - 1, index))
        self._reschedule(replica, now)

    def done(self, replica: _Replica, version: int, now: float) -> None:
        if version != replica.version or replica.gone:
            return
        sim = self.sim
        self._advance(replica, now)
        heap = replica.decoding
        finished = 0
        while heap and (heap[0][0] <= replica.virtual + 1e-9 or sim.outcome[heap[0][1]] != Outcome.PENDING):
            _, index = heapq.heappop(heap)
            if sim.outcome[index] != Outcome.PENDING:
                continue
            sim.outcome[index] = Outcome.SERVED
            tokens = sim.requests[index].output_tokens
            sim.itl[index] = (now - sim.first_at[index]) / (tokens - 1) if tokens > 1 else 0.0
            sim.resolved += 1
            finished += 1
        replica.batch -= finished
        if replica.draining and replica.batch == 0:
            self.release(replica, now)
            self.admit(now)
            return
        self._reschedule(replica, now)
        self.admit(now)

    def time_out(self, index: int, now: float) -> None:
        sim = self.sim
        sim.outcome[index] = Outcome.TIMED_OUT
        sim.resolved += 1
        if sim.where[index] < 0:
            self.queued -= 1
            return
        replica = sim.replica_by_id[sim.where[index]]
        self._advance(replica, now)
        replica.batch -= 1
        if replica.draining and replica.batch == 0:
            self.release(replica, now)
        else:
            self._reschedule(replica, now)
        self.admit(now)

    # --- controls ----------------------------------------------------------------------------------

    def gauges(self) -> float:
        running = sum(r.batch for r in self.replicas if not r.gone)
        return float(running + self.queued)

    def control(self, now: int, dt: int) -> None:
        scaler = self.m.autoscaler
        if now % self.m.scrape_seconds == 0:
            self.scraped = self.gauges()
        if scaler is not None and (now % scaler.polling_seconds == 0 or not scaler.cached):
            self.polled = self.scraped
        if self.hpa is not None and now % HPA_SYNC_SECONDS == 0:
            assert scaler is not None
            current = len(self.live())
            desired = self.hpa.sync(now, self.polled, current)
            if self.hpa.wanted > scaler.max_replicas:
                self.sim.bit(Limit.MAX_REPLICAS, now, f"{self.m.key}: wanted {self.hpa.wanted}")
            if desired != current:
                self.scale_to(desired, now)
        # Node time, and the share of it with nothing in the batch (starting nodes included).
        busy_nodes = {id(n) for r in self.replicas if not r.gone and r.batch for n in r.nodes}
        for node in self.nodes:
            if node.removed is None:
                self.run.node_seconds += dt
                self.run.gpu_seconds += dt * node.gpus
                if id(node) not in busy_nodes:
                    self.run.idle_node_seconds += dt
        ready = sum(1 for r in self.live() if r.started is not None and r.ready_at is not None and r.ready_at <= now)
        self.run.ready_replica_seconds += dt * ready
        if now % SAMPLE_SECONDS == 0:
            self.run.times.append(now)
            self.run.replicas.append(len(self.live()))
            self.run.ready.append(ready)
            self.run.nodes.append(sum(1 for n in self.nodes if n.removed is None))
            self.run.queue.append(self.queued)


class _Simulation:
    def __init__(self, stack: StackModel, requests: tuple[Request, ...], options: Options) -> None:
        self.stack = stack
        self.requests = requests
        n = len(requests)
        self.outcome = [Outcome.PENDING] * n
        self.ttft = [math.nan] * n
        self.itl = [math.nan] * n
        self.wait = [math.nan] * n
        self.first_at = [math.nan] * n
        self.where = [-1] * n
        self.rejected_by = [""] * n
        self.resolved = 0
        self.events: list[tuple[float, int, int, str, int, int]] = []
        self.sequence = 0
        self.ids = 0
        self.replica_by_id: dict[int, _Replica] = {}
        self.nodes_by_id: dict[int, _Node] = {}
        self.limits: dict[Limit, tuple[float, str]] = {}
        self.pool_gpus: dict[str, int] = dict.fromkeys(stack.pools, 0)
        self.quota_gpus: dict[str, int] = dict.fromkeys(stack.quotas, 0)
        self.windows: dict[tuple[str, str], _Window] = {}
        initial = options.initial_replicas or {}
        self.fleets: dict[str, _Fleet] = {}
        listed = list(requests)
        for key in sorted(stack.models):
            model = stack.models[key]
            self.fleets[key] = _Fleet(model, self, initial.get(key, model.min_replicas), listed)

    def next_id(self) -> int:
        self.ids += 1
        return self.ids

    def push(self, at: float, kind: int, model: str, subject: int, version: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, kind, self.sequence, model, subject, version))

    def bit(self, limit: Limit, now: float, what: str) -> None:
        if limit not in self.limits:
            self.limits[limit] = (now, what)

    def quota_used(self, tenant: str) -> int:
        return self.quota_gpus.get(tenant, 0)

    def pool_used(self, pool: str) -> int:
        return self.pool_gpus.get(pool, 0)

    def place_pending(self, now: float) -> None:
        for fleet in self.fleets.values():
            if fleet.pending:
                fleet.retry_pending(now)

    def gateway(self, index: int, now: float) -> bool:
        """LiteLLM's limits for one arriving request: admitted, or rejected by the first limit it would pass."""
        stack = self.stack
        r = self.requests[index]
        tokens = r.input_tokens + r.output_tokens
        times = stack.limit_multiplier
        checks: list[tuple[tuple[str, str], int | None, int | None, str]] = []
        if r.key is not None and r.key in stack.key_limits:
            limit = stack.key_limits[r.key][1]
            checks.append((("key", r.key), _times(limit.rpm, times), _times(limit.tpm, times), f"key {r.key}"))
        tenant = r.tenant
        if tenant is not None and tenant in stack.tenant_limits:
            limit = stack.tenant_limits[tenant]
            checks.append((("tenant", tenant), _times(limit.rpm, times), _times(limit.tpm, times), f"tenant {tenant}"))
        if r.model in stack.model_rpm:
            checks.append((("model", r.model), stack.model_rpm[r.model] * times, None, f"model {r.model}"))
        windows = []
        for scope, rpm, tpm, label in checks:
            window = self.windows.get(scope)
            if window is None:
                window = self.windows[scope] = _Window()
            over = window.fits(now, tokens, rpm, tpm)
            if over is not None:
                self.outcome[index] = Outcome.REJECTED
                self.rejected_by[index] = f"{label} {over}"
                self.resolved += 1
                self.bit(Limit.RATE_LIMIT, now, f"{label} {over}")
                return False
            windows.append(window)
        for window in windows:
            window.take(tokens)
        return True

    def run(self) -> float:
        requests = self.requests
        n = len(requests)
        timeout = self.stack.timeout_seconds
        tick = math.gcd(
            HPA_SYNC_SECONDS,
            SAMPLE_SECONDS,
            *(f.m.scrape_seconds for f in self.fleets.values()),
            *(f.m.autoscaler.polling_seconds for f in self.fleets.values() if f.m.autoscaler),
        )
        next_control = 0
        nxt = 0
        now = 0.0
        events = self.events
        while self.resolved < n:
            arrival = requests[nxt].arrival if nxt < n else math.inf
            event_at = events[0][0] if events else math.inf
            if next_control <= arrival and next_control <= event_at:
                now = next_control
                for fleet in self.fleets.values():
                    fleet.control(next_control, tick)
                next_control += tick
                continue
            if arrival <= event_at:
                now = arrival
                index = nxt
                nxt += 1
                if self.gateway(index, now):
                    self.push(now + timeout, _TIMEOUT, requests[index].model, index, 0)
                    self.fleets[requests[index].model].enqueue(index, now)
                continue
            at, kind, _, model, subject, version = heapq.heappop(events)
            now = at
            fleet = self.fleets[model]
            if kind == _READY:
                fleet.ready(self.replica_by_id[subject], now)
            elif kind == _FIRST:
                fleet.first_token(subject, now)
            elif kind == _DONE:
                fleet.done(self.replica_by_id[subject], version, now)
            elif kind == _TIMEOUT:
                if self.outcome[subject] == Outcome.PENDING:
                    fleet.time_out(subject, now)
            elif kind == _NODE_EMPTY:
                fleet.consolidate(self.nodes_by_id[subject], now)
        return max(now, requests[-1].arrival if requests else 0.0)


def _times(limit: int | None, times: int) -> int | None:
    return None if limit is None else limit * times


def run(stack: StackModel, trace: Trace, options: Options) -> RawResult:
    """Replay `trace` against `stack`; every request ends served, rejected or timed out."""
    requests = scale_requests(trace, options.rate_scale, options.seed)
    unknown = sorted({r.model for r in requests} - set(stack.models))
    if unknown:
        raise ValueError(f"the trace calls models the stack does not serve: {', '.join(unknown)}")
    sim = _Simulation(stack, requests, options)
    end = sim.run() if requests else 0.0
    return RawResult(
        requests=requests,
        outcome=[int(o) for o in sim.outcome],
        ttft=sim.ttft,
        itl=sim.itl,
        wait=sim.wait,
        rejected_by=sim.rejected_by,
        end_seconds=end,
        models={key: fleet.run for key, fleet in sim.fleets.items()},
        limits=dict(sorted(sim.limits.items(), key=lambda kv: (kv[1][0], kv[0]))),
    )
