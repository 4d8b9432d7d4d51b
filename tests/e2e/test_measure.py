"""The Prometheus measurement provider against a real Prometheus holding known, backfilled data."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from phoenix_analysis import contract
from phoenix_operator import labels
from phoenix_operator.loadsim import run as loadsim_run
from phoenix_operator.measure import base, promql
from phoenix_operator.measure import prometheus as prom
from phoenix_operator.models import experiment, loadsim, pipeline
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components
from tests import conftest
from tests.harness import faults, otlp
from tests.harness import operator as harness

pytestmark = pytest.mark.e2e
STEP = 15
SAMPLES = 40
HOSTS = ("h1", "h2")
EXECUTABLES = {"java": 3, "bash": 1}  # processes per executable on each host
RATE = {"java": 0.5, "bash": 0.01}  # CPU seconds per second, per process
EXPORTED = 'phoenix_experiment="exp",phoenix_scrape="export",job="export"'


def _openmetrics(start: int, skew: int = 0, missed: tuple[str, str, int] | None = None) -> str:
    """Known data from `start`; the process points `skew` seconds after each step, and without the batch
    `missed` (variant, host, step), as a scrape that missed it would store them."""
    lines = ["# TYPE process_cpu_time_seconds counter"]
    for variant in ("baseline", "candidate"):
        for host in HOSTS:
            for exe, count in EXECUTABLES.items():
                pids = range(count) if variant == "baseline" else [None]
                for pid in pids:
                    processes = 1 if pid is not None else count
                    pid_label = f',process_pid="{host}{exe}{pid}"' if pid is not None else ""
                    process_labels = f'host_name="{host}",process_executable_name="{exe}"{pid_label}'
                    labels = f'{EXPORTED},phoenix_variant="{variant}",{process_labels}'
                    for i in range(SAMPLES):
                        if missed == (variant, host, i):
                            continue
                        value = RATE[exe] * processes * STEP * i
                        lines.append(f"process_cpu_time_seconds_total{{{labels}}} {value} {start + STEP * i + skew}")
    # what the collectors' own telemetry says they exported, one point per series per step
    lines.append("# TYPE otelcol_exporter_sent_metric_points gauge")
    for variant, series in (("baseline", 8), ("candidate", 4)):
        telemetry = f'phoenix_experiment="exp",phoenix_scrape="telemetry",job="telemetry",phoenix_variant="{variant}"'
        for i in range(SAMPLES):
            sent = f'otelcol_exporter_sent_metric_points{{{telemetry},exporter="prometheus"}}'
            lines.append(f"{sent} {series * i} {start + STEP * i}")
    # points received, refused or failed on the way in, and failed on the way out, per step;
    # the baseline has never failed a send, so it has no such series at all
    received = {"baseline": (100, 0, 0, None), "candidate": (95, 3, 2, 5)}
    for variant, (accepted, refused, failed, send_failed) in received.items():
        telemetry = f'phoenix_experiment="exp",phoenix_scrape="telemetry",job="telemetry",phoenix_variant="{variant}"'
        counters = {
            "otelcol_receiver_accepted_metric_points": accepted,
            "otelcol_receiver_refused_metric_points": refused,
            "otelcol_receiver_failed_metric_points": failed,
            "otelcol_exporter_send_failed_metric_points": send_failed,
        }
        for name, per_step in counters.items():
            if per_step is not None:
                lines.append(f"# TYPE {name} gauge")
                lines.extend(f"{name}{{{telemetry}}} {per_step * i} {start + STEP * i}" for i in range(SAMPLES))
    lines.append("# TYPE scrape_samples_scraped gauge")
    for variant, samples in (("baseline", 16), ("candidate", 4)):
        for i in range(SAMPLES):
            lines.append(
                f'scrape_samples_scraped{{{EXPORTED},phoenix_variant="{variant}"}} {samples} {start + STEP * i}'
            )
    return "\n".join(lines) + "\n# EOF\n"


def _queries(*queries: str) -> list[experiment.CriticalQuery]:
    return [experiment.CriticalQuery(name=f"q{i}", query=q) for i, q in enumerate(queries)]


@pytest.fixture
def backfilled(
    promtool_backfill: Callable[[str], local_components.LocalPrometheus],
) -> tuple[prom.Provider, reconcile_experiment.Window]:
    start = (int(time.time()) - 3 * 3600) // STEP * STEP
    server = promtool_backfill(_openmetrics(start))
    return prom.Provider(prom.Client(server.url)), reconcile_experiment.Window(
        start + 120, start + STEP * (SAMPLES - 1), STEP
    )


def test_recovers_series_counts_and_datapoints_exactly(
    backfilled: tuple[prom.Provider, reconcile_experiment.Window],
) -> None:
    provider, window = backfilled
    result = provider.measure("exp", [], window)
    assert result.phase == "Successful", result.message
    assert result.baseline is not None and result.candidate is not None
    # baseline: 2 hosts x (3 java + 1 bash) processes; candidate: 2 hosts x 2 executables
    assert set(result.baseline.active_series) == {8.0}
    assert set(result.candidate.active_series) == {4.0}
    # every series has a point each 15 s: four in every minute
    assert set(result.baseline.datapoints_per_minute) == {32.0}
    assert set(result.candidate.datapoints_per_minute) == {16.0}
    assert len(result.timestamps) == len(result.baseline.active_series) == (SAMPLES * STEP - 120) // STEP
    # the candidate sheds 3 + 2 + 5 of every 100 points it receives
    assert set(result.baseline.refused_points_ratio or []) == {0.0}
    assert result.candidate.refused_points_ratio == pytest.approx([0.1] * len(result.timestamps))
    # no collector process telemetry in this data: those guardrails are not measured, this one is
    assert result.candidate.cpu_cores is None and result.candidate.memory_bytes is None


def _query(result: base.Measurement, index: int) -> dict[str, dict[str, list[float | None]]]:
    assert result.phase == "Successful", result.message
    query = result.critical_queries[index]
    assert isinstance(query.baseline, dict) and isinstance(query.candidate, dict)
    return {"baseline": query.baseline, "candidate": query.candidate}


def test_rewritten_queries_give_each_variant_its_own_values(
    backfilled: tuple[prom.Provider, reconcile_experiment.Window],
) -> None:
    provider, window = backfilled
    result = provider.measure(
        "exp",
        _queries(
            "sum by (host_name, process_executable_name) (rate(process_cpu_time_seconds_total[1m]))",
            "topk(1, sum by (process_executable_name) (rate(process_cpu_time_seconds_total[1m])))",
            'sum(rate(process_cpu_time_seconds_total{process_executable_name="java"}[1m]))'
            ' / sum(rate(process_cpu_time_seconds_total[1m]))',
            "count(process_cpu_time_seconds_total)",
        ),
        window,
    )  # fmt: skip
    by_host = _query(result, 0)
    for variant in ("baseline", "candidate"):
        values = by_host[variant]
        assert sorted(values) == [
            f"host_name={h},process_executable_name={e}" for h in HOSTS for e in sorted(EXECUTABLES)
        ]
        assert np.allclose(values["host_name=h1,process_executable_name=java"], 1.5)
        assert np.allclose(values["host_name=h2,process_executable_name=bash"], 0.01)
    topk = _query(result, 1)
    assert list(topk["baseline"]) == list(topk["candidate"]) == ["process_executable_name=java"]
    assert np.allclose(topk["candidate"]["process_executable_name=java"], 3.0)
    share = _query(result, 2)
    for variant in ("baseline", "candidate"):
        assert np.allclose(share[variant][""], 1.5 / 1.51)
    count = _query(result, 3)
    assert set(count["baseline"][""]) == {8.0} and set(count["candidate"][""]) == {4.0}


def test_a_batch_one_variant_missed_shows_where_a_rate_window_ends_or_begins_without_it(
    promtool_backfill: Callable[[str], local_components.LocalPrometheus],
) -> None:
    start = (int(time.time()) - 3 * 3600) // STEP * STEP
    lost = 20
    # points 7 s after each step, as a load's batches land between samples
    server = promtool_backfill(_openmetrics(start, skew=7, missed=("baseline", "h1", lost)))
    window = reconcile_experiment.Window(start + 120, start + STEP * (SAMPLES - 1), STEP)
    query = "sum(rate(process_cpu_time_seconds_total[1m]))"
    result = prom.Provider(prom.Client(server.url)).measure("exp", _queries(query), window)
    assert result.phase == "Successful", result.message
    assert result.baseline is not None and result.candidate is not None
    lost_at = start + STEP * lost + 7
    # the first sample whose window ends after the lost point, and the first whose window begins after it
    edges = [result.timestamps.index(float(lost_at - 7 + STEP)), result.timestamps.index(float(lost_at - 7 + 4 * STEP))]
    # every series of the baseline but h1's four has a point in each edge step there; the candidate's all four
    assert [i for i, points in enumerate(result.baseline.edge_points or []) if points != 8] == edges
    assert result.baseline.edge_points is not None and {result.baseline.edge_points[i] for i in edges} == {4.0}
    assert set(result.candidate.edge_points or []) == {4.0}
    # and those are the samples where the baseline's rate reads short of the candidate's
    rates = {v: np.array(getattr(result.critical_queries[0], v)[""], dtype=float) for v in ("baseline", "candidate")}
    short = np.flatnonzero(rates["baseline"] < rates["candidate"] * 0.999)
    assert short.tolist() == edges, (rates, edges)


def test_the_series_a_query_reads_are_its_named_selectors_once_each() -> None:
    query = (
        'sum(rate(x{a="b"}[1m] offset 5m)) / sum(rate(x{a="b"}[5m]))'
        ' + sum({__name__="y"}) + sum(rate({__name__=~"z.*"}[1m]))'
    )
    # a selector matching metric names by pattern would give a range function's series clashing labels
    assert promql.selectors(query, {"phoenix_variant": "c"}) == [
        'x{a="b",phoenix_variant="c"}',
        '{__name__="y",phoenix_variant="c"}',
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rate(x[5m] offset 1m)", 'rate(x{phoenix_variant="b"}[5m] offset 1m)'),
        ('x{phoenix_variant="a", y=~"java|node"}', 'x{y=~"java|node",phoenix_variant="b"}'),
        (
            "a / on (h) group_left () b",
            'a{phoenix_variant="b"} / on (h) group_left () b{phoenix_variant="b"}',
        ),
        (
            "max_over_time(rate(x[1m])[5m:30s])",
            'max_over_time(rate(x{phoenix_variant="b"}[1m])[5m:30s])',
        ),
        ("vector(1)", "vector(1)"),
    ],
)
def test_scope_rewrites_every_selector(query: str, expected: str) -> None:
    assert promql.scope(query, {"phoenix_variant": "b"}).replace("300000ms", "5m").replace("60000ms", "1m") == expected


def test_values_that_would_print_differently_are_refused() -> None:
    with pytest.raises(promql.QueryError, match="cannot be scoped safely"):
        promql.scope('x{y=~"a\\\\.b"}', {"phoenix_variant": "b"})


def test_a_query_that_cannot_be_scoped_is_a_measurement_error(
    backfilled: tuple[prom.Provider, reconcile_experiment.Window],
) -> None:
    # PromQL (the models refuse what is not), but a quote inside a label value cannot be scoped safely
    provider, window = backfilled
    result = provider.measure("exp", _queries('sum(rate(x{a="say \\"hi\\""}[1m]))'), window)
    assert result.phase == "Error"
    assert result.message.startswith("critical query: label value")


def test_unknown_experiment_is_inconclusive(backfilled: tuple[prom.Provider, reconcile_experiment.Window]) -> None:
    provider, window = backfilled
    result = provider.measure("nobody", [], window)
    assert result.phase == "Inconclusive"
    assert "no series exported by the baseline pipeline" in result.message


def test_unreachable_prometheus_is_a_measurement_error() -> None:
    window = reconcile_experiment.Window(0, 60, 15)
    result = prom.Provider(prom.Client("http://127.0.0.1:9", timeout=2)).measure("exp", [], window)
    assert result.phase == "Error"
    assert "unreachable" in result.message


def test_each_variant_figure_is_a_query_scoped_through_the_syntax_tree() -> None:
    for variant in ("baseline", "candidate"):
        queries = prom.variant_queries("exp", variant, 15)
        for figure, (scrape, _) in prom.VARIANT_QUERIES.items():
            query = queries[figure]
            assert f'phoenix_variant="{variant}",phoenix_scrape="{scrape}"' in query
            scope = labels.of_scrape("exp", variant, scrape)
            assert promql.scope(query, scope) == query, "scoping again changes nothing: it already is"
        # CPU rates span four 15 s steps (printed as 1m): successive samples share little of their window
        assert "[1m]" in queries["cpu_cores"]
        assert "[1m]" in queries["datapoints_per_minute"]
    # exported points arrive a batch at a time: their rate keeps at least 30 s whatever the step
    shorter = prom.variant_queries("exp", "baseline", 5)
    assert "[20s]" in shorter["cpu_cores"] and "[30s]" in shorter["datapoints_per_minute"]


class _RecordingClient(prom.Client):
    """The real client, noting the window of each request it sends."""

    def __init__(self, url: str, max_points_per_query: int = prom.MAX_POINTS_PER_QUERY) -> None:
        super().__init__(url, max_points_per_query=max_points_per_query)
        self.requested: list[reconcile_experiment.Window] = []

    def _range_query(self, query: str, window: reconcile_experiment.Window) -> prom.Series:
        self.requested.append(window)
        return super()._range_query(query, window)


def test_a_history_fetches_only_new_samples_and_agrees_with_a_full_fetch(
    backfilled: tuple[prom.Provider, reconcile_experiment.Window],
) -> None:
    provider, window = backfilled
    queries = _queries("sum by (host_name) (rate(process_cpu_time_seconds_total[1m]))")
    client = _RecordingClient(provider.client.url)
    remembered = prom.Provider(client, prom.History())
    earlier = reconcile_experiment.Window(window.start, window.end - 10 * STEP, STEP)
    assert remembered.measure("exp", queries, earlier).phase == "Successful"
    client.requested.clear()
    grown = remembered.measure("exp", queries, window)
    assert grown == provider.measure("exp", queries, window)
    # ten new samples, and the newest two fetched before, which a late scrape could still fill
    assert {len(w.timestamps) for w in client.requested} == {10 + prom.REFETCH_STEPS + 1}


def test_a_window_longer_than_the_points_limit_is_fetched_in_chunks(
    backfilled: tuple[prom.Provider, reconcile_experiment.Window],
) -> None:
    provider, window = backfilled
    whole = provider.measure("exp", [], window)
    client = _RecordingClient(provider.client.url, max_points_per_query=7)
    assert prom.Provider(client).measure("exp", [], window) == whole
    assert max(len(w.timestamps) for w in client.requested) == 7


@pytest.fixture
def refusing_endpoint() -> Iterator[str]:
    with faults.refusing_otlp_endpoint() as endpoint:
        yield endpoint


def test_the_refused_points_ratio_reads_a_real_collector_that_sheds(
    otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus, refusing_endpoint: str
) -> None:
    """The guardrail's query, on the telemetry real collectors export: one loses every point it sends on."""
    vendor = pipeline.ExtraExporter(name="vendor", type="otlphttp", endpoint=refusing_endpoint)
    collectors = {
        variant: otelcol(
            lambda listen, v=variant, extra=extra: (
                render_pipeline.render(
                    pipeline.BaselineVariant(template="baseline"),
                    experiment="shed",
                    variant=v,
                    listen=listen,
                    exporters=extra,
                ).text
            ),
            variant,
        )
        for variant, extra in (("baseline", []), ("candidate", [vendor]))
    }
    server = prometheus(
        [
            local_components.ScrapeTarget(
                f"{v}-telemetry", c.telemetry_address, labels.of_scrape("shed", v, labels.TELEMETRY)
            )
            for v, c in collectors.items()
        ]
    )
    client = prom.Client(server.url)

    def ratios() -> dict[str, float] | None:
        for collector in collectors.values():
            otlp.post(collector.otlp_http_url, otlp.gauge_request("phoenix.shed", 1.0, {"host.name": "h1"}))
        now = int(time.time())
        window = reconcile_experiment.Window(now, now, 1)
        answers = {
            v: client.range_query(prom.variant_queries("shed", v, 1)["refused_points_ratio"], window)
            for v in collectors
        }
        values = {v: float(next(iter(a.values()))[0]) for v, a in answers.items() if a}
        # the failures are counted a batch after the points are received: wait for the window to hold both
        return values if len(values) == 2 and values["candidate"] >= 0.9 else None

    measured = harness.wait_for("the candidate's refused points in Prometheus", ratios, 60)
    assert measured["baseline"] == 0.0
    # every point the candidate receives fails on its way to the vendor
    assert 0.9 <= measured["candidate"] <= 1.0


