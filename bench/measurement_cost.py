"""Benchmark: what one measurement interval costs as an experiment ages.

A real Prometheus holds a synthetic experiment (both variants' exported
series and collector telemetry, a sample every 15 s) backfilled with promtool
for 7 days. For an experiment aged 1 hour, 24 hours and 7 days it times the
next interval two ways, side by side, and checks they give the same
measurement:
- with the experiment's History (what the operator does): only the samples
  since the last interval are fetched, plus the newest two again;
- the peer, a full fetch of the whole history at every interval (what the
  operator did before, and what a restarted operator pays once), in chunks
  under Prometheus's 11,000 points per query.

    .venv/bin/python -m bench.measurement_cost
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from phoenix_operator import binaries, labels
from phoenix_operator.measure import base
from phoenix_operator.measure import prometheus as prom
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.runtime import local_components

STEP = 15
DAYS = 7
AGES = {"1 h": 3600, "24 h": 24 * 3600, "7 d": DAYS * 24 * 3600}
SERIES = {"baseline": 6, "candidate": 2}  # exported series per variant
REPEATS = 5
T = TypeVar("T")


class CountingClient(prom.Client):
    """The real client, counting the points Prometheus sends back."""

    points = 0

    def _range_query(self, query: str, window: reconcile_experiment.Window) -> prom.Series:
        answer = super()._range_query(query, window)
        self.points += sum(int(np.count_nonzero(~np.isnan(values))) for values in answer.values())
        return answer


def _openmetrics(path: Path, start: int, count: int) -> None:
    """Both variants of experiment `exp`: exported series and the collectors' own telemetry."""
    with path.open("w", encoding="utf-8") as out:
        for variant, exported in SERIES.items():
            export = labels.of_scrape("exp", variant, labels.EXPORT) | {"job": "export"}
            telemetry = labels.of_scrape("exp", variant, labels.TELEMETRY) | {"job": "telemetry"}
            out.write("# TYPE process_memory_usage_bytes gauge\n")
            for index in range(exported):
                selector = ",".join(f'{k}="{v}"' for k, v in (export | {"process_pid": str(index)}).items())
                for i in range(count):
                    out.write(f"process_memory_usage_bytes{{{selector}}} {1000 + index} {start + STEP * i}\n")
            selector = ",".join(f'{k}="{v}"' for k, v in telemetry.items())
            for metric, extra, kind, per_sample in (
                ("otelcol_exporter_sent_metric_points", 'exporter="prometheus",', "counter", float(exported)),
                ("otelcol_process_cpu_seconds", "", "counter", 0.03 * STEP),
                ("otelcol_process_memory_rss", "", "gauge", 0.0),
            ):
                out.write(f"# TYPE {metric} {kind}\n")
                for i in range(count):
                    value = per_sample * i if kind == "counter" else 5e7
                    out.write(f"{metric}{{{extra}{selector}}} {value} {start + STEP * i}\n")
        out.write("# EOF\n")


def _timed(call: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _interval(url: str, window: reconcile_experiment.Window) -> tuple[float, int, float, int]:
    """Median seconds and points of the next interval: with a History primed one step earlier, and in full."""
    earlier = reconcile_experiment.Window(window.start, window.end - STEP, STEP)
    incremental_times, full_times = [], []
    incremental_points = full_points = 0
    for _ in range(REPEATS):
        counting = CountingClient(url, timeout=60)
        remembered = prom.Provider(counting, prom.History())
        remembered.measure("exp", [], earlier)
        counting.points = 0
        seconds, grown = _timed(lambda provider=remembered: provider.measure("exp", [], window))
        incremental_times.append(seconds)
        incremental_points = counting.points
        peer = CountingClient(url, timeout=60)
        seconds, full = _timed(lambda client=peer: prom.Provider(client).measure("exp", [], window))
        full_times.append(seconds)
        full_points = peer.points
        _same(grown, full)
    return statistics.median(incremental_times), incremental_points, statistics.median(full_times), full_points


def _same(grown: base.Measurement, full: base.Measurement) -> None:
    if grown != full:
        raise SystemExit("the incremental measurement differs from the full one")
    if grown.phase != "Successful":
        raise SystemExit(f"no measurement: {grown.message}")


def main() -> int:
    promtool = binaries.require(binaries.PROMTOOL)
    with tempfile.TemporaryDirectory(prefix="phoenix-measurement-cost-") as workdir:
        root = Path(workdir)
        count = DAYS * 24 * 3600 // STEP + 240
        end = int(time.time()) // STEP * STEP - 10 * STEP
        start = end - (count - 1) * STEP
        print(f"backfilling {count} samples per series ({DAYS} days at {STEP} s) into a real Prometheus ...")
        _openmetrics(root / "exp.om", start, count)
        data = root / "prometheus" / "data"
        data.mkdir(parents=True)
        subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(root / "exp.om"), str(data)],
            check=True,
            capture_output=True,
            timeout=600,
        )
        # the local runtime keeps a day; this history is a week
        server = local_components.LocalPrometheus([], root / "prometheus", "15s", retention="30d")
        server.start()
        try:
            rows = []
            for age, seconds in AGES.items():
                window = reconcile_experiment.Window(end - seconds, end, STEP)
                rows.append((age, len(window.timestamps), *_interval(server.url, window)))
        finally:
            server.stop()
    print(f"\n{'age':>5} {'samples':>8} {'history: s':>11} {'points':>7} {'full fetch: s':>14} {'points':>9}")
    for age, samples, incremental, incremental_points, full, full_points in rows:
        print(f"{age:>5} {samples:>8} {incremental:>11.3f} {incremental_points:>7} {full:>14.3f} {full_points:>9}")
    week, hour = rows[-1], rows[0]
    print(f"\n7 d / 1 h interval time, with the history: {week[2] / hour[2]:.2f}x (target <= 2x)")
    print(f"7 d / 1 h interval time, full fetch:       {week[4] / hour[4]:.1f}x")
    print(f"full fetch / history at 7 d:               {week[4] / week[2]:.0f}x")
    return 0 if week[2] <= 2 * hour[2] else 1


if __name__ == "__main__":
    sys.exit(main())
