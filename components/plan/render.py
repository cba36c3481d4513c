"""Human views of a plan: the resource tree for a terminal, markdown for a pull request, manifest files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
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
    if band is None and cost.get("deployment"):
        return f"{totals}; a cell, judged with its deployment (modelyard tco --stack {cost['deployment']}){warning}"
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


def top_components(plan: dict[str, Any]) -> dict[str, str]:
    """Each resource's key -> the key of its top-level ancestor (itself when it has no parent)."""
    parents = {r["key"]: r["parent"] for r in plan["resources"]}
    top: dict[str, str] = {}
    for key in parents:
        chain = [key]
        while parents.get(chain[-1]) is not None and chain[-1] not in top:
            chain.append(parents[chain[-1]])
        root = top.get(chain[-1], chain[-1])
        top.update(dict.fromkeys(chain, root))
    return top


# What AWS bills for things no Pulumi resource holds, by the prefix of the cost line's id (components.cost.estimate).
OUTSIDE_PULUMI = {
    "controllers/gpu": "GPU nodes Karpenter launches, with their volumes",
    "controllers/lb": "load balancers the load balancer controller creates",
    "controllers/volumes": "volumes of PersistentVolumeClaims",
    "usage": "traffic and usage",
}
UNATTRIBUTED = "no component"


def _outside_label(line_id: str) -> str:
    prefix = next((p for p in OUTSIDE_PULUMI if line_id == p or line_id.startswith(p + "/")), None)
    return OUTSIDE_PULUMI[prefix] if prefix else line_id.split("/")[0]


def component_rows(plan: dict[str, Any], violations: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """One row per top-level component (and provider): the resources it holds, its Kubernetes objects, the AWS cost
    a month of what it creates, its policy violations; then one row per kind of thing AWS bills that no resource
    holds (type ""), so that the AWS column adds up to the plan's AWS total. `violations` are components.policy's."""
    top = top_components(plan)
    empty = {"resources": 0, "objects": 0, "aws": Decimal(0), "policy": 0}
    rows: dict[str, dict[str, Any]] = {
        r["key"]: {"component": r["name"], "type": r["type"], **empty} for r in plan["resources"] if r["parent"] is None
    }
    others: dict[str, dict[str, Any]] = {}

    def row(key: str | None, outside: str = UNATTRIBUTED) -> dict[str, Any]:
        found = rows.get(top.get(key or "", ""))
        return found or others.setdefault(outside, {"component": outside, "type": "", **empty})

    for r in plan["resources"]:
        rows[top[r["key"]]]["resources"] += 1
    for manifest in plan["manifests"]:
        row(manifest["source"])["objects"] += 1
    for line in (plan.get("cost") or {}).get("lines", []):
        if line["category"] == "aws":
            row(line["resource"], _outside_label(line["id"]))["aws"] += Decimal(line["monthly"])
    for violation in violations:
        row(violation.resource)["policy"] += 1
    return [
        *sorted(rows.values(), key=lambda r: (r["component"], r["type"])),
        *sorted(others.values(), key=lambda r: -r["aws"]),
    ]


def component_table(plan: dict[str, Any], violations: Sequence[Any] = ()) -> list[str]:
    rows = component_rows(plan, violations)
    name_w = max([len(r["component"]) for r in rows if r["type"]] + [len("component")])
    type_w = max(len(r["type"]) for r in rows)
    priced = bool(plan.get("cost"))

    def line(name: str, kind: str, resources: str, objects: str, aws: str, policy: str) -> str:
        cells = f"{name.ljust(name_w)}  {kind.ljust(type_w)}  {resources:>9}  {objects:>7}  {aws:>13}  {policy:>6}"
        return f"  {cells}".rstrip()

    def money(amount: Decimal) -> str:
        return f"${amount:,.2f}" if priced else ""

    out = [line("component", "type", "resources", "objects", "AWS a month" if priced else "", "policy")]
    for r in rows:
        if r["type"]:
            out.append(
                line(
                    r["component"], r["type"], str(r["resources"]), str(r["objects"]), money(r["aws"]), str(r["policy"])
                )
            )
        else:  # billed, or found, where no component holds it: its own line, the text is longer than the column
            extra = "".join(f", {r[k]} {k}" for k in ("objects", "policy") if r[k])
            out.append(f"  + {r['component']}: {money(r['aws'])}{extra}")
    total = sum((r["aws"] for r in rows), Decimal(0))
    out.append(
        line(
            "total",
            "",
            str(sum(r["resources"] for r in rows)),
            str(len(plan["manifests"])),
            money(total),
            str(sum(r["policy"] for r in rows)),
        )
    )
    return out


def economics_headline(plan: dict[str, Any]) -> list[str]:
    """The stack's cost per million output tokens and its break-even against hosted offers, in two lines."""
    cost = plan.get("cost")
    if not cost or not cost.get("tokens"):
        return []
    lines = economics_section(plan)[1:2]  # "$X per million output tokens at U utilisation, all costs; $Y AWS alone"
    verdict = (cost.get("break_even") or {}).get("hosted")
    if verdict:
        lines.append(f"  {verdict['statement']}")
    return [line.strip() for line in lines] + [
        f"per model, every hosted offer and API: modelyard tco --stack {plan['stack']}"
    ]


def text_report(plan: dict[str, Any], *, tree: bool = False, violations: Sequence[Any] = ()) -> str:
    """A one-screen summary: totals, cost, availability, cold starts and one row per component; with `tree`, also
    the full unit economics, the resource tree, the counts by type and the outputs."""
    total = len(plan["resources"])
    served = availability_lines(plan)
    starts = cold_start_lines(plan)
    out = [
        f"stack {plan['stack']} (preset {plan['preset']}, project {plan['project']}): "
        f"{total} resources, {len(plan['manifests'])} Kubernetes objects",
        cost_summary(plan),
        *(economics_section(plan) if tree else economics_headline(plan)),
        *(["", "availability:", *(f"  {line}" for line in served)] if served else []),
    ]
    if starts:
        out += ["", "cold start of one replica on a new node (estimate, docs/serving.md#cold-starts):"]
        out += [f"  {line}" for line in starts]
    out += ["", "by component:", *component_table(plan, violations)]
    if tree:
        counts = type_counts(plan)
        width = max((len(t) for t, _ in counts), default=0)
        out += ["", "resource tree:", *tree_lines(plan), "", "resources by type:"]
        out += [f"  {t.ljust(width)}  {n}" for t, n in counts]
        if plan["outputs"]:
            out += ["", "outputs:", *(f"  {k}: {v}" for k, v in plan["outputs"].items())]
    else:
        out += ["", f"resource tree, counts by type and {len(plan['outputs'])} outputs: add --tree"]
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
