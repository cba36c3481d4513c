"""The kit's catalog: EC2 instance types, open-weight models and serving throughput, each figure sourced.

The data lives in YAML beside this module (instances.yaml, models.yaml, throughput.yaml, known_good.yaml,
sources.yaml).
Figures are grouped by source: every group of figures carries ``source:``, a key of sources.yaml, and
the loader refuses the whole catalog, listing every problem with its path, when a group has no source,
names an unknown one, or a figure is missing, misspelt or out of range. A source nothing cites is an
error too, so sources.yaml cannot collect dead entries.

Public API: ``instances()``, ``models()``, ``gpus()``, ``sources()``, ``throughput_points()``, ``known_good()``,
``resolve_model(name_or_repo_id)``, ``resolve_instance(name)``; ``load_catalog(directory)`` reads another
directory (tests use it for crafted data). The default catalog is loaded once per process.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml

from components.yamlio import parse_yaml

DATA_DIR = Path(__file__).parent

BYTES_PER_MIB = 1024 * 1024
BYTES_PER_GB = 1_000_000_000


class SourceQuality(StrEnum):
    """How far a source can be trusted (docs/sources.md#quality-letters)."""

    MACHINE = "M"
    OFFICIAL = "O"
    THIRD_PARTY = "T"
    UNVERIFIED = "U"


class GpuArchitecture(StrEnum):
    AMPERE = "ampere"
    ADA = "ada"
    HOPPER = "hopper"
    BLACKWELL = "blackwell"


# FP8 Tensor Core compute (W8A8) starts at compute capability 8.9 (source VLLM-FP8).
FP8_ARCHITECTURES = frozenset({GpuArchitecture.ADA, GpuArchitecture.HOPPER, GpuArchitecture.BLACKWELL})


class Interconnect(StrEnum):
    NVLINK = "nvlink"  # SXM boards with NVSwitch (p4d, p4de, p5, p5e, p5en, p6)
    PCIE = "pcie"  # PCIe cards without NVLink (g5, g6, g6e)


class CpuArchitecture(StrEnum):
    X86_64 = "x86_64"
    ARM64 = "arm64"


class WeightDtype(StrEnum):
    BF16 = "bf16"
    FP8 = "fp8"
    MXFP4 = "mxfp4"


class AttentionKind(StrEnum):
    GQA = "gqa"  # grouped-query attention; multi-head and multi-query are its edge cases
    MLA = "mla"  # DeepSeek multi-head latent attention: one compressed vector per layer per token


class CommercialUse(StrEnum):
    PERMITTED = "permitted"
    RESTRICTED = "restricted"


class CitedBy(StrEnum):
    """Where a source is cited: by figures in the data files, or by a rule in the kit's code."""

    DATA = "data"
    CODE = "code"


class Access(StrEnum):
    GATED = "gated"
    OPEN = "open"


class CatalogError(ValueError):
    """The catalog data breaks a rule; ``problems`` holds every problem found, each with its path."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid catalog data:\n  " + "\n  ".join(self.problems))


class UnknownNameError(LookupError):
    """A model or instance name the catalog does not hold; ``close_matches`` suggests what was meant."""

    def __init__(self, kind: str, name: str, close_matches: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.close_matches = tuple(close_matches)
        hint = f"; close matches: {', '.join(self.close_matches)}" if self.close_matches else ""
        super().__init__(f"unknown {kind} {name!r}{hint}")


class UnknownModelError(UnknownNameError):
    def __init__(self, name: str, close_matches: Sequence[str]) -> None:
        super().__init__("model", name, close_matches)


class UnknownInstanceError(UnknownNameError):
    def __init__(self, name: str, close_matches: Sequence[str]) -> None:
        super().__init__("instance type", name, close_matches)


@dataclass(frozen=True, kw_only=True)
class Source:
    key: str
    citation: str
    date: str  # when the source was generated or published, or "unknown"
    read: str  # when the kit's authors read it
    quality: SourceQuality
    cited_by: CitedBy


@dataclass(frozen=True, kw_only=True)
class Gpu:
    model: str  # catalog name: A10G, L4, L40S, A100-40, A100-80, H100, H200, B200
    architecture: GpuArchitecture
    memory_bandwidth_gb_per_s: float
    bf16_tflops: float  # peak dense (no sparsity) BF16 tensor-core TFLOPS
    fp8_tflops: float | None  # peak dense FP8 TFLOPS; None where the GPU has no FP8 tensor cores
    interconnect: Interconnect  # how the GPUs of one AWS node talk to each other
    interconnect_gb_per_s: float  # per GPU, one direction
    sources: Mapping[str, str]  # figure group -> source key

    @property
    def supports_fp8(self) -> bool:
        return self.architecture in FP8_ARCHITECTURES


@dataclass(frozen=True, kw_only=True)
class SpotDiscount:
    """Observed spot discount off on-demand, as fractions (0.57 = 57% off); one snapshot, not a promise."""

    minimum: float
    maximum: float
    note: str
    source: str


@dataclass(frozen=True, kw_only=True)
class InstanceType:
    name: str
    family: str
    gpu: Gpu | None  # None for system instances
    gpu_count: int
    gpu_memory_mib: int  # per GPU, as EC2 reports it
    vcpu: int
    memory_mib: int
    local_nvme_gb: int
    efa_interfaces: int  # 0: no EFA
    architecture: CpuArchitecture
    node_launch_seconds: (
        int | None
    )  # EC2 launch to GPUs advertised, per family (instances.yaml node_launch); None: system
    on_demand_usd_per_hour: Decimal | None  # None: no sourced price (see price_note)
    price_note: str
    spot: SpotDiscount | None  # None: no sourced spot figure
    sources: Mapping[str, str]  # figure group -> source key

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024

    @property
    def gpu_memory_gb(self) -> float:
        """Memory of one GPU in GB (1e9 bytes), the unit sizing works in."""
        return self.gpu_memory_mib * BYTES_PER_MIB / BYTES_PER_GB

    @property
    def supports_efa(self) -> bool:
        return self.efa_interfaces > 0

    @property
    def supports_fp8(self) -> bool:
        return self.gpu is not None and self.gpu.supports_fp8


@dataclass(frozen=True, kw_only=True)
class SlidingWindow:
    window_tokens: int
    local_layers_per_global: int  # the published pattern: this many sliding layers, then one full layer
    source: str

    def sliding_layers(self, layers: int) -> int:
        return layers - layers // (self.local_layers_per_global + 1)


@dataclass(frozen=True, kw_only=True)
class LatentAttention:
    kv_lora_rank: int
    qk_rope_head_dim: int
    source: str

    @property
    def cached_dim(self) -> int:
        """Elements cached per layer per token: the compressed KV latent plus the decoupled rope key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


@dataclass(frozen=True, kw_only=True)
class Attention:
    kind: AttentionKind
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    latent: LatentAttention | None  # set exactly when kind is MLA
    sliding_window: SlidingWindow | None
    source: str


@dataclass(frozen=True, kw_only=True)
class License:
    name: str
    commercial_use: CommercialUse
    restriction: str  # empty when commercial use is unrestricted
    access: Access
    source: str


@dataclass(frozen=True, kw_only=True)
class Embeddings:
    """The token embedding and lm_head matrices: vocab_size x hidden_size each, one matrix when tied."""

    vocab_size: int
    hidden_size: int
    tied: bool  # lm_head shares the embedding matrix (tie_word_embeddings)
    source: str

    @property
    def params_billions(self) -> float:
        matrices = 1 if self.tied else 2
        return matrices * self.vocab_size * self.hidden_size / 1e9


@dataclass(frozen=True, kw_only=True)
class Checkpoint:
    dtype: WeightDtype
    size_gb: float
    source: str


@dataclass(frozen=True, kw_only=True)
class Model:
    name: str
    repo_id: str
    total_params_billions: float
    active_params_billions: float
    attention: Attention
    max_context: int
    native_dtype: WeightDtype
    dtypes: tuple[WeightDtype, ...]  # servable dtypes, native first
    checkpoints: Mapping[WeightDtype, Checkpoint]  # measured sizes, where sourced
    embeddings: Embeddings | None  # needed where a dtype other than bf16 is sized from parameters
    license: License
    sources: Mapping[str, str]  # figure group -> source key


@dataclass(frozen=True, kw_only=True)
class ThroughputPoint:
    """One published serving measurement of one replica (tensor parallel over gpu_count GPUs of one node)."""

    model: str  # catalog model the point stands for
    measured_model: str  # what the benchmark ran
    gpu: str
    gpu_count: int
    dtype: WeightDtype
    engine: str
    workload: str
    concurrency: int  # requests the client kept in flight; with burst, the requests sent at once
    burst: bool  # every request sent at once (request rate inf) rather than a closed loop of `concurrency`
    prompt_tokens: float  # mean input tokens per request
    output_tokens: float  # mean output tokens per request
    fixed_output_lengths: bool  # every request generated about the mean (random datasets); else varied (ShareGPT)
    max_num_seqs: int  # the engine's batch cap during the run (its default where the benchmark set none)
    output_tokens_per_second: float
    ttft_ms: float | None  # mean time to first token, where published
    tpot_ms: float | None  # mean (or median, as published) time per output token after the first
    excluded: str  # why the point is not used to fit or judge the throughput model; empty when it is
    source: str


@dataclass(frozen=True, kw_only=True)
class KnownGood:
    """A published deployment: the model served on ``gpu_count`` GPUs of one model in ``dtype``."""

    model: str
    gpu: str
    gpu_count: int
    dtype: WeightDtype
    engine: str
    setup: str  # what the publication ran (parallelism, context, load)
    source: str


@dataclass(frozen=True, kw_only=True)
class Catalog:
    sources: Mapping[str, Source]
    gpus: Mapping[str, Gpu]
    instances: Mapping[str, InstanceType]
    models: Mapping[str, Model]
    throughput: tuple[ThroughputPoint, ...]
    known_good: tuple[KnownGood, ...]


# --- validation helpers -------------------------------------------------------------------------


class _Invalid(Exception):
    """One field's value is unacceptable; the message says what was expected."""


_T = TypeVar("_T")
_Check = Callable[[Any], Any]
_ABSENT = object()


@dataclass(frozen=True)
class _Optional:
    check: _Check
    default: Any = None


def _integer(minimum: int) -> _Check:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _Invalid(f"expected an integer >= {minimum}, got {value!r}")
        return value

    return check


def _positive_number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _Invalid(f"expected a number > 0, got {value!r}")
    return float(value)


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise _Invalid(f"expected a fraction in [0, 1), got {value!r}")
    return float(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected text, got {value!r}")
    return value


def _nonempty_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"expected non-empty text, got {value!r}")
    return value


def _usd(value: Any) -> Decimal | None:
    if value is None:
        return None
    # str() keeps the digits the source printed: Decimal(21.957642) would carry binary noise.
    return Decimal(str(_positive_number(value)))


def _choice(enum: type[StrEnum]) -> _Check:
    def check(value: Any) -> StrEnum:
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(member.value for member in enum)
            raise _Invalid(f"expected one of {allowed}, got {value!r}") from None

    return check


def _choices(enum: type[StrEnum]) -> _Check:
    single = _choice(enum)

    def check(value: Any) -> tuple[StrEnum, ...]:
        if not isinstance(value, list) or not value:
            raise _Invalid(f"expected a non-empty list, got {value!r}")
        return tuple(single(item) for item in value)

    return check


def _one_of(names: Mapping[str, Any]) -> _Check:
    def check(value: Any) -> str:
        if value not in names:
            raise _Invalid(f"expected one of {', '.join(sorted(names))}, got {value!r}")
        return str(value)

    return check


class _Reader:
    """Reads groups of sourced figures and collects every problem instead of stopping at the first."""

    def __init__(self, source_keys: Mapping[str, Any]) -> None:
        self.source_keys = source_keys
        self.problems: list[str] = []
        self.cited: set[str] = set()

    def mapping(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.problems.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return {}
        return value

    def fields(
        self, raw: Mapping[str, Any], spec: Mapping[str, _Check | _Optional], path: str
    ) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        valid = True
        for key in raw:
            if key not in spec:
                self.problems.append(f"{path}.{key}: unknown field (expected {', '.join(spec)})")
                valid = False
        for key, field_spec in spec.items():
            value = raw.get(key, _ABSENT)
            optional = isinstance(field_spec, _Optional)
            check = field_spec.check if isinstance(field_spec, _Optional) else field_spec
            if value is _ABSENT:
                if optional:
                    values[key] = field_spec.default if isinstance(field_spec, _Optional) else None
                    continue
                self.problems.append(f"{path}.{key}: missing")
                valid = False
                continue
            try:
                values[key] = check(value)
            except _Invalid as invalid:
                self.problems.append(f"{path}.{key}: {invalid}")
                valid = False
        return values if valid else None

    def source(self, raw: Mapping[str, Any], path: str) -> str | None:
        key = raw.get("source")
        if key is None:
            self.problems.append(f"{path}: figures without a source (add `source:` naming a key of sources.yaml)")
            return None
        if key not in self.source_keys:
            self.problems.append(f"{path}.source: unknown source {key!r}")
            return None
        self.cited.add(key)
        return str(key)

    def group(
        self,
        record: Mapping[str, Any],
        name: str,
        spec: Mapping[str, _Check | _Optional],
        path: str,
        *,
        required: bool = True,
    ) -> tuple[str, dict[str, Any]] | None:
        """A group of figures with its source key, or None (problem recorded unless optional and absent)."""
        raw = record.get(name)
        group_path = f"{path}.{name}"
        if raw is None:
            if required:
                self.problems.append(f"{group_path}: missing")
            return None
        raw = self.mapping(raw, group_path)
        source = self.source(raw, group_path)
        values = self.fields({k: v for k, v in raw.items() if k != "source"}, spec, group_path)
        if source is None or values is None:
            return None
        return source, values


def _read_yaml(path: Path, problems: list[str]) -> Mapping[str, Any]:
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path.name}: file missing")
        return {}
    except yaml.YAMLError as error:
        problems.append(f"{path.name}: not valid YAML: {error}")
        return {}
    if not isinstance(data, Mapping):
        problems.append(f"{path.name}: expected a mapping at the top")
        return {}
    return data


def _section(data: Mapping[str, Any], file: str, key: str, problems: list[str]) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping) or not value:
        problems.append(f"{file}: expected a non-empty `{key}:` mapping")
        return {}
    return value


