"""`phoenix recommend`: what to cut, from the queries people rely on and the series Prometheus holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phoenix_analysis import contract
from phoenix_operator.cli import cluster, output

if TYPE_CHECKING:
    from phoenix_operator.recommend import analysis


def _progress(line: str) -> None:
    typer.echo(f"phoenix: {line}", err=True)


def recommend(
    dashboards: Annotated[
        list[Path] | None,
        typer.Option("--dashboards", help="Grafana dashboard JSON files, or directories of them; repeatable."),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option("--rules", help="Prometheus rule files or PrometheusRule manifests, or directories; repeatable."),
    ] = None,
    query_log: Annotated[
        list[Path] | None,
        typer.Option("--query-log", help="A Prometheus query_log_file (JSON lines); repeatable."),
    ] = None,
    experiments: Annotated[
        bool,
        typer.Option(
            "--experiments", help="Also the critical queries of the PhoenixExperiments in the kubeconfig's cluster."
        ),
    ] = False,
    all_namespaces: Annotated[
        bool, typer.Option("--all-namespaces", "-A", help="With --experiments: those of every namespace.")
    ] = False,
    namespace: Annotated[str | None, cluster.NamespaceOption] = None,
    context: Annotated[str | None, cluster.ContextOption] = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            help="Prometheus to count series in (never listing them) and to read loaded rules from.",
        ),
    ] = None,
    match: Annotated[
        str, typer.Option(help="Series selector of the metrics to consider, e.g. '{job=\"otelcol\"}'.")
    ] = '{__name__=~".+"}',
    scrape_interval: Annotated[
        float, typer.Option(help="Seconds between scrapes: datapoints per minute are series x 60 / this.")
    ] = 15.0,
    usd_per_active_series_month: Annotated[
        float, typer.Option(help="Price of one active series for a month.")
    ] = contract.CostModel().usd_per_active_series_month,
    usd_per_million_datapoints: Annotated[
        float, typer.Option(help="Price of a million datapoints.")
    ] = contract.CostModel().usd_per_million_datapoints,
    top: Annotated[int, typer.Option(min=0, help="How many of the most used queries become critical queries.")] = 5,
    name: Annotated[str, typer.Option(help="metadata.name of the experiment -o yaml|json prints.")] = "recommended",
    fmt: Annotated[
        output.Format,
        typer.Option("--output", "-o", help="table: each metric's recommendation; yaml or json: an experiment."),
    ] = output.Format.table,
) -> None:
    """Rank what can be cut: metrics no dashboard, rule or logged query uses, and labels none groups by.

    Every query is parsed as PromQL. A label counts as used when a query
    could answer differently without it: `sum by` labels, matchers,
    vector-matching labels, label_replace sources; `count`, `avg`, `max`
    and the like need every label. Recording rules count when their output
    is used. Savings use the experiments' cost model. With -o yaml, the
    result is a PhoenixExperiment that tests the cut: validate it with
    `phoenix validate`, run it with `phoenix run --local`.

    Example: phoenix recommend --dashboards dashboards/ --rules rules/ --prometheus http://localhost:9090 -o yaml
    """
    # the query analysis and the Prometheus client load with this command, not at every start
    from phoenix_operator.measure import cardinality, prometheus, promql
    from phoenix_operator.recommend import analysis, sources

    corpus = sources.Corpus()
    for path in dashboards or []:
        sources.read_dashboards(path, corpus)
    for path in rules or []:
        sources.read_rules(path, corpus)
    for path in query_log or []:
        sources.read_query_log(path, corpus)
    if experiments:
        for obj in cluster.connect(context, namespace).experiments(all_namespaces):
            sources.add_experiment(obj, corpus)
    client = prometheus.Client(prometheus_url) if prometheus_url else None
    problems = list(corpus.problems)
    unreachable = "error: -o yaml|json needs --prometheus: which metrics and labels exist comes from it"
    if client is not None:
        try:
            for rule in cardinality.rules(client):
                sources.add_rule(rule, f"{prometheus_url} rules", "prometheus-rule", corpus)
        except prometheus.PrometheusError as error:
            unreachable = f"error: {prometheus_url}: {error}"
            client = None
    if not corpus.queries and not corpus.label_uses:
        output.fail(
            *problems,
            *([unreachable] if prometheus_url and client is None else []),
            "error: no queries to learn from: give --dashboards, --rules, --query-log, --experiments or --prometheus",
        )
    found = analysis.needs(corpus)
    problems += found.skipped
    _progress(
        f"read {corpus.files} files: {len(corpus.queries)} queries and rules, {len(found.skipped)} skipped;"
        f" {len(found.metrics)} metrics are used"
    )
    for problem in problems:
        typer.echo(problem, err=True)
    if client is None:
        if fmt is not output.Format.table:
            output.fail(unreachable)
        if prometheus_url:
            typer.echo(unreachable, err=True)
        _progress("without Prometheus, which metrics exist and what they cost is unknown; what is used:")
        output.columns(_USED, _used(found))
        return
    try:
        scope = promql.matchers(match)
        series = cardinality.series_by_metric(client, match)
        _progress(f"counting the series of {len(series)} metrics in {prometheus_url}")
        labels = {metric: cardinality.label_names(client, metric) for metric in series}
        prices = contract.CostModel(
            usd_per_active_series_month=usd_per_active_series_month,
            usd_per_million_datapoints=usd_per_million_datapoints,
        )
        rows = analysis.recommend(
            found,
            series,
            labels,
            lambda metric, kept: cardinality.series_kept(client, metric, kept, scope),
            prices,
            scrape_interval,
            _progress,
        )
    except promql.QueryError as error:
        output.fail(f"error: --match: {error}")
    except prometheus.PrometheusError as error:
        output.fail(f"error: {prometheus_url}: {error}")
    if fmt is output.Format.table:
        output.columns(_COLUMNS, [_row(r) for r in rows])
        total = sum(r.monthly_savings_usd for r in rows)
        _progress(f"{sum(r.action != 'keep' for r in rows)} of {len(rows)} metrics can be cut: ${total:,.2f}/month")
        return
    output.emit(analysis.experiment(rows, found, name, top), fmt)


_COLUMNS = ["METRIC", "OTEL NAME", "ACTION", "SERIES", "AFTER", "SAVINGS/MO", "REMOVE LABELS", "USED BY"]
_USED = ["METRIC", "LABELS NEEDED", "USED BY"]


def _evidence(evidence: tuple[str, ...] | list[str]) -> str:
    if not evidence:
        return "nothing"
    return evidence[0] + (f" (+{len(evidence) - 1} more)" if len(evidence) > 1 else "")


def _row(row: analysis.Recommendation) -> list[str]:
    otel = row.otel.name + (" (guessed)" if row.otel.guessed else "")
    action = row.action + (" (counts series)" if row.counts_series else "")
    return [
        row.metric,
        otel,
        action,
        f"{row.series_now:,}",
        f"{row.series_after:,}",
        f"${row.monthly_savings_usd:,.2f}",
        ", ".join(row.removable_labels),
        _evidence(row.evidence),
    ]


def _used(found: analysis.Usage) -> list[list[str]]:
    rows = []
    for metric, need in sorted(found.metrics.items()):
        labels = need.labels
        shown = "every label" + (f" but {', '.join(sorted(labels.names))}" if labels.names else "")
        rows.append([metric, shown if labels.every else ", ".join(sorted(labels.names)), _evidence(need.evidence)])
    return rows
