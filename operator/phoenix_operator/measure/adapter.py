"""An experiment's measurements, as the analysis contract's input.

Each variant's collector exports with const labels phoenix_experiment and
phoenix_variant; Prometheus adds phoenix_scrape = export (the exported
metrics) or telemetry (the collector's own metrics) as a target label. Like
an Argo Rollouts metric provider, this never raises for bad data: an
unreachable Prometheus, an invalid query or an empty result becomes a
Measurement with phase Error or Inconclusive and a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from phoenix_operator.measure import prometheus as prom
from phoenix_operator.measure import promql
from phoenix_operator.models import experiment

VARIANTS = ("baseline", "candidate")
Phase = Literal["Successful", "Inconclusive", "Error"]
# Samples carry the datapoints' own times, so the newest grid points may hold a
# batch one variant was scraped with and the other not yet; they are left out.
SETTLE_STEPS = 2


@dataclass(frozen=True)
class Measurement:
    phase: Phase
    message: str = ""
    analysis_input: dict[str, Any] | None = None
    timestamps: list[float] = field(default_factory=list)


def _selector(name: str, variant: str, scrape: str) -> str:
    return f'phoenix_experiment="{name}",phoenix_variant="{variant}",phoenix_scrape="{scrape}"'


def variant_queries(name: str, variant: str) -> dict[str, str]:
    exported = _selector(name, variant, "export")
    telemetry = _selector(name, variant, "telemetry")
    return {
        "active_series": f'count({{{exported},__name__!~"up|scrape_.+"}})',
        # points the pipeline hands to its prometheus exporter: its output rate,
        # however often Prometheus scrapes the same points
        "datapoints_per_minute": (
            f'60 * sum(rate(otelcol_exporter_sent_metric_points{{{telemetry},exporter="prometheus"}}[1m]))'
        ),
        "cpu_cores": f"sum(rate(otelcol_process_cpu_seconds{{{telemetry}}}[1m]))",
        "memory_bytes": f"sum(otelcol_process_memory_rss{{{telemetry}}})",
    }


def _single(series: dict[str, npt.NDArray[np.float64]], length: int) -> npt.NDArray[np.float64]:
    return next(iter(series.values())) if series else np.full(length, np.nan)


def _samples(values: npt.NDArray[np.float64]) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def measure(client: prom.Client, name: str, spec: experiment.ExperimentSpec, grid: prom.Grid) -> Measurement:
    """Everything `analyze` needs for experiment `name` over `grid`."""
    length = len(grid.timestamps)
    variants: dict[str, dict[str, list[float | None]]] = {}
    queries: list[dict[str, Any]] = [{"name": q.name} for q in spec.analysis.critical_queries]
    try:
        for variant in VARIANTS:
            measured = {
                key: _single(client.range_query(query, grid), length)
                for key, query in variant_queries(name, variant).items()
            }
            if np.all(np.isnan(measured["active_series"])):
                return Measurement("Inconclusive", f"no series exported by the {variant} pipeline yet")
            variants[variant] = {key: _samples(values) for key, values in measured.items()}
            if all(v is None for v in variants[variant]["cpu_cores"]):
                del variants[variant]["cpu_cores"], variants[variant]["memory_bytes"]
            labels = {"phoenix_experiment": name, "phoenix_variant": variant}
            for entry, query in zip(queries, spec.analysis.critical_queries, strict=True):
                result = client.range_query(promql.scope(query.query, labels), grid)
                entry[variant] = {key: _samples(values) for key, values in result.items()}
    except prom.PrometheusError as error:
        return Measurement("Error", str(error))
    except promql.QueryError as error:
        return Measurement("Error", f"critical query: {error}")
    if set(variants["baseline"]) != set(variants["candidate"]):
        for variant in VARIANTS:
            variants[variant].pop("cpu_cores", None)
            variants[variant].pop("memory_bytes", None)
    window = _measured_window(variants)
    if window is None:
        return Measurement("Inconclusive", "the variants have no sample time in common yet")
    first, last = window
    variants = {v: {k: values[first:last] for k, values in arrays.items()} for v, arrays in variants.items()}
    for entry in queries:
        for variant in VARIANTS:
            entry[variant] = {k: values[first:last] for k, values in entry[variant].items()}
    objectives = spec.analysis.objectives
    prices = spec.analysis.cost_model
    analysis_input = {
        "interval_seconds": grid.step,
        "baseline": variants["baseline"],
        "candidate": variants["candidate"],
        "critical_queries": queries,
        "objectives": {
            "min_series_reduction": objectives.min_series_reduction,
            "max_query_error": objectives.max_query_error,
            "max_cpu_increase": objectives.max_cpu_increase,
            "max_memory_increase": objectives.max_memory_increase,
        },
        "cost_model": {
            "usd_per_million_datapoints": prices.usd_per_million_datapoints,
            "usd_per_active_series_month": prices.usd_per_active_series_month,
            "usd_per_cpu_core_month": prices.usd_per_cpu_core_month,
            "usd_per_gib_month": prices.usd_per_gib_month,
        },
        "alpha": spec.analysis.alpha,
        "mode": spec.analysis.mode,
    }
    return Measurement("Successful", "", analysis_input, grid.timestamps[first:last].tolist())


def _measured_window(variants: dict[str, dict[str, list[float | None]]]) -> tuple[int, int] | None:
    """The span from the first to the last timestamp where every top-level metric has a value.

    Metrics start at different moments (a rate needs two scrapes), so the
    grid's edges are trimmed; a gap inside the span stays and fails closed.
    """
    arrays = [values for metrics in variants.values() for values in metrics.values()]
    complete = [all(a[i] is not None for a in arrays) for i in range(len(arrays[0]))]
    if not any(complete):
        return None
    first = complete.index(True)
    last = len(complete) - complete[::-1].index(True)
    return first, last
