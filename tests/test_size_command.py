"""`modelyard size`: table and JSON output, exit codes, and messages that name the argument at fault."""

from __future__ import annotations

import io
import json

import pytest

from components.sizing.command import main

REQUIRED_KEYS = {
    "instance",
    "gpus_per_replica",
    "tensor_parallel",
    "pipeline_parallel",
    "nodes_per_replica",
    "usd_per_hour",
    "usd_per_million_output_tokens",
    "reason",
}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_table_ranks_options_and_lists_refusals() -> None:
    code, out, err = run("--model", "llama-3.1-8b", "--context", "8192", "--concurrency", "1", "--sort", "usd-per-hour")
    assert code == 0 and not err
    assert "ranked by $/hour" in out
    lines = out.splitlines()
    assert lines[2].split()[:2] == ["#", "instance"]
    assert lines[3].split()[:2] == ["1", "g6.xlarge"]  # the cheapest GPU that fits
    assert "p5e.48xlarge: no us-east-1 on-demand list price" in out


def test_json_lists_every_instance_type_with_the_contract_keys() -> None:
    code, out, _ = run("--model", "Meta-Llama/Llama-3.1-70B-Instruct", "--dtype", "bf16", "--json")
    assert code == 0
    entries = json.loads(out)
    assert len(entries) == 18  # every GPU instance type: an option or a refusal
    for entry in entries:
        assert entry.keys() >= REQUIRED_KEYS
    fitting = [e for e in entries if e["fits"]]
    refused = [e for e in entries if not e["fits"]]
    assert fitting and refused
    assert all(e["reason"] is None for e in fitting) and all(e["reason"] for e in refused)
    assert [e["rank"] for e in fitting] == list(range(1, len(fitting) + 1))
    assert sorted(e["rank_by_usd_per_hour"] for e in fitting) == list(range(1, len(fitting) + 1))
    priced = [e for e in fitting if e["usd_per_hour"] is not None]
    assert all(isinstance(e["usd_per_hour"], str) and e["usd_per_hour"].count(".") == 1 for e in priced)
    assert all(len(e["usd_per_hour"].split(".")[1]) == 2 for e in priced)  # cents


def test_json_when_nothing_fits_gives_reasons() -> None:
    code, out, _ = run("--model", "deepseek-r1", "--instance", "p4d.24xlarge", "g5.48xlarge", "--json")
    assert code == 0
    entries = json.loads(out)
    assert {e["instance"] for e in entries} == {"p4d.24xlarge", "g5.48xlarge"}
    assert all(not e["fits"] and "fp8" in e["reason"] for e in entries)


def test_sort_by_cost_per_token_puts_one_node_first_unless_multi_node_is_asked() -> None:
    argv = ("--model", "llama-3.1-405b", "--dtype", "fp8", "--json")
    code, out, _ = run(*argv)
    assert code == 0
    fitting = [e for e in json.loads(out) if e["fits"]]
    assert {e["multi_node"] for e in fitting} == {False, True}  # the catalog offers both for 405B
    flags = [e["multi_node"] for e in fitting]
    assert flags == sorted(flags)  # every single-node option before any pipeline over several nodes
    for group in (False, True):
        costs = [
            float(e["usd_per_million_output_tokens"])
            for e in fitting
            if e["multi_node"] is group and e["usd_per_million_output_tokens"]
        ]
        assert costs == sorted(costs)
    code, out, _ = run(*argv, "--multi-node")
    assert code == 0
    costs = [float(e["usd_per_million_output_tokens"]) for e in json.loads(out) if e["usd_per_million_output_tokens"]]
    assert costs == sorted(costs)  # by cost alone: a cheaper pipeline may now come first


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "lama-3.1-8b"], "--model: unknown model 'lama-3.1-8b'; close matches: llama-3.1-8b"),
        (
            ["--model", "llama-3.1-8b", "--dtype", "mxfp4"],
            "--dtype: llama-3.1-8b is not served in mxfp4; allowed: bf16, fp8",
        ),
        (["--model", "llama-3.1-8b", "--dtype", "int4"], "argument --dtype: invalid choice: 'int4'"),
        (["--model", "llama-3.1-8b", "--context", "0"], "argument --context: expected a positive integer"),
        (["--model", "llama-3.1-8b", "--context", "200000"], "--context: 200000 tokens is outside 1..131072"),
        (["--model", "llama-3.1-8b", "--concurrency", "x"], "argument --concurrency: expected a positive integer"),
        (["--model", "llama-3.1-8b", "--instance", "p5.49xlarge"], "--instance: unknown instance type 'p5.49xlarge'"),
        (["--model", "llama-3.1-8b", "--instance", "t3.medium"], "--instance: t3.medium has no GPU"),
        (["--model", "llama-3.1-8b", "--gpu-memory-utilization", "1.5"], "--gpu-memory-utilization: must be in (0, 1]"),
        (["--dtype", "bf16"], "the following arguments are required: --model"),
    ],
)
def test_bad_input_exits_2_naming_the_argument(argv: list[str], expected: str) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert not out
    assert expected in err
    assert "Traceback" not in err


def test_help_exits_0() -> None:
    code, out, _ = run("--help")
    assert code == 0
    assert "usage: modelyard size" in out


def test_json_and_table_show_the_margin_and_known_good_sources() -> None:
    code, out, _ = run("--model", "llama-3.1-405b", "--dtype", "fp8", "--json")
    assert code == 0
    fitting = [e for e in json.loads(out) if e["fits"]]
    for entry in fitting:
        memory = entry["memory"]
        assert memory["per_gpu_margin_gb"] == 2.0
        assert memory["per_gpu_spare_gb"] >= memory["per_gpu_margin_gb"]
        assert memory["per_gpu_spare_gb"] == round(memory["per_gpu_usable_gb"] - memory["per_gpu_needed_gb"], 2)
        assert memory["vllm_kv_room_gb"] >= memory["per_gpu_kv_cache_gb"]
    p5 = next(e for e in fitting if e["instance"] == "p5.48xlarge")
    assert [k["source"] for k in p5["known_good"]] == ["LAMBDA"]
    assert p5["known_good"][0]["date"] == "2024-09" and "vllm-benchmark" in p5["known_good"][0]["citation"]
    assert all(not e["known_good"] for e in fitting if e["gpu"] != "H100")
    code, out, _ = run("--model", "llama-3.1-405b", "--dtype", "fp8")
    header = next(line for line in out.splitlines() if line.startswith("#"))
    assert header.split()[-2:] == ["spare/GPU", "known-good"]
    p5_row = next(line for line in out.splitlines() if "p5.48xlarge " in line and line[0].isdigit())
    assert p5_row.split()[-2:] == ["15.6", "LAMBDA"]
    assert "[LAMBDA] 2024-09: LambdaLabsML/vllm-benchmark" in out


def test_concurrency_defaults_to_the_stacks_default() -> None:
    from components.settings.types import ModelSettings

    code, out, _ = run("--model", "llama-3.1-8b", "--json")
    assert code == 0
    assert {e["concurrency"] for e in json.loads(out)} == {ModelSettings(model="m", pool="p").concurrency}