def test_an_overloaded_collector_refuses_survives_and_the_guardrail_sees_it(
    otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus
) -> None:
    """A collector with a small memory limit under a heavy load: its memory_limiter refuses, it lives on."""
    small = pipeline.BaselineVariant(template="baseline", parameters=pipeline.BaselineParameters(memory_limit_mib=32))
    collector = otelcol(
        lambda listen: render_pipeline.render(small, experiment="overload", variant="candidate", listen=listen).text,
        "overloaded",
    )
    server = prometheus(
        [
            local_components.ScrapeTarget(
                "telemetry", collector.telemetry_address, labels.of_scrape("overload", "candidate", labels.TELEMETRY)
            )
        ]
    )
    heavy = loadsim.LoadProfileSpec(
        profile="high-cardinality", hosts=20, processes_per_host=300, interval_seconds=1, duration="6s"
    )
    sent = loadsim_run.run(heavy, [collector.otlp_http_url])
    assert sent.targets[0].send_errors > 0  # what a sender sees: refusals
    assert collector.process is not None and collector.process.running(), "the collector was killed"
    query = prom.variant_queries("overload", "candidate", 1)["refused_points_ratio"]
    client = prom.Client(server.url)

    def refused() -> float | None:
        now = int(time.time())
        answer = client.range_query(query, reconcile_experiment.Window(now, now, 1))
        ratio = float(next(iter(answer.values()))[0]) if answer else 0.0
        return ratio if ratio > 0 else None

    ratio = harness.wait_for("the collector's refused points in Prometheus", refused, 30)
    assert ratio > contract.Objectives().max_refused_points_ratio, ratio