# --- loaders per file -----------------------------------------------------------------------------


def _load_sources(data: Mapping[str, Any], problems: list[str]) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    reader = _Reader({})
    for key, raw in _section(data, "sources.yaml", "sources", problems).items():
        path = f"sources.yaml: {key}"
        values = reader.fields(
            reader.mapping(raw, path),
            {
                "citation": _nonempty_text,
                "date": _nonempty_text,
                "read": _nonempty_text,
                "quality": _choice(SourceQuality),
                "cited_by": _Optional(_choice(CitedBy), CitedBy.DATA),
            },
            path,
        )
        if values is not None:
            sources[key] = Source(key=key, **values)
    problems.extend(reader.problems)
    return sources


def _load_gpus(data: Mapping[str, Any], reader: _Reader) -> dict[str, Gpu]:
    gpus: dict[str, Gpu] = {}
    for name, raw in _section(data, "instances.yaml", "gpus", reader.problems).items():
        path = f"instances.yaml: gpus.{name}"
        record = reader.mapping(raw, path)
        for key in record:
            if key not in ("architecture", "memory_bandwidth", "compute", "interconnect"):
                reader.problems.append(f"{path}.{key}: unknown field")
        architecture = reader.group(record, "architecture", {"value": _choice(GpuArchitecture)}, path)
        bandwidth = reader.group(record, "memory_bandwidth", {"gb_per_s": _positive_number}, path)
        compute = reader.group(
            record,
            "compute",
            {
                "bf16_tflops": _positive_number,
                "fp8_tflops": _Optional(lambda v: None if v is None else _positive_number(v)),
            },
            path,
        )
        link = reader.group(record, "interconnect", {"kind": _choice(Interconnect), "gb_per_s": _positive_number}, path)
        if architecture is None or bandwidth is None or compute is None or link is None:
            continue
        gpus[name] = Gpu(
            model=name,
            architecture=architecture[1]["value"],
            memory_bandwidth_gb_per_s=bandwidth[1]["gb_per_s"],
            bf16_tflops=compute[1]["bf16_tflops"],
            fp8_tflops=compute[1]["fp8_tflops"],
            interconnect=link[1]["kind"],
            interconnect_gb_per_s=link[1]["gb_per_s"],
            sources=MappingProxyType(
                {
                    "architecture": architecture[0],
                    "memory_bandwidth": bandwidth[0],
                    "compute": compute[0],
                    "interconnect": link[0],
                }
            ),
        )
    return gpus


