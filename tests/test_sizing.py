"""Sizing rules (issue 5): memory per replica with the real attention shape, layouts, FP8, cost ranking."""

from __future__ import annotations

import dataclasses
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest

from components import catalog
from components.catalog import WeightDtype
from components.sizing import (
    Refusal,
    SizingInputError,
    SizingOption,
    ThroughputSource,
    WeightsBasis,
    evaluate,
    fit_on,
    size,
)
from components.sizing.core import GB, kv_cache_gb_per_rank, weights_gb


def model(name: str) -> catalog.Model:
    return catalog.models()[name]


def instance(name: str) -> catalog.InstanceType:
    return catalog.instances()[name]


def test_70b_bf16_does_not_fit_one_80gb_gpu() -> None:
    for name in ("p4de.24xlarge", "p5.48xlarge"):
        result = evaluate(
            model("llama-3.1-70b"),
            instance(name),
            dtype=WeightDtype.BF16,
            context=8192,
            concurrency=1,
            tensor_parallel=1,
        )
        assert isinstance(result, Refusal)
        assert result.memory is not None and result.memory.weights_gb > result.memory.per_gpu_usable_gb


@pytest.mark.parametrize("name", ["p4de.24xlarge", "p5.48xlarge"])
def test_70b_bf16_fits_tp4_on_80gb_gpus(name: str) -> None:
    tp4 = evaluate(
        model("llama-3.1-70b"),
        instance(name),
        dtype=WeightDtype.BF16,
        context=32768,
        concurrency=4,
        tensor_parallel=4,
    )
    assert isinstance(tp4, SizingOption) and tp4.memory.fits
    # At that context the cheapest layout is TP4: TP2 leaves too little room for the KV cache.
    best = fit_on("llama-3.1-70b", name, dtype="bf16", context=32768, concurrency=4)
    assert isinstance(best, SizingOption)
    assert (best.tensor_parallel, best.pipeline_parallel, best.nodes_per_replica) == (4, 1, 1)


@pytest.mark.parametrize("name", ["g5.xlarge", "g6.xlarge"])
def test_8b_bf16_fits_one_24gb_gpu_at_8k(name: str) -> None:
    result = fit_on("llama-3.1-8b", name, dtype="bf16", context=8192, concurrency=1)
    assert isinstance(result, SizingOption)
    assert result.gpus_per_replica == 1
    assert result.memory.weights_gb == pytest.approx(16.06)
    # A second sequence (1.07 GB more KV cache) would leave under the margin on a 24 GB GPU.
    two = fit_on("llama-3.1-8b", name, dtype="bf16", context=8192, concurrency=2)
    assert isinstance(two, Refusal) and "a margin of 2.0 GB per GPU" in two.reason


def test_deepseek_r1_fp8_fits_one_8x_h200_node() -> None:
    result = fit_on("deepseek-r1", "p5en.48xlarge", dtype="fp8", context=8192, concurrency=8)
    assert isinstance(result, SizingOption)
    assert (result.gpus_per_replica, result.tensor_parallel, result.nodes_per_replica) == (8, 8, 1)


def test_deepseek_r1_does_not_fit_one_8x_a100_40gb_node() -> None:
    fp8 = fit_on("deepseek-r1", "p4d.24xlarge", dtype="fp8")
    assert isinstance(fp8, Refusal) and "fp8" in fp8.reason and "Ampere" in fp8.reason
    one_node = evaluate(
        model("deepseek-r1"),
        instance("p4d.24xlarge"),
        dtype=WeightDtype.BF16,
        context=8192,
        concurrency=1,
        tensor_parallel=8,
    )
    assert isinstance(one_node, Refusal) and one_node.memory is not None
    bf16 = fit_on("deepseek-r1", "p4d.24xlarge", dtype="bf16")
    assert isinstance(bf16, Refusal)
    assert bf16.reason.startswith("needs 1.43 TB in bf16")
    assert "p4d.24xlarge offers 309.2 GB per node at 90% use" in bf16.reason


def test_a_longer_context_raises_the_gpus_needed() -> None:
    short = fit_on("llama-3.1-70b", "p5.48xlarge", dtype="bf16", context=8192, concurrency=8)
    long = fit_on("llama-3.1-70b", "p5.48xlarge", dtype="bf16", context=131072, concurrency=8)
    assert isinstance(short, SizingOption) and isinstance(long, SizingOption)
    assert long.gpus_per_replica > short.gpus_per_replica
    assert long.memory.kv_cache_gb > short.memory.kv_cache_gb


