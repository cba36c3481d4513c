"""The settings reference in docs/settings.md, generated from the settings classes so it cannot drift.

Regenerate with `python -m components.settings.reference --write`: it rewrites the generated parts of
docs/settings.md (every setting) and docs/presets.md (what each preset provisions).
"""

from __future__ import annotations

import sys
from pathlib import Path

from components.settings.cells import GLOBAL_KEY, GlobalSettings
from components.settings.schema import reference_rows
from components.settings.types import Settings

BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
PRESETS_BEGIN, PRESETS_END = "<!-- presets:begin -->", "<!-- presets:end -->"
DOCS = Path(__file__).resolve().parents[2] / "docs"
DOC = DOCS / "settings.md"
PRESETS_DOC = DOCS / "presets.md"


def render_markdown() -> str:
    # A global stack's file holds modelyard:global alone (docs/regions.md): its keys follow a stack's.
    rows = reference_rows(Settings, "") + reference_rows(GlobalSettings, GLOBAL_KEY)
    lines = ["| config key | type | default | meaning |", "|---|---|---|---|"]
    for path, kind, default, doc in rows:
        key = f"modelyard:{path}"
        lines.append(f"| `{key}` | {kind} | {default.replace('|', '/')} | {doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def render_presets() -> str:
    """What each preset provisions, with the layout sizing picks for each model on its pool."""
    from components.settings.load import build_settings, preset_names
    from components.settings.types import Tier
    from components.sizing import SizingOption, fit_on

    presets = [
        build_settings(project="modelyard", stack="example", config={"modelyard:preset": name})
        for name in preset_names()
    ]
    tiers = list(Tier)
    out: list[str] = []
    for s in sorted(presets, key=lambda s: (tiers.index(s.tier) if s.tier else len(tiers), s.preset)):
        out += [
            f"### `{s.preset}`",
            "",
            f"Cost tier: {f'`{s.tier.value}`' if s.tier else 'none (no band)'}.",
            "",
            f"Region {s.region}, zones {', '.join(s.network.zone_ids)}, NAT `{s.network.nat.value}`, "
            f"interface endpoints: {', '.join(e.value for e in s.interface_endpoints) or 'none'}; "
            f"flow logs kept {s.network.flow_logs.retention_days} days.",
            "",
            _gateway_line(s),
            "",
            _monitoring_line(s),
            "",
            "| pool | kind | capacity | instance types | GPU ceiling | zones |",
            "|---|---|---|---|---:|---|",
        ]
        for name, pool in s.pools.items():
            zones = ", ".join(pool.zone_ids) or "all"
            out.append(
                f"| `{name}` | {pool.kind.value} | {pool.capacity.value} | {', '.join(pool.instance_types)} "
                f"| {pool.max_gpus} | {zones}{' (EFA)' if pool.interconnect.value == 'efa' else ''} |"
            )
        out += [
            "",
            "| model | catalog model | precision | context x concurrency | pool "
            "| GPUs per replica (TP x PP) | replicas |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, m in s.models.items():
            pool = s.pools[m.pool]
            fit = fit_on(m.model, pool.instance_types[0], dtype=m.dtype, context=m.context, concurrency=m.concurrency)
            assert isinstance(fit, SizingOption), "settings validation guarantees a fit"
            out.append(
                f"| `{name}` | {m.model} | {fit.dtype.value} | {m.context:,} x {m.concurrency} | `{m.pool}` "
                f"| {fit.gpus_per_replica} ({fit.tensor_parallel} x {fit.pipeline_parallel}) "
                f"| {m.replicas.min} to {m.replicas.max} |"
            )
        out += ["", "| tenant | models | GPU quota | dedicated pool | data |", "|---|---|---:|---|---|"]
        for name, t in s.tenants.items():
            out.append(
                f"| `{name}` | {', '.join(t.models)} | {t.gpu_quota} | {t.dedicated_pool or '-'} | {t.data.value} |"
            )
        out.append("")
    return "\n".join(out)


def _gateway_line(s: Settings) -> str:
    """The gateway's replicas, state and tenant limits (docs/gateway.md): what budgets and limits a preset gets."""
    gateway = s.gateway
    replicas = gateway.replicas
    db = gateway.database
    database = (
        f"PostgreSQL {db.instance_class}{' Multi-AZ' if db.multi_az else ''}, {db.storage_gb} GiB, backups "
        f"{db.backup_days} days (tenant budgets)"
        if db is not None
        else "no database (static keys, no budgets)"
    )
    redis = gateway.redis
    shared = (
        f"Valkey {redis.nodes} x {redis.node_type} (limits shared by the replicas)"
        if redis is not None
        else "no Redis (limits counted per replica)"
    )
    per_gpu = gateway.tenant_limits
    limits = (
        f"a tenant without limits of its own may send {per_gpu.rpm_per_gpu:,} requests and {per_gpu.tpm_per_gpu:,} "
        "tokens a minute per GPU of its quota"
    )
    return f"Gateway: {replicas} replica{'s' if replicas > 1 else ''}; {database}; {shared}; {limits}."


def _monitoring_line(s: Settings) -> str:
    """Prometheus, Alertmanager and container logs as the preset sizes them (docs/monitoring.md)."""
    prometheus, alertmanager = s.monitoring.prometheus, s.monitoring.alertmanager
    days = s.monitoring.container_log_retention_days
    return (
        f"Monitoring: Prometheus {prometheus.replicas} x {prometheus.storage_gib} GiB ({prometheus.cpu} CPU, "
        f"{prometheus.memory}), {prometheus.retention_days} days of samples; Alertmanager {alertmanager.replicas} x "
        f"{alertmanager.storage_gib} GiB, repeating a firing alert every {alertmanager.repeat_interval_hours}h; "
        + (f"container logs kept {days} days in CloudWatch." if days else "no container logs shipped.")
    )


def replace_between_markers(text: str, generated: str, begin: str = BEGIN, end: str = END) -> str:
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    return f"{head}{begin}\n{generated}{end}{tail}"


def write_docs() -> None:
    DOC.write_text(replace_between_markers(DOC.read_text(encoding="utf-8"), render_markdown()), encoding="utf-8")
    PRESETS_DOC.write_text(
        replace_between_markers(PRESETS_DOC.read_text(encoding="utf-8"), render_presets(), PRESETS_BEGIN, PRESETS_END),
        encoding="utf-8",
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write_docs()
    else:
        sys.stdout.write(render_markdown())