_NO_GPU = "none"


def _load_node_launch(data: Mapping[str, Any], reader: _Reader) -> dict[str, tuple[str, int]]:
    """Per GPU family: (source, seconds from Karpenter's launch request to a node advertising its GPUs)."""
    launches: dict[str, tuple[str, int]] = {}
    section = _section(data, "instances.yaml", "node_launch", reader.problems)
    for family in section:
        group = reader.group(section, family, {"seconds": _integer(1)}, "instances.yaml: node_launch")
        if group is not None:
            launches[family] = (group[0], group[1]["seconds"])
    return launches


def _load_instances(data: Mapping[str, Any], gpus: Mapping[str, Gpu], reader: _Reader) -> dict[str, InstanceType]:
    instances: dict[str, InstanceType] = {}
    gpu_names = {**gpus, _NO_GPU: None}
    launches = _load_node_launch(data, reader)
    for name, raw in _section(data, "instances.yaml", "instances", reader.problems).items():
        path = f"instances.yaml: instances.{name}"
        record = reader.mapping(raw, path)
        for key in record:
            if key not in ("spec", "price", "spot"):
                reader.problems.append(f"{path}.{key}: unknown field (expected spec, price, spot)")
        spec = reader.group(
            record,
            "spec",
            {
                "family": _nonempty_text,
                "gpu": _one_of(gpu_names),
                "gpu_count": _integer(0),
                "gpu_memory_mib": _integer(0),
                "vcpu": _integer(1),
                "memory_mib": _integer(1),
                "local_nvme_gb": _integer(0),
                "efa_interfaces": _integer(0),
                "architecture": _choice(CpuArchitecture),
            },
            path,
        )
        price = reader.group(record, "price", {"on_demand_usd_per_hour": _usd, "note": _Optional(_text, "")}, path)
        spot = reader.group(
            record,
            "spot",
            {"discount_min": _fraction, "discount_max": _fraction, "note": _Optional(_text, "")},
            path,
            required=False,
        )
        if spec is None or price is None:
            continue
        figures = spec[1]
        gpu = gpus.get(figures["gpu"])
        has_gpus = figures["gpu_count"] > 0
        if (gpu is None) == has_gpus or has_gpus != (figures["gpu_memory_mib"] > 0):
            reader.problems.append(
                f"{path}.spec: gpu, gpu_count and gpu_memory_mib disagree (a GPU instance names its GPU, "
                f"a system instance says gpu: {_NO_GPU}, gpu_count: 0, gpu_memory_mib: 0)"
            )
            continue
        if price[1]["on_demand_usd_per_hour"] is None and not price[1]["note"]:
            reader.problems.append(f"{path}.price.note: a missing price needs a note saying why")
        spot_discount = None
        if spot is not None:
            if spot[1]["discount_min"] > spot[1]["discount_max"]:
                reader.problems.append(f"{path}.spot: discount_min exceeds discount_max")
            spot_discount = SpotDiscount(
                minimum=spot[1]["discount_min"],
                maximum=spot[1]["discount_max"],
                note=spot[1]["note"],
                source=spot[0],
            )
        group_sources = {"spec": spec[0], "price": price[0]}
        if spot is not None:
            group_sources["spot"] = spot[0]
        launch = launches.get(figures["family"]) if has_gpus else None
        if has_gpus and launch is None:
            reader.problems.append(
                f"{path}.spec.family: {figures['family']} has no node_launch entry (seconds, source)"
            )
            continue
        if launch is not None:
            group_sources["node_launch"] = launch[0]
        instances[name] = InstanceType(
            name=name,
            family=figures["family"],
            gpu=gpu,
            gpu_count=figures["gpu_count"],
            gpu_memory_mib=figures["gpu_memory_mib"],
            vcpu=figures["vcpu"],
            memory_mib=figures["memory_mib"],
            local_nvme_gb=figures["local_nvme_gb"],
            efa_interfaces=figures["efa_interfaces"],
            architecture=figures["architecture"],
            node_launch_seconds=launch[1] if launch is not None else None,
            on_demand_usd_per_hour=price[1]["on_demand_usd_per_hour"],
            price_note=price[1]["note"],
            spot=spot_discount,
            sources=MappingProxyType(group_sources),
        )
    return instances


