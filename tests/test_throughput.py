"""The throughput model against its calibration points, and the batching it gives the shipped stacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.sizing import throughput as tm
from components.sizing.core import fit_on

ROOT = Path(__file__).resolve().parents[1]
BIG_GPUS = {"H100", "H200", "B200"}


def test_calibration_has_a_dozen_sourced_vllm_points() -> None:
    fitted = [check.point for check in tm.calibration() if not check.point.excluded]
    assert len(fitted) >= 12
    assert all("vllm" in point.engine.lower() for point in fitted)
    assert not any("tensorrt" in point.engine.lower() for point in fitted)


def test_median_error_under_25_percent_and_no_point_off_by_2x() -> None:
    median, worst = tm.error_summary(tm.calibration())
    assert median < 0.25
    assert worst < 2.0


def test_docs_table_is_generated() -> None:
    text = (ROOT / "docs" / "throughput.md").read_text(encoding="utf-8")
    assert tm.calibration_markdown() in text


def _replica(model: str, instance_type: str, tp: int, dtype: str = "fp8") -> tm.Replica:
    from components.catalog import WeightDtype, resolve_instance, resolve_model

    instance = resolve_instance(instance_type)
    assert instance.gpu is not None
    return tm.Replica(
        model=resolve_model(model),
        gpu=instance.gpu,
        dtype=WeightDtype(dtype),
        gpu_memory_gb=instance.gpu_memory_gb,
        tensor_parallel=tp,
    )


def test_kv_reads_slow_decode_and_bandwidth_speeds_it() -> None:
    h100, h200 = _replica("llama-3.1-70b", "p5.48xlarge", 4), _replica("llama-3.1-70b", "p5en.48xlarge", 4)
    # Long answers keep the steps decode-bound (little prefill per step), so the KV reads show.
    short = tm.Workload(prompt_tokens=500, output_tokens=1000)
    long = tm.Workload(prompt_tokens=2000, output_tokens=30000)
    at_short = tm.performance(h100, short, concurrency=16)
    at_long = tm.performance(h100, long, concurrency=16)
    assert at_long.tpot_seconds > at_short.tpot_seconds
    assert tm.performance(h100, tm.Workload(prompt_tokens=16000, output_tokens=200), concurrency=16).ttft_seconds > (
        at_short.ttft_seconds
    )
    assert tm.performance(h200, long, concurrency=16).tpot_seconds < at_long.tpot_seconds


def test_pcie_tensor_parallel_costs_more_than_nvlink() -> None:
    pcie = _replica("llama-3.1-8b", "g6e.12xlarge", 4)
    one = _replica("llama-3.1-8b", "g6e.xlarge", 1)
    workload = tm.Workload()
    gain = (
        tm.performance(pcie, workload, concurrency=1).output_tokens_per_second
        / tm.performance(one, workload, concurrency=1).output_tokens_per_second
    )
    assert gain < 4  # four GPUs never give four times one GPU's single stream


def test_single_stream_deepseek_is_bounded_by_weights_and_kv_reads() -> None:
    option = fit_on("deepseek-r1", "p5en.48xlarge", dtype="fp8", concurrency=1)
    # 37B active parameters in FP8 over 8 x 4.8 TB/s can give at most ~1,000 tok/s even at full bandwidth.
    assert option.throughput.output_tokens_per_second < 500
    assert option.throughput.capacity_output_tokens_per_second > option.throughput.output_tokens_per_second


def test_batch_never_exceeds_vllm_cap_and_keeps_the_sizing_concurrency() -> None:
    replica = _replica("llama-3.1-8b", "g6.xlarge", 1)
    flags = tm.batching(replica, context=8192, concurrency=16)
    assert 16 <= flags.max_num_seqs <= tm.VLLM_MAX_NUM_SEQS[False]
    assert flags.max_num_batched_tokens >= flags.max_num_seqs
    big = tm.batching(_replica("deepseek-r1", "p5en.48xlarge", 8), context=8192, concurrency=16)
    assert 64 <= big.max_num_seqs <= tm.VLLM_MAX_NUM_SEQS[True]
    assert big.max_num_seqs <= tm.kv_sequences(_replica("deepseek-r1", "p5en.48xlarge", 8), 2048)


@pytest.mark.parametrize("stack", ["pilot", "product", "core", "core-k8s"])
def test_big_gpu_servers_of_shipped_stacks_batch_at_least_64(stack: str, tmp_path: Path) -> None:
    from components.plan.run import plan_stack

    plan = plan_stack(ROOT, stack)
    seen = 0
    for manifest in plan["manifests"]:
        obj = manifest["object"]
        text = json.dumps(obj)
        if "--max-num-seqs=" not in text:
            continue
        seqs = int(text.split("--max-num-seqs=")[1].split('"')[0])
        tokens = int(text.split("--max-num-batched-tokens=")[1].split('"')[0])
        assert tokens >= seqs
        pool = text.split('"modelyard.dev/pool": "')[1].split('"')[0]
        if any(gpu.lower() in pool for gpu in (*BIG_GPUS, "L40S")):
            seen += 1
            assert seqs >= 64, (stack, obj["metadata"]["name"], seqs)
    assert seen >= 1
