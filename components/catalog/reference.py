"""Markdown tables of the catalog, for docs/sizing.md (a test keeps the document equal to this output)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from components.catalog import Catalog, InstanceType, Model, catalog


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows)
    return lines


def _sources(groups: Mapping[str, str]) -> str:
    return ", ".join(f"{group}: [{key}]" for group, key in groups.items())


def _instance_row(instance: InstanceType) -> list[str]:
    gpu = f"{instance.gpu_count} x {instance.gpu.model}" if instance.gpu else "none"
    gpu_memory = f"{instance.gpu_memory_mib:,} ({instance.gpu_memory_gb:.1f} GB)" if instance.gpu else "-"
    price = f"{instance.on_demand_usd_per_hour}" if instance.on_demand_usd_per_hour is not None else "no sourced price"
    spot = "no sourced figure"
    if instance.spot is not None:
        low, high = round(instance.spot.minimum * 100), round(instance.spot.maximum * 100)
        spot = f"{low}%" if low == high else f"{low}-{high}%"
    return [
        f"`{instance.name}`",
        gpu,
        gpu_memory,
        "yes" if instance.supports_fp8 else "no",
        str(instance.vcpu),
        f"{instance.memory_gib:,.0f}",
        f"{instance.local_nvme_gb:,}",
        str(instance.efa_interfaces) if instance.supports_efa else "no",
        instance.architecture.value,
        price,
        spot,
        _sources(instance.sources),
    ]


def _attention(model: Model) -> str:
    attention = model.attention
    text = f"{attention.heads} heads, {attention.kv_heads} KV heads x {attention.head_dim}"
    if attention.latent is not None:
        latent = attention.latent
        text = (
            f"MLA: {attention.heads} heads, latent {latent.kv_lora_rank} + rope {latent.qk_rope_head_dim} "
            f"= {latent.cached_dim} cached per layer per token"
        )
    window = attention.sliding_window
    if window is not None:
        sliding = window.sliding_layers(attention.layers)
        text += (
            f"; {sliding} of {attention.layers} layers slide over {window.window_tokens:,} tokens "
            f"({window.local_layers_per_global}:1)"
        )
    return text


def _model_row(model: Model) -> list[str]:
    dtypes = ", ".join(f"{dtype} (native)" if dtype is model.native_dtype else dtype for dtype in model.dtypes)
    checkpoints = "; ".join(f"{c.dtype} {c.size_gb:,.2f} GB" for c in model.checkpoints.values())
    licence = model.license
    restriction = f": {licence.restriction}" if licence.restriction else ""
    return [
        f"`{model.name}`",
        f"`{model.repo_id}`",
        f"{model.total_params_billions:g} / {model.active_params_billions:g}",
        str(model.attention.layers),
        _attention(model),
        f"{model.max_context:,}",
        _embeddings(model),
        dtypes + (f"; checkpoint {checkpoints}" if checkpoints else ""),
        f"{licence.name} ({licence.commercial_use}{restriction}; {licence.access})",
        _sources(model.sources),
    ]


def _embeddings(model: Model) -> str:
    embeddings = model.embeddings
    if embeddings is None:
        return "-"
    tied = "tied" if embeddings.tied else "untied"
    return f"{embeddings.vocab_size:,} x {embeddings.hidden_size:,} ({tied}, {embeddings.params_billions:.2f}B)"


def render_markdown(data: Catalog | None = None) -> str:
    """The catalog as markdown tables: GPUs, instance types, models, throughput points, known-good deployments,
    sources."""
    data = data or catalog()
    lines = ["### GPUs", ""]
    lines += _table(
        ["GPU", "architecture", "FP8 compute", "memory bandwidth GB/s", "sources"],
        (
            [
                gpu.model,
                gpu.architecture.value,
                "yes" if gpu.supports_fp8 else "no",
                f"{gpu.memory_bandwidth_gb_per_s:,.0f}",
                _sources(gpu.sources),
            ]
            for gpu in data.gpus.values()
        ),
    )
    lines += ["", "### Instance types (us-east-1, Linux, on demand)", ""]
    lines += _table(
        [
            "instance",
            "GPUs",
            "MiB per GPU",
            "FP8",
            "vCPU",
            "memory GiB",
            "NVMe GB",
            "EFA interfaces",
            "arch",
            "$/hour",
            "spot discount",
            "sources",
        ],
        (_instance_row(instance) for instance in data.instances.values()),
    )
    notes = [f"- `{i.name}`: {i.price_note}" for i in data.instances.values() if i.price_note]
    spot_notes = [f"- `{i.name}` spot: {i.spot.note}" for i in data.instances.values() if i.spot and i.spot.note]
    if notes or spot_notes:
        lines += ["", *notes, *spot_notes]
    lines += ["", "### Models", ""]
    lines += _table(
        [
            "model",
            "repository",
            "params B (total / active)",
            "layers",
            "attention",
            "max context",
            "embeddings + lm_head (vocab x hidden)",
            "dtypes",
            "licence (commercial use; access)",
            "sources",
        ],
        (_model_row(model) for model in data.models.values()),
    )
    lines += ["", "### Throughput measurements (calibration of docs/throughput.md; output tokens/s per replica)", ""]
    lines += _table(
        ["model", "measured", "GPUs", "dtype", "engine", "workload", "in / out", "sent", "tok/s", "fitted", "source"],
        (
            [
                f"`{point.model}`",
                point.measured_model,
                f"{point.gpu_count} x {point.gpu}",
                point.dtype.value,
                point.engine,
                point.workload,
                f"{point.prompt_tokens:,.0f} / {point.output_tokens:,.0f}",
                f"{point.concurrency:,} at once" if point.burst else f"{point.concurrency} in flight",
                f"{point.output_tokens_per_second:,.0f}",
                "yes" if not point.excluded else f"no: {point.excluded}",
                f"[{point.source}]",
            ]
            for point in data.throughput
        ),
    )
    lines += ["", "### Known-good deployments (published; `size` marks the options they match)", ""]
    lines += _table(
        ["model", "GPUs", "dtype", "engine", "setup", "source", "source date"],
        (
            [
                f"`{entry.model}`",
                f"{entry.gpu_count} x {entry.gpu}",
                entry.dtype.value,
                entry.engine,
                entry.setup,
                f"[{entry.source}]",
                data.sources[entry.source].date,
            ]
            for entry in data.known_good
        ),
    )
    lines += ["", "### Sources", ""]
    lines += _table(
        ["key", "quality", "date", "read", "cited by", "citation"],
        ([f"[{s.key}]", s.quality.value, s.date, s.read, s.cited_by.value, s.citation] for s in data.sources.values()),
    )
    return "\n".join(lines) + "\n"
