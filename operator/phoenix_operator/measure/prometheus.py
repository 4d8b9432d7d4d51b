"""Prometheus, the first measurement provider, and its small HTTP API client.

Each variant's collector exports with the const labels of `labels.of_variant`;
the Prometheus that scrapes it adds `labels.SCRAPE` (export or telemetry) as a
target label. Every query is written without those labels and scoped to one
variant by rewriting its syntax tree (`promql.scope`), the same way as the
user's critical queries.
"""

from __future__ import annotations

import functools
import json
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from phoenix_analysis import contract
from phoenix_operator import labels
from phoenix_operator.measure import base, promql
from phoenix_operator.models import experiment, pipeline
from phoenix_operator.reconcile import experiment as reconcile_experiment

# Labels that name where a sample came from rather than what it measures;
# they are dropped so that the same label set matches across variants.
SOURCE_LABELS = frozenset({labels.EXPERIMENT, labels.VARIANT, labels.SCRAPE, "job", "instance"})
# CPU, a smooth counter, is rated over this many measurement steps: enough
# scrapes for a rate, and few enough that successive samples share little of
# their window (a 1m rate sampled every 5 s repeats itself twelve times and
# adds almost no information). Exported points arrive in jumps, one per batch,
# so their rate spans at least POINTS_RATE_SECONDS: over a few steps it would
# read the jumps' timing instead. The warmup waits for that window to fill,
# so it is no longer than it needs to be.
RATE_STEPS = 4
POINTS_RATE_SECONDS = 30.0
# What each variant is measured by, and from which of its collector's ports;
# `{rate}` is the CPU rate window and `{points}` the exported points' one.
VARIANT_QUERIES = {
    # a selector needs a matcher that rejects the empty string, hence the first one
    "active_series": (labels.EXPORT, 'count({__name__=~".+", __name__!~"up|scrape_.+"})'),
    # points the pipeline hands to its prometheus exporter: its output rate,
    # however often Prometheus scrapes the same points
    "datapoints_per_minute": (
        labels.TELEMETRY,
        '60 * sum(rate(otelcol_exporter_sent_metric_points{exporter="prometheus"}[{points}]))',
    ),
    "cpu_cores": (labels.TELEMETRY, "sum(rate(otelcol_process_cpu_seconds[{rate}]))"),
    "memory_bytes": (labels.TELEMETRY, "sum(otelcol_process_memory_rss)"),
    # of the points received, the share refused or failed on the way in or out;
    # a collector has no send-failure series until its first failure
    "refused_points_ratio": (
        labels.TELEMETRY,
        "clamp_max(({shed}) / clamp_min({received}, 1e-9), 1)".format(
            shed=(
                "sum(rate(otelcol_receiver_refused_metric_points[{points}]))"
                " + sum(rate(otelcol_receiver_failed_metric_points[{points}]))"
                " + (sum(rate(otelcol_exporter_send_failed_metric_points[{points}])) or vector(0))"
            ),
            received=(
                "sum(rate(otelcol_receiver_accepted_metric_points[{points}]))"
                " + sum(rate(otelcol_receiver_refused_metric_points[{points}]))"
                " + sum(rate(otelcol_receiver_failed_metric_points[{points}]))"
            ),
        ),
    ),
    # the counters the pairing check and the restart detector read, as they stand at each sample
    "accepted_points": (labels.TELEMETRY, "sum(otelcol_receiver_accepted_metric_points)"),
    "uptime_seconds": (labels.TELEMETRY, "max(otelcol_process_uptime)"),
}
# Of the points a collector received over `{window}`, the share its prometheus exporter sent on: what a
# promoted pipeline keeps of its input, whatever the input's volume.
KEPT_RATIO = (
    labels.TELEMETRY,
    'sum(increase(otelcol_exporter_sent_metric_points{{exporter="prometheus"}}[{window}]))'
    " / sum(increase(otelcol_receiver_accepted_metric_points[{window}]))",
)
# What a collector spends on each point it receives over `{window}`: a cost per point, so more of the same
# input is not mistaken for drift
CPU_PER_POINT = (
    labels.TELEMETRY,
    "sum(increase(otelcol_process_cpu_seconds[{window}]))"
    " / sum(increase(otelcol_receiver_accepted_metric_points[{window}]))",
)
MEMORY = (labels.TELEMETRY, "sum(otelcol_process_memory_rss)")
# What a LoadSim delivered to one target (`{target}`, a quoted URL): its own counters, which label each target
LOAD_QUERIES = {
    "load_batches_sent": "sum(phoenix_loadsim_batches_sent_total{{target={target}}})",
    "load_batches_failed": (
        "sum(phoenix_loadsim_send_errors_total{{target={target}}})"
        " + sum(phoenix_loadsim_batches_dropped_total{{target={target}}})"
    ),
}
# The series of the critical queries' selectors with a point in one measurement step, `{offset}` before
# the sample: a batch the export scrape missed (the exporter keeps only each series' newest point) leaves
# its series without one
EDGE_POINTS = "(count(count_over_time({selector}[{step}]{offset})) or vector(0))"
# Figures from the collector's own telemetry: absent together when it is not scraped
TELEMETRY_FIGURES = ("cpu_cores", "memory_bytes", "refused_points_ratio", "accepted_points", "uptime_seconds")
# Figures kept only when both variants have them
OPTIONAL_FIGURES = (*TELEMETRY_FIGURES, *LOAD_QUERIES)
# Figures that describe a variant's input and restarts: a sample without them is not cut from the span
DIAGNOSTIC_FIGURES = ("accepted_points", "uptime_seconds", "edge_points", *LOAD_QUERIES)
Samples = list[float | None]
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 10_000
# Samples this close to the newest fetched one are fetched again: a late scrape may still fill them.
REFETCH_STEPS = 2
Series = dict[str, npt.NDArray[np.float64]]


