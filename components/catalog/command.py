"""`modelyard catalog [models|instances|licenses|regions] [--json]`: what the kit knows, each entry with its sources.

models: the catalog's open-weight models (the names `modelyard:models.<m>.model` takes); instances: EC2 types with
GPUs, memory and price; licenses: the exact strings a stack accepts in `modelyard:licenses`; regions: zone IDs and
the GPU instance types each zone offers (components/catalog/regions.yaml, dated). No topic: all four.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from components.errors import ExitCode

TOPICS = ("models", "instances", "licenses", "regions")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelyard catalog", description=__doc__.split("\n\n")[0])
    parser.add_argument("topic", nargs="?", choices=TOPICS, help="one part of the catalog (default: all)")
    parser.add_argument("--json", action="store_true", help="print the entries as JSON")
    return parser


def models() -> list[dict[str, Any]]:
    from components.catalog import models as catalog_models

    return [
        {
            "name": m.name,
            "repo_id": m.repo_id,
            "params_billions": {"total": m.total_params_billions, "active": m.active_params_billions},
            "max_context": m.max_context,
            "dtypes": [d.value for d in m.dtypes],
            "license": m.license.name,
            "access": m.license.access.value,
            "sources": dict(m.sources),
        }
        for m in catalog_models().values()
    ]


def instance_types() -> list[dict[str, Any]]:
    from components.catalog import instances

    return [
        {
            "name": i.name,
            "gpu": i.gpu.model if i.gpu else None,
            "gpu_count": i.gpu_count,
            "gpu_memory_mib": i.gpu_memory_mib,
            "vcpu": i.vcpu,
            "memory_mib": i.memory_mib,
            "efa_interfaces": i.efa_interfaces,
            "fp8": i.supports_fp8,
            "node_launch_seconds": i.node_launch_seconds,
            "on_demand_usd_per_hour": None if i.on_demand_usd_per_hour is None else str(i.on_demand_usd_per_hour),
            "price_note": i.price_note,
            "sources": dict(i.sources),
        }
        for i in instances().values()
    ]


def licenses() -> list[dict[str, Any]]:
    from components.catalog import models as catalog_models

    by_name: dict[str, dict[str, Any]] = {}
    for m in catalog_models().values():
        entry = by_name.setdefault(
            m.license.name,
            {
                "name": m.license.name,
                "commercial_use": m.license.commercial_use.value,
                "restriction": m.license.restriction,
                "models": [],
                "source": m.license.source,
            },
        )
        entry["models"].append(m.name)
    return sorted(by_name.values(), key=lambda e: e["name"])


def region_entries() -> list[dict[str, Any]]:
    from components.catalog.regions import regions

    return [
        {
            "name": r.name,
            "zones": list(r.zones),
            "source": r.source,
            "verified": r.verified,
            "date": r.date,
            "offerings": None if r.offerings is None else {z: list(t) for z, t in r.offerings.items()},
            "offerings_source": r.offerings_source,
        }
        for r in regions().values()
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in (header, *rows)]


def _sources(groups: dict[str, str]) -> str:
    return ", ".join(sorted(set(groups.values())))


def render(topic: str, entries: list[dict[str, Any]]) -> list[str]:
    if topic == "models":
        rows = [
            [
                e["name"],
                e["repo_id"],
                f"{e['params_billions']['total']:g}B"
                + (
                    ""
                    if e["params_billions"]["active"] == e["params_billions"]["total"]
                    else f" ({e['params_billions']['active']:g}B active)"
                ),
                f"{e['max_context']:,}",
                "/".join(e["dtypes"]),
                e["license"],
                _sources(e["sources"]),
            ]
            for e in entries
        ]
        return _table(["model", "repo", "params", "context", "dtypes", "license", "sources"], rows)
    if topic == "instances":
        rows = [
            [
                e["name"],
                f"{e['gpu_count']} x {e['gpu']}" if e["gpu"] else "-",
                f"{e['gpu_memory_mib']:,}" if e["gpu"] else "-",
                str(e["vcpu"]),
                f"{e['memory_mib'] // 1024:,}",
                str(e["efa_interfaces"] or "-"),
                f"{e['node_launch_seconds']} s" if e["node_launch_seconds"] else "-",
                f"${e['on_demand_usd_per_hour']}" if e["on_demand_usd_per_hour"] else "no sourced price",
                _sources(e["sources"]),
            ]
            for e in entries
        ]
        header = [
            "instance type",
            "GPUs",
            "MiB per GPU",
            "vCPU",
            "GiB",
            "EFA",
            "node launch",
            "on demand /h (us-east-1)",
            "sources",
        ]
        return _table(header, rows)
    if topic == "licenses":
        rows = [
            [
                e["name"],
                e["commercial_use"] + (f": {e['restriction']}" if e["restriction"] else ""),
                ", ".join(e["models"]),
                e["source"],
            ]
            for e in entries
        ]
        lines = ["the exact strings modelyard:licenses accepts:"]
        return lines + _table(["license", "commercial use", "models", "source"], rows)
    out = []
    for e in entries:
        checked = "read from AWS" if e["verified"] else "not verified against AWS"
        out.append(f"{e['name']}: zones {', '.join(e['zones'])} ({e['source']}, {e['date']}, {checked})")
        if e["offerings"] is None:
            out.append("  GPU offerings per zone: not known offline (python -m components.catalog.regions --refresh)")
        else:
            for zone in e["zones"]:
                offered = e["offerings"].get(zone)
                text = "not known" if offered is None else ", ".join(offered) or "none of the catalog's GPU types"
                out.append(f"  {zone}: {text}")
            out.append(f"  offerings: {e['offerings_source']}")
    return out


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    topics = [args.topic] if args.topic else list(TOPICS)
    loaders = {"models": models, "instances": instance_types, "licenses": licenses, "regions": region_entries}
    data = {topic: loaders[topic]() for topic in topics}
    if args.json:
        sys.stdout.write(json.dumps(data[args.topic] if args.topic else data, indent=2, sort_keys=True) + "\n")
        return ExitCode.OK
    lines: list[str] = []
    for topic in topics:
        lines += ([""] if lines else []) + ([f"{topic}:"] if len(topics) > 1 else []) + render(topic, data[topic])
    lines += ["", "sources: components/catalog/sources.yaml (docs/sizing.md#sources lists them with their dates)"]
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitCode.OK
