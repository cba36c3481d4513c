"""Render the kit's own Helm charts into the plan, so every Kubernetes object they create is visible.

Under the SDK's mocks a Helm release is one opaque resource. For releases of a chart that lives in this
repository (`charts/<name>`), the plan renders the chart with Helm's own engine (helm-python-sdk wraps
Helm's Go SDK: no helm binary needed) using the release's name, namespace and values, and lists each object
with the release as its source. Upstream charts (Karpenter, kube-prometheus-stack, ...) stay releases with
chart, version and values: their templates are not in the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.errors import InputError, Problem
from components.yamlio import parse_yaml_all

# Helm v3 releases and v4 charts (a component whose objects Pulumi manages one by one).
RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


def local_chart(inputs: Mapping[str, Any], project_dir: Path) -> Path | None:
    """The chart folder of a release whose chart is in this repository, else None."""
    chart = inputs.get("chart")
    if not isinstance(chart, str) or "://" in chart:
        return None
    path = (project_dir / chart).resolve()
    charts_root = (project_dir / "charts").resolve()
    if charts_root not in path.parents or not (path / "Chart.yaml").is_file():
        return None
    return path


def render_release(chart_dir: Path, inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The objects a release of a local chart creates, sorted by kind and name (as Helm renders them)."""
    import helm_python as helm  # about 0.5 s to load Helm's Go runtime: only when a local chart is planned
    from helm_python.errors import HelmValuesError

    name = str(inputs.get("name", chart_dir.name))
    with helm.Chart.load(str(chart_dir)) as chart:
        try:
            rendered = chart.render(
                values=dict(inputs.get("values") or {}),
                name=name,
                namespace=str(inputs.get("namespace", "default")),
            )
        except HelmValuesError as exc:
            # The settings built values the chart's values.schema.json refuses: Helm would refuse them at `up` too.
            # The kit's serving releases are named after their model's settings key.
            where = f"modelyard:models.{name}" if chart_dir.name == "llm-serving" else f"release {name}"
            detail = " ".join(str(exc).split())
            raise InputError(
                Problem(path=where, message=f"the chart {chart_dir.name} refuses these values ({detail})")
            ) from None
    objects = [
        obj
        for path, text in sorted(rendered.items())
        if path.endswith((".yaml", ".yml"))
        for obj in parse_yaml_all(text)
        if obj
    ]
    return sorted(objects, key=lambda o: (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]))
