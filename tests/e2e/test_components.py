"""Smoke tests of the real collector and Prometheus through the harness fixtures."""

from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path

import httpx
import pytest

from phoenix_operator.models import pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components, process
from tests import conftest
from tests.harness import otlp

pytestmark = pytest.mark.e2e


def _baseline(listen: render_pipeline.Listen) -> str:
    spec = pipeline.BaselineVariant(template="baseline")
    return render_pipeline.render(spec, experiment="smoke", variant="baseline", listen=listen).text


def _query(url: str, promql: str) -> list[dict[str, object]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def _exported_line(address: str, prefix: str, timeout: float = 15.0) -> str:
    """The first exported sample line starting with prefix; the batch processor delays it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exported = httpx.get(f"http://{address}/metrics", timeout=5).text
        lines = [line for line in exported.splitlines() if line.startswith(prefix)]
        if lines:
            return lines[0]
        time.sleep(0.2)
    raise AssertionError(f"{prefix} never appeared on http://{address}/metrics")


def test_collector_runs_a_rendered_config_and_exports_what_it_receives(
    otelcol: conftest.StartCollector,
) -> None:
    collector = otelcol(_baseline)
    sent_at_ms = time.time_ns() // 1_000_000
    body = otlp.gauge_request("phoenix.smoke", 42.0, {"host.name": "h1"})
    assert otlp.post(collector.otlp_http_url, body) == 200
    line = _exported_line(collector.metrics_address, "phoenix_smoke")
    assert 'phoenix_experiment="smoke"' in line
    assert 'phoenix_variant="baseline"' in line
    assert 'host_name="h1"' in line
    value, timestamp_ms = line.rsplit(" ", 2)[1:]
    assert value == "42"
    # the datapoint's own time, not the scrape's, so both variants store the same sample times
    assert abs(int(timestamp_ms) - sent_at_ms) < 1_000


def test_prometheus_scrapes_the_collector_and_answers_promql(
    otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus
) -> None:
    collector = otelcol(_baseline)
    assert otlp.post(collector.otlp_http_url, otlp.gauge_request("phoenix.smoke", 7.0, {"host.name": "h2"})) == 200
    server = prometheus([local_components.ScrapeTarget("baseline", collector.metrics_address)])
    deadline = time.monotonic() + 30
    result: list[dict[str, object]] = []
    while time.monotonic() < deadline and not result:
        result = _query(server.url, 'phoenix_smoke_ratio{phoenix_variant="baseline"}')
        time.sleep(0.5)
    assert result, "Prometheus never saw the collector's metric"
    assert result[0]["value"][1] == "7"  # type: ignore[index]


def test_promtool_backfill_serves_known_data(
    promtool_backfill: conftest.Callable[[str], local_components.LocalPrometheus],
) -> None:
    start = int(time.time()) - 3600
    lines = ["# TYPE phoenix_known gauge"]
    lines += [f'phoenix_known{{phoenix_variant="baseline"}} {i} {start + 60 * i}' for i in range(30)]
    server = promtool_backfill("\n".join(lines) + "\n# EOF\n")
    body = httpx.get(
        f"{server.url}/api/v1/query_range",
        params={"query": "phoenix_known", "start": start, "end": start + 29 * 60, "step": "60"},
        timeout=10,
    ).json()
    values = [float(v) for _, v in body["data"]["result"][0]["values"]]
    assert values == [float(i) for i in range(30)]


def test_a_collector_whose_port_was_taken_starts_on_fresh_ports(tmp_path: Path) -> None:
    """The race `free_port` leaves open, made certain: the picked OTLP port is already bound."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        listen = dataclasses.replace(local_components.loopback_listen(), otlp_http=busy)
        collector = local_components.LocalCollector("retried", _baseline, tmp_path, listen=listen)
        try:
            collector.start()
            assert collector.listen.otlp_http != busy
            assert "address already in use" in collector.workdir.joinpath("retried.log").read_text()
            assert otlp.post(collector.otlp_http_url, otlp.gauge_request("phoenix.retry", 1.0, {})) == 200
        finally:
            collector.stop()


def test_prometheus_on_a_port_the_user_chose_is_not_moved(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = local_components.LocalPrometheus([], tmp_path, port=port)
        with pytest.raises(process.StartupError, match="address already in use"):
            server.start()
        server.stop()
    assert server.port == port
