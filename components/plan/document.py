"""Plan JSON v1: the recorded program turned into a stable, reviewable document (design.md, Contracts).

Stability rules: resource keys are built from names (region, parent chain, type), never URNs or
mock ids; maps are sorted when dumped; lists the kit builds without order are sorted here; money is
Decimal rounded to cents; nothing depends on the time or the machine.
"""

from __future__ import annotations

from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from components.plan.charts import RELEASE_TYPES, local_chart, render_release
from components.plan.engine import Recording, Registration, normalise
from components.settings import Settings

SCHEMA = "modelyard.plan/v1"
_PACKAGES = ("pulumi", "pulumi-aws", "pulumi-kubernetes")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def resource_keys(registrations: list[Registration], stack_urn: str) -> dict[str, str]:
    """URN -> stable key `<region>/<parent names>/<name>::<type>` (region only where a provider sets one)."""
    by_urn = {r.urn: r for r in registrations}
    regions: dict[str, str] = {}
    for r in registrations:
        if r.type.startswith("pulumi:providers:") and isinstance(r.inputs.get("region"), str):
            regions[r.urn] = r.inputs["region"]

    keys: dict[str, str] = {}
    for r in registrations:
        chain = [r.name]
        parent = r.parent_urn
        while parent and parent != stack_urn and parent in by_urn:
            chain.append(by_urn[parent].name)
            parent = by_urn[parent].parent_urn
        region = regions.get(r.urn) or regions.get(r.provider_urn, "")
        prefix = f"{region}/" if region else ""
        keys[r.urn] = f"{prefix}{'/'.join(reversed(chain))}::{r.type}"
    return keys


def _resource(r: Registration, keys: dict[str, str], stack_urn: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": keys[r.urn],
        "type": r.type,
        "name": r.name,
        "parent": keys.get(r.parent_urn) if r.parent_urn != stack_urn else None,
        "custom": r.custom,
        "provider": keys.get(r.provider_urn) if r.provider_urn else None,
        "protect": r.protect,
        "retain_on_delete": r.retain_on_delete,
        "depends_on": sorted({keys[u] for u in r.dependency_urns if u in keys}),
        "inputs": normalise(r.inputs, urn_keys=keys),
    }
    options: dict[str, Any] = {}
    if r.ignore_changes:
        options["ignore_changes"] = sorted(r.ignore_changes)
    if r.custom_timeouts:
        options["custom_timeouts"] = dict(sorted(r.custom_timeouts.items()))
    if options:
        entry["options"] = options
    return entry


def _manifest_object(r: Registration, keys: dict[str, str]) -> dict[str, Any] | None:
    """A Kubernetes object the resource applies, from its inputs (Helm releases are listed, not expanded)."""
    if not r.custom or not r.type.startswith("kubernetes:") or r.type.startswith("kubernetes:helm.sh"):
        return None
    obj = normalise(r.inputs, urn_keys=keys)
    return obj if "apiVersion" in obj and "kind" in obj else None


def _release_objects(resources: list[dict[str, Any]], project_dir: Path) -> list[dict[str, Any]]:
    """Objects of releases of the kit's own charts, rendered with Helm's engine (components/plan/charts.py)."""
    out: list[dict[str, Any]] = []
    for resource in resources:
        if resource["type"] not in RELEASE_TYPES:
            continue
        chart_dir = local_chart(resource["inputs"], project_dir)
        if chart_dir is not None:
            out += [{"source": resource["key"], "object": obj} for obj in render_release(chart_dir, resource["inputs"])]
    return out


def build_plan(
    *, settings: Settings, recordings: list[Recording], catalog_date: str, project_dir: Path
) -> dict[str, Any]:
    """One document for a deployment: one stack's recording, or both layers' of a split deployment (keys
    never collide: the layers' components have distinct names; each resource says which stack holds it)."""
    resources: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {}
    for recording in recordings:
        keys = resource_keys(recording.registrations, recording.stack_urn)
        for r in recording.registrations:
            resources.append({**_resource(r, keys, recording.stack_urn), "stack": recording.stack})
            obj = _manifest_object(r, keys)
            if obj is not None:
                found.append({"source": keys[r.urn], "object": obj})
        for name, value in recording.outputs.items():
            # The Kubernetes layer re-exports region and preset: the same values.
            outputs.setdefault(name, normalise(value, urn_keys=keys))
    resources.sort(key=lambda e: e["key"])
    duplicates = sorted(key for key, count in Counter(e["key"] for e in resources).items() if count > 1)
    if duplicates:
        raise ValueError(f"resource keys collide across the deployment's stacks: {duplicates}")
    manifests: list[dict[str, Any]] = sorted(
        [*found, *_release_objects(resources, project_dir)],
        key=lambda m: (
            str(m["source"]),
            m["object"]["kind"],
            m["object"]["metadata"].get("namespace", ""),
            m["object"]["metadata"]["name"],
        ),
    )
    plan: dict[str, Any] = {
        "schema": SCHEMA,
        "project": settings.project,
        "stack": settings.stack,
        "stacks": [recording.stack for recording in recordings],
        "preset": settings.preset.value,
        "meta": {
            "kit_version": _version("modelyard"),
            "catalog_date": catalog_date,
            "packages": {p: _version(p) for p in _PACKAGES},
        },
        "resources": resources,
        "manifests": manifests,
        "outputs": dict(sorted(outputs.items())),
        "cost": None,
    }
    from components.cost import stack_cost  # prices this plan's resources plus what controllers create

    plan["cost"] = stack_cost(plan, settings)
    return plan


def type_counts(plan: dict[str, Any]) -> list[tuple[str, int]]:
    counts = Counter(r["type"] for r in plan["resources"])
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