_MODEL_GROUPS = (
    "repo_id",
    "parameters",
    "attention",
    "mla",
    "sliding_window",
    "context",
    "weights",
    "embeddings",
    "checkpoint",
    "license",
)


def _load_model(name: str, record: Mapping[str, Any], reader: _Reader) -> Model | None:
    path = f"models.yaml: models.{name}"
    for key in record:
        if key not in _MODEL_GROUPS:
            reader.problems.append(f"{path}.{key}: unknown field (expected {', '.join(_MODEL_GROUPS)})")
    repo_id = record.get("repo_id")
    if not isinstance(repo_id, str) or "/" not in repo_id:
        reader.problems.append(f"{path}.repo_id: expected a Hugging Face repository id (owner/name)")
    parameters = reader.group(
        record, "parameters", {"total_billions": _positive_number, "active_billions": _positive_number}, path
    )
    attention = reader.group(
        record,
        "attention",
        {
            "kind": _choice(AttentionKind),
            "layers": _integer(1),
            "heads": _integer(1),
            "kv_heads": _integer(1),
            "head_dim": _integer(1),
        },
        path,
    )
    mla = reader.group(
        record, "mla", {"kv_lora_rank": _integer(1), "qk_rope_head_dim": _integer(1)}, path, required=False
    )
    window = reader.group(
        record,
        "sliding_window",
        {"window_tokens": _integer(1), "local_layers_per_global": _integer(1)},
        path,
        required=False,
    )
    context = reader.group(record, "context", {"max_tokens": _integer(1)}, path)
    weights = reader.group(
        record, "weights", {"native": _choice(WeightDtype), "available": _choices(WeightDtype)}, path
    )
    embeddings = reader.group(
        record,
        "embeddings",
        {"vocab_size": _integer(1), "hidden_size": _integer(1), "tied": _boolean},
        path,
        required=False,
    )
    checkpoint = reader.group(
        record,
        "checkpoint",
        {"dtype": _choice(WeightDtype), "size_gb": _positive_number},
        path,
        required=False,
    )
    license_ = reader.group(
        record,
        "license",
        {
            "name": _nonempty_text,
            "commercial_use": _choice(CommercialUse),
            "restriction": _text,
            "access": _choice(Access),
        },
        path,
    )
    if None in (parameters, attention, context, weights, license_) or not isinstance(repo_id, str):
        return None
    assert parameters and attention and context and weights and license_  # narrowed for mypy

    problems_before = len(reader.problems)
    shape = attention[1]
    if parameters[1]["active_billions"] > parameters[1]["total_billions"]:
        reader.problems.append(f"{path}.parameters: active_billions exceeds total_billions")
    if shape["kind"] is AttentionKind.MLA and mla is None:
        reader.problems.append(f"{path}: attention kind mla needs an `mla` group (kv_lora_rank, qk_rope_head_dim)")
    if shape["kind"] is AttentionKind.GQA and (
        shape["kv_heads"] > shape["heads"] or shape["heads"] % shape["kv_heads"]
    ):
        reader.problems.append(f"{path}.attention: kv_heads must divide heads")
    if shape["kind"] is AttentionKind.GQA and "mla" in record:
        reader.problems.append(f"{path}.mla: only for attention kind mla")
    native, available = weights[1]["native"], weights[1]["available"]
    if native not in available:
        reader.problems.append(f"{path}.weights: native dtype {native} missing from available")
    if checkpoint is not None and checkpoint[1]["dtype"] not in available:
        reader.problems.append(f"{path}.checkpoint.dtype: {checkpoint[1]['dtype']} is not an available dtype")
    # vLLM keeps embeddings and lm_head in bf16 under fp8 (VLLM-FP8): a dtype sized from parameters needs them.
    measured = {checkpoint[1]["dtype"]} if checkpoint is not None else set()
    from_parameters = [d for d in available if d is not WeightDtype.BF16 and d not in measured]
    if from_parameters and embeddings is None and "embeddings" not in record:
        reader.problems.append(
            f"{path}.embeddings: missing (vocab_size, hidden_size, tied): {', '.join(from_parameters)} weights are "
            "sized from parameters with embeddings and lm_head kept in bf16"
        )
    if len(reader.problems) > problems_before:
        return None

    group_sources = {
        "parameters": parameters[0],
        "attention": attention[0],
        "context": context[0],
        "weights": weights[0],
        "license": license_[0],
    }
    latent = None
    if mla is not None:
        group_sources["mla"] = mla[0]
        latent = LatentAttention(source=mla[0], **mla[1])
    sliding = None
    if window is not None:
        group_sources["sliding_window"] = window[0]
        sliding = SlidingWindow(source=window[0], **window[1])
    embedding = None
    if embeddings is not None:
        group_sources["embeddings"] = embeddings[0]
        embedding = Embeddings(source=embeddings[0], **embeddings[1])
        if embedding.params_billions >= parameters[1]["total_billions"]:
            reader.problems.append(f"{path}.embeddings: more parameters than the model's total")
            return None
    checkpoints: dict[WeightDtype, Checkpoint] = {}
    if checkpoint is not None:
        group_sources["checkpoint"] = checkpoint[0]
        checkpoints[checkpoint[1]["dtype"]] = Checkpoint(source=checkpoint[0], **checkpoint[1])
    return Model(
        name=name,
        repo_id=repo_id,
        total_params_billions=parameters[1]["total_billions"],
        active_params_billions=parameters[1]["active_billions"],
        attention=Attention(
            kind=shape["kind"],
            layers=shape["layers"],
            heads=shape["heads"],
            kv_heads=shape["kv_heads"],
            head_dim=shape["head_dim"],
            latent=latent,
            sliding_window=sliding,
            source=attention[0],
        ),
        max_context=context[1]["max_tokens"],
        native_dtype=native,
        dtypes=(native, *(dtype for dtype in available if dtype is not native)),
        checkpoints=MappingProxyType(checkpoints),
        embeddings=embedding,
        license=License(source=license_[0], **license_[1]),
        sources=MappingProxyType(group_sources),
    )