class PrometheusError(Exception):
    """Prometheus could not answer: unreachable, timed out, or rejected the query."""


def label_key(series_labels: dict[str, str]) -> str:
    kept = sorted((k, v) for k, v in series_labels.items() if k not in SOURCE_LABELS and k != "__name__")
    return ",".join(f"{k}={v}" for k, v in kept)


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """Verify the server with `ca` (PEM; default: the system's CAs) and prove ourselves with `cert` and `key`.

    Raises ValueError naming what is not PEM. Python loads a client
    certificate only from files: they live in a private directory for the
    moment it takes.
    """
    try:
        context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
    except ssl.SSLError as error:
        raise ValueError(f"tls.ca is not a PEM CA bundle: {error.reason or error}") from None
    if cert is not None and key is not None:
        with tempfile.TemporaryDirectory(prefix="phoenix-client-cert-") as private:
            cert_file, key_file = Path(private, "tls.crt"), Path(private, "tls.key")
            cert_file.write_text(cert)
            key_file.touch(mode=0o600)
            key_file.write_text(key)
            try:
                context.load_cert_chain(cert_file, key_file)
            except ssl.SSLError as error:
                raise ValueError(
                    f"tls.cert and tls.key are not a PEM certificate and its key: {error.reason}"
                ) from None
    return context


@functools.cache
def _default_tls() -> ssl.SSLContext:
    """httpx's default verification, built once: building it reads a whole CA bundle, which cost several times the
    CPU of the query it was built for, and a measurement makes dozens of queries."""
    return httpx.create_ssl_context()


def _tls_problem(url: str, error: httpx.HTTPError) -> str | None:
    """What a failed TLS handshake means for the user, or None when it was not one."""
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
        return (
            f"Prometheus at {url} has a certificate this experiment does not trust ({detail}):"
            " set spec.analysis.prometheus.tls.ca to the CA that signed it"
        )
    if "CERTIFICATE_REQUIRED" in text or "SSLV3_ALERT" in text or "TLSV1_ALERT" in text:
        return (
            f"Prometheus at {url} refused the TLS handshake ({text}): it may require a client certificate"
            " (spec.analysis.prometheus.tls.cert and key) signed by a CA it trusts"
        )
    return None


