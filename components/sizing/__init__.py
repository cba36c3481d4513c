"""Sizing of model replicas onto EC2 GPU instance types (see core.py for the rules)."""

from components.sizing.core import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CONTEXT,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    MemoryBreakdown,
    Refusal,
    SizingInputError,
    SizingOption,
    SizingResult,
    ThroughputEstimate,
    ThroughputSource,
    WeightsBasis,
    estimate_throughput,
    evaluate,
    fit_on,
    size,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CONTEXT",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "MemoryBreakdown",
    "Refusal",
    "SizingInputError",
    "SizingOption",
    "SizingResult",
    "ThroughputEstimate",
    "ThroughputSource",
    "WeightsBasis",
    "estimate_throughput",
    "evaluate",
    "fit_on",
    "size",
]