def _load_models(data: Mapping[str, Any], reader: _Reader) -> dict[str, Model]:
    models: dict[str, Model] = {}
    repo_ids: dict[str, str] = {}
    for name, raw in _section(data, "models.yaml", "models", reader.problems).items():
        model = _load_model(name, reader.mapping(raw, f"models.yaml: models.{name}"), reader)
        if model is None:
            continue
        clash = repo_ids.get(model.repo_id.lower())
        if clash:
            reader.problems.append(f"models.yaml: models.{name}.repo_id: also used by {clash}")
        repo_ids[model.repo_id.lower()] = name
        models[name] = model
    return models


def _load_throughput(
    data: Mapping[str, Any], models: Mapping[str, Model], gpus: Mapping[str, Gpu], reader: _Reader
) -> tuple[ThroughputPoint, ...]:
    raw_points = data.get("points")
    if not isinstance(raw_points, list) or not raw_points:
        reader.problems.append("throughput.yaml: expected a non-empty `points:` list")
        return ()
    points = []
    for index, raw in enumerate(raw_points):
        path = f"throughput.yaml: points[{index}]"
        record = reader.mapping(raw, path)
        source = reader.source(record, path)
        values = reader.fields(
            {k: v for k, v in record.items() if k != "source"},
            {
                "model": _one_of(models),
                "measured_model": _nonempty_text,
                "gpu": _one_of(gpus),
                "gpu_count": _integer(1),
                "dtype": _choice(WeightDtype),
                "engine": _nonempty_text,
                "workload": _nonempty_text,
                "concurrency": _integer(1),
                "burst": _boolean,
                "prompt_tokens": _positive_number,
                "output_tokens": _positive_number,
                "output_lengths": _Optional(_one_of({"fixed": 1, "varied": 1}), "varied"),
                "max_num_seqs": _integer(1),
                "output_tokens_per_second": _positive_number,
                "ttft_ms": _Optional(lambda value: None if value is None else _positive_number(value)),
                "tpot_ms": _Optional(lambda value: None if value is None else _positive_number(value)),
                "excluded": _Optional(_text, ""),
            },
            path,
        )
        if source is None or values is None:
            continue
        if values["dtype"] not in models[values["model"]].dtypes:
            reader.problems.append(f"{path}.dtype: {values['dtype']} is not a dtype of {values['model']}")
            continue
        values["fixed_output_lengths"] = values.pop("output_lengths") == "fixed"
        points.append(ThroughputPoint(source=source, **values))
    return tuple(points)


