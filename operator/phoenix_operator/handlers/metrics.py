"""The operator's own metrics, served on /metrics."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import prometheus_client

RECONCILES = prometheus_client.Counter("phoenix_reconciles", "Reconciles by kind and outcome.", ["kind", "outcome"])
RECONCILE_SECONDS = prometheus_client.Histogram(
    "phoenix_reconcile_duration_seconds", "Time one reconcile took.", ["kind"]
)
EXPERIMENTS = prometheus_client.Gauge("phoenix_experiments", "Experiments by phase.", ["phase"])
DECISIONS = prometheus_client.Counter("phoenix_decisions", "Verdicts by decision.", ["decision"])
LAST_ANALYSIS = prometheus_client.Gauge(
    "phoenix_last_analysis_timestamp_seconds", "When the last analysis of any experiment finished."
)


def count_phases(phases: Iterable[str]) -> None:
    counts = collections.Counter(phases)
    for phase in ("Pending", "Initializing", "Running", "Analyzing", "Completed", "Failed", "Aborted"):
        EXPERIMENTS.labels(phase).set(counts.get(phase, 0))


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "success").inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)
