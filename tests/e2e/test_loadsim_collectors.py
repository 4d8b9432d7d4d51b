"""LoadSim against real collectors and Prometheus: identical fan-out, clean churn, isolation."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from phoenix_operator.loadsim import fleet
from phoenix_operator.loadsim import run as loadsim_run
from phoenix_operator.models import kinds, loadsim, pipeline
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local, local_components
from tests import conftest
from tests.harness import otlp

pytestmark = pytest.mark.e2e
METRICS = (
    "process_cpu_time_seconds_total",
    "process_memory_usage_bytes",
    "process_memory_virtual_bytes",
    "process_disk_io_bytes_total",
)


def _renderer(variant: str, template: str = "baseline", **parameters: object) -> conftest.Callable[..., str]:
    def render(listen: render_pipeline.Listen) -> str:
        spec = (
            pipeline.BaselineVariant(
                template="baseline",
                parameters=pipeline.BaselineParameters.model_validate(parameters),
            )
            if template == "baseline"
            else pipeline.CandidateVariant(
                template="candidate",
                parameters=pipeline.CandidateParameters.model_validate(parameters),
            )
        )
        return render_pipeline.render(spec, experiment="loadsim", variant=variant, listen=listen).text

    return render


def _query(url: str, promql: str) -> list[dict[str, object]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    result: list[dict[str, object]] = body["data"]["result"]
    return result


def _eventually(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def _series_set(url: str, variant: str) -> set[tuple[tuple[str, str], ...]]:
    seen = set()
    for name in METRICS:
        for item in _query(url, f'last_over_time({name}{{phoenix_variant="{variant}"}}[30m])'):
            labels = {k: v for k, v in item["metric"].items() if k not in {"phoenix_variant", "job", "instance"}}  # type: ignore[union-attr]
            seen.add((("__name__", name), *sorted(labels.items())))
    return seen


def test_every_target_gets_exactly_the_estimated_series(
    otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus
) -> None:
    spec = loadsim.LoadProfileSpec(
        profile="process-churn",
        hosts=3,
        processes_per_host=20,
        churn_per_minute=12,
        interval_seconds=1,
        duration="8s",
        seed=11,
    )
    one, two = otelcol(_renderer("one"), "one"), otelcol(_renderer("two"), "two")
    server = prometheus(
        [local_components.ScrapeTarget(n, c.metrics_address) for n, c in (("one", one), ("two", two))],
        scrape_interval="500ms",
    )
    summary = loadsim_run.run(spec, [one.otlp_http_url, two.otlp_http_url])
    assert [t.send_errors for t in summary.targets] == [0, 0]
    time.sleep(3)
    first, second = _series_set(server.url, "one"), _series_set(server.url, "two")
    assert first == second
    assert len(first) == fleet.estimate(spec).unique_series == summary.unique_series


def test_churned_series_expire_and_counters_never_reset(
    otelcol: conftest.StartCollector, prometheus: conftest.StartPrometheus
) -> None:
    spec = loadsim.LoadProfileSpec(
        profile="process-churn",
        hosts=2,
        processes_per_host=30,
        churn_per_minute=60,
        interval_seconds=1,
        duration="12s",
        seed=5,
    )
    baseline = otelcol(_renderer("baseline", metricExpiration="3s"), "baseline")
    candidate = otelcol(
        _renderer(
            "candidate",
            "candidate",
            metricExpiration="3s",
            aggregateAwayAttributes=[
                "process.pid",
                "process.parent_pid",
                "process.command_line",
                "process.command",
            ],
        ),
        "candidate",
    )
    server = prometheus(
        [local_components.ScrapeTarget(n, c.metrics_address) for n, c in (("b", baseline), ("c", candidate))],
        scrape_interval="500ms",
    )
    loadsim_run.run(spec, [baseline.otlp_http_url, candidate.otlp_http_url])

    def exported_pids() -> set[tuple[str, str]]:
        exported = httpx.get(f"http://{baseline.metrics_address}/metrics", timeout=5).text
        return {
            (line.split('host_name="')[1].split('"')[0], line.split('process_pid="')[1].split('"')[0])
            for line in exported.splitlines()
            if "process_pid=" in line
        }

    # once the batch processor flushes the last batch, the pids that ended in the
    # last seconds are still exported beside the 2 x 30 live ones, until they expire
    assert _eventually(lambda: len(exported_pids()) > 2 * 30, 10), "dead pids should linger until their expiration"
    assert _eventually(lambda: not exported_pids(), 15), "series of dead pids must leave after metric_expiration"
    for variant in ("baseline", "candidate"):
        resets = _query(
            server.url,
            f'max(resets(process_cpu_time_seconds_total{{phoenix_variant="{variant}"}}[1m]))',
        )
        assert float(resets[0]["value"][1]) == 0, f"{variant} counters reset"  # type: ignore[index]
    # new pids start their counters at zero: the smallest first sample of any pid is 0
    first = _query(
        server.url,
        'min(min_over_time(process_cpu_time_seconds_total{phoenix_variant="baseline"}[1m]))',
    )
    assert float(first[0]["value"][1]) == 0  # type: ignore[index]


@pytest.fixture
def hanging_target() -> Iterator[str]:
    """A fault: a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    for conn in held:
        conn.close()
    listener.close()