def _load_known_good(
    data: Mapping[str, Any], models: Mapping[str, Model], gpus: Mapping[str, Gpu], reader: _Reader
) -> tuple[KnownGood, ...]:
    raw_entries = data.get("deployments")
    if not isinstance(raw_entries, list) or not raw_entries:
        reader.problems.append("known_good.yaml: expected a non-empty `deployments:` list")
        return ()
    entries = []
    for index, raw in enumerate(raw_entries):
        path = f"known_good.yaml: deployments[{index}]"
        record = reader.mapping(raw, path)
        source = reader.source(record, path)
        values = reader.fields(
            {k: v for k, v in record.items() if k != "source"},
            {
                "model": _one_of(models),
                "gpu": _one_of(gpus),
                "gpu_count": _integer(1),
                "dtype": _choice(WeightDtype),
                "engine": _nonempty_text,
                "setup": _nonempty_text,
            },
            path,
        )
        if source is None or values is None:
            continue
        if values["dtype"] not in models[values["model"]].dtypes:
            reader.problems.append(f"{path}.dtype: {values['dtype']} is not a dtype of {values['model']}")
            continue
        entries.append(KnownGood(source=source, **values))
    return tuple(entries)


def load_catalog(directory: Path = DATA_DIR) -> Catalog:
    """Read and validate the five data files of ``directory``; raise CatalogError listing every problem."""
    problems: list[str] = []
    sources = _load_sources(_read_yaml(directory / "sources.yaml", problems), problems)
    reader = _Reader(sources)
    instance_data = _read_yaml(directory / "instances.yaml", problems)
    gpus = _load_gpus(instance_data, reader)
    instances = _load_instances(instance_data, gpus, reader)
    models = _load_models(_read_yaml(directory / "models.yaml", problems), reader)
    throughput = _load_throughput(_read_yaml(directory / "throughput.yaml", problems), models, gpus, reader)
    known_good = _load_known_good(_read_yaml(directory / "known_good.yaml", problems), models, gpus, reader)
    problems.extend(reader.problems)
    if not problems:
        problems.extend(
            f"sources.yaml: {key}: cited by no figure (remove it or cite it)"
            for key in sorted(set(sources) - reader.cited)
            if sources[key].cited_by is CitedBy.DATA
        )
    if problems:
        raise CatalogError(problems)
    return Catalog(
        sources=MappingProxyType(sources),
        gpus=MappingProxyType(gpus),
        instances=MappingProxyType(instances),
        models=MappingProxyType(models),
        throughput=throughput,
        known_good=known_good,
    )