def test_fp8_is_refused_on_a10g_and_a100_with_a_reason() -> None:
    for name in ("g5.xlarge", "g5.48xlarge", "p4de.24xlarge"):
        result = fit_on("llama-3.1-8b", name, dtype="fp8")
        assert isinstance(result, Refusal)
        assert "fp8 needs FP8 compute (Ada, Hopper or Blackwell)" in result.reason
    result = size("llama-3.1-8b", dtype="fp8", concurrency=1)
    assert {o.gpu for o in result.options}.isdisjoint({"A10G", "A100-40", "A100-80"})
    assert {"g6.xlarge", "p5.48xlarge"} <= {o.instance for o in result.options}


def test_tensor_parallel_must_divide_the_attention_heads() -> None:
    llama = model("llama-3.1-8b")
    odd = dataclasses.replace(llama, attention=dataclasses.replace(llama.attention, heads=28, kv_heads=4))
    refused = evaluate(
        odd, instance("p5.48xlarge"), dtype=WeightDtype.BF16, context=8192, concurrency=1, tensor_parallel=8
    )
    assert isinstance(refused, Refusal) and "does not divide the 28 attention heads" in refused.reason
    for name in catalog.models():
        for option in size(name).options:
            assert model(name).attention.heads % option.tensor_parallel == 0


def test_kv_heads_are_replicated_when_tensor_parallel_exceeds_them() -> None:
    qwen = model("qwen3-235b-a22b")  # 4 KV heads
    per_rank = {tp: kv_cache_gb_per_rank(qwen, context=8192, concurrency=1, tensor_parallel=tp) for tp in (4, 8)}
    assert per_rank[8] == per_rank[4]  # one head per rank either way
    assert per_rank[8] * 8 == pytest.approx(2 * per_rank[4] * 4)  # so TP8 caches twice the bytes in all


def test_mla_caches_one_576_vector_per_layer_per_token() -> None:
    r1 = model("deepseek-r1")
    per_rank = kv_cache_gb_per_rank(r1, context=1000, concurrency=1, tensor_parallel=8)
    assert per_rank * GB == pytest.approx(1000 * 61 * 576 * 2)
    generic = 1000 * 2 * 61 * 128 * 128 * 2  # what the multi-head formula would claim
    assert generic / (per_rank * GB) > 50


def test_sliding_window_layers_cap_their_tokens() -> None:
    gpt_oss = model("gpt-oss-120b")  # 36 layers, half sliding over 128 tokens
    kv = kv_cache_gb_per_rank(gpt_oss, context=131072, concurrency=1, tensor_parallel=1)
    expected = (18 * 131072 + 18 * 128) * 2 * 8 * 64 * 2
    assert kv * GB == pytest.approx(expected)
    gemma = model("gemma-3-27b")  # 52 of 62 layers slide over 1,024 tokens
    kv = kv_cache_gb_per_rank(gemma, context=32768, concurrency=1, tensor_parallel=1)
    assert kv * GB == pytest.approx((10 * 32768 + 52 * 1024) * 2 * 16 * 128 * 2)


def test_weights_use_the_measured_checkpoint_where_the_catalog_has_one() -> None:
    assert weights_gb(model("gpt-oss-120b"), WeightDtype.MXFP4) == (65.28, WeightsBasis.CHECKPOINT)
    size_gb, basis = weights_gb(model("llama-3.1-405b"), WeightDtype.BF16)
    assert basis is WeightsBasis.PARAMETERS and size_gb == pytest.approx(2 * 405.9)


def test_a_replica_spans_nodes_only_with_efa() -> None:
    multi = fit_on("llama-3.1-405b", "p4de.24xlarge", dtype="bf16")
    assert isinstance(multi, SizingOption)
    assert (multi.tensor_parallel, multi.pipeline_parallel, multi.nodes_per_replica, multi.nodes) == (8, 2, 2, 2)
    single_gpu = fit_on("llama-3.1-70b", "g6.xlarge", dtype="bf16")
    assert isinstance(single_gpu, Refusal)
    assert "no EFA for a multi-node replica" in single_gpu.reason and "use fp8" in single_gpu.reason


def test_cost_per_million_tokens_follows_from_price_and_throughput() -> None:
    result = size("llama-3.1-8b", context=8192, concurrency=16)
    assert result.options
    for option in result.options:
        if option.usd_per_hour is None:
            continue
        tokens_per_hour = Decimal(str(option.total_output_tokens_per_second)) * 3600
        expected = (option.node_usd_per_hour * option.nodes / tokens_per_hour * 1_000_000).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        assert option.usd_per_million_output_tokens == expected
    hourly = [o.usd_per_hour for o in result.by_usd_per_hour() if o.usd_per_hour is not None]
    assert hourly == sorted(hourly)
    per_token = [o.usd_per_million_output_tokens for o in result.by_usd_per_million_output_tokens()]
    priced = [value for value in per_token if value is not None]
    assert priced == sorted(priced)


