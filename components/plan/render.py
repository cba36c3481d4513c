"""Human views of a plan: the resource tree for a terminal, markdown for a pull request, manifest files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from components.cost.command import economics_lines
from components.plan.availability import availability_lines
from components.plan.document import type_counts


def _children(plan: dict[str, Any]) -> dict[str | None, list[dict[str, Any]]]:
    children: dict[str | None, list[dict[str, Any]]] = {}
    for r in plan["resources"]:
        children.setdefault(r["parent"], []).append(r)
    return children


def tree_lines(plan: dict[str, Any]) -> list[str]:
    """`type  name` lines indented under their parents; providers and components included."""
    children = _children(plan)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for r in children.get(parent, []):
            flags = "".join(
                [" [protected]" if r["protect"] else "", " [retained on delete]" if r["retain_on_delete"] else ""]
            )
            lines.append(f"{'  ' * depth}{r['type']}  {r['name']}{flags}")
            walk(r["key"], depth + 1)

    walk(None, 0)
    return lines


def cost_summary(plan: dict[str, Any]) -> str:
    """One line: the TCO a month and a year, the AWS part, the band check (details: `modelyard tco`)."""
    cost = plan.get("cost")
    if not cost:
        return "cost: not priced"
    band = cost["band"]
    totals = (
        f"cost: ${float(cost['monthly_total']):,.2f} a month, ${float(cost['annual_total']):,.2f} a year "
        f"(AWS ${float(cost['aws_monthly']):,.2f} a month)"
    )
    budget = cost.get("budget") or {}
    warning = f"\nwarning: {budget['warning']}" if budget.get("warning") else ""
    if band is None:
        return f"{totals}; no cost tier, so no band{warning}"
    verdict = "inside" if band["within"] else "OUTSIDE"
    return (
        f"{totals}; {verdict} the {band['preset']} band "
        f"${float(band['low']):,.0f} to ${float(band['high']):,.0f} a year{warning}"
    )


def economics_section(plan: dict[str, Any]) -> list[str]:
    """Cost per token per model beside the cheapest hosted offer of the same model, and the break-even at the
    stack's maximum replicas (every offer with its date and source: `modelyard tco`)."""
    cost = plan.get("cost")
    return economics_lines(cost, detailed=False) if cost else []


def economics_markdown(plan: dict[str, Any]) -> list[str]:
    lines = economics_section(plan)
    if not lines:
        return []
    verdict = (plan["cost"].get("break_even") or {}).get("hosted")
    headline = [f"**Break-even:** {verdict['statement']}", ""] if verdict else []
    return [
        *headline,
        "<details><summary>Unit economics per model</summary>",
        "",
        "```",
        *lines,
        "```",
        "",
        "</details>",
        "",
    ]


def cold_start_lines(plan: dict[str, Any]) -> list[str]:
    """One line per model: its estimated cold start on a new node, part by part, and its weight path."""
    lines = []
    for name, model in (plan.get("serving") or {}).items():
        c = model["cold_start"]
        parts = [c[k] for k in ("node_launch_seconds", "image_pull_seconds", "weights_seconds", "engine_seconds")]
        node, image, weights, engine = (-(-p // 60) for p in parts)
        lines.append(
            f"{name}: ~{-(-c['total_seconds'] // 60)} min (node {node} + image {image} + weights {weights} + "
            f"engine {engine}), weights {c['weights_load']}, check {c['weights_check']}, {c['checkpoint_gb']} GB"
        )
    return lines


def text_report(plan: dict[str, Any]) -> str:
    counts = type_counts(plan)
    total = len(plan["resources"])
    served = availability_lines(plan)
    width = max((len(t) for t, _ in counts), default=0)
    out = [
        f"stack {plan['stack']} (preset {plan['preset']}, project {plan['project']}): "
        f"{total} resources, {len(plan['manifests'])} Kubernetes objects",
        cost_summary(plan),
        *economics_section(plan),
        *(["", "availability:", *(f"  {line}" for line in served)] if served else []),
        "",
        *tree_lines(plan),
        "",
        "resources by type:",
        *(f"  {t.ljust(width)}  {n}" for t, n in counts),
    ]
    starts = cold_start_lines(plan)
    if starts:
        out += ["", "cold start of one replica on a new node (estimate, docs/serving.md#cold-starts):"]
        out += [f"  {line}" for line in starts]
    if plan["outputs"]:
        out += ["", "outputs:", *(f"  {k}: {v}" for k, v in plan["outputs"].items())]
    return "\n".join(out) + "\n"


def markdown_report(plan: dict[str, Any]) -> str:
    counts = type_counts(plan)
    out = [
        f"### modelyard plan: `{plan['stack']}` (preset `{plan['preset']}`)",
        "",
        f"{len(plan['resources'])} resources, {len(plan['manifests'])} Kubernetes objects.",
        "",
        cost_summary(plan),
        "",
        *economics_markdown(plan),
        *([*(f"- {line}" for line in availability_lines(plan)), ""] if availability_lines(plan) else []),
        "| resource type | count |",
        "|---|---:|",
        *(f"| `{t}` | {n} |" for t, n in counts),
        "",
        *(
            ["Cold start of one replica on a new node (estimate):", "", *(f"- {line}" for line in starts), ""]
            if (starts := cold_start_lines(plan))
            else []
        ),
        "<details><summary>Resource tree</summary>",
        "",
        "```",
        *tree_lines(plan),
        "```",
        "",
        "</details>",
    ]
    return "\n".join(out) + "\n"


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part) or "_"


def write_manifests(plan: dict[str, Any], directory: Path) -> list[Path]:
    """One YAML file per Kubernetes object: <namespace or _cluster>/<kind>-<name>.yaml."""
    written: list[Path] = []
    for manifest in plan["manifests"]:
        obj = manifest["object"]
        meta = obj.get("metadata", {})
        folder = directory / _safe(meta.get("namespace", "_cluster"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_safe(obj['kind'].lower())}-{_safe(meta.get('name', 'unnamed'))}.yaml"
        path.write_text(yaml.safe_dump(obj, sort_keys=True), encoding="utf-8")
        written.append(path)
    return written