@functools.cache
def catalog() -> Catalog:
    """The kit's own catalog, loaded and validated once per process."""
    return load_catalog(DATA_DIR)


def instances() -> Mapping[str, InstanceType]:
    return catalog().instances


def gpus() -> Mapping[str, Gpu]:
    return catalog().gpus


def models() -> Mapping[str, Model]:
    return catalog().models


def sources() -> Mapping[str, Source]:
    return catalog().sources


def throughput_points() -> tuple[ThroughputPoint, ...]:
    return catalog().throughput


def known_good() -> tuple[KnownGood, ...]:
    return catalog().known_good


def _close_matches(name: str, candidates: Sequence[str]) -> list[str]:
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    matches = difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.6)
    return [by_lower[match] for match in matches]


def resolve_model(name_or_repo_id: str) -> Model:
    """The model named by a catalog name or a Hugging Face repository id, case-insensitively."""
    wanted = name_or_repo_id.strip().lower()
    for model in models().values():
        if wanted in (model.name.lower(), model.repo_id.lower()):
            return model
    candidates = [*models(), *(model.repo_id for model in models().values())]
    raise UnknownModelError(name_or_repo_id, _close_matches(name_or_repo_id, candidates))


def resolve_instance(name: str) -> InstanceType:
    """The instance type called ``name`` (case-insensitive)."""
    wanted = name.strip().lower()
    for instance in instances().values():
        if instance.name == wanted:
            return instance
    raise UnknownInstanceError(name, _close_matches(name, list(instances())))