def test_the_pairing_counters_read_what_each_real_collector_accepted(
    otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus
) -> None:
    """The pairing check's counter and the restart detector's uptime, on two real collectors given unequal input."""
    collectors = {
        variant: otelcol(
            lambda listen, v=variant: (
                render_pipeline.render(
                    pipeline.BaselineVariant(template="baseline"), experiment="pairs", variant=v, listen=listen
                ).text
            ),
            variant,
        )
        for variant in pipeline.VARIANTS
    }
    server = prometheus(
        [
            local_components.ScrapeTarget(
                f"{v}-telemetry", c.telemetry_address, labels.of_scrape("pairs", v, labels.TELEMETRY)
            )
            for v, c in collectors.items()
        ]
    )
    sent = {"baseline": 20, "candidate": 15}
    for variant, requests in sent.items():
        for i in range(requests):
            otlp.post(
                collectors[variant].otlp_http_url, otlp.gauge_request("phoenix.pairs", float(i), {"host.name": "h1"})
            )
    client = prom.Client(server.url)

    def counters() -> dict[str, dict[str, float]] | None:
        now = int(time.time())
        window = reconcile_experiment.Window(now, now, 1)
        read = {}
        for variant in collectors:
            queries = prom.variant_queries("pairs", variant, 1)
            answers = {f: client.range_query(queries[f], window) for f in ("accepted_points", "uptime_seconds")}
            if not all(answers.values()):
                return None
            read[variant] = {f: float(next(iter(a.values()))[0]) for f, a in answers.items()}
        accepted = {v: figures["accepted_points"] for v, figures in read.items()}
        return read if accepted == {v: float(n) for v, n in sent.items()} else None

    measured = harness.wait_for("both collectors' accepted points in Prometheus", counters, 60)
    assert all(figures["uptime_seconds"] > 0 for figures in measured.values())
