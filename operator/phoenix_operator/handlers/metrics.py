"""The operator's own metrics, served on /metrics."""

from __future__ import annotations

import collections
import contextlib
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import prometheus_client

from phoenix_analysis import contract
from phoenix_operator.models import experiment, pipeline
from phoenix_operator.reconcile import conditions, drift

RECONCILES = prometheus_client.Counter("phoenix_reconciles", "Reconciles by kind and outcome.", ["kind", "outcome"])
RECONCILE_SECONDS = prometheus_client.Histogram(
    "phoenix_reconcile_duration_seconds", "Time one reconcile took.", ["kind"]
)
EXPERIMENTS = prometheus_client.Gauge("phoenix_experiments", "Experiments by phase.", ["phase"])
DECISIONS = prometheus_client.Counter("phoenix_decisions", "Verdicts by decision.", ["decision"])
DEPLOY_QUEUE = prometheus_client.Gauge(
    "phoenix_pipeline_deploy_queue_depth", "Pipelines waiting to be rendered, applied or reported."
)
LAST_ANALYSIS = prometheus_client.Gauge(
    "phoenix_last_analysis_timestamp_seconds", "When the last analysis of any experiment finished."
)


# Per experiment, for the dashboards: the latest figures and where it stands.
EXPERIMENT = ["namespace", "experiment"]
SERIES_REDUCTION = prometheus_client.Gauge(
    "phoenix_experiment_series_reduction", "Latest series reduction: estimate and CI bounds.", [*EXPERIMENT, "bound"]
)
MONTHLY_SAVINGS = prometheus_client.Gauge(
    "phoenix_experiment_monthly_savings_usd", "Latest monthly savings: estimate and CI bounds.", [*EXPERIMENT, "bound"]
)
DECISION = prometheus_client.Gauge(
    "phoenix_experiment_decision",
    "1 for the verdict, or the decision the data leans to so far.",
    [*EXPERIMENT, "decision"],
)
DRIFT = prometheus_client.Gauge(
    "phoenix_experiment_drift",
    "1 while the promoted pipeline has drifted from what its experiment measured, 0 while it holds.",
    EXPERIMENT,
)
# Per adaptive pipeline: what its control loop holds it to, and what it chose.
PIPELINE = ["namespace", "pipeline"]
SERIES_BUDGET = prometheus_client.Gauge(
    "phoenix_pipeline_series_budget", "The adaptive pipeline's series budget.", PIPELINE
)
EXPORTED_SERIES = prometheus_client.Gauge(
    "phoenix_pipeline_exported_series", "The series the adaptive pipeline exported at its last observation.", PIPELINE
)
ADAPTIVE_K = prometheus_client.Gauge(
    "phoenix_pipeline_adaptive_k", "How many executables keep per-process detail in the adaptive pipeline.", PIPELINE
)
PHASE = prometheus_client.Gauge("phoenix_experiment_phase", "1 for the experiment's phase.", [*EXPERIMENT, "phase"])
PHASES = ("Pending", "Initializing", "Running", "Analyzing", "Completed", "Failed", "Aborted")
DECISIONS_ALL = ("Promote", "Reject", "Inconclusive")
BOUNDS = ("estimate", "ci_low", "ci_high")


def record_experiment(
    namespace: str, name: str, phase: str, analysis: contract.Result | None, decision: str | None
) -> None:
    """The experiment's phase, and the newest analysis or verdict, as gauges."""
    for each in PHASES:
        PHASE.labels(namespace, name, each).set(1 if each == phase else 0)
    if analysis is not None:
        for gauge, interval in (
            (SERIES_REDUCTION, analysis.series_reduction),
            (MONTHLY_SAVINGS, analysis.monthly_savings_usd),
        ):
            if interval is not None:
                for bound in BOUNDS:
                    gauge.labels(namespace, name, bound).set(getattr(interval, bound))
        decision = decision or analysis.decision
    if decision is not None:
        for each in DECISIONS_ALL:
            DECISION.labels(namespace, name, each).set(1 if each == decision else 0)


def record_adaptive(namespace: str, name: str, status: pipeline.AdaptiveStatus) -> None:
    SERIES_BUDGET.labels(namespace, name).set(status.series_budget)
    ADAPTIVE_K.labels(namespace, name).set(status.k)
    if status.current_series is not None:
        EXPORTED_SERIES.labels(namespace, name).set(status.current_series)


def forget_pipeline(namespace: str, name: str) -> None:
    for gauge in (SERIES_BUDGET, EXPORTED_SERIES, ADAPTIVE_K):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, name)


def record_drift(namespace: str, name: str, status: experiment.ExperimentStatus) -> None:
    """The drift watch's last judgement; an unmeasured check leaves the gauge as it was."""
    drifted = conditions.find(status.conditions, drift.CONDITION)
    if drifted is not None and drifted.status != "Unknown":
        DRIFT.labels(namespace, name).set(1 if drifted.status == "True" else 0)


def forget_experiment(namespace: str, name: str) -> None:
    with contextlib.suppress(KeyError):
        DRIFT.remove(namespace, name)
    for gauge, values in (
        (PHASE, PHASES),
        (DECISION, DECISIONS_ALL),
        (SERIES_REDUCTION, BOUNDS),
        (MONTHLY_SAVINGS, BOUNDS),
    ):
        for value in values:
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name, value)


def count_phases(phases: Iterable[str]) -> None:
    counts = collections.Counter(phases)
    for phase in PHASES:
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
