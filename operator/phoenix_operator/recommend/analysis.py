"""From the queries people rely on and the series Prometheus holds, what can go and what it saves.

Alerting rules, dashboard panels and variables, logged queries and critical
queries are what people rely on. A recording rule counts only when its output
is itself relied on, directly or through other rules: then its expression's
needs count too. A metric nothing needs can be dropped; of a metric that is
needed, the labels no query needs can be aggregated away. Savings use the
experiments' own cost model.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import promql_parser

from phoenix_analysis import contract, cost
from phoenix_operator.recommend import names, sources, usage

# Labels a scrape or the exporter adds: no pipeline attribute stands behind them.
SOURCE_LABELS = frozenset({"__name__", "job", "instance", "phoenix_experiment", "phoenix_variant", "phoenix_scrape"})
SOURCE_LABEL_PREFIXES = ("otel_scope_",)
# The candidate template sums process points over every attribute but these.
KEPT_POINT_ATTRIBUTES = frozenset({"state", "direction", "type"})
Action = Literal["drop", "aggregate", "keep"]
_COMPARISONS = frozenset({">", "<", ">=", "<=", "==", "!="})


@dataclass
class Needs:
    """What the relied-on queries need of one metric, and which of them do."""

    labels: usage.Labels = field(default_factory=usage.Labels)
    counts_series: bool = False
    evidence: list[str] = field(default_factory=list)


@dataclass
class Usage:
    metrics: dict[str, Needs] = field(default_factory=dict)
    # each relied-on query that parses, with how often it is used and where first
    queries: collections.Counter[str] = field(default_factory=collections.Counter)
    first_seen: dict[str, sources.Query] = field(default_factory=dict)
    # recording rules' outputs, which Prometheus writes and no pipeline exports, and the queries that read them
    records: set[str] = field(default_factory=set)
    reading_records: set[str] = field(default_factory=set)
    skipped: list[str] = field(default_factory=list)

    def need(self, metric: str, labels: usage.Labels, counts_series: bool, where: str) -> bool:
        """Record a need; True if it is the metric's first."""
        known = self.metrics.get(metric)
        if known is None:
            self.metrics[metric] = Needs(labels, counts_series, [where])
            return True
        known.labels = known.labels.union(labels)
        known.counts_series = known.counts_series or counts_series
        if where not in known.evidence:
            known.evidence.append(where)
        return False


def needs(corpus: sources.Corpus) -> Usage:
    """What every relied-on query needs of each metric, recording rules followed."""
    found = Usage()
    records: dict[str, list[tuple[sources.Query, usage.QueryUsage]]] = collections.defaultdict(list)
    pending: collections.deque[str] = collections.deque()
    roots: list[tuple[sources.Query, usage.QueryUsage]] = []
    for query in corpus.queries:
        try:
            parsed = usage.analyze(query.text)
        except ValueError as error:
            found.skipped.append(f"skipped {query.where}: not PromQL: {str(error).splitlines()[0]}")
            continue
        if query.record is not None:
            records[query.record].append((query, parsed))
        else:
            roots.append((query, parsed))
    found.records = set(records)
    for query, parsed in roots:
        found.queries[query.text] += 1
        found.first_seen.setdefault(query.text, query)
        if records.keys() & parsed.metrics.keys():
            found.reading_records.add(query.text)
        for metric, use in parsed.metrics.items():
            if found.need(metric, use.labels, use.counts_series, query.where):
                pending.append(metric)
    for label_use in corpus.label_uses:
        if found.need(label_use.metric, usage.Labels(frozenset({label_use.label})), False, label_use.where):
            pending.append(label_use.metric)
    # a recording rule's inputs are needed once its output is
    followed: set[str] = set()
    while pending:
        metric = pending.popleft()
        if metric in followed:
            continue
        followed.add(metric)
        for query, parsed in records.get(metric, []):
            for source, use in parsed.metrics.items():
                if found.need(source, use.labels, use.counts_series, f"{query.where} (its output is used)"):
                    pending.append(source)
    return found


def aggregatable(labels: Iterable[str]) -> frozenset[str]:
    """The labels a pipeline could aggregate away: not added by the scrape or the exporter."""
    return frozenset(
        label for label in labels if label not in SOURCE_LABELS and not label.startswith(SOURCE_LABEL_PREFIXES)
    )


@dataclass(frozen=True)
class Recommendation:
    metric: str
    otel: names.Translated
    action: Action
    series_now: int
    series_after: int
    removable_labels: tuple[str, ...]  # Prometheus label names
    monthly_savings_usd: float
    evidence: tuple[str, ...]
    counts_series: bool