def test_an_instance_without_a_sourced_price_has_no_cost_and_says_why() -> None:
    result = size("deepseek-r1", instance_types=["p5en.48xlarge", "p5e.48xlarge"], concurrency=64)
    assert [o.instance for o in result.options] == ["p5en.48xlarge", "p5e.48xlarge"]  # unpriced last
    p5e = result.options[1]
    assert p5e.usd_per_hour is None and p5e.usd_per_million_output_tokens is None
    assert "no us-east-1 on-demand list price" in p5e.price_note


def test_throughput_comes_from_the_model_with_latency_and_capacity() -> None:
    option = fit_on("deepseek-r1", "p5en.48xlarge", concurrency=64)
    assert isinstance(option, SizingOption)
    estimate = option.throughput
    assert estimate.source is ThroughputSource.MODEL and "throughput model" in estimate.basis
    assert estimate.ttft_seconds > 0 and estimate.tpot_seconds > 0
    # 64 sequences share each step: at most 64 tokens a TPOT.
    assert estimate.output_tokens_per_second <= 64 / estimate.tpot_seconds + 1e-6
    assert estimate.capacity_batch >= 64
    assert estimate.capacity_output_tokens_per_second >= estimate.output_tokens_per_second


def test_more_sequences_in_flight_give_more_throughput_and_slower_tokens() -> None:
    one = fit_on("llama-3.1-8b", "p5.48xlarge", concurrency=1)
    many = fit_on("llama-3.1-8b", "p5.48xlarge", concurrency=64)
    assert isinstance(one, SizingOption) and isinstance(many, SizingOption)
    assert many.throughput.output_tokens_per_second > 10 * one.throughput.output_tokens_per_second
    assert many.throughput.tpot_seconds > one.throughput.tpot_seconds
    # One sequence reads the 16 GB of weights every token: never faster than the bandwidth allows.
    assert one.throughput.output_tokens_per_second < 3350 / 16.06


def test_a_throughput_target_adds_replicas_and_whole_nodes() -> None:
    result = size("llama-3.1-8b", instance_types=["g5.xlarge", "g5.48xlarge"], throughput_target=1000, concurrency=1)
    by_name = {option.instance: option for option in result.options}
    single = by_name["g5.xlarge"]
    per_replica = single.throughput.output_tokens_per_second
    assert single.replicas == math.ceil(1000 / per_replica) and single.nodes == single.replicas
    packed = by_name["g5.48xlarge"]
    assert packed.replicas_per_node == 8 and packed.nodes == math.ceil(packed.replicas / 8)
    assert packed.replicas >= math.ceil(1000 / packed.throughput.output_tokens_per_second)


def test_nothing_fits_explains_why() -> None:
    result = size("llama-3.1-405b", dtype="bf16", instance_types=["g6e.xlarge", "g6e.12xlarge"])
    assert not result.options and result.reason is not None
    assert result.reason.startswith("no instance type fits; the roomiest: needs")
    assert "g6e.12xlarge offers" in result.reason and "use fp8" in result.reason


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"dtype": "mxfp4"}, "dtype"),
        ({"dtype": "int4"}, "dtype"),
        ({"context": 200_000}, "context"),
        ({"concurrency": 0}, "concurrency"),
        ({"instance_types": ["m6i.large"]}, "instance_types"),
        ({"throughput_target": -1}, "throughput_target"),
    ],
)
def test_bad_requests_name_the_argument(kwargs: dict, argument: str) -> None:
    with pytest.raises(SizingInputError) as error:
        size("llama-3.1-8b", **kwargs)
    assert error.value.argument == argument


def test_default_context_is_capped_at_the_model_maximum() -> None:
    assert size("falcon-180b").context == 2048
    assert size("llama-3.1-8b").context == 8192


# --- issue 19: headroom, bf16 embeddings, ranking, known-good, defaults ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from components.sizing.core import (  # noqa: E402
    DEFAULT_CONCURRENCY,
    HEADROOM_GB_PER_GPU,
    VLLM_NON_TORCH_AND_GRAPHS_GB,
    sampler_gb,
)


