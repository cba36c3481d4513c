"""`modelyard size`: rank the instance types that can serve a model, by $ per million output tokens at the
requested concurrency, one node before a pipeline over several (unless --multi-node), or by $/hour.

Exit codes: 0 answered (also when nothing fits: the answer says why), 2 bad input (the message names the
argument and what is allowed). JSON output (--json) is a list with one object per instance type: options
that fit first, ranked as requested, then refusals with a `reason`. Money fields are decimal strings
rounded to cents (or null without a sourced price), so they survive JSON parsers without binary rounding.
Every option shows the memory each GPU keeps beyond the kit's estimate (`per_gpu_spare_gb`, never below
`per_gpu_margin_gb`) and the published deployments it matches (`known_good`, each with its source).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Any, TextIO

from components.catalog import KnownGood, UnknownNameError, WeightDtype, resolve_instance, resolve_model, sources
from components.sizing.cold_start import for_layout
from components.sizing.core import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONTEXT,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    MemoryBreakdown,
    Refusal,
    SizingInputError,
    SizingOption,
    SizingResult,
    size,
)

PROG = "modelyard size"
EXIT_OK = 0
EXIT_BAD_INPUT = 2

# The command-line flag behind each argument SizingInputError can name.
_FLAGS = {
    "dtype": "--dtype",
    "context": "--context",
    "concurrency": "--concurrency",
    "throughput_target": "--throughput",
    "instance_types": "--instance",
    "gpu_memory_utilization": "--gpu-memory-utilization",
}


class SortKey(StrEnum):
    USD_PER_MTOK = "usd-per-mtok"
    USD_PER_HOUR = "usd-per-hour"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes usage, help and errors to the streams main() was given."""

    def __init__(self, *, stdout: TextIO, stderr: TextIO, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stdout = stdout
        self._stderr = stderr

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self._stderr if file is sys.stderr else self._stdout).write(message)


