"""Throughput and latency of one vLLM replica: a roofline model fitted to published measurements.

One engine step decodes one token for every sequence in the batch and, with chunked prefill, carries the
prompt tokens of arriving requests alongside. Per GPU (rank) of the replica:

  memory time   (weights the step touches + KV cache of the batch) / (memory bandwidth x BANDWIDTH_EFFICIENCY)
                dense models read all their weights each step; a mixture of experts reads the share of experts
                its batch routes to, 1 - (1 - active/total)^batch of the weights; each sequence reads its KV
                cache (prompt plus half the answer, on average) with the model's real attention shape
  compute time  2 x active parameters x (decode + prefill tokens) + attention's 4 x layers x heads x head dim
                x context per token, over (peak dense tensor TFLOPS x COMPUTE_EFFICIENCY); FP8 weights compute
                at the FP8 rate where the GPU has FP8 tensor cores, everything else at BF16
  communication tensor parallel: two all-reduces of the step's activations per layer, each costing a latency
                (ALLREDUCE_LATENCY_S by interconnect) plus 2 (tp - 1) / tp of the bytes over the link
  overhead      STEP_OVERHEAD_S per step: scheduling, sampling, kernel launches

step = max(memory, compute) + communication + overhead. Pipeline stages run one after another (no micro-batch
overlap is assumed, which is conservative). In a steady state each sequence finishes after `output_tokens`
steps and a new one brings `prompt_tokens` to prefill, so a step carries batch x prompt / output prefill
tokens. The batch is the smallest of the requests in flight, vLLM's max_num_seqs and what the KV cache holds
at the workload's mean sequence length. Outputs: output tokens/s of the replica (batch / step), TPOT (the
step), TTFT (the prompt's prefill in chunks of max_num_batched_tokens, plus queueing when more requests are
sent than the batch holds).

The six constants are global, fitted once to the vLLM points of components/catalog/throughput.yaml
(`python -m components.sizing.throughput --fit` reruns the search); no point has its own correction.
docs/throughput.md shows the error on every point; tests/test_throughput.py holds the error bounds.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from components.catalog import (
    Gpu,
    Interconnect,
    Model,
    ThroughputPoint,
    WeightDtype,
    gpus,
    instances,
    models,
    throughput_points,
)
from components.sizing.core import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    GB,
    OVERHEAD_GB_PER_GPU,
    kv_cache_gb_per_rank,
    weights_gb,
)

# --- fitted constants (see the module docstring; refit with --fit) ----------------------------------
# Share of peak memory bandwidth a decode step achieves (weights and KV cache streaming).
BANDWIDTH_EFFICIENCY = 0.70
# Share of peak dense tensor FLOPS that large decode batches achieve.
COMPUTE_EFFICIENCY = 0.60
# Share of peak dense tensor FLOPS that prefill achieves (chunks mixed with decodes, MoE routing, attention).
PREFILL_EFFICIENCY = 0.30
# Fixed cost of one engine step: scheduler, launches (vLLM's V1 engine with CUDA graphs).
STEP_OVERHEAD_S = 0.001
# Cost per sequence per step that grows with the batch: scheduling, sampling, detokenizing and streaming
# each sequence's token, and paged-attention work the roofline does not see.
SEQUENCE_OVERHEAD_S = 0.00015
# Latency of one all-reduce within a node. NVLink is fitted; PCIe has no vLLM point to fit and is taken as
# four times NVLink's (PCIe all-reduces go through host bridges; NCCL's own tables put them at 3-5x).
ALLREDUCE_LATENCY_S = {Interconnect.NVLINK: 0.000010, Interconnect.PCIE: 0.000040}

# --- batching choices (not fitted) ----------------------------------------------------------------
# vLLM 0.17.1's own caps (VLLM-BATCH-DEFAULTS): 1,024 sequences and 8,192 batched tokens on GPUs of at least
# 70 GiB other than A100; 256 and 2,048 elsewhere.
LARGE_GPU_GIB = 70
VLLM_MAX_NUM_SEQS = {True: 1024, False: 256}
VLLM_MAX_NUM_BATCHED_TOKENS = {True: 8192, False: 2048}
# The mean sequence a server's KV cache is budgeted for when max_num_seqs is chosen: a chat or RAG request of
# about 1.5K prompt and 0.5K answer tokens (ShareGPT's means are ~220 / ~200; retrieval prompts run longer).
MEAN_SEQUENCE_TOKENS = 2048
# The throughput optimum: the smallest batch within this share of the best throughput the caps allow. Past
# it, more sequences add latency (TPOT) and KV pressure for little throughput.
OPTIMUM_SHARE = 0.98
# The workload sizing and the cost model assume when none is named: 768-token prompts and 256-token answers,
# the 3:1 input-to-output ratio of the cost model's default (cost.input_tokens_per_output_token).
DEFAULT_PROMPT_TOKENS = 768
DEFAULT_OUTPUT_TOKENS = 256
# Activations cross the tensor-parallel link in BF16.
ACTIVATION_BYTES = 2


class Bound(StrEnum):
    MEMORY = "memory-bandwidth bound"
    COMPUTE = "compute bound"


@dataclass(frozen=True, kw_only=True)
class Replica:
    """One replica's layout: what the model needs to know of it."""

    model: Model
    gpu: Gpu
    dtype: WeightDtype
    gpu_memory_gb: float  # per GPU
    tensor_parallel: int
    pipeline_parallel: int = 1
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION

    @property
    def ranks(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def large_gpu(self) -> bool:
        """vLLM's test for its larger batch defaults: at least 70 GiB and not an A100."""
        return self.gpu_memory_gb * GB / 2**30 >= LARGE_GPU_GIB and not self.gpu.model.startswith("A100")


@dataclass(frozen=True, kw_only=True)
class Workload:
    prompt_tokens: float = DEFAULT_PROMPT_TOKENS
    output_tokens: float = DEFAULT_OUTPUT_TOKENS  # mean
    fixed_output_lengths: bool = False  # else exponentially distributed about the mean (chat traffic)

    @property
    def mean_context(self) -> float:
        """Tokens a running sequence holds on average: its prompt and half its answer."""
        return self.prompt_tokens + self.output_tokens / 2


def default_workload(context: int) -> Workload:
    """DEFAULT_PROMPT_TOKENS in and DEFAULT_OUTPUT_TOKENS out, scaled down together to fit ``context``."""
    total = DEFAULT_PROMPT_TOKENS + DEFAULT_OUTPUT_TOKENS
    scale = min(1.0, context / total)
    return Workload(prompt_tokens=DEFAULT_PROMPT_TOKENS * scale, output_tokens=max(1.0, DEFAULT_OUTPUT_TOKENS * scale))


@dataclass(frozen=True, kw_only=True)
class Performance:
    """What one replica delivers at one load."""

    concurrency: int  # requests offered (in flight, or sent at once with burst)
    batch: int  # sequences decoded together
    output_tokens_per_second: float
    ttft_seconds: float
    tpot_seconds: float
    bound: Bound
    limit: str  # what set the batch: the requests, max_num_seqs or the KV cache


def _compute_tflops(replica: Replica) -> float:
    gpu = replica.gpu
    if replica.dtype is WeightDtype.FP8 and gpu.fp8_tflops is not None:
        return gpu.fp8_tflops
    return gpu.bf16_tflops


def _weights_touched_gb(replica: Replica, batch: float) -> float:
    """Weights one step reads, for the whole replica: all of a dense model, the routed share of an MoE's."""
    total, _ = weights_gb(replica.model, replica.dtype)
    share = replica.model.active_params_billions / replica.model.total_params_billions
    if share >= 1:
        return total
    return total * (1 - (1 - share) ** max(batch, 1))


def _kv_gb_per_sequence_per_rank(replica: Replica, context: float) -> float:
    """KV cache one sequence of ``context`` tokens keeps on one GPU (its pipeline stage's layers)."""
    tokens = max(1, math.ceil(context))
    per_tp_rank = kv_cache_gb_per_rank(
        replica.model, context=tokens, concurrency=1, tensor_parallel=replica.tensor_parallel
    )
    return per_tp_rank / replica.pipeline_parallel


def kv_room_gb_per_gpu(replica: Replica) -> float:
    """KV cache one GPU can hold: its budget less its share of the weights and the per-GPU overhead."""
    weights, _ = weights_gb(replica.model, replica.dtype)
    usable = replica.gpu_memory_utilization * replica.gpu_memory_gb
    return max(0.0, usable - weights / replica.ranks - OVERHEAD_GB_PER_GPU)


def kv_sequences(replica: Replica, context: float) -> int:
    """Sequences of ``context`` tokens the replica's KV cache holds at once."""
    per_sequence = _kv_gb_per_sequence_per_rank(replica, context)
    return int(kv_room_gb_per_gpu(replica) // per_sequence) if per_sequence > 0 else 0


def step_seconds(replica: Replica, *, batch: float, prefill_tokens: float, context: float) -> tuple[float, Bound]:
    """Time of one engine step decoding ``batch`` sequences of mean ``context`` plus ``prefill_tokens``."""
    model = replica.model
    attention = model.attention
    ranks = replica.ranks
    memory_gb = _weights_touched_gb(replica, batch) / ranks + batch * _kv_gb_per_sequence_per_rank(replica, context)
    memory_s = memory_gb * GB / (replica.gpu.memory_bandwidth_gb_per_s * GB * BANDWIDTH_EFFICIENCY)
    tokens = batch + prefill_tokens
    width = attention.heads * attention.head_dim
    # Attention reads a decoding token's whole context; a prefill token on average half its prompt.
    decode_flops = batch * (2 * model.active_params_billions * 1e9 + 4 * attention.layers * width * context)
    prefill_flops = prefill_tokens * (2 * model.active_params_billions * 1e9 + 2 * attention.layers * width * context)
    peak = _compute_tflops(replica) * 1e12 * ranks
    compute_s = decode_flops / (peak * COMPUTE_EFFICIENCY) + prefill_flops / (peak * PREFILL_EFFICIENCY)
    communication_s = 0.0
    tp = replica.tensor_parallel
    if tp > 1:
        link = replica.gpu
        per_layer_bytes = tokens * width * ACTIVATION_BYTES * 2 * (tp - 1) / tp
        per_allreduce = ALLREDUCE_LATENCY_S[link.interconnect] + per_layer_bytes / (link.interconnect_gb_per_s * GB)
        communication_s = 2 * attention.layers * per_allreduce / replica.pipeline_parallel
    stage = max(memory_s, compute_s) + communication_s
    bound = Bound.COMPUTE if compute_s > memory_s else Bound.MEMORY
    return replica.pipeline_parallel * stage + STEP_OVERHEAD_S + batch * SEQUENCE_OVERHEAD_S, bound


def performance(
    replica: Replica,
    workload: Workload,
    *,
    concurrency: int,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    burst: bool = False,
) -> Performance:
    """Output tokens/s, TTFT and TPOT of one replica with ``concurrency`` requests in flight (or sent at once)."""
    cap = max_num_seqs if max_num_seqs is not None else VLLM_MAX_NUM_SEQS[replica.large_gpu]
    chunk = max_num_batched_tokens or VLLM_MAX_NUM_BATCHED_TOKENS[replica.large_gpu]
    room = kv_sequences(replica, workload.mean_context)
    batch, limit = min((concurrency, "requests"), (cap, "max_num_seqs"), (max(room, 1), "KV cache"))
    context = workload.mean_context
    prefill_per_step = batch * workload.prompt_tokens / workload.output_tokens
    step, bound = step_seconds(replica, batch=batch, prefill_tokens=prefill_per_step, context=context)
    rate = batch / step
    # First token: the prompt's prefill in chunks of what a step may batch beside the decodes.
    room_per_step = max(chunk - batch, chunk / 2)
    chunks = math.ceil(workload.prompt_tokens / room_per_step)
    chunk_step, _ = step_seconds(
        replica, batch=batch, prefill_tokens=min(workload.prompt_tokens, room_per_step), context=context
    )
    ttft = chunks * chunk_step
    if burst and concurrency <= batch:
        return _wave(replica, workload, concurrency=concurrency, chunk=chunk, limit=limit)
    if burst:
        # More requests than the batch holds: a steady state at the full batch, and a queue before it.
        admitted, _ = step_seconds(replica, batch=0, prefill_tokens=batch * workload.prompt_tokens, context=0)
        ttft = max(ttft, admitted / 2)
        service = ttft + workload.output_tokens * step
        ttft += (concurrency / batch - 1) / 2 * service
    return Performance(
        concurrency=concurrency,
        batch=batch,
        output_tokens_per_second=rate,
        ttft_seconds=ttft,
        tpot_seconds=step,
        bound=bound,
        limit=limit,
    )


def _wave(replica: Replica, workload: Workload, *, concurrency: int, chunk: int, limit: str) -> Performance:
    """Every request admitted at once and drained: prefill all prompts in chunks, then decode while sequences
    finish (all after the mean with fixed lengths; exponentially with varied ones, so the batch thins out)."""
    context = workload.mean_context
    prompts = concurrency * workload.prompt_tokens
    chunk_s, _ = step_seconds(replica, batch=0, prefill_tokens=chunk, context=workload.prompt_tokens)
    prefill_s = math.ceil(prompts / chunk) * chunk_s
    elapsed = busy = 0.0
    step = 0
    tokens = 0.0
    first_step = None
    while True:
        if workload.fixed_output_lengths:
            active = concurrency if step < workload.output_tokens else 0.0
        else:
            active = concurrency * math.exp(-step / workload.output_tokens)
        if active < 1:
            break
        seconds, step_bound = step_seconds(replica, batch=active, prefill_tokens=0, context=context)
        first_step = first_step or (seconds, step_bound)
        elapsed += seconds
        busy += seconds * active
        tokens += active
        step += 1
    assert first_step is not None
    return Performance(
        concurrency=concurrency,
        batch=concurrency,
        output_tokens_per_second=tokens / (prefill_s + elapsed),
        ttft_seconds=prefill_s / 2,
        tpot_seconds=busy / tokens,  # as a request sees it: the steps it decoded in, by its tokens
        bound=first_step[1],
        limit=limit,
    )


def batch_cap(replica: Replica, context: int) -> int:
    """The most sequences worth batching: vLLM's own cap, and what the KV cache holds at the mean sequence."""
    mean = min(context, MEAN_SEQUENCE_TOKENS)
    return max(1, min(VLLM_MAX_NUM_SEQS[replica.large_gpu], kv_sequences(replica, mean)))


def optimum(replica: Replica, workload: Workload, *, context: int) -> Performance:
    """The smallest batch within OPTIMUM_SHARE of the best throughput the batch cap allows."""
    cap = batch_cap(replica, context)
    best = performance(replica, workload, concurrency=cap, max_num_seqs=cap).output_tokens_per_second
    low, high = 1, cap
    while low < high:  # throughput rises with the batch: bisect for the knee
        middle = (low + high) // 2
        rate = performance(replica, workload, concurrency=middle, max_num_seqs=cap).output_tokens_per_second
        if rate >= OPTIMUM_SHARE * best:
            high = middle
        else:
            low = middle + 1
    return performance(replica, workload, concurrency=low, max_num_seqs=cap)


@dataclass(frozen=True, kw_only=True)
class Batching:
    """vLLM's --max-num-seqs and --max-num-batched-tokens for one replica."""

    max_num_seqs: int
    max_num_batched_tokens: int
    basis: str


def batching(replica: Replica, *, context: int, concurrency: int, workload: Workload | None = None) -> Batching:
    """The batch flags: the throughput optimum, within what the KV cache holds at the mean sequence and vLLM's
    own cap, never below the sizing concurrency (which the sizing fitted at full context); the token budget is
    vLLM's default for the GPU, raised to twice the batch so a full batch of decodes leaves room for prefill."""
    workload = workload or Workload()
    cap = batch_cap(replica, context)
    knee = optimum(replica, workload, context=context).batch
    seqs = max(concurrency, knee)
    tokens = max(VLLM_MAX_NUM_BATCHED_TOKENS[replica.large_gpu], 2 * seqs)
    tokens = math.ceil(tokens / 256) * 256
    return Batching(
        max_num_seqs=seqs,
        max_num_batched_tokens=tokens,
        basis=(
            f"throughput optimum {knee} of a cap of {cap} (vLLM's {VLLM_MAX_NUM_SEQS[replica.large_gpu]}; KV cache "
            f"room for {kv_sequences(replica, min(context, MEAN_SEQUENCE_TOKENS))} sequences of "
            f"{min(context, MEAN_SEQUENCE_TOKENS):,} tokens)"
        ),
    )


# --- calibration ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Check:
    point: ThroughputPoint
    predicted: Performance

    @property
    def ratio(self) -> float:
        """Predicted over measured output tokens/s."""
        return self.predicted.output_tokens_per_second / self.point.output_tokens_per_second


def replica_of(point: ThroughputPoint) -> Replica:
    """The measured replica: the point's GPUs with the memory of the catalog's boards of that GPU model."""
    memory = {i.gpu.model: i.gpu_memory_gb for i in instances().values() if i.gpu is not None}
    return Replica(
        model=models()[point.model],
        gpu=gpus()[point.gpu],
        dtype=point.dtype,
        gpu_memory_gb=memory[point.gpu],
        tensor_parallel=point.gpu_count,
    )


def check(point: ThroughputPoint) -> Check:
    workload = Workload(
        prompt_tokens=point.prompt_tokens,
        output_tokens=point.output_tokens,
        fixed_output_lengths=point.fixed_output_lengths,
    )
    predicted = performance(
        replica_of(point),
        workload,
        concurrency=point.concurrency,
        max_num_seqs=point.max_num_seqs,
        burst=point.burst,
    )
    return Check(point=point, predicted=predicted)


def calibration(points: Iterable[ThroughputPoint] | None = None) -> tuple[Check, ...]:
    """The model against every point of the catalog (excluded points included, marked by their reason)."""
    return tuple(check(point) for point in (points if points is not None else throughput_points()))


def error_summary(checks: Sequence[Check]) -> tuple[float, float]:
    """Median absolute relative error and the worst ratio either way (>= 1) over the fitted points."""
    fitted = [c for c in checks if not c.point.excluded]
    errors = [abs(c.ratio - 1) for c in fitted]
    worst = max(max(c.ratio, 1 / c.ratio) for c in fitted)
    return statistics.median(errors), worst


def calibration_markdown() -> str:
    """The calibration table of docs/throughput.md (a test keeps the two equal)."""
    checks = calibration()
    median, worst = error_summary(checks)
    lines = [
        "| model | measured | GPUs | dtype | engine | workload | in / out | sent | measured tok/s | model tok/s "
        "| error | TTFT measured / model | TPOT measured / model | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        p, m = c.point, c.predicted
        sent = f"{p.concurrency:,} at once" if p.burst else f"{p.concurrency} in flight"
        error = f"{c.ratio - 1:+.0%}" if not p.excluded else f"({c.ratio - 1:+.0%}) not fitted: {p.excluded}"
        ttft = f"{p.ttft_ms / 1000:,.2f} s / {m.ttft_seconds:,.2f} s" if p.ttft_ms else f"- / {m.ttft_seconds:,.2f} s"
        tpot = (
            f"{p.tpot_ms:,.1f} / {m.tpot_seconds * 1000:,.1f} ms"
            if p.tpot_ms
            else f"- / {m.tpot_seconds * 1000:,.1f} ms"
        )
        lines.append(
            f"| `{p.model}` | {p.measured_model} | {p.gpu_count} x {p.gpu} | {p.dtype.value} | {p.engine} | "
            f"{p.workload} | {p.prompt_tokens:,.0f} / {p.output_tokens:,.0f} | {sent} | "
            f"{p.output_tokens_per_second:,.0f} | {m.output_tokens_per_second:,.0f} | {error} | {ttft} | {tpot} | "
            f"[{p.source}] |"
        )
    fitted = sum(1 for c in checks if not c.point.excluded)
    lines += [
        "",
        f"Over the {fitted} fitted points: median absolute error {median:.0%}, worst point off by "
        f"{worst:.2f}x. Constants: memory bandwidth efficiency {BANDWIDTH_EFFICIENCY:.2f}, compute efficiency "
        f"{COMPUTE_EFFICIENCY:.2f}, prefill efficiency {PREFILL_EFFICIENCY:.2f}, step overhead "
        f"{STEP_OVERHEAD_S * 1000:g} ms, per-sequence step cost {SEQUENCE_OVERHEAD_S * 1000:g} ms, all-reduce latency "
        + ", ".join(f"{k.value} {v * 1e6:g} us" for k, v in ALLREDUCE_LATENCY_S.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def _fit() -> None:
    """Grid search of the constants for the least median error with no point off by 2x or more."""
    global BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY, PREFILL_EFFICIENCY, STEP_OVERHEAD_S, SEQUENCE_OVERHEAD_S
    points = [p for p in throughput_points() if not p.excluded]
    best: tuple[bool, float] | None = None
    for bw, decode, prefill, step, per_sequence, nvlink in itertools.product(
        (0.6, 0.65, 0.7, 0.75, 0.8),
        (0.3, 0.4, 0.5, 0.6),
        (0.15, 0.2, 0.25, 0.3),
        (0.001, 0.002, 0.003),
        (0.00005, 0.000075, 0.0001, 0.00015),
        (0.00001, 0.00002, 0.00004),
    ):
        BANDWIDTH_EFFICIENCY, COMPUTE_EFFICIENCY, PREFILL_EFFICIENCY = bw, decode, prefill
        STEP_OVERHEAD_S, SEQUENCE_OVERHEAD_S = step, per_sequence
        ALLREDUCE_LATENCY_S[Interconnect.NVLINK], ALLREDUCE_LATENCY_S[Interconnect.PCIE] = nvlink, 4 * nvlink
        median, worst = error_summary(calibration(points))
        key = (worst >= 2, median)
        if best is None or key < best:
            best = key
            print(f"median {median:.3f} worst {worst:.2f}: {bw, decode, prefill, step, per_sequence, nvlink}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.sizing.throughput")
    parser.add_argument("--fit", action="store_true", help="search the constants again (prints the best)")
    args = parser.parse_args(argv)
    if args.fit:
        _fit()
        return 0
    sys.stdout.write(calibration_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
