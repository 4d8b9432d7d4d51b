"""Draws docs/how-it-works.svg, the README's picture of one experiment: `python docs/draw_how_it_works.py`.

The boxes and arrows are listed below as text; a test keeps the committed
SVG equal to what this prints, so the picture cannot drift from its source.
"""

from __future__ import annotations

import html
import sys
from pathlib import Path

WIDTH, HEIGHT = 990, 500
# name: (x, y, width, height), title, the lines under it, fill
BOXES = {
    "user": ((10, 30, 150, 70), "you", ["kubectl apply, ArgoCD,", "kubectl phoenix"], "#f3f3f3"),
    "experiment": (
        (200, 20, 185, 90),
        "PhoenixExperiment q",
        ["spec: baseline, candidate,", "load, objectives", "status: the verdict"],
        "#fde9c8",
    ),
    "operator": ((440, 25, 190, 80), "phoenix operator", ["renders, deploys,", "measures, decides"], "#dbe8fb"),
    "baseline": (
        (110, 210, 230, 95),
        "PhoenixProcessPipeline",
        ["q-baseline, with its", "Deployment, ConfigMap and", "Service q-baseline-collector"],
        "#e3f4e1",
    ),
    "load": (
        (425, 215, 220, 85),
        "LoadSim q-load",
        ["a Job sending the same OTLP", "batches to both Services", "(or a mirror of real input)"],
        "#f6e0f1",
    ),
    "candidate": (
        (730, 210, 230, 95),
        "PhoenixProcessPipeline",
        ["q-candidate, with its", "Deployment, ConfigMap and", "Service q-candidate-collector"],
        "#e3f4e1",
    ),
    "prometheus": (
        (425, 400, 220, 80),
        "Prometheus",
        ["scrapes both collectors;", "the critical queries run", "on each variant"],
        "#fbe3e3",
    ),
}
# (from, to, label, waypoints between them, offset of a second arrow between the same boxes)
ARROWS: list[tuple[str, str, str, list[tuple[float, float]], float]] = [
    ("user", "experiment", "apply", [], 0),
    ("experiment", "operator", "watches", [], -14),
    ("operator", "experiment", "6. verdict", [], 14),
    ("operator", "baseline", "1. creates", [], 0),
    ("operator", "candidate", "1. creates", [], 0),
    ("operator", "load", "2. creates", [], 0),
    ("load", "baseline", "3. OTLP", [], 0),
    ("load", "candidate", "3. OTLP", [], 0),
    ("baseline", "prometheus", "4. scrape", [], 0),
    ("candidate", "prometheus", "4. scrape", [], 0),
    ("operator", "prometheus", "5. query", [(980, 65), (980, 440)], 0),
]


def _centre(name: str) -> tuple[float, float]:
    x, y, width, height = BOXES[name][0]
    return x + width / 2, y + height / 2


def _edge(name: str, towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from the box's centre towards a point leaves the box."""
    width, height = BOXES[name][0][2:]
    cx, cy = _centre(name)
    dx, dy = towards[0] - cx, towards[1] - cy
    scale = min(width / 2 / abs(dx) if dx else float("inf"), height / 2 / abs(dy) if dy else float("inf"))
    return cx + dx * scale, cy + dy * scale


def _box(name: str) -> str:
    (x, y, width, height), title, lines, fill = BOXES[name]
    texts = [f'<text x="{x + width / 2:.0f}" y="{y + 20}" class="title">{html.escape(title)}</text>']
    texts += [
        f'<text x="{x + width / 2:.0f}" y="{y + 38 + 15 * i}">{html.escape(line)}</text>'
        for i, line in enumerate(lines)
    ]
    rect = f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="8" fill="{fill}" stroke="#555"/>'
    return "\n".join([rect, *texts])


def _arrow(source: str, target: str, label: str, via: list[tuple[float, float]], offset: float) -> str:
    first = via[0] if via else _centre(target)
    last = via[-1] if via else _centre(source)
    x1, y1 = _edge(source, first)
    x2, y2 = _edge(target, last)
    points = [(x1, y1 + offset), *via, (x2, y2 + offset)]
    path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
    # the label sits on the middle segment of a straight arrow, on the first of a routed one
    middle = 1 if via else len(points) // 2
    (ax, ay), (bx, by) = points[middle - 1], points[middle]
    mx, my = (ax + bx) / 2, (ay + by) / 2
    line = f'<polyline points="{path}" fill="none" marker-end="url(#head)"/>'
    return f'{line}\n<text x="{mx:.0f}" y="{my - 4:.0f}" class="label">{html.escape(label)}</text>'


def svg() -> str:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">',
        '<defs><marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        "<style>text{font:12px sans-serif;text-anchor:middle;fill:#222}.title{font-weight:bold}"
        ".label{font-size:11px;fill:#1a4f9c}polyline{stroke:#555;stroke-width:1.4}</style>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        *(_arrow(*arrow) for arrow in ARROWS),
        *(_box(name) for name in BOXES),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("how-it-works.svg")
    target.write_text(svg(), encoding="utf-8")
    print(f"wrote {target}")