def build_parser(*, stdout: TextIO, stderr: TextIO) -> argparse.ArgumentParser:
    parser = _Parser(
        stdout=stdout,
        stderr=stderr,
        prog=PROG,
        description="Size a model onto EC2 GPU instance types and rank them by cost.",
    )
    parser.add_argument(
        "--model", required=True, help="catalog name (llama-3.1-8b) or Hugging Face repository id, any case"
    )
    parser.add_argument(
        "--dtype",
        choices=[dtype.value for dtype in WeightDtype],
        help="weight dtype (default: the model's published dtype); fp8 needs Ada, Hopper or Blackwell GPUs",
    )
    parser.add_argument(
        "--context",
        type=_positive_int,
        help=f"tokens per sequence, prompt plus output (default: {DEFAULT_CONTEXT} or the model's maximum)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"sequences in flight per replica (default: {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--instance",
        action="extend",
        nargs="+",
        metavar="TYPE",
        help="only these instance types (default: every GPU instance type of the catalog)",
    )
    parser.add_argument(
        "--throughput",
        type=_positive_float,
        metavar="TOKENS_PER_S",
        help="output tokens per second to carry in total; adds replicas (default: one replica)",
    )
    parser.add_argument(
        "--gpu-memory-utilization",
        type=_positive_float,
        default=DEFAULT_GPU_MEMORY_UTILIZATION,
        help=f"share of GPU memory vLLM may use (default: {DEFAULT_GPU_MEMORY_UTILIZATION})",
    )
    parser.add_argument(
        "--multi-node",
        action="store_true",
        help=(
            "rank replicas that span several nodes (a pipeline over EFA) by cost alongside single-node ones "
            "(default: every single-node option ranks first)"
        ),
    )
    parser.add_argument(
        "--sort",
        choices=[key.value for key in SortKey],
        default=SortKey.USD_PER_MTOK.value,
        help=(
            "ranking of the table (default: usd-per-mtok, $ per million output tokens at the concurrency, "
            "single node first); --json carries both ranks"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    return parser


def main(argv: Sequence[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser(stdout=out, stderr=err)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit_:  # argparse reports bad arguments (exit 2) and --help (exit 0) this way
        return int(exit_.code or 0)

    def bad_input(flag: str, message: str) -> int:
        print(f"{PROG}: error: {flag}: {message}", file=err)
        return EXIT_BAD_INPUT

    try:
        model = resolve_model(args.model)
    except UnknownNameError as error:
        return bad_input("--model", str(error))
    try:
        result = size(
            model,
            dtype=args.dtype,
            context=args.context,
            concurrency=args.concurrency,
            instance_types=args.instance,
            throughput_target=args.throughput,
            gpu_memory_utilization=args.gpu_memory_utilization,
            multi_node=args.multi_node,
        )
    except UnknownNameError as error:
        return bad_input("--instance", str(error))
    except SizingInputError as error:
        return bad_input(_FLAGS[error.argument], str(error))
    sort = SortKey(args.sort)
    if args.json:
        json.dump(to_json(result, sort), out, indent=2)
        out.write("\n")
    else:
        out.write(render_table(result, sort))
    return EXIT_OK


def _ranked(result: SizingResult, sort: SortKey) -> tuple[SizingOption, ...]:
    return result.options if sort is SortKey.USD_PER_MTOK else result.by_usd_per_hour()


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _memory_json(memory: MemoryBreakdown | None) -> dict[str, Any] | None:
    if memory is None:
        return None
    return {
        "weights_gb": round(memory.weights_gb, 2),
        "kv_cache_gb": round(memory.kv_cache_gb, 2),
        "overhead_gb": round(memory.overhead_gb, 2),
        "usable_gb": round(memory.usable_gb, 2),
        "per_gpu_weights_gb": round(memory.per_gpu_weights_gb, 2),
        "per_gpu_kv_cache_gb": round(memory.per_gpu_kv_cache_gb, 2),
        "per_gpu_overhead_gb": round(memory.per_gpu_overhead_gb, 2),
        "per_gpu_needed_gb": round(memory.per_gpu_needed_gb, 2),
        "per_gpu_usable_gb": round(memory.per_gpu_usable_gb, 2),
        "per_gpu_spare_gb": round(memory.per_gpu_spare_gb, 2),
        "per_gpu_margin_gb": round(memory.per_gpu_margin_gb, 2),
        "vllm_kv_room_gb": round(memory.vllm_kv_room_gb, 2),
        "weights_basis": memory.weights_basis.value,
    }


def _known_good_json(entry: KnownGood) -> dict[str, Any]:
    source = sources()[entry.source]
    return {
        "source": entry.source,
        "date": source.date,
        "citation": source.citation,
        "engine": entry.engine,
        "setup": entry.setup,
    }


def to_json(result: SizingResult, sort: SortKey = SortKey.USD_PER_HOUR) -> list[dict[str, Any]]:
    """One object per instance type: fitting options in the requested order, then refusals."""
    hourly_rank = {option.instance: rank for rank, option in enumerate(result.by_usd_per_hour(), start=1)}
    token_rank = {
        option.instance: rank for rank, option in enumerate(result.by_usd_per_million_output_tokens(), start=1)
    }
    entries: list[dict[str, Any]] = []
    for rank, option in enumerate(_ranked(result, sort), start=1):
        entries.append(
            {
                "instance": option.instance,
                "fits": True,
                "model": result.model.name,
                "gpu": option.gpu,
                "dtype": option.dtype.value,
                "context": result.context,
                "concurrency": result.concurrency,
                "gpus_per_replica": option.gpus_per_replica,
                "tensor_parallel": option.tensor_parallel,
                "pipeline_parallel": option.pipeline_parallel,
                "nodes_per_replica": option.nodes_per_replica,
                "replicas_per_node": option.replicas_per_node,
                "replicas": option.replicas,
                "nodes": option.nodes,
                "usd_per_hour": _money(option.usd_per_hour),
                "node_usd_per_hour": _money(option.node_usd_per_hour),
                "usd_per_million_output_tokens": _money(option.usd_per_million_output_tokens),
                "price_note": option.price_note or None,
                "output_tokens_per_second_per_replica": round(option.throughput.output_tokens_per_second, 1),
                "ttft_seconds": round(option.throughput.ttft_seconds, 3),
                "tpot_seconds": round(option.throughput.tpot_seconds, 4),
                "capacity_output_tokens_per_second_per_replica": round(
                    option.throughput.capacity_output_tokens_per_second, 1
                ),
                "capacity_batch": option.throughput.capacity_batch,
                "throughput_source": option.throughput.source.value,
                "throughput_basis": option.throughput.basis,
                "memory": _memory_json(option.memory),
                "multi_node": option.multi_node,
                "known_good": [_known_good_json(entry) for entry in option.known_good],
                "rank": rank,
                # One replica on a new node, with the kit's default weight path (docs/serving.md#cold-starts).
                "cold_start": for_layout(
                    result.model, option.dtype, option.nodes_per_replica, resolve_instance(option.instance)
                ).to_json(),
                "rank_by_usd_per_hour": hourly_rank[option.instance],
                "rank_by_usd_per_million_output_tokens": token_rank[option.instance],
                "reason": None,
            }
        )
    for refusal in result.refusals:
        entries.append(_refusal_json(result, refusal))
    return entries


def _refusal_json(result: SizingResult, refusal: Refusal) -> dict[str, Any]:
    return {
        "instance": refusal.instance,
        "fits": False,
        "model": result.model.name,
        "gpu": None,
        "dtype": result.dtype.value,
        "context": result.context,
        "concurrency": result.concurrency,
        "gpus_per_replica": None,
        "tensor_parallel": None,
        "pipeline_parallel": None,
        "nodes_per_replica": None,
        "replicas_per_node": None,
        "replicas": None,
        "nodes": None,
        "usd_per_hour": None,
        "node_usd_per_hour": None,
        "usd_per_million_output_tokens": None,
        "price_note": None,
        "output_tokens_per_second_per_replica": None,
        "ttft_seconds": None,
        "tpot_seconds": None,
        "capacity_output_tokens_per_second_per_replica": None,
        "capacity_batch": None,
        "throughput_source": None,
        "throughput_basis": None,
        "memory": _memory_json(refusal.memory),
        "multi_node": None,
        "known_good": [],
        "rank": None,
        "cold_start": None,
        "rank_by_usd_per_hour": None,
        "rank_by_usd_per_million_output_tokens": None,
        "reason": refusal.reason,
    }


def render_table(result: SizingResult, sort: SortKey = SortKey.USD_PER_HOUR) -> str:
    model = result.model
    if sort is SortKey.USD_PER_HOUR:
        ranking = "$/hour"
    elif result.multi_node:
        ranking = "$ per million output tokens (multi-node pipelines ranked alongside single nodes)"
    else:
        ranking = "$ per million output tokens, one node before a pipeline over several"
    target = f", {result.throughput_target:,.0f} output tok/s in total" if result.throughput_target else ""
    lines = [
        f"{model.name} ({model.repo_id}), {result.dtype}, context {result.context:,} x {result.concurrency} "
        f"in flight per replica{target}; ranked by {ranking}",
        "",
    ]
    header = (
        "#",
        "instance",
        "GPU",
        "TP x PP",
        "nodes",
        "replicas",
        "$/hour",
        "$/M out",
        "out tok/s",
        "TTFT",
        "TPOT",
        "cold start",
        "memory GB",
        "spare/GPU",
        "known-good",
    )
    rows: list[tuple[str, ...]] = [header]
    for rank, option in enumerate(_ranked(result, sort), start=1):
        memory = option.memory
        cold = for_layout(model, option.dtype, option.nodes_per_replica, resolve_instance(option.instance))
        rows.append(
            (
                str(rank),
                option.instance,
                f"{option.gpus_per_replica} x {option.gpu}",
                f"{option.tensor_parallel} x {option.pipeline_parallel}",
                str(option.nodes),
                str(option.replicas),
                _money(option.usd_per_hour) or "no price",
                _money(option.usd_per_million_output_tokens) or "-",
                f"{option.throughput.output_tokens_per_second:,.0f}",
                f"{option.throughput.ttft_seconds * 1000:,.0f} ms",
                f"{option.throughput.tpot_seconds * 1000:,.1f} ms",
                f"{-(-cold.total_seconds // 60)} min",
                f"{memory.weights_gb:,.1f} + {memory.kv_cache_gb:,.1f} + {memory.overhead_gb:,.1f}"
                f" / {memory.usable_gb:,.1f}",
                f"{memory.per_gpu_spare_gb:,.1f}",
                ", ".join(sorted({entry.source for entry in option.known_good})) or "-",
            )
        )
    if len(rows) > 1:
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines.extend(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
        )
        lines.append("")
        margin = result.options[0].memory.per_gpu_margin_gb
        lines.append(
            "memory: weights + KV cache + overhead / usable, per replica; spare/GPU: what the most loaded GPU "
            f"keeps beyond that estimate (at least {margin:g} GB, else refused); out tok/s, TTFT and TPOT per "
            "replica at the concurrency, from the calibrated throughput model (docs/throughput.md; --json "
            "throughput_basis); cold start: one replica on a new node, weights streamed from S3 (copied for "
            "multi-node), see --json cold_start"
        )
    else:
        lines.append(f"Nothing fits: {result.reason}")
    cited = sorted({entry.source for option in result.options for entry in option.known_good})
    if cited:
        lines.extend(["", "Known-good (a published deployment of this model on that GPU, count and dtype):"])
        lines.extend(f"  [{key}] {sources()[key].date}: {sources()[key].citation}" for key in cited)
    notes = [f"  {option.instance}: {option.price_note}" for option in result.options if option.price_note]
    if notes:
        lines.extend(["", "Prices:", *notes])
    if result.refusals:
        lines.extend(["", "Not fitting:", *(f"  {r.instance}: {r.reason}" for r in result.refusals)])
    return "\n".join(lines) + "\n"
