"""A self-contained HTML report of one experiment: inline SVG charts, no scripts.

A reader should get the answer at a glance: the verdict banner first, then
the series of both variants over time, the reduction's confidence sequence
narrowing onto its estimate, and each critical query on both variants.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from phoenix_operator.cli import output
from phoenix_operator.models import experiment

WIDTH, HEIGHT, PAD = 640, 220, 44
COLOURS = {"baseline": "#6b7280", "candidate": "#2563eb", "band": "#bfdbfe", "objective": "#dc2626"}
BANNER = {"Promote": "#15803d", "Reject": "#b91c1c", "Inconclusive": "#a16207"}
Line = Sequence[float | None]


@dataclass(frozen=True)
class _Frame:
    """Maps data coordinates onto the SVG canvas."""

    x0: float
    x1: float
    low: float
    high: float

    def x(self, value: float) -> float:
        return PAD + (value - self.x0) / ((self.x1 - self.x0) or 1.0) * (WIDTH - 2 * PAD)

    def y(self, value: float) -> float:
        return PAD + (1 - (value - self.low) / ((self.high - self.low) or 1.0)) * (HEIGHT - 2 * PAD)


def _points(frame: _Frame, xs: Sequence[float], values: Line) -> str:
    return " ".join(
        f"{frame.x(x):.1f},{frame.y(v):.1f}"
        for x, v in zip(xs, values, strict=True)
        if v is not None and math.isfinite(v)
    )


def _band(frame: _Frame, xs: Sequence[float], lower: Line, upper: Line) -> str:
    top = [(x, v) for x, v in zip(xs, upper, strict=True) if v is not None and math.isfinite(v)]
    bottom = [(x, v) for x, v in zip(xs, lower, strict=True) if v is not None and math.isfinite(v)]
    corners = " ".join(f"{frame.x(x):.1f},{frame.y(v):.1f}" for x, v in [*top, *reversed(bottom)])
    return f'<polygon fill="{COLOURS["band"]}" points="{corners}"/>' if corners else ""


def _chart(
    title: str,
    xs: Sequence[float],
    lines: Mapping[str, Line],
    band: tuple[Line, Line] | None = None,
    objective: float | None = None,
    percent: bool = False,
) -> str:
    everything = [*(v for line in lines.values() for v in line), *(band[0] if band else ()), *(band[1] if band else ())]
    finite = [v for v in everything if v is not None and math.isfinite(v)] + (
        [objective] if objective is not None else []
    )
    if not xs or not finite:
        return f"<h3>{html.escape(title)}</h3><p>No data.</p>"
    margin = (max(finite) - min(finite)) * 0.08 or abs(max(finite)) * 0.1 or 1.0
    frame = _Frame(xs[0], xs[-1], min(finite) - margin, max(finite) + margin)
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}">']
    if band:
        parts.append(_band(frame, xs, *band))
    if objective is not None:
        level = frame.y(objective)
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{level:.1f}" y2="{level:.1f}" '
            f'stroke="{COLOURS["objective"]}" stroke-dasharray="6 4"/>'
        )
    for name, values in lines.items():
        colour = COLOURS.get(name, "#111")
        parts.append(
            f'<polyline fill="none" stroke-width="2" stroke="{colour}" points="{_points(frame, xs, values)}"/>'
        )
    for value in (min(finite), max(finite)):
        label = f"{value:.0%}" if percent else f"{value:,.4g}"
        parts.append(f'<text x="4" y="{frame.y(value) + 4:.1f}" font-size="11">{label}</text>')
    parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11">0 s</text>')
    parts.append(f'<text x="{WIDTH - PAD - 40}" y="{HEIGHT - 8}" font-size="11">{xs[-1] - xs[0]:.0f} s</text></svg>')
    legend = " ".join(f'<span style="color:{COLOURS.get(n, "#111")}">&#9632; {html.escape(n)}</span>' for n in lines)
    return f"<h3>{html.escape(title)}</h3><div class=legend>{legend}</div>{''.join(parts)}"


def _sum_over_labels(values: Mapping[str, Line]) -> list[float | None]:
    rows = list(values.values())
    if not rows:
        return []
    return [None if all(r[i] is None for r in rows) else sum(r[i] or 0.0 for r in rows) for i in range(len(rows[0]))]


def render(
    name: str, analysis: dict[str, Any], measured: dict[str, Any] | None, timestamps: Sequence[float], objective: float
) -> str:
    decision = analysis["decision"]
    xs = [t - timestamps[0] for t in timestamps]
    sections = []
    if measured:
        series = {v: measured[v]["active_series"] for v in ("baseline", "candidate")}
        sections.append(_chart("Active series per variant", xs, series))
    sequence = analysis.get("series_reduction_sequence")
    if sequence and len(sequence["estimate"]) == len(xs):
        sections.append(
            _chart(
                "Series reduction: estimate and confidence sequence (dashed: objective)",
                xs, {"candidate": sequence["estimate"]}, (sequence["ci_low"], sequence["ci_high"]), objective, True,
            )
        )  # fmt: skip
    for query in (measured or {}).get("critical_queries", []):
        lines = {v: _sum_over_labels(query[v]) for v in ("baseline", "candidate")}
        sections.append(_chart(f"Critical query {query['name']} (summed over label sets)", xs, lines))
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in analysis["reasons"])
    fidelity = analysis["fidelity"]
    summary = (
        f"Series reduction {output.interval(analysis['series_reduction'], missing='?')} · "
        f"savings {output.interval(analysis['monthly_savings_usd'], money=True, missing='?')} per month · "
        f"{fidelity['passed']}/{fidelity['checked']} critical queries agree"
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:720px;margin:2em auto;color:#111}"
        f".banner{{color:#fff;background:{BANNER.get(decision, '#333')};padding:1em 1.2em;border-radius:8px}}"
        ".banner h1{margin:0 0 .3em 0} .legend{font-size:13px} svg{background:#fafafa;border:1px solid #e5e7eb}"
    )
    footer = f"Generated by Phoenix on {generated}; {analysis['samples_used']} samples, {analysis['mode']} mode."
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Phoenix report: {html.escape(name)}</title><style>{style}</style></head>\n"
        f'<body><div class="banner"><h1>{html.escape(decision)}: {html.escape(name)}</h1>'
        f"<div>{html.escape(summary)}</div></div>\n<h2>Why</h2><ul>{reasons}</ul>{''.join(sections)}\n"
        f'<p style="font-size:12px;color:#6b7280">{html.escape(footer)}</p></body></html>\n'
    )


def _plain(interval: experiment.Interval | None) -> dict[str, float] | None:
    return None if interval is None else interval.model_dump()


def render_from_status(name: str, spec: Mapping[str, Any], status: experiment.ExperimentStatus) -> str:
    """The same report from an experiment's status: the verdict and figures, without time series."""
    results = status.results or experiment.Results()
    fidelity = results.fidelity or experiment.Fidelity(checked=0, passed=0)
    analysis = {
        "decision": status.verdict.decision if status.verdict else f"{status.phase}, no verdict yet",
        "reasons": status.verdict.reasons if status.verdict else [],
        "series_reduction": _plain(results.series_reduction),
        "monthly_savings_usd": _plain(results.monthly_savings_usd),
        "fidelity": {"passed": fidelity.passed, "checked": fidelity.checked},
        "samples_used": results.samples_used,
        "mode": (spec.get("analysis") or {}).get("mode", "sequential"),
    }
    objective = ((spec.get("analysis") or {}).get("objectives") or {}).get("minSeriesReduction", 0.0)
    return render(name, analysis, None, [], float(objective))
