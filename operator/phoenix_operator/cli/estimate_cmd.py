"""`phoenix estimate`: what an experiment's variants will export, before it runs."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from phoenix_operator.cli import files, output
from phoenix_operator.models import experiment

if TYPE_CHECKING:
    from phoenix_operator.measure import prometheus
    from phoenix_operator.recommend import estimate as predict

# The Prometheus client and the fleet replay load inside the functions, so
# that other commands, which import this module for `prediction_row`, start without them.


def estimate(
    filename: Annotated[str, typer.Option("--filename", "-f", help="The experiment manifest ('-' for stdin).")],
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            help="Count the real current series here (the baseline's), instead of the experiment's LoadSim profile.",
        ),
    ] = None,
    match: Annotated[
        str, typer.Option(help="With --prometheus: series selector of the baseline's metrics.")
    ] = '{__name__=~"process_.+"}',
    fmt: Annotated[output.Format, typer.Option("--output", "-o", help="table, yaml or json.")] = output.Format.table,
) -> None:
    """Predict each variant's active series, datapoints per minute and the monthly savings, before running.

    Without --prometheus, the population the experiment's LoadSim would have
    at the end of its run is replayed (the same seed gives the same
    processes) and each variant's drops and aggregations are applied to it.
    With --prometheus, the same changes are counted on the real series there,
    with count(count by (...)) queries, never by listing them. Either way each
    change's share of the saving is found by leaving it out. Datapoints per
    minute assume one point per series per load interval.

    Example: phoenix estimate -f examples/quickstart/experiment.yaml
    """
    from phoenix_operator.measure import prometheus, promql
    from phoenix_operator.recommend import estimate as predict

    obj = files.load_experiment(filename)
    spec = obj.spec
    if isinstance(spec.baseline, experiment.PipelineRef):
        output.fail(
            f"error: {filename}: baseline.pipelineRef: write the pipeline's template in the experiment to estimate it"
        )
    if "adaptive" in (spec.baseline.template, spec.candidate.template):
        output.fail(f"error: {filename}: the adaptive template adjusts itself while running and is not estimated")
    baseline = predict.Changes.of(spec.baseline)
    candidate = predict.Changes.of(spec.candidate)
    load = spec.load.load_sim
    per_minute = 60.0 / load.interval_seconds
    try:
        if prometheus_url is None:
            count = predict.from_profile(load)
            source = f"LoadSim profile {load.profile}: {load.hosts} hosts x {load.processes_per_host} processes"
        else:
            count = _counted_in(prometheus.Client(prometheus_url), match)
            source = f"{prometheus_url} {match}"
        result = predict.estimate(baseline, candidate, count, per_minute, spec.analysis.cost_model, source)
    except promql.QueryError as error:
        output.fail(f"error: --match: {error}")
    except prometheus.PrometheusError as error:
        output.fail(f"error: {prometheus_url}: {error}")
    table = output.table(f"Phoenix estimate: {obj.metadata.name} ({source})", ["", ""], _rows(result))
    output.emit(_wire(result), fmt, table)


def _counted_in(client: prometheus.Client, match: str) -> predict.SeriesCount:
    """Counts a variant's series on the real ones: dropped metrics leave, aggregated labels are summed away."""
    from phoenix_operator.measure import cardinality, promql
    from phoenix_operator.recommend import estimate as predict

    series = cardinality.series_by_metric(client, match)
    labels = {metric: cardinality.label_names(client, metric) for metric in series}
    scope = promql.matchers(match)

    def count(changes: predict.Changes) -> int:
        dropped, removed = predict.prometheus_names(changes)
        keep = "|".join(re.escape(name) for name in sorted(changes.keep_executables))
        total = 0
        for metric, now in series.items():
            if metric in dropped:
                continue
            if not removed & labels[metric]:
                total += now
                continue
            if keep:
                detailed = [*scope, f"process_executable_name=~{json.dumps(keep)}"]
                total += cardinality.series_kept(client, metric, labels[metric], detailed)
                others = [*scope, f"process_executable_name!~{json.dumps(keep)}"]
                total += cardinality.series_kept(client, metric, labels[metric] - removed, others)
            else:
                total += cardinality.series_kept(client, metric, labels[metric] - removed, scope)
        return total

    return count


def _rows(result: predict.Estimate) -> list[tuple[str, str]]:
    rows = [
        (variant, f"{p.series:,} series, {p.datapoints_per_minute:,.0f} datapoints/min")
        for variant, p in (("baseline", result.baseline), ("candidate", result.candidate))
    ]
    saved = result.baseline.series - result.candidate.series
    share = saved / result.baseline.series if result.baseline.series else 0.0
    rows += [("series reduction", f"{share:.1%}"), ("monthly savings", f"${result.monthly_savings_usd:,.2f}")]
    rows += [(s.change, f"{s.share:.0%} of the saved series ({s.saved_series:,})") for s in result.shares]
    return rows


def _wire(result: predict.Estimate) -> dict[str, Any]:
    def figures(p: predict.Prediction) -> dict[str, float]:
        return {"activeSeries": p.series, "datapointsPerMinute": p.datapoints_per_minute}

    return {
        "source": result.source,
        "baseline": figures(result.baseline),
        "candidate": figures(result.candidate),
        "monthlySavingsUsd": result.monthly_savings_usd,
        "shares": [{"change": s.change, "savedSeries": s.saved_series, "share": s.share} for s in result.shares],
    }


def prediction_row(spec: experiment.ExperimentSpec, measured_series: float | None) -> tuple[str, str] | None:
    """`phoenix estimate`'s prediction of the candidate's series beside what was measured, with the error."""
    from phoenix_operator.recommend import estimate as predict

    predicted = predict.candidate_series(spec)
    if predicted is None or not measured_series:
        return None
    error = predicted / measured_series - 1
    return "candidate series estimated", f"{predicted:,} (measured {measured_series:,.0f}: {error:+.1%})"
