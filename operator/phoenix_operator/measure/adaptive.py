"""What the adaptive loop observes of one pipeline, read from Prometheus.

Every figure is over the last window, by `last_over_time`: a collector sends
its points' own timestamps, so Prometheus writes no staleness markers and an
instant count would still hold series that left a lookback ago. The ranking
comes from the pipeline's own `phoenix_adaptive_process_seconds` counters (see
the adaptive template), so executables summed into `other` are counted too.
"""

from __future__ import annotations

import math

from phoenix_operator import labels
from phoenix_operator.measure import prometheus, promql
from phoenix_operator.recommend import names
from phoenix_operator.reconcile import adaptive

EXECUTABLE = names.label_name("process.executable.name")
QUERIES = {
    # a selector needs a matcher that rejects the empty string, hence the first one
    "exported": 'count(last_over_time({{__name__=~".+", __name__!~"up|scrape_.+"}}[{window}]))',
    "process_series": f'count by ({EXECUTABLE}) (last_over_time({{{{__name__=~"process_.+"}}}}[{{window}}]))',
    # each process adds the seconds between its reports: the rate counts the processes
    "processes": f"sum by ({EXECUTABLE}) (rate(phoenix_adaptive_process_seconds_total[{{rate_window}}]))",
}


def observe(
    client: prometheus.Client,
    experiment: str,
    variant: str,
    window_seconds: float,
    rate_window_seconds: float,
    at: float,
) -> adaptive.Observation:
    """The pipeline's exported series and each executable's processes and series at `at`."""
    scoped = labels.of_scrape(experiment, variant, labels.EXPORT)
    window, rate_window = promql.duration(window_seconds), promql.duration(rate_window_seconds)
    try:
        answers = {
            figure: client.instant_query(promql.scope(query.format(window=window, rate_window=rate_window), scoped), at)
            for figure, query in QUERIES.items()
        }
    except prometheus.PrometheusError as error:
        return adaptive.Observation(problem=str(error))
    except promql.QueryError as error:
        return adaptive.Observation(problem=str(error))
    if not answers["exported"] or not answers["processes"]:
        return adaptive.Observation(problem=f"pipeline {experiment}/{variant} exported no series in the last {window}")
    per_executable = {s.get(EXECUTABLE, adaptive.OTHER): int(count) for s, count in answers["process_series"]}
    executables = [
        adaptive.Executable(name, processes, per_executable.get(name, 0))
        for name, processes in ((s.get(EXECUTABLE, ""), v) for s, v in answers["processes"])
        if name and name != adaptive.OTHER and math.isfinite(processes)
    ]
    return adaptive.Observation(int(answers["exported"][0][1]), executables)
