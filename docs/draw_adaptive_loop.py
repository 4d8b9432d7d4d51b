"""Draw docs/adaptive-loop.png from the trajectory of a real run of the adaptive loop.

    PHOENIX_ADAPTIVE_TRAJECTORY=/tmp/loop.json pytest tests/e2e/test_adaptive_loop.py
    python docs/draw_adaptive_loop.py /tmp/loop.json

The e2e test writes one row per turn of the loop: seconds, exported series,
budget and K. The chart is an SVG, turned into a PNG by rsvg-convert
(Debian's librsvg2-bin).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WIDTH, HEIGHT, PAD = 900, 420, 60
TITLE = "Adaptive pipeline: exported series against a budget (real collector, LoadSim, Prometheus)"
K_LEGEND = "K, executables keeping detail (right axis)"
HERE = Path(__file__).resolve().parent


def _svg(rows: list[list[float | None]]) -> str:
    seconds = [float(r[0] or 0) for r in rows]
    series = [r[1] for r in rows]
    budgets = [float(r[2] or 0) for r in rows]
    ks = [float(r[3] or 0) for r in rows]
    top = max([*(s for s in series if s is not None), *budgets]) * 1.1
    top_k = max(max(ks), 1.0) * 1.2
    span = max(seconds[-1], 1.0)

    def x(t: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * t / span

    def y(value: float, scale: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / scale

    def steps(values: list[float], scale: float) -> str:
        points = []
        for index, value in enumerate(values):
            if index:
                points.append(f"{x(seconds[index]):.1f},{y(values[index - 1], scale):.1f}")
            points.append(f"{x(seconds[index]):.1f},{y(value, scale):.1f}")
        return " ".join(points)

    measured = " ".join(f"{x(t):.1f},{y(s, top):.1f}" for t, s in zip(seconds, series, strict=True) if s is not None)
    band = steps([0.9 * b for b in budgets], top).split() + list(reversed(steps(budgets, top).split()))
    ticks = "".join(
        f'<text x="{PAD - 8}" y="{y(v, top) + 4:.1f}" font-size="12" text-anchor="end">{v:.0f}</text>'
        for v in (0, top / 2, top / 1.1)
    )
    k_ticks = "".join(
        f'<text x="{WIDTH - PAD + 8}" y="{y(v, top_k) + 4:.1f}" font-size="12">{v:.0f}</text>'
        for v in (0, round(top_k / 2), round(top_k / 1.2))
    )
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{PAD}" y="28" font-size="16">{TITLE}</text>
<polygon fill="#d8f0d8" points="{" ".join(band)}"/>
<polyline fill="none" stroke="#2a7f2a" stroke-width="2" stroke-dasharray="6 4" points="{steps(budgets, top)}"/>
<polyline fill="none" stroke="#1f4e9c" stroke-width="2.5" points="{measured}"/>
<polyline fill="none" stroke="#c0601a" stroke-width="1.5" points="{steps(ks, top_k)}"/>
<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>
{ticks}{k_ticks}
<text x="{PAD}" y="{HEIGHT - PAD + 22}" font-size="12">0 s</text>
<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 22}" font-size="12" text-anchor="end">{span:.0f} s</text>
<text x="{PAD}" y="{HEIGHT - 12}" font-size="12" fill="#1f4e9c">&#9632; exported series</text>
<text x="{PAD + 150}" y="{HEIGHT - 12}" font-size="12" fill="#2a7f2a">&#9632; budget, and the band 10% under it</text>
<text x="{PAD + 420}" y="{HEIGHT - 12}" font-size="12" fill="#c0601a">&#9632; {K_LEGEND}</text>
</svg>
"""


def main(trajectory: str) -> None:
    rows = json.loads(Path(trajectory).read_text(encoding="utf-8"))
    svg = HERE / "adaptive-loop.svg"
    svg.write_text(_svg(rows), encoding="utf-8")
    subprocess.run(["rsvg-convert", "-o", str(HERE / "adaptive-loop.png"), str(svg)], check=True)
    svg.unlink()


if __name__ == "__main__":
    main(sys.argv[1])
