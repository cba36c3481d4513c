"""Sizing: which GPUs one replica of a model needs on each instance type, and what it costs per hour and
per million output tokens. Pure functions over the catalog; no I/O.

Memory, per GPU, against what vLLM may use (gpu_memory_utilization x GPU memory):
  weights   the measured checkpoint size for the dtype where the catalog has one, else parameters x bytes
            per parameter, with embeddings and lm_head kept in bf16 under fp8/mxfp4 (vLLM quantizes linear
            and MoE layers only); split evenly over tensor x pipeline parallel ranks
  KV cache  context x concurrency tokens with the model's real attention shape: 2 x KV heads x head dim
            per layer for grouped-query attention (vLLM keeps max(1, kv_heads // tp) heads per GPU, so KV
            heads are replicated once tp exceeds them); one latent of kv_lora_rank + qk_rope_head_dim per
            layer for multi-head latent attention (replicated on every tensor-parallel rank); sliding-window
            layers hold at most their window
  overhead  a fixed allowance per GPU for activations, CUDA graphs and communication buffers
  margin    a layout fits only when every GPU keeps HEADROOM_GB_PER_GPU free beyond that estimate, and when
            vLLM's own start-up arithmetic (MemoryBreakdown.vllm_kv_room_gb: usable minus weights, the
            profiled activation peak, which the sampler's logits for every batched sequence dominate, and
            non-torch memory) leaves room for context x concurrency
Layouts: tensor parallel within a node from TENSOR_PARALLEL_SIZES (dividing the attention heads), then
pipeline parallel across whole nodes (nodes_per_replica = pipeline_parallel) when one node is too small.
Every number here is either a catalog figure or a constant below whose comment says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from components.catalog import (
    AttentionKind,
    InstanceType,
    KnownGood,
    Model,
    WeightDtype,
    instances,
    known_good,
    resolve_instance,
    resolve_model,
)

GB = 1_000_000_000

# vLLM's default --gpu-memory-utilization: the share of each GPU the engine budgets (VLLM-ENGINE-ARGS).
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90
# Activations of a forward pass at the engine's batch-token budget, CUDA-graph pools and NCCL/cuBLAS
# workspaces come out of the same budget. Measured on one H100 (LLMD-MEMORY): non-torch memory 0.13-0.55 GiB
# and CUDA graphs up to 1.03 GiB, 1.70 GB together at most; the forward pass adds little (Qwen3-0.6B and
# Qwen3-32B peak within 0.08 GiB of each other). 2 GB per GPU covers those measured maxima. The sampler's
# peak (below) is not in this allowance: it grows with the engine's batch, so the vLLM check counts it.
OVERHEAD_GB_PER_GPU = 2.0
# vLLM's start-up profile runs the sampler over max_num_seqs dummy sequences with fp32 logits of the whole
# vocabulary: its measured activation peak is proportional to the vocabulary, 38.4-39.6 bytes per sequence per
# vocabulary entry at vLLM's default of 1,024 sequences on an H100 (LLMD-MEMORY: 4.76 GiB for a 128,256-token
# vocabulary, 5.56 for 151,936, 7.38 for 201,088). 40 bytes bounds all five measurements.
SAMPLER_BYTES_PER_SEQUENCE_PER_VOCAB_ENTRY = 40
# The margin every GPU keeps beyond the kit's estimate (weights + KV cache + overhead): what the estimate
# cannot see (allocator fragmentation, a forward pass larger than measured, NCCL growth with more ranks,
# the engine's own version drift). A layout with less is refused, not shown as a fit. 2 GB is the least a
# vLLM operator's review of the kit accepted as a margin a platform engineer can trust.
HEADROOM_GB_PER_GPU = 2.0
# vLLM's non-torch memory plus CUDA-graph memory, the largest measured (LLMD-MEMORY: 0.55 + 1.03 GiB).
VLLM_NON_TORCH_AND_GRAPHS_GB = 1.70
# --kv-cache-dtype auto keeps the KV cache in the activation dtype, BF16, whatever the weights' dtype.
KV_CACHE_BYTES_PER_ELEMENT = 2
# Tensor-parallel sizes vLLM deployments use within a node: powers of two up to a node's 8 GPUs.
TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)
# A multi-node replica is one pipeline stage per node over EFA; beyond four stages the pipeline bubbles and
# the blast radius of one node failure outweigh the saving, and a larger instance type is the answer.
MAX_NODES_PER_REPLICA = 4
# Bytes per weight: BF16 2, FP8 1, MXFP4 4.25 bits (4-bit values plus an 8-bit scale per 32; GPT-OSS-CARD).
BYTES_PER_PARAMETER: Mapping[WeightDtype, float] = {
    WeightDtype.BF16: 2.0,
    WeightDtype.FP8: 1.0,
    WeightDtype.MXFP4: 4.25 / 8,
}
# Context sized for when the request names none, capped at the model's maximum.
DEFAULT_CONTEXT = 8192
# Sequences in flight per replica when the request names none: the stacks' default (ModelSettings.concurrency;
# a test keeps the two equal), so `modelyard size` answers what a stack would deploy.
DEFAULT_CONCURRENCY = 16
CENT = Decimal("0.01")


class WeightsBasis(StrEnum):
    CHECKPOINT = "measured checkpoint size"
    PARAMETERS = "parameters x bytes per parameter"


class ThroughputSource(StrEnum):
    MODEL = "model"  # the calibrated roofline of components/sizing/throughput.py (docs/throughput.md)


class SizingInputError(ValueError):
    """A request the sizing cannot answer; ``argument`` names the parameter at fault."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        super().__init__(message)