def test_a_hanging_target_does_not_slow_the_other(otelcol: conftest.StartCollector, hanging_target: str) -> None:
    healthy = otelcol(_renderer("healthy"), "healthy")
    spec = loadsim.LoadProfileSpec(hosts=4, processes_per_host=25, interval_seconds=0.5, duration="6s", seed=3)
    started = time.monotonic()
    summary = loadsim_run.run(spec, [healthy.otlp_http_url, hanging_target])
    elapsed = time.monotonic() - started
    good, bad = summary.targets
    expected_points = fleet.estimate(spec).datapoints
    assert good.points_sent == expected_points and good.send_errors == 0
    assert bad.points_sent == 0
    assert bad.send_errors + bad.batches_dropped > 0
    assert elapsed < 6 + 5 * 2 + 10, "the run is bounded by request timeouts, not stalled"


def test_cli_reports_its_own_metrics_and_a_json_summary(otelcol: conftest.StartCollector, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from phoenix_operator.runtime import process

    collector = otelcol(_renderer("cli"), "cli")
    port = process.free_port()
    run = subprocess.Popen(
        [
            sys.executable, "-m", "phoenix_operator", "loadsim", "run", "--hosts", "2", "--processes-per-host", "5",
            "--interval", "1s", "--duration", "6s", "--metrics-port", str(port), "--target", collector.otlp_http_url,
            "--summary-file", str(tmp_path / "summary.json"),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def sample(scraped: str, name: str) -> float | None:
        prefix = f'{name}{{target="{collector.otlp_http_url}"}} '
        values = [float(line.removeprefix(prefix)) for line in scraped.splitlines() if line.startswith(prefix)]
        return values[0] if values else None

    scraped = ""
    first: str | None = None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (sample(scraped, "phoenix_loadsim_batches_sent_total") or 0) >= 2:
        with contextlib.suppress(httpx.HTTPError):
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            first = first or scraped
        time.sleep(0.2)
    stdout, _ = run.communicate(timeout=30)
    assert run.returncode == 0
    # every per-target counter is there from the first scrape, so "none failed" reads 0, not absent
    assert first is not None and sample(first, "phoenix_loadsim_send_errors_total") == 0, first
    assert sample(first, "phoenix_loadsim_batches_dropped_total") == 0
    assert (sample(scraped, "phoenix_loadsim_batches_sent_total") or 0) >= 2, scraped
    assert (sample(scraped, "phoenix_loadsim_points_sent_total") or 0) >= 2 * 5 * fleet.POINTS_PER_PROCESS
    assert "phoenix_loadsim_unique_series" in scraped
    summary = json.loads(stdout)
    # the same summary on one line, as a Job's termination message carries it
    assert (tmp_path / "summary.json").read_text() == json.dumps(summary, separators=(",", ":"))
    assert summary["targets"][0]["points_sent"] == 6 * 2 * 5 * fleet.POINTS_PER_PROCESS
    assert summary["targets"][0]["send_errors"] == 0
    assert summary["unique_series"] == 2 * 5 * fleet.POINTS_PER_PROCESS


def test_the_local_runtime_reports_what_a_finished_load_delivered_to_each_target(tmp_path: Path) -> None:
    target = kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "delivered", "namespace": "default"},
            "spec": {"template": "baseline"},
        }
    )
    runtime = local.LocalRuntime.start(tmp_path / "runtime")
    try:
        served = runtime.apply_pipeline(target, reconcile_pipeline.render(target))
        assert served is not None
        endpoint = served.endpoints["otlpHttp"]
        load = kinds.LoadSim.model_validate(
            {
                "apiVersion": "phoenix.io/v1alpha1",
                "kind": "LoadSim",
                "metadata": {"name": "delivered", "namespace": "default"},
                "spec": {
                    "hosts": 2,
                    "processesPerHost": 3,
                    "intervalSeconds": 1,
                    "duration": "3s",
                    "targets": [{"pipelineRef": "delivered"}],
                },
            }
        )
        observed = runtime.apply_load(load, [endpoint])
        deadline = time.monotonic() + 30
        while not (observed.succeeded or observed.failed):
            assert time.monotonic() < deadline, "the load never ended"
            time.sleep(0.5)
            observed = runtime.apply_load(load, [endpoint])
        (running,) = runtime.collectors.values()
        accepted = otlp.accepted_points(running.collector.telemetry_address)
    finally:
        runtime.stop()
    assert observed.succeeded, observed.message
    assert observed.delivery == reconcile_loadsim.Delivery(
        points_sent=3 * 2 * 3 * fleet.POINTS_PER_PROCESS, sent_batches={endpoint: 3 * 2}, failed_batches={endpoint: 0}
    )
    assert observed.delivery.points_sent == accepted


def test_a_metrics_port_in_use_costs_the_counters_not_the_load(otelcol: conftest.StartCollector) -> None:
    import json
    import socket
    import subprocess
    import sys

    collector = otelcol(_renderer("busy-port"), "busy-port")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "phoenix_operator", "loadsim", "run", "--hosts", "1", "--processes-per-host", "2",
             "--interval", "1s", "--duration", "2s", "--metrics-port", str(port), "--target", collector.otlp_http_url],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"warning: --metrics-port {port} on 127.0.0.1: Address already in use; counters not served" in run.stderr
    assert json.loads(run.stdout)["targets"][0]["points_sent"] > 0