@dataclass
class Client:
    url: str
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    tls: ssl.SSLContext | None = None  # None: httpx's default CAs (certifi's, or SSL_CERT_FILE / SSL_CERT_DIR)
    timeout: float = 10.0
    max_points_per_query: int = MAX_POINTS_PER_QUERY

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}

    def instant_query(self, query: str, at: float) -> list[tuple[dict[str, str], float]]:
        """Each series of the result at `at`: its labels and value."""
        body = self.get("query", {"query": query, "time": at})
        return [(item["metric"], float(item["value"][1])) for item in body["data"]["result"]]

    def range_query(self, query: str, window: reconcile_experiment.Window) -> Series:
        """Series of the result by label key, each aligned to the window (NaN where absent).

        A long window is asked for in chunks under the server's points limit.
        """
        length = len(window.timestamps)
        series: Series = {}
        for first in range(0, length, self.max_points_per_query):
            count = min(self.max_points_per_query, length - first)
            start = window.start + first * window.step
            chunk = self._range_query(
                query, reconcile_experiment.Window(start, start + (count - 1) * window.step, window.step)
            )
            for key, values in chunk.items():
                series.setdefault(key, np.full(length, np.nan))[first : first + count] = values
        return series

    def _range_query(self, query: str, window: reconcile_experiment.Window) -> Series:
        params: dict[str, str | float] = {"query": query, "start": window.start, "end": window.end, "step": window.step}
        body = self.get("query_range", params)
        timestamps = window.timestamps
        series: dict[str, npt.NDArray[np.float64]] = {}
        for item in body["data"]["result"]:
            values = np.full(len(timestamps), np.nan)
            for moment, value in item["values"]:
                index = round((float(moment) - window.start) / window.step)
                if 0 <= index < len(values):
                    values[index] = float(value)
            key = label_key(item["metric"])
            series[key] = np.where(np.isnan(values), series.get(key, values), values) if key in series else values
        return series

    def get(self, endpoint: str, params: dict[str, str | float]) -> dict[str, Any]:
        """One successful answer of the HTTP API; anything else raises PrometheusError."""
        try:
            response = httpx.get(
                f"{self.url.rstrip('/')}/api/v1/{endpoint}",
                params=params,
                headers=self._headers(),
                auth=self.basic_auth,
                verify=self.tls or _default_tls(),
                timeout=self.timeout,
            )
        except httpx.TimeoutException:
            raise PrometheusError(f"Prometheus at {self.url} timed out after {self.timeout:.0f}s") from None
        except httpx.HTTPError as error:
            problem = _tls_problem(self.url, error) or f"Prometheus at {self.url} is unreachable: {error}"
            raise PrometheusError(problem) from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"Prometheus answered HTTP {response.status_code} without JSON") from None
        if response.status_code in (401, 403):
            raise PrometheusError(
                f"Prometheus at {self.url} refused this experiment's credentials (HTTP {response.status_code}):"
                " check spec.analysis.prometheus.secretRef or basicAuth"
            )
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus rejected the query (HTTP {response.status_code}): {body.get('error', 'no error text')}"
            )
        answer: dict[str, Any] = body
        return answer


@dataclass
class History:
    """The samples earlier measurements of one experiment fetched, by query.

    Each measurement then asks Prometheus only for the samples after them
    (and the newest few again, which a late scrape may still fill), so an
    interval costs the same a week into an experiment as an hour into it.
    The driver keeps it; losing it costs one full fetch.
    """

    fetched: dict[str, tuple[reconcile_experiment.Window, Series]] = field(default_factory=dict)

    def range_query(self, client: Client, query: str, window: reconcile_experiment.Window) -> Series:
        known = self.fetched.get(query)
        if known is None or (known[0].start, known[0].step) != (window.start, window.step):
            series = client.range_query(query, window)
        else:
            before, cached = known
            length = len(window.timestamps)
            resume = max(window.start, min(before.end, window.end) - REFETCH_STEPS * window.step)
            offset = round((resume - window.start) / window.step)
            fresh = client.range_query(query, reconcile_experiment.Window(resume, window.end, window.step))
            series = {}
            for key in cached.keys() | fresh.keys():
                values = np.full(length, np.nan)
                old = cached.get(key)
                if old is not None:
                    values[: min(offset, len(old))] = old[:offset]
                if key in fresh:
                    values[offset:] = fresh[key]
                series[key] = values
        self.fetched[query] = (window, series)
        return series