@dataclass(frozen=True, kw_only=True)
class MemoryBreakdown:
    """Memory of one replica in GB (1e9 bytes): totals over its GPUs, and the most loaded GPU, where the fit
    is decided (the kit's estimate plus HEADROOM_GB_PER_GPU, and vLLM's own start-up arithmetic)."""

    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float
    usable_gb: float  # gpu_memory_utilization x GPU memory x GPUs of the replica
    per_gpu_weights_gb: float  # the most loaded GPU
    per_gpu_kv_cache_gb: float
    per_gpu_overhead_gb: float  # OVERHEAD_GB_PER_GPU
    per_gpu_usable_gb: float
    per_gpu_margin_gb: float  # what every GPU must keep free beyond the estimate
    vllm_activation_peak_gb: float  # vLLM's profiled peak per GPU: the sampler over max_num_seqs sequences
    weights_basis: WeightsBasis

    @property
    def needed_gb(self) -> float:
        return self.weights_gb + self.kv_cache_gb + self.overhead_gb

    @property
    def per_gpu_needed_gb(self) -> float:
        """The kit's estimate for the most loaded GPU: weights + KV cache + overhead."""
        return self.per_gpu_weights_gb + self.per_gpu_kv_cache_gb + self.per_gpu_overhead_gb

    @property
    def per_gpu_spare_gb(self) -> float:
        """What the most loaded GPU keeps free beyond the estimate (negative: it does not hold it)."""
        return self.per_gpu_usable_gb - self.per_gpu_needed_gb

    @property
    def vllm_kv_room_gb(self) -> float:
        """KV-cache room per GPU by vLLM's start-up arithmetic: gpu_memory_utilization x GPU memory minus the
        weights, the profiled activation peak and non-torch memory (CUDA graphs included)."""
        return (
            self.per_gpu_usable_gb
            - self.per_gpu_weights_gb
            - self.vllm_activation_peak_gb
            - VLLM_NON_TORCH_AND_GRAPHS_GB
        )

    @property
    def fits_with_margin(self) -> bool:
        return self.per_gpu_spare_gb >= self.per_gpu_margin_gb

    @property
    def fits_vllm(self) -> bool:
        """vLLM's KV cache holds context x concurrency on every GPU."""
        return self.vllm_kv_room_gb >= self.per_gpu_kv_cache_gb

    @property
    def fits(self) -> bool:
        return self.fits_with_margin and self.fits_vllm


@dataclass(frozen=True, kw_only=True)
class ThroughputEstimate:
    """Output tokens per second and latency of one replica, from the throughput model.

    At the sizing concurrency: output_tokens_per_second, ttft_seconds, tpot_seconds. At the throughput optimum
    (the batch the server is configured for, --max-num-seqs): capacity_*; the cost model prices tokens there.
    """

    output_tokens_per_second: float
    ttft_seconds: float
    tpot_seconds: float
    capacity_output_tokens_per_second: float
    capacity_batch: int
    source: ThroughputSource
    basis: str


