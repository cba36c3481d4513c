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


@pytest.mark.parametrize("concurrency", [1, 2])
@pytest.mark.parametrize("name", ["g5.xlarge", "g6.xlarge"])
def test_8b_bf16_fits_one_24gb_gpu_at_8k(name: str, concurrency: int) -> None:
    result = fit_on("llama-3.1-8b", name, dtype="bf16", context=8192, concurrency=concurrency)
    assert isinstance(result, SizingOption)
    assert result.gpus_per_replica == 1
    assert result.memory.weights_gb == pytest.approx(16.06)


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
    assert bf16.reason.startswith("needs 1.36 TB in bf16")
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
    result = size("llama-3.1-8b", dtype="fp8")
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
    size_gb, basis = weights_gb(model("llama-3.1-405b"), WeightDtype.FP8)
    assert basis is WeightsBasis.PARAMETERS and size_gb == pytest.approx(405.9)


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
    hourly = [o.usd_per_hour for o in result.options if o.usd_per_hour is not None]
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
    result = size("llama-3.1-8b", instance_types=["g5.xlarge", "g5.48xlarge"], throughput_target=1000)
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
