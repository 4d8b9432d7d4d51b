"""Benchmark: how fast `analyze` is, against a naive per-prefix recomputation.

`analyze` runs at every interval of every experiment, so it must be cheap:
targets are <= 10 ms for 240 samples and <= 1 s for 24 h of 15 s samples with
50 critical queries. The named peer is the straightforward way to get bounds
at every prefix: recompute the mean and Newey-West variance from scratch for
each prefix (O(n^2 L)), run side by side on the same series.

    .venv/bin/python -m bench.analyze_speed
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from tests import simulate

from phoenix_analysis import engine, intervals


def timed(call: Callable[[], Any], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def naive_prefix_bounds(x: np.ndarray) -> None:
    for k in range(1, len(x) + 1):
        y = x[:k] - x[:k].mean()
        lags = intervals.bandwidth(k)
        variance = float(y @ y) / k
        for j in range(1, min(lags, k - 1) + 1):
            variance += 2 * (1 - j / (lags + 1)) * float(y[j:] @ y[:-j]) / k


def with_queries(data: dict[str, Any], queries: int, rng: np.random.Generator) -> dict[str, Any]:
    n = len(data["baseline"]["activeSeries"])
    base = np.asarray(data["baseline"]["activeSeries"])
    data["criticalQueries"] = [
        {
            "name": f"q{i}",
            "baseline": {f"s{j}": (base / (j + 2)).tolist() for j in range(10)},
            "candidate": {f"s{j}": (base / (j + 2) * (1 + 0.001 * rng.normal(size=n))).tolist() for j in range(10)},
        }
        for i in range(queries)
    ]
    return data


def main() -> int:
    rng = np.random.default_rng(1)
    small = with_queries(simulate.experiment(rng, 240, reduction=0.7), 3, rng)
    day = with_queries(simulate.experiment(rng, 24 * 3600 // 15, reduction=0.7), 50, rng)
    series = 1 - np.asarray(small["candidate"]["activeSeries"]) / np.asarray(small["baseline"]["activeSeries"])

    small_time = timed(lambda: engine.analyze(small), 50)
    day_time = timed(lambda: engine.analyze(day), 3)
    ours = timed(lambda: intervals.running_confidence_sequence(series, 0.05, len(series)), 50)
    naive = timed(lambda: naive_prefix_bounds(series), 5)
    print(f"analyze, 240 samples, 3 queries:       {small_time * 1000:8.2f} ms (target <= 10 ms)")
    print(f"analyze, 5760 samples (24 h), 50 queries: {day_time * 1000:8.1f} ms (target <= 1000 ms)")
    print(
        f"bounds at every prefix, 240 samples: running sums {ours * 1000:.3f} ms, "
        f"naive recomputation {naive * 1000:.1f} ms"
    )
    print(f"ratio naive/running = {naive / ours:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
