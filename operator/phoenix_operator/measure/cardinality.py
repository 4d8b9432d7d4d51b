"""What Prometheus holds, counted without listing a series: per metric, its series and label names,
and how many series would stay if some labels were aggregated away; and the rules it has loaded."""

from __future__ import annotations

import time
from typing import Any

from phoenix_operator.measure import prometheus

# series Prometheus writes about its own scrapes, which no pipeline exports
SCRAPE_METRICS = ("up", "scrape_")
# label names are looked up over the last hour, like the series counts
LOOKBACK_SECONDS = 3600


def series_by_metric(client: prometheus.Client, match: str) -> dict[str, int]:
    """Active series per metric name among those `match` (a series selector) selects."""
    answer = client.instant_query(f"count by (__name__) ({match})", time.time())
    return {
        series["__name__"]: int(value)
        for series, value in answer
        if "__name__" in series and not series["__name__"].startswith(SCRAPE_METRICS)
    }


def label_names(client: prometheus.Client, metric: str) -> frozenset[str]:
    now = time.time()
    body = client.get("labels", {"match[]": metric, "start": now - LOOKBACK_SECONDS, "end": now})
    return frozenset(str(name) for name in body["data"])


def series_kept(client: prometheus.Client, metric: str, labels: frozenset[str], matchers: list[str]) -> int:
    """The series of `metric` selected by `matchers` (e.g. 'job="x"', from `promql.matchers`) that differ in
    `labels`: what remains once the others are summed away."""
    by = ", ".join(sorted(labels))
    answer = client.instant_query(f"count(count by ({by}) ({metric}{{{', '.join(matchers)}}}))", time.time())
    return int(answer[0][1]) if answer else 0


def rules(client: prometheus.Client) -> list[dict[str, Any]]:
    """Every loaded recording and alerting rule, as /api/v1/rules gives them (`query` holds the expression)."""
    body = client.get("rules", {})
    return [rule for group in body["data"]["groups"] for rule in group.get("rules", [])]