# Counts the series of a metric that stay distinct by these labels.
SeriesCounter = Callable[[str, frozenset[str]], int]


def recommend(
    found: Usage,
    series: dict[str, int],
    labels: dict[str, frozenset[str]],
    count_kept: SeriesCounter,
    prices: contract.CostModel,
    scrape_interval_seconds: float,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Recommendation]:
    """One row per metric Prometheus holds, most saved first."""
    rows = []
    exported = sorted((metric, now) for metric, now in series.items() if metric not in found.records)
    for index, (metric, now) in enumerate(exported):
        if index and index % 50 == 0:
            progress(f"counted the series kept of {index} of {len(exported)} metrics")
        need = found.metrics.get(metric)
        present = aggregatable(labels.get(metric, frozenset()))
        if need is None:
            action: Action = "drop"
            after, removable = 0, present
        else:
            kept = need.labels.resolve(present) if not need.counts_series else present
            removable = present - kept
            after = count_kept(metric, kept) if removable else now
            action = "aggregate" if after < now else "keep"
            if action == "keep":
                removable = frozenset()
        saved = _monthly(prices, now, scrape_interval_seconds) - _monthly(prices, after, scrape_interval_seconds)
        rows.append(
            Recommendation(
                metric=metric,
                otel=names.otel_metric(metric),
                action=action,
                series_now=now,
                series_after=after,
                removable_labels=tuple(sorted(removable)),
                monthly_savings_usd=saved,
                evidence=tuple(need.evidence if need else ()),
                counts_series=bool(need and need.counts_series),
            )
        )
    return sorted(rows, key=lambda r: (-r.monthly_savings_usd, r.metric))


def _monthly(prices: contract.CostModel, series: int, scrape_interval_seconds: float) -> float:
    as_array = np.asarray([float(series)])
    return float(cost.monthly_cost(prices, as_array, as_array * 60.0 / scrape_interval_seconds, None, None)[0])


def _dns_label(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50].strip("-") or "query"
    name, n = base, 2
    while name in taken:
        name = f"{base[:46]}-{n}"
        n += 1
    taken.add(name)
    return name


def critical_queries(found: Usage, top: int) -> list[dict[str, str]]:
    """The `top` most used queries (dashboards, alerts, query log) that read the pipeline's own series,
    named after where they were first seen."""
    taken: set[str] = set()
    chosen = []
    direct = [item for item in found.queries.items() if item[0] not in found.reading_records]
    for text, _ in sorted(direct, key=lambda item: (-item[1], item[0]))[:top]:
        where = found.first_seen[text].where
        title = where.rsplit(": ", 1)[-1].removeprefix("panel ").removeprefix("alert ")
        chosen.append({"name": _dns_label(title, taken), "query": _without_threshold(text)})
    return chosen


def _without_threshold(query: str) -> str:
    """An alert's expression without its final comparison to a number: the values, not whether they cross it.

    Both variants of a healthy pipeline usually return nothing for the alert itself, which proves nothing.
    """
    tree = promql_parser.parse(query)
    if isinstance(tree, promql_parser.BinaryExpr) and str(tree.op) in _COMPARISONS:
        if isinstance(tree.rhs, promql_parser.NumberLiteral):
            return str(tree.lhs)
        if isinstance(tree.lhs, promql_parser.NumberLiteral):
            return str(tree.rhs)
    return query


def experiment(rows: list[Recommendation], found: Usage, name: str, top: int) -> dict[str, Any]:
    """A PhoenixExperiment whose candidate drops the unused metrics and aggregates away the labels no
    kept metric needs, with the most used queries as its critical queries."""
    dropped = sorted({r.otel.name for r in rows if r.action == "drop"})
    kept = [r for r in rows if r.action != "drop"]
    removable = set.intersection(*(set(r.removable_labels) for r in kept)) if kept else set()
    attributes = sorted(names.otel_attribute(label).name for label in removable if label not in KEPT_POINT_ATTRIBUTES)
    parameters: dict[str, Any] = {}
    if dropped:
        parameters["dropMetrics"] = dropped
    if attributes:
        parameters["aggregateAwayAttributes"] = attributes
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": name},
        "spec": {
            "baseline": {"template": "baseline"},
            "candidate": {"template": "candidate", "parameters": parameters},
            "analysis": {"criticalQueries": critical_queries(found, top)},
        },
    }