def variant_queries(name: str, variant: str, step_seconds: float) -> dict[str, str]:
    """Each figure's PromQL for samples `step_seconds` apart, scoped to one variant's series."""
    rate = promql.duration(RATE_STEPS * step_seconds)
    points = promql.duration(max(RATE_STEPS * step_seconds, POINTS_RATE_SECONDS))
    return {
        figure: promql.scope(
            query.replace("{rate}", rate).replace("{points}", points), labels.of_scrape(name, variant, scrape)
        )
        for figure, (scrape, query) in VARIANT_QUERIES.items()
    }


def load_queries(target: str) -> dict[str, str]:
    """What a LoadSim delivered to the OTLP endpoint `target`, by figure."""
    return {figure: query.format(target=json.dumps(target)) for figure, query in LOAD_QUERIES.items()}


def _scoped(figure: tuple[str, str], experiment: str, variant: str, window_seconds: float) -> str:
    scrape, query = figure
    window = promql.duration(window_seconds)
    return promql.scope(query.format(window=window), labels.of_scrape(experiment, variant, scrape))


def kept_ratio_query(experiment: str, variant: str, window_seconds: float) -> str:
    """`KEPT_RATIO` over `window_seconds`, scoped to the collectors that label their series so."""
    return _scoped(KEPT_RATIO, experiment, variant, window_seconds)


def cpu_per_point_query(experiment: str, variant: str, window_seconds: float) -> str:
    return _scoped(CPU_PER_POINT, experiment, variant, window_seconds)


def memory_query(experiment: str, variant: str) -> str:
    return _scoped(MEMORY, experiment, variant, 0)


def edge_offsets(queries: Sequence[experiment.CriticalQuery], step_seconds: float) -> list[int]:
    """How far before a sample the critical queries' windows have an edge step, in whole seconds.

    A rate reads its window's first and last points and extrapolates to the
    window's edges; a batch missing at either edge makes it read short, so
    each window's last step (0) and, for a range longer than a step, its
    first one (range - step) are where a missed batch matters. An offset or
    @ in a query is not followed.
    """
    step = round(step_seconds)
    ranges = {round(reconcile_experiment.longest_range_seconds([q.query])) for q in queries}
    return sorted({0} | {r - step for r in ranges if r > step})


def edge_points_queries(selectors: Sequence[str], offsets: Sequence[int], step_seconds: float) -> list[str]:
    """One query per edge offset: the series of `selectors` with a point in that step."""
    step = promql.duration(step_seconds)
    return [
        " + ".join(
            EDGE_POINTS.format(selector=s, step=step, offset=f" offset {offset}s" if offset else "") for s in selectors
        )
        for offset in offsets
    ]


def _single(series: dict[str, npt.NDArray[np.float64]], length: int) -> npt.NDArray[np.float64]:
    return next(iter(series.values())) if series else np.full(length, np.nan)


def _samples(values: npt.NDArray[np.float64]) -> Samples:
    boxed = values.astype(object)
    boxed[np.isnan(values)] = None
    samples: Samples = boxed.tolist()
    return samples