def test_70b_bf16_on_eight_l4_at_21_of_21_6_gb_is_refused_for_want_of_margin() -> None:
    # The example: 17.65 GB of weights + 1.34 GB of KV cache + 2 GB overhead = 20.99 of 21.6 GB usable.
    tp8 = evaluate(
        model("llama-3.1-70b"),
        instance("g6.48xlarge"),
        dtype=WeightDtype.BF16,
        context=32768,
        concurrency=1,
        tensor_parallel=8,
    )
    assert isinstance(tp8, Refusal) and tp8.memory is not None
    assert tp8.memory.per_gpu_needed_gb == pytest.approx(20.99, abs=0.01)
    assert 0 < tp8.memory.per_gpu_spare_gb < HEADROOM_GB_PER_GPU
    assert "plus a margin of 2.0 GB" in tp8.reason


def test_mixtral_8x22b_on_four_a100_80_is_refused_when_it_fits_by_under_the_margin() -> None:
    tp4 = evaluate(
        model("mixtral-8x22b"),
        instance("p4de.24xlarge"),
        dtype=WeightDtype.BF16,
        context=8192,
        concurrency=8,
        tensor_parallel=4,
    )
    assert isinstance(tp4, Refusal) and tp4.memory is not None
    assert 0 < tp4.memory.per_gpu_spare_gb < HEADROOM_GB_PER_GPU  # it would "fit", by about 1 GB
    best = fit_on("mixtral-8x22b", "p4de.24xlarge", dtype="bf16", context=8192, concurrency=8)
    assert isinstance(best, SizingOption) and best.tensor_parallel == 8
    assert best.memory.per_gpu_spare_gb >= HEADROOM_GB_PER_GPU


def test_a_layout_vllm_would_leave_too_little_kv_room_is_refused_even_within_the_margin() -> None:
    # 1,000 short sequences of Qwen3-8B in fp8 on one L40S: the kit's estimate (9.4 GB weights + 28.0 GB KV cache
    # + 2 GB) leaves 3.7 GB, above the margin; but vLLM profiles the sampler over 1,000 x 151,936 fp32 logits
    # (6.1 GB) before it sizes the KV cache, and would have 26.0 GB left for a cache of 28.0.
    refused = evaluate(
        model("qwen3-8b"),
        instance("g6e.xlarge"),
        dtype=WeightDtype.FP8,
        context=190,
        concurrency=1000,
        tensor_parallel=1,
    )
    assert isinstance(refused, Refusal) and refused.memory is not None
    assert refused.memory.fits_with_margin and not refused.memory.fits_vllm
    assert refused.memory.vllm_activation_peak_gb == pytest.approx(6.08, abs=0.01)
    assert refused.reason.startswith("vLLM would leave 26.0 GB per GPU for a KV cache of 28.0 GB")
    fewer = evaluate(
        model("qwen3-8b"),
        instance("g6e.xlarge"),
        dtype=WeightDtype.FP8,
        context=190,
        concurrency=800,
        tensor_parallel=1,
    )
    assert isinstance(fewer, SizingOption) and fewer.memory.fits_vllm


def test_fp8_keeps_embeddings_and_lm_head_in_bf16() -> None:
    # Issue 19 (vLLM keeps them in bf16, VLLM-FP8): Llama 3.3 70B in fp8 loads about 72.7 GB, not 70.6.
    size_gb, basis = weights_gb(model("llama-3.3-70b"), WeightDtype.FP8)
    assert basis is WeightsBasis.PARAMETERS and size_gb == pytest.approx(72.7, abs=0.05)
    embeddings = model("llama-3.3-70b").embeddings
    assert embeddings is not None and (embeddings.vocab_size, embeddings.hidden_size) == (128256, 8192)
    assert weights_gb(model("llama-3.3-70b"), WeightDtype.BF16)[0] == pytest.approx(141.2)  # bf16: unchanged
    # A tied model keeps one matrix: Gemma 3 27B adds 262,208 x 5,376 once.
    gemma = model("gemma-3-27b")
    assert gemma.embeddings is not None and gemma.embeddings.tied
    assert weights_gb(gemma, WeightDtype.FP8)[0] == pytest.approx(27.4 + 262208 * 5376 / 1e9)
    # A measured checkpoint already holds what its publisher kept in bf16.
    assert weights_gb(model("gpt-oss-120b"), WeightDtype.MXFP4)[0] == 65.28