@dataclass(frozen=True, kw_only=True)
class SizingOption:
    instance: str
    gpu: str
    dtype: WeightDtype
    gpus_per_replica: int
    tensor_parallel: int
    pipeline_parallel: int
    nodes_per_replica: int
    replicas_per_node: int  # replicas packed on one node (1 for multi-node replicas)
    replicas: int  # replicas deployed: enough for the throughput target, filling the nodes paid for
    nodes: int
    memory: MemoryBreakdown
    throughput: ThroughputEstimate  # per replica
    known_good: tuple[KnownGood, ...]  # published deployments of this model on this GPU, count and dtype
    node_usd_per_hour: Decimal | None
    usd_per_hour: Decimal | None  # all nodes, rounded to cents; None without a sourced price
    usd_per_million_output_tokens: Decimal | None  # usd_per_hour over all replicas' output, to cents
    price_note: str

    @property
    def total_output_tokens_per_second(self) -> float:
        return self.throughput.output_tokens_per_second * self.replicas

    @property
    def multi_node(self) -> bool:
        return self.nodes_per_replica > 1


@dataclass(frozen=True, kw_only=True)
class Refusal:
    instance: str
    reason: str
    memory: MemoryBreakdown | None  # the largest layout tried, where memory was the obstacle


@dataclass(frozen=True, kw_only=True)
class SizingResult:
    model: Model
    dtype: WeightDtype
    context: int
    concurrency: int
    throughput_target: float | None
    multi_node: bool  # the request ranks multi-node pipelines by cost alongside single nodes
    options: tuple[SizingOption, ...]  # ranked: single node first (unless multi_node), then $ per token
    refusals: tuple[Refusal, ...]
    reason: str | None  # why nothing fits, when options is empty

    def by_usd_per_million_output_tokens(self) -> tuple[SizingOption, ...]:
        """The options ranked by cost per token alone, multi-node or not."""
        return tuple(sorted(self.options, key=lambda option: _rank_by_token_cost(option, multi_node=True)))

    def by_usd_per_hour(self) -> tuple[SizingOption, ...]:
        return tuple(sorted(self.options, key=_rank_by_hourly_cost))


def _rank_by_hourly_cost(option: SizingOption) -> tuple[bool, Decimal, Decimal, str]:
    return (
        option.usd_per_hour is None,
        option.usd_per_hour or Decimal(0),
        option.usd_per_million_output_tokens or Decimal(0),
        option.instance,
    )


def _rank_by_token_cost(option: SizingOption, *, multi_node: bool) -> tuple[bool, bool, Decimal, Decimal, str]:
    """One node before a pipeline over several (unless multi_node), then $ per million output tokens at the
    requested concurrency (what the nodes cost over what their replicas decode), then $/hour; unpriced last.

    A pipeline over several nodes is slower than its bandwidth suggests (a bubble per stage, activations over
    the network at every step) and loses the replica with any one node: cheapest per hour is the wrong first
    choice, so it ranks after every single-node option unless the request asks for multi-node.
    """
    return (
        option.multi_node and not multi_node,
        option.usd_per_million_output_tokens is None,
        option.usd_per_million_output_tokens or Decimal(0),
        option.usd_per_hour or Decimal(0),
        option.instance,
    )


def format_gb(value: float) -> str:
    return f"{value / 1000:,.2f} TB" if value >= 1000 else f"{value:,.1f} GB"


# --- memory ---------------------------------------------------------------------------------------


def weights_gb(model: Model, dtype: WeightDtype) -> tuple[float, WeightsBasis]:
    """Weights of one replica in GB: a measured checkpoint as is (it holds whatever the publisher kept in bf16);
    else parameters x bytes per parameter, where a quantized dtype keeps embeddings and lm_head in bf16 (vLLM's
    fp8 path quantizes linear and MoE layers only; facts 8.1, VLLM-FP8)."""
    checkpoint = model.checkpoints.get(dtype)
    if checkpoint is not None:
        return checkpoint.size_gb, WeightsBasis.CHECKPOINT
    total = model.total_params_billions
    if dtype is WeightDtype.BF16:
        return total * BYTES_PER_PARAMETER[dtype], WeightsBasis.PARAMETERS
    # The catalog refuses a model with a quantized dtype sized from parameters and no embeddings group.
    assert model.embeddings is not None
    kept = model.embeddings.params_billions
    bf16 = BYTES_PER_PARAMETER[WeightDtype.BF16]
    return (total - kept) * BYTES_PER_PARAMETER[dtype] + kept * bf16, WeightsBasis.PARAMETERS