@dataclass
class Provider:
    client: Client
    history: History | None = None

    def _range_query(self, query: str, window: reconcile_experiment.Window) -> Series:
        if self.history is None:
            return self.client.range_query(query, window)
        return self.history.range_query(self.client, query, window)

    def _edge_points(
        self,
        experiment: str,
        variant: str,
        queries: Sequence[experiment.CriticalQuery],
        window: reconcile_experiment.Window,
    ) -> npt.NDArray[np.float64]:
        """At each sample, the fewest series of the critical queries with a point in an edge step of their
        windows: it drops by the share of the series whose batch the variant's scrape missed."""
        selectors = list(
            dict.fromkeys(s for q in queries for s in promql.selectors(q.query, labels.of_variant(experiment, variant)))
        )
        offsets = edge_offsets(queries, window.step)
        counts = [
            _single(self._range_query(query, window), len(window.timestamps))
            for query in edge_points_queries(selectors, offsets, window.step)
        ]
        return np.asarray(np.fmin.reduce(counts), dtype=np.float64)

    def measure(
        self,
        experiment: str,
        queries: Sequence[experiment.CriticalQuery],
        window: reconcile_experiment.Window,
        load_targets: Mapping[str, str] | None = None,
    ) -> base.Measurement:
        """Both variants' figures and each critical query over `window`, with what a LoadSim delivered to
        each variant's endpoint in `load_targets` (by variant)."""
        length = len(window.timestamps)
        variants: dict[str, dict[str, npt.NDArray[np.float64]]] = {}
        answers: list[dict[str, Series]] = [{} for _ in queries]
        try:
            for variant in pipeline.VARIANTS:
                asked = variant_queries(experiment, variant, window.step)
                if load_targets and variant in load_targets:
                    asked |= load_queries(load_targets[variant])
                measured = {
                    figure: _single(self._range_query(query, window), length) for figure, query in asked.items()
                }
                if np.all(np.isnan(measured["active_series"])):
                    return base.Measurement("Inconclusive", f"no series exported by the {variant} pipeline yet")
                for figure in OPTIONAL_FIGURES:
                    if figure in measured and np.all(np.isnan(measured[figure])):
                        del measured[figure]
                variants[variant] = measured
                for answer, query in zip(answers, queries, strict=True):
                    answer[variant] = self._range_query(
                        promql.scope(query.query, labels.of_variant(experiment, variant)), window
                    )
                if queries:
                    measured["edge_points"] = self._edge_points(experiment, variant, queries, window)
        except PrometheusError as error:
            return base.Measurement("Error", str(error))
        except promql.QueryError as error:
            return base.Measurement("Error", f"critical query: {error}")
        for figure in OPTIONAL_FIGURES:
            if any(figure not in figures for figures in variants.values()):
                for figures in variants.values():
                    figures.pop(figure, None)
        span = _measured_span(variants)
        if span is None:
            return base.Measurement("Inconclusive", "the variants have no sample time in common yet")
        first, last = span

        def trimmed(series: Series) -> dict[str, Samples]:
            return {key: _samples(values[first:last]) for key, values in series.items()}

        critical = [
            contract.CriticalQuery(
                name=query.name, baseline=trimmed(answer["baseline"]), candidate=trimmed(answer["candidate"])
            )
            for query, answer in zip(queries, answers, strict=True)
        ]
        return base.Measurement(
            "Successful",
            "",
            contract.Variant(**trimmed(variants["baseline"])),
            contract.Variant(**trimmed(variants["candidate"])),
            critical,
            window.timestamps[first:last].tolist(),
        )


def _measured_span(variants: dict[str, Series]) -> tuple[int, int] | None:
    """The span from the first to the last timestamp where every compared figure has a value.

    Figures start at different moments (a rate needs two scrapes), so the
    window's edges are trimmed; a gap inside the span stays, for the engine
    to flag as a scrape gap.
    """
    arrays = [
        values
        for figures in variants.values()
        for figure, values in figures.items()
        if figure not in DIAGNOSTIC_FIGURES
    ]
    complete = np.flatnonzero(~np.any(np.isnan(np.vstack(arrays)), axis=0))
    if len(complete) == 0:
        return None
    return int(complete[0]), int(complete[-1]) + 1