def test_the_sampler_peak_follows_the_measured_vllm_profiles() -> None:
    # LLMD-MEMORY, one H100 at vLLM's default 1,024 sequences: 4.76 GiB for Llama-3.1-8B, 7.38 GiB for gpt-oss.
    for name, measured_gib in (("llama-3.1-8b", 4.76), ("gpt-oss-20b", 7.38), ("qwen3-32b", 5.64)):
        estimate = sampler_gb(model(name), 1024)
        assert measured_gib * 2**30 / 1e9 <= estimate <= measured_gib * 2**30 / 1e9 * 1.05, name


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("llama-3.3-70b", {"dtype": "fp8", "context": 32768, "concurrency": 16}),
        ("llama-3.1-405b", {"dtype": "fp8"}),
    ],
)
def test_first_choice_is_one_node_with_2_gb_per_gpu_beyond_the_estimate(name: str, kwargs: dict) -> None:
    # Issue 19, "Done when": the cheapest per hour was a multi-node PCIe pipeline (4 x g6.12xlarge, 3 x g6e.12xlarge).
    result = size(name, **kwargs)
    first = result.options[0]
    assert first.nodes_per_replica == 1 and not first.multi_node
    assert first.memory.per_gpu_spare_gb >= 2.0
    assert any(option.multi_node for option in result.options)  # pipelines are still offered, after
    cheapest_hourly = result.by_usd_per_hour()[0]
    assert cheapest_hourly.multi_node  # what the old ranking put first
    asked = size(name, multi_node=True, **kwargs)
    assert [o.usd_per_million_output_tokens for o in asked.options if o.usd_per_million_output_tokens] == sorted(
        o.usd_per_million_output_tokens for o in asked.options if o.usd_per_million_output_tokens
    )


def test_single_node_options_rank_before_pipelines_then_by_cost_per_token() -> None:
    result = size("llama-3.1-405b", dtype="fp8")
    flags = [option.multi_node for option in result.options]
    assert flags == sorted(flags)
    single = [o.usd_per_million_output_tokens for o in result.options if not o.multi_node and o.usd_per_hour]
    assert single == sorted(single)


def test_options_matching_a_published_deployment_are_known_good_with_their_source() -> None:
    p5 = fit_on("llama-3.1-405b", "p5.48xlarge", dtype="fp8")
    assert isinstance(p5, SizingOption) and (p5.gpu, p5.gpus_per_replica) == ("H100", 8)
    assert [entry.source for entry in p5.known_good] == ["LAMBDA"]
    r1 = fit_on("deepseek-r1", "p5en.48xlarge", dtype="fp8", context=16384, concurrency=32)
    assert isinstance(r1, SizingOption)
    assert {entry.source for entry in r1.known_good} == {"VLLM-RECIPE-DEEPSEEK", "GPUSTACK"}
    # Same model and GPU, another GPU count: not known-good.
    h200 = fit_on("llama-3.1-405b", "p5en.48xlarge", dtype="fp8")
    assert isinstance(h200, SizingOption) and h200.gpus_per_replica == 4 and not h200.known_good


def test_size_defaults_to_the_stacks_concurrency() -> None:
    from components.settings.types import ModelSettings

    default = ModelSettings(model="llama-3.1-8b", pool="p").concurrency
    assert DEFAULT_CONCURRENCY == default == 16
    assert size("llama-3.1-8b").concurrency == default


_GPU_INSTANCES = sorted(name for name, i in catalog.instances().items() if i.gpu is not None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(catalog.models())),
    instance_name=st.sampled_from(_GPU_INSTANCES),
    context_share=st.floats(min_value=0.01, max_value=1.0),
    concurrency=st.integers(min_value=1, max_value=256),
    utilization=st.sampled_from([0.8, 0.9, 0.95]),
    dtype_index=st.integers(min_value=0, max_value=2),
)
def test_no_offered_option_runs_out_of_memory(
    name: str, instance_name: str, context_share: float, concurrency: int, utilization: float, dtype_index: int
) -> None:
    chosen = model(name)
    dtype = chosen.dtypes[dtype_index % len(chosen.dtypes)]
    context = max(1, int(chosen.max_context * context_share))
    result = fit_on(
        chosen,
        instance_name,
        dtype=dtype,
        context=context,
        concurrency=concurrency,
        gpu_memory_utilization=utilization,
    )
    if not isinstance(result, SizingOption):
        return
    memory = result.memory
    usable = utilization * instance(instance_name).gpu_memory_gb
    assert memory.per_gpu_usable_gb == pytest.approx(usable)
    # The kit's own estimate plus the margin stays within what vLLM may use on every GPU ...
    assert memory.per_gpu_needed_gb + HEADROOM_GB_PER_GPU <= usable + 1e-9
    # ... and by vLLM's own arithmetic (usable - weights - activation peak - non-torch memory) the KV cache holds
    # context x concurrency, with the engine batching as many sequences as were sized.
    vllm_room = usable - memory.per_gpu_weights_gb - sampler_gb(chosen, concurrency) - VLLM_NON_TORCH_AND_GRAPHS_GB
    assert memory.per_gpu_kv_cache_gb <= vllm_room + 1e-9
