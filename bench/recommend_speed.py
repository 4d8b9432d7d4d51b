"""Benchmark: `phoenix recommend`'s reading and analysis of a large corpus, against parsing alone.

The corpus: 100 Grafana dashboards (10 panels each, half inside rows, a
library panel and a label_values variable per dashboard), 1,000 rules (a
recording rule and an alert reading it, 500 times) and 10,000 query-log
lines. Target: <= 10 s on the 2-core machine. The named peer is the least
any such tool must do, run side by side on the same corpus: parse every
query once with promql-parser and nothing else. The ratio is what reading
the files, the Grafana variables and the label analysis cost on top.

    .venv/bin/python -m bench.recommend_speed
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

import promql_parser

from phoenix_operator.recommend import analysis, sources

METRICS = [f"app_metric_{i}_total" for i in range(200)]
LABELS = ["host_name", "service_name", "process_pid", "route", "status", "region", "pod", "container"]
TARGET_SECONDS = 10.0


def _query(rng: random.Random) -> str:
    metric = rng.choice(METRICS)
    by = ", ".join(rng.sample(LABELS, rng.randint(1, 3)))
    shape = rng.randrange(4)
    if shape == 0:
        return f'sum by ({by}) (rate({metric}{{host_name=~"$host"}}[$__rate_interval]))'
    if shape == 1:
        return f"topk(5, sum by ({by}) (rate({metric}[5m])))"
    if shape == 2:
        other = rng.choice(METRICS)
        return f"sum by ({by}) (rate({metric}[5m])) / on ({by}) group_left sum by ({by}) (rate({other}[5m]))"
    return f"histogram_quantile(0.99, sum by (le, {by}) (rate({metric}[5m])))"


def _plain(query: str) -> str:
    """As rules hold it and Prometheus logs it: Grafana substitutes its variables before sending."""
    return sources.grafana_to_promql(query)


def corpus(root: Path, rng: random.Random) -> tuple[Path, Path, Path]:
    dashboards, rules, log = root / "dashboards", root / "rules", root / "queries.log"
    dashboards.mkdir()
    rules.mkdir()
    for d in range(100):
        panels = [{"title": f"panel {p}", "targets": [{"expr": _query(rng)}]} for p in range(10)]
        document = {
            "title": f"dashboard {d}",
            "__elements": {"lib": {"model": {"targets": [{"expr": _query(rng)}]}}},
            "templating": {"list": [{"type": "query", "name": "host",
                                     "query": f"label_values({rng.choice(METRICS)}, host_name)"}]},
            "panels": [*panels[:5], {"type": "row", "collapsed": True, "panels": panels[5:]},
                       {"libraryPanel": {"uid": "lib"}}],
        }  # fmt: skip
        (dashboards / f"{d}.json").write_text(json.dumps(document), encoding="utf-8")
    groups = [
        {
            "name": f"group {g}",
            "rules": [
                {"record": f"job:rule_{g}:rate5m", "expr": _plain(_query(rng))},
                {"alert": f"Alert{g}", "expr": f"job:rule_{g}:rate5m > 10"},
            ],
        }
        for g in range(500)
    ]
    (rules / "rules.yaml").write_text(json.dumps({"groups": groups}), encoding="utf-8")  # JSON is YAML
    logged = (_plain(_query(rng)) for _ in range(10_000))
    lines = [json.dumps({"params": {"query": q, "start": 0, "end": 60, "step": 15}}) for q in logged]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dashboards, rules, log


def read(dashboards: Path, rules: Path, log: Path) -> sources.Corpus:
    found = sources.Corpus()
    sources.read_dashboards(dashboards, found)
    sources.read_rules(rules, found)
    sources.read_query_log(log, found)
    return found


def parse_only(dashboards: Path, rules: Path, log: Path) -> int:
    """The peer: the same files read, and every query parsed once."""
    texts = [q.text for q in read(dashboards, rules, log).queries]
    for text in texts:
        promql_parser.parse(text)
    return len(texts)


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        paths = corpus(Path(scratch), random.Random(7))
        started = time.perf_counter()
        found = analysis.needs(read(*paths))
        phoenix = time.perf_counter() - started
        started = time.perf_counter()
        parsed = parse_only(*paths)
        peer = time.perf_counter() - started
    print(f"corpus: 100 dashboards, 1,000 rules, 10,000 query-log lines: {parsed:,} queries")
    print(f"phoenix recommend (read + analyse): {phoenix:.2f} s, {len(found.metrics)} metrics used")
    print(f"peer, promql-parser alone (read + parse): {peer:.2f} s")
    print(f"ratio recommend / parse alone: {phoenix / peer:.2f}x; target <= {TARGET_SECONDS:.0f} s")
    return 0 if phoenix <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
