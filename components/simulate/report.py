"""The simulation as text (with sparklines), markdown and an SVG plot of replicas and nodes over time."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from components.simulate.result import SimulationResult

BARS = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 60


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """`values` in at most `width` characters (the largest of each group), scaled from 0 to their maximum."""
    if not values:
        return ""
    size = max(1, -(-len(values) // width))
    groups = [max(values[i : i + size]) for i in range(0, len(values), size)]
    top = max(groups) or 1
    return "".join(BARS[min(len(BARS) - 1, round(v / top * (len(BARS) - 1)))] for v in groups)


def _s(value: float | None) -> str:
    return "-" if value is None else (f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s")


def _usd(value: str | None) -> str:
    return "-" if value is None else f"${Decimal(value):,.2f}"


def _clock(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def render_text(result: SimulationResult) -> str:
    j = result.to_json()
    r, slo = j["requests"], j["slo"]
    out = [
        f"Simulation of stack {result.stack} with {result.trace}: {r['offered']:,} requests over "
        f"{result.window_seconds / 60:.1f} min (rate x{result.options.rate_scale:g}, seed {result.options.seed})",
        f"Requests: {r['served']:,} served, {r['rejected']:,} rejected by a limit, {r['timed_out']:,} timed out "
        f"(after {result.timeout_seconds} s): " + ("all accounted for" if r["accounted_for"] else "NOT all accounted"),
    ]
    out += [f"  rejected by {label}: {count:,}" for label, count in r["rejected_by"].items()]
    verdict = "met" if slo["met"] else "NOT met"
    out += [
        f"TTFT objective {slo['objective_share']:.0%} within {slo['ttft_objective_seconds']:g} s "
        f"(rules/serving.yaml): attained by {slo['ttft_attainment']:.2%} of requests offered "
        f"({slo['ttft_attainment_served']:.2%} of those served): {verdict}",
        "TTFT "
        + "  ".join(f"{k} {_s(v)}" for k, v in j["ttft_seconds"].items())
        + ";  ITL "
        + "  ".join(f"{k} {_s(v)}" for k, v in j["itl_seconds"].items()),
        f"GPU nodes: {j['gpu_hours']:,} GPU-hours, {_usd(j['usd'])} ({_usd(j['idle_usd'])} of it idle: no request on "
        f"the node, or starting); {_usd(j['usd_per_million_output_tokens'])} per million output tokens "
        f"({j['output_tokens']:,} served); utilisation {j['utilisation']:.0%}"
        if j["utilisation"] is not None
        else f"GPU nodes: {j['gpu_hours']:,} GPU-hours, {_usd(j['usd'])}",
    ]
    if j["limits"]:
        out.append("Limits, in the order they bit:")
        out += [f"  {_clock(x['at_seconds'])}  {x['limit']}: {x['what']}" for x in j["limits"]]
        out.append(f"First: {j['first_limit']}")
    else:
        out.append("No limit bit (no quota, pool ceiling, rate limit, replicas.max or cold start held a request back)")
    out.append("Per model (sparklines: one character per minute or more, the most in it):")
    for key, m in result.models.items():
        mj = j["models"][key]
        att = "-" if mj["ttft_attainment"] is None else f"{mj['ttft_attainment']:.2%}"
        out.append(
            f"  {key} on {m.instance}: {m.requests:,} requests, TTFT attained {att}, "
            f"p99 {_s(mj['ttft_seconds']['p99'])}; "
            f"{mj['gpu_hours']} GPU-hours, {_usd(mj['usd'])}"
        )
        out.append(
            f"    ready replicas {min(m.run.ready, default=0)}..{max(m.run.ready, default=0)}  {sparkline(m.run.ready)}"
        )
        out.append(
            f"    nodes          {min(m.run.nodes, default=0)}..{max(m.run.nodes, default=0)}  {sparkline(m.run.nodes)}"
        )
        out.append(f"    queue          0..{max(m.run.queue, default=0)}  {sparkline(m.run.queue)}")
    return "\n".join(out) + "\n"


def render_markdown(result: SimulationResult) -> str:
    j = result.to_json()
    r, slo = j["requests"], j["slo"]
    lines = [
        f"### Simulation: stack `{result.stack}`, trace `{result.trace}`",
        "",
        f"rate x{result.options.rate_scale:g}, seed {result.options.seed}, {result.window_seconds / 60:.1f} minutes",
        "",
        "| requests | served | rejected | timed out | TTFT attainment (objective) | TTFT p50 / p90 / p99 | "
        "ITL p50 / p90 / p99 | GPU-hours | USD | idle USD | USD / M output tokens | first limit |",
        "|---:|---:|---:|---:|---|---|---|---:|---:|---:|---:|---|",
        f"| {r['offered']:,} | {r['served']:,} | {r['rejected']:,} | {r['timed_out']:,} | "
        f"{slo['ttft_attainment']:.2%} ({slo['objective_share']:.0%} within {slo['ttft_objective_seconds']:g} s: "
        f"{'met' if slo['met'] else 'not met'}) | "
        + " / ".join(_s(v) for v in j["ttft_seconds"].values())
        + " | "
        + " / ".join(_s(v) for v in j["itl_seconds"].values())
        + f" | {j['gpu_hours']} | {_usd(j['usd'])} | {_usd(j['idle_usd'])} | "
        f"{_usd(j['usd_per_million_output_tokens'])} | {j['first_limit'] or 'none'} |",
        "",
        "| model | instance | requests | TTFT attainment | ready replicas | nodes | GPU-hours | USD |",
        "|---|---|---:|---:|---|---|---:|---:|",
    ]
    for key, m in result.models.items():
        mj = j["models"][key]
        att = "-" if mj["ttft_attainment"] is None else f"{mj['ttft_attainment']:.2%}"
        lines.append(
            f"| `{key}` | {m.instance} | {m.requests:,} | {att} | {sparkline(m.run.ready, 30)} | "
            f"{sparkline(m.run.nodes, 30)} | {mj['gpu_hours']} | {_usd(mj['usd'])} |"
        )
    if j["limits"]:
        lines += ["", "Limits, in the order they bit:", ""]
        lines += [f"- {_clock(x['at_seconds'])} {x['limit']}: {x['what']}" for x in j["limits"]]
    return "\n".join(lines) + "\n"


# --- the plot ------------------------------------------------------------------------------------------

_WIDTH, _PANEL, _LEFT, _RIGHT, _TOP = 760, 170, 56, 150, 36
_SERIES = (
    ("replicas", "#1f77b4", "replicas wanted"),
    ("ready", "#2ca02c", "ready replicas"),
    ("nodes", "#d62728", "GPU nodes"),
)


def _polyline(points: list[tuple[float, float]], colour: str, dash: str = "") -> str:
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.6"{extra} points="{path}"/>'


def render_svg(result: SimulationResult) -> str:
    """Replicas wanted, ready and GPU nodes over time, one panel per model with traffic; byte-for-byte the same for
    the same result (no dates, no random ids)."""
    models = [(k, m) for k, m in result.models.items() if m.requests] or list(result.models.items())
    height = _TOP + len(models) * (_PANEL + 40) + 10
    plot_w = _WIDTH - _LEFT - _RIGHT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{_WIDTH}" height="{height}" fill="white"/>',
        f'<text x="{_LEFT}" y="20" font-size="13">{escape(f"stack {result.stack}, {result.trace}")}'
        f"{escape(f', rate x{result.options.rate_scale:g}: TTFT attainment {result.ttft_attainment:.1%}')}</text>",
    ]
    for index, (key, m) in enumerate(models):
        top = _TOP + index * (_PANEL + 40) + 14
        run: Any = m.run
        end = max(run.times[-1] if run.times else 1, 1)
        peak = max([*run.replicas, *run.ready, *run.nodes, 1])
        ymax = peak + 1

        def x(t: float, end: float = end) -> float:
            return _LEFT + plot_w * t / end

        def y(v: float, top: float = top, ymax: float = ymax) -> float:
            return top + _PANEL - _PANEL * v / ymax

        out.append(f'<text x="{_LEFT}" y="{top - 4}" font-size="12">{escape(f"{key} on {m.instance}")}</text>')
        out.append(f'<rect x="{_LEFT}" y="{top}" width="{plot_w}" height="{_PANEL}" fill="none" stroke="#999"/>')
        for v in range(0, ymax + 1, max(1, ymax // 5)):
            out.append(f'<line x1="{_LEFT}" y1="{y(v):.1f}" x2="{_LEFT + plot_w}" y2="{y(v):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
        step = 600 if end <= 4 * 3600 else 3600
        for t in range(0, int(end) + 1, step):
            out.append(f'<text x="{x(t):.1f}" y="{top + _PANEL + 14}" text-anchor="middle">{t // 60} min</text>')
        for offset, (field, colour, label) in enumerate(_SERIES):
            values = getattr(run, field)
            points: list[tuple[float, float]] = []
            for i, (t, v) in enumerate(zip(run.times, values, strict=True)):
                if i:
                    points.append((x(t), points[-1][1]))  # a step: the count holds until the next sample
                points.append((x(t), y(v + 0.04 * (offset - 1))))
            out.append(_polyline(points, colour, "4 3" if field == "nodes" else ""))
            ly = top + 14 + 16 * offset
            out.append(
                f'<line x1="{_LEFT + plot_w + 10}" y1="{ly - 4}" x2="{_LEFT + plot_w + 28}" y2="{ly - 4}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
            out.append(f'<text x="{_LEFT + plot_w + 32}" y="{ly}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