def sampler_gb(model: Model, max_num_seqs: int) -> float:
    """vLLM's profiled sampler peak per GPU: fp32 logits of the whole vocabulary for every batched sequence."""
    if model.embeddings is None:
        return 0.0
    vocab = model.embeddings.vocab_size
    return max_num_seqs * vocab * SAMPLER_BYTES_PER_SEQUENCE_PER_VOCAB_ENTRY / GB


def kv_cache_gb_per_rank(model: Model, *, context: int, concurrency: int, tensor_parallel: int) -> float:
    """KV cache one tensor-parallel rank holds for all layers (before pipeline stages split the layers)."""
    attention = model.attention
    if attention.kind is AttentionKind.MLA:
        assert attention.latent is not None  # the catalog guarantees it for MLA
        elements_per_layer_token = attention.latent.cached_dim
    else:
        kv_heads_on_rank = max(1, attention.kv_heads // tensor_parallel)
        elements_per_layer_token = 2 * kv_heads_on_rank * attention.head_dim
    window = attention.sliding_window
    sliding_layers = window.sliding_layers(attention.layers) if window else 0
    sliding_tokens = min(window.window_tokens, context) if window else 0
    layer_tokens = (attention.layers - sliding_layers) * context + sliding_layers * sliding_tokens
    return layer_tokens * concurrency * elements_per_layer_token * KV_CACHE_BYTES_PER_ELEMENT / GB


def memory_breakdown(
    model: Model,
    instance: InstanceType,
    *,
    dtype: WeightDtype,
    context: int,
    concurrency: int,
    tensor_parallel: int,
    pipeline_parallel: int,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    max_num_seqs: int | None = None,
) -> MemoryBreakdown:
    """Memory of one layout. ``max_num_seqs`` (the engine's batch, default ``concurrency``) sizes the sampler."""
    weights, basis = weights_gb(model, dtype)
    gpus = tensor_parallel * pipeline_parallel
    kv_per_rank = kv_cache_gb_per_rank(model, context=context, concurrency=concurrency, tensor_parallel=tensor_parallel)
    layers = model.attention.layers
    # With uneven pipeline stages the first stages carry one layer more: size for the heaviest.
    heaviest_stage_share = math.ceil(layers / pipeline_parallel) / layers
    per_gpu_usable = gpu_memory_utilization * instance.gpu_memory_gb
    return MemoryBreakdown(
        weights_gb=weights,
        kv_cache_gb=kv_per_rank * tensor_parallel,
        overhead_gb=OVERHEAD_GB_PER_GPU * gpus,
        usable_gb=per_gpu_usable * gpus,
        per_gpu_weights_gb=weights / tensor_parallel * heaviest_stage_share,
        per_gpu_kv_cache_gb=kv_per_rank * heaviest_stage_share,
        per_gpu_overhead_gb=OVERHEAD_GB_PER_GPU,
        per_gpu_usable_gb=per_gpu_usable,
        per_gpu_margin_gb=HEADROOM_GB_PER_GPU,
        vllm_activation_peak_gb=sampler_gb(model, concurrency if max_num_seqs is None else max_num_seqs),
        weights_basis=basis,
    )


# --- throughput -----------------------------------------------------------------------------------


def estimate_throughput(
    model: Model,
    instance: InstanceType,
    *,
    dtype: WeightDtype,
    context: int,
    concurrency: int,
    tensor_parallel: int,
    pipeline_parallel: int = 1,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> ThroughputEstimate:
    """One replica's throughput and latency at ``concurrency`` and at its optimum, from the throughput model
    (components/sizing/throughput.py) for its default workload, shortened to fit ``context``."""
    from components.sizing import throughput as tm

    assert instance.gpu is not None
    replica = tm.Replica(
        model=model,
        gpu=instance.gpu,
        dtype=dtype,
        gpu_memory_gb=instance.gpu_memory_gb,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    workload = tm.default_workload(context)
    at = tm.performance(replica, workload, concurrency=concurrency)
    best = tm.optimum(replica, workload, context=context)
    return ThroughputEstimate(
        output_tokens_per_second=at.output_tokens_per_second,
        ttft_seconds=at.ttft_seconds,
        tpot_seconds=at.tpot_seconds,
        capacity_output_tokens_per_second=max(best.output_tokens_per_second, at.output_tokens_per_second),
        capacity_batch=max(best.batch, at.batch),
        source=ThroughputSource.MODEL,
        basis=(
            f"throughput model, {workload.prompt_tokens:,.0f} in / {workload.output_tokens:,.0f} out: "
            f"{at.batch} in flight ({at.bound}); optimum {best.batch} sequences at "
            f"{best.output_tokens_per_second:,.0f} tok/s"
        ),
    )


# --- layouts --------------------------------------------------------------------------------------


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _check_request(
    model: Model,
    *,
    dtype: WeightDtype,
    context: int,
    concurrency: int,
    throughput_target: float | None,
    gpu_memory_utilization: float,
) -> None:
    if dtype not in model.dtypes:
        allowed = ", ".join(model.dtypes)
        raise SizingInputError("dtype", f"{model.name} is not served in {dtype}; allowed: {allowed}")
    if not 1 <= context <= model.max_context:
        raise SizingInputError(
            "context", f"{context} tokens is outside 1..{model.max_context}, {model.name}'s maximum context"
        )
    if concurrency < 1:
        raise SizingInputError("concurrency", f"must be at least 1, got {concurrency}")
    if throughput_target is not None and throughput_target <= 0:
        raise SizingInputError("throughput_target", f"must be positive, got {throughput_target}")
    if not 0 < gpu_memory_utilization <= 1:
        raise SizingInputError("gpu_memory_utilization", f"must be in (0, 1], got {gpu_memory_utilization}")


def _instance_refusal(instance: InstanceType, dtype: WeightDtype) -> str | None:
    """Why no layout of this instance type can serve the dtype; None if some may."""
    gpu = instance.gpu
    if gpu is None:
        return f"{instance.name} has no GPU"
    if dtype is WeightDtype.FP8 and not gpu.supports_fp8:
        return (
            f"fp8 needs FP8 compute (Ada, Hopper or Blackwell); {gpu.model} on {instance.name} is "
            f"{gpu.architecture.title()} (vLLM would fall back to weight-only FP8, which the kit does not "
            "size)"
        )
    return None


def _layout_refusal(model: Model, instance: InstanceType, *, dtype: WeightDtype, tp: int, pp: int) -> str | None:
    """Why this layout cannot run at all, memory aside; None if it can."""
    blocked = _instance_refusal(instance, dtype)
    if blocked:
        return blocked
    if tp not in TENSOR_PARALLEL_SIZES or tp > instance.gpu_count:
        return f"tensor parallel {tp} is not one of {TENSOR_PARALLEL_SIZES} within {instance.gpu_count} GPUs"
    if model.attention.heads % tp:
        return f"tensor parallel {tp} does not divide the {model.attention.heads} attention heads"
    if pp < 1 or pp > MAX_NODES_PER_REPLICA:
        return f"pipeline parallel {pp} is outside 1..{MAX_NODES_PER_REPLICA} nodes"
    if pp > model.attention.layers:
        return f"pipeline parallel {pp} exceeds the {model.attention.layers} layers"
    if pp > 1 and tp != instance.gpu_count:
        return f"a multi-node replica uses every GPU of its nodes (tensor parallel {instance.gpu_count})"
    if pp > 1 and not instance.supports_efa:
        return f"{instance.name} has no EFA for a multi-node replica"
    return None


def evaluate(
    model: Model,
    instance: InstanceType,
    *,
    dtype: WeightDtype,
    context: int,
    concurrency: int,
    tensor_parallel: int,
    pipeline_parallel: int = 1,
    throughput_target: float | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> SizingOption | Refusal:
    """One layout of one instance type: the option it gives, or why it cannot serve the request."""
    _check_request(
        model,
        dtype=dtype,
        context=context,
        concurrency=concurrency,
        throughput_target=throughput_target,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    blocked = _layout_refusal(model, instance, dtype=dtype, tp=tensor_parallel, pp=pipeline_parallel)
    if blocked:
        return Refusal(instance=instance.name, reason=blocked, memory=None)
    assert instance.gpu is not None  # _layout_refusal refuses GPU-less instances
    memory = memory_breakdown(
        model,
        instance,
        dtype=dtype,
        context=context,
        concurrency=concurrency,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    if not memory.fits:
        return Refusal(
            instance=instance.name,
            reason=_memory_shortfall(memory, instance, tensor_parallel, pipeline_parallel, gpu_memory_utilization),
            memory=memory,
        )
    gpus_per_replica = tensor_parallel * pipeline_parallel
    throughput = estimate_throughput(
        model,
        instance,
        dtype=dtype,
        context=context,
        concurrency=concurrency,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    matches = tuple(
        entry
        for entry in known_good()
        if (entry.model, entry.gpu, entry.gpu_count, entry.dtype)
        == (model.name, instance.gpu.model, gpus_per_replica, dtype)
    )
    replicas_per_node = instance.gpu_count // gpus_per_replica if pipeline_parallel == 1 else 1
    replicas_needed = 1
    if throughput_target is not None:
        replicas_needed = math.ceil(throughput_target / throughput.output_tokens_per_second)
    # The kit pays for whole nodes and fills them: spare GPUs on a paid node carry extra replicas.
    replica_groups = math.ceil(replicas_needed / replicas_per_node)
    nodes = replica_groups * pipeline_parallel
    replicas = replica_groups * replicas_per_node
    price = instance.on_demand_usd_per_hour
    usd_per_hour = per_mtok = None
    if price is not None:
        usd_per_hour = _cents(price * nodes)
        tokens_per_hour = Decimal(str(throughput.output_tokens_per_second)) * replicas * 3600
        per_mtok = _cents(price * nodes / tokens_per_hour * 1_000_000)
    return SizingOption(
        instance=instance.name,
        gpu=instance.gpu.model,
        dtype=dtype,
        gpus_per_replica=gpus_per_replica,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        nodes_per_replica=pipeline_parallel,
        replicas_per_node=replicas_per_node,
        replicas=replicas,
        nodes=nodes,
        memory=memory,
        throughput=throughput,
        known_good=matches,
        node_usd_per_hour=price,
        usd_per_hour=usd_per_hour,
        usd_per_million_output_tokens=per_mtok,
        price_note=instance.price_note,
    )


def _memory_shortfall(
    memory: MemoryBreakdown, instance: InstanceType, tp: int, pp: int, gpu_memory_utilization: float
) -> str:
    gpu = instance.gpu.model if instance.gpu else instance.name
    layout = f"tensor parallel {tp} x pipeline parallel {pp}"
    usable = f"a {gpu} offers {format_gb(memory.per_gpu_usable_gb)} at {gpu_memory_utilization:.0%} use"
    if not memory.fits_with_margin:
        return (
            f"needs {format_gb(memory.per_gpu_needed_gb)} per GPU at {layout} plus a margin of "
            f"{format_gb(memory.per_gpu_margin_gb)}; {usable}"
        )
    return (
        f"vLLM would leave {format_gb(memory.vllm_kv_room_gb)} per GPU for a KV cache of "
        f"{format_gb(memory.per_gpu_kv_cache_gb)} at {layout} (weights, a sampler peak of "
        f"{format_gb(memory.vllm_activation_peak_gb)} and {VLLM_NON_TORCH_AND_GRAPHS_GB:g} GB of non-torch memory); "
        f"{usable}"
    )


def _layouts(instance: InstanceType) -> list[tuple[int, int]]:
    """Layouts from fewest GPUs up: tensor parallel within one node, then whole nodes per pipeline stage."""
    single = [(tp, 1) for tp in TENSOR_PARALLEL_SIZES if tp <= instance.gpu_count]
    multi = [(instance.gpu_count, pp) for pp in range(2, MAX_NODES_PER_REPLICA + 1)]
    return single + multi


def _memory_reason(
    model: Model,
    instance: InstanceType,
    *,
    dtype: WeightDtype,
    context: int,
    concurrency: int,
    gpu_memory_utilization: float,
) -> tuple[str, MemoryBreakdown]:
    """Explain a memory refusal at the whole-node layout, with what would help."""
    tp = max(tp for tp in TENSOR_PARALLEL_SIZES if tp <= instance.gpu_count and model.attention.heads % tp == 0)
    memory = memory_breakdown(
        model,
        instance,
        dtype=dtype,
        context=context,
        concurrency=concurrency,
        tensor_parallel=tp,
        pipeline_parallel=1,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    node_usable = gpu_memory_utilization * instance.gpu_memory_gb * instance.gpu_count
    if instance.supports_efa:
        span = (
            f"; {MAX_NODES_PER_REPLICA} nodes, the most a replica may span, offer "
            f"{format_gb(node_usable * MAX_NODES_PER_REPLICA)}"
        )
    else:
        span = "; it has no EFA for a multi-node replica"
    remedies = []
    if dtype is WeightDtype.BF16 and WeightDtype.FP8 in model.dtypes and instance.supports_fp8:
        remedies.append("use fp8")
    if memory.kv_cache_gb >= 0.1 * memory.needed_gb:
        remedies.append("a shorter context or fewer concurrent sequences")
    remedies.append("an instance type with more GPU memory")
    reason = (
        f"needs {format_gb(memory.needed_gb)} in {dtype} (weights {format_gb(memory.weights_gb)} + KV cache "
        f"{format_gb(memory.kv_cache_gb)} for {context:,} tokens x {concurrency} + overhead "
        f"{format_gb(memory.overhead_gb)}, and a margin of {format_gb(memory.per_gpu_margin_gb)} per GPU); "
        f"{instance.name} offers {format_gb(node_usable)} per node at "
        f"{gpu_memory_utilization:.0%} use{span}: {' or '.join(remedies)}"
    )
    return reason, memory


def fit_on(
    model: Model | str,
    instance_type: InstanceType | str,
    *,
    dtype: WeightDtype | str | None = None,
    context: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    throughput_target: float | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> SizingOption | Refusal:
    """The cheapest layout of ``model`` on ``instance_type`` (fewest GPUs per replica), or why none fits.

    ``dtype`` defaults to the model's native dtype, ``context`` to DEFAULT_CONTEXT capped at the model's.
    """
    model = resolve_model(model) if isinstance(model, str) else model
    instance = resolve_instance(instance_type) if isinstance(instance_type, str) else instance_type
    weight_dtype = _dtype(model, dtype)
    context = default_context(model) if context is None else context
    _check_request(
        model,
        dtype=weight_dtype,
        context=context,
        concurrency=concurrency,
        throughput_target=throughput_target,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    blocked = _instance_refusal(instance, weight_dtype)
    if blocked:
        return Refusal(instance=instance.name, reason=blocked, memory=None)
    for tp, pp in _layouts(instance):
        result = evaluate(
            model,
            instance,
            dtype=weight_dtype,
            context=context,
            concurrency=concurrency,
            tensor_parallel=tp,
            pipeline_parallel=pp,
            throughput_target=throughput_target,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if isinstance(result, SizingOption):
            return result
    reason, memory = _memory_reason(
        model,
        instance,
        dtype=weight_dtype,
        context=context,
        concurrency=concurrency,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    return Refusal(instance=instance.name, reason=reason, memory=memory)


def default_context(model: Model) -> int:
    return min(DEFAULT_CONTEXT, model.max_context)


def _dtype(model: Model, dtype: WeightDtype | str | None) -> WeightDtype:
    if dtype is None:
        return model.native_dtype
    try:
        return WeightDtype(dtype)
    except ValueError:
        allowed = ", ".join(model.dtypes)
        message = f"unknown dtype {dtype!r}; allowed for {model.name}: {allowed}"
        raise SizingInputError("dtype", message) from None


def gpu_instance_types() -> tuple[InstanceType, ...]:
    return tuple(instance for instance in instances().values() if instance.gpu is not None)


def size(
    model: Model | str,
    *,
    dtype: WeightDtype | str | None = None,
    context: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    instance_types: Sequence[InstanceType | str] | None = None,
    throughput_target: float | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    multi_node: bool = False,
) -> SizingResult:
    """Every instance type's cheapest layout for the request, ranked by $ per million output tokens with every
    single-node option first (``multi_node=True`` ranks pipelines over several nodes by cost alongside them),
    plus the refusals.

    Defaults as for fit_on; ``instance_types`` defaults to every GPU instance type of the catalog.
    """
    model = resolve_model(model) if isinstance(model, str) else model
    weight_dtype = _dtype(model, dtype)
    context = default_context(model) if context is None else context
    _check_request(
        model,
        dtype=weight_dtype,
        context=context,
        concurrency=concurrency,
        throughput_target=throughput_target,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    candidates = gpu_instance_types() if instance_types is None else _instances(instance_types)
    options: list[SizingOption] = []
    refusals: list[Refusal] = []
    for instance in candidates:
        result = fit_on(
            model,
            instance,
            dtype=weight_dtype,
            context=context,
            concurrency=concurrency,
            throughput_target=throughput_target,
            gpu_memory_utilization=gpu_memory_utilization,
        )
        if isinstance(result, SizingOption):
            options.append(result)
        else:
            refusals.append(result)
    reason = None
    if not options:
        reason = _why_nothing_fits(refusals, candidates)
    return SizingResult(
        model=model,
        dtype=weight_dtype,
        context=context,
        concurrency=concurrency,
        throughput_target=throughput_target,
        multi_node=multi_node,
        options=tuple(sorted(options, key=lambda option: _rank_by_token_cost(option, multi_node=multi_node))),
        refusals=tuple(sorted(refusals, key=lambda refusal: refusal.instance)),
        reason=reason,
    )


def _instances(names: Sequence[InstanceType | str]) -> tuple[InstanceType, ...]:
    chosen = []
    for item in names:
        instance = resolve_instance(item) if isinstance(item, str) else item
        if instance.gpu is None:
            raise SizingInputError("instance_types", f"{instance.name} has no GPU")
        chosen.append(instance)
    if not chosen:
        raise SizingInputError("instance_types", "name at least one instance type")
    return tuple(chosen)


def _why_nothing_fits(refusals: Sequence[Refusal], candidates: Sequence[InstanceType]) -> str:
    """The refusal of the roomiest instance type that memory ruled out, else the first refusal."""
    by_name = {instance.name: instance for instance in candidates}
    memory_bound = [refusal for refusal in refusals if refusal.memory is not None]
    if memory_bound:
        roomiest = max(
            memory_bound,
            key=lambda r: by_name[r.instance].gpu_memory_gb * by_name[r.instance].gpu_count,
        )
        return f"no instance type fits; the roomiest: {roomiest.reason}"
    return f"no instance type fits: {refusals[0].reason}"


def assumptions_markdown() -> str:
    """The sizing constants as a markdown table, for docs/sizing.md (a test keeps the two equal)."""
    rows = [
        (
            "gpu_memory_utilization (default)",
            f"{DEFAULT_GPU_MEMORY_UTILIZATION:.2f}",
            "vLLM's default [VLLM-ENGINE-ARGS]",
        ),
        (
            "overhead per GPU",
            f"{OVERHEAD_GB_PER_GPU:g} GB",
            "forward activations, CUDA graphs, NCCL buffers; measured non-torch + graphs at most 1.7 GB [LLMD-MEMORY]",
        ),
        (
            "vLLM activation peak per GPU",
            f"{SAMPLER_BYTES_PER_SEQUENCE_PER_VOCAB_ENTRY} B x sequences x vocabulary",
            "the sampler's fp32 logits; 38.4-39.6 B measured [LLMD-MEMORY]",
        ),
        (
            "margin per GPU beyond the estimate",
            f"{HEADROOM_GB_PER_GPU:g} GB",
            "refused below: a visible margin a platform engineer can trust",
        ),
        (
            "vLLM non-torch memory + CUDA graphs",
            f"{VLLM_NON_TORCH_AND_GRAPHS_GB:g} GB",
            "largest measured, for the vLLM check [LLMD-MEMORY]",
        ),
        ("KV cache bytes per element", str(KV_CACHE_BYTES_PER_ELEMENT), "BF16 cache, vLLM --kv-cache-dtype auto"),
        (
            "bytes per parameter",
            ", ".join(f"{dtype} {size:g}" for dtype, size in BYTES_PER_PARAMETER.items()),
            "MXFP4 4.25 bits [GPT-OSS-CARD]",
        ),
        ("tensor parallel sizes", ", ".join(map(str, TENSOR_PARALLEL_SIZES)), "within one node; must divide heads"),
        ("nodes per replica, at most", str(MAX_NODES_PER_REPLICA), "pipeline stages over EFA"),
        ("default context", f"{DEFAULT_CONTEXT:,} tokens", "capped at the model's maximum"),
        ("default concurrency", str(DEFAULT_CONCURRENCY), "sequences in flight per replica; the stacks' default"),
        ("KV heads per GPU", "max(1, kv_heads // tp); MLA: one latent", "[VLLM-KV-HEADS]"),
    ]
    lines = ["| setting | value | why |", "|---|---|---|"]
    lines.extend(f"| {name} | {value} | {why} |" for name, value, why in rows)
    return "\n".join(lines) + "\n"
