"""A collector protects itself: past its memory_limiter's limit it refuses data instead of growing until
it is killed, and the refusals are counted where the refused-points guardrail reads them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from phoenix_operator.measure import prometheus
from phoenix_operator.models import pipeline
from phoenix_operator.render import pipeline as render_pipeline
from tests import conftest
from tests.harness import otlp

pytestmark = pytest.mark.e2e
CONTAINER_MIB = 512
# the memory_limiter's limit, sized from the container's
LIMIT_MIB = CONTAINER_MIB * render_pipeline.MEMORY_LIMITER_SHARE
SERIES_PER_REQUEST = 2000
SECONDS = 60
REFUSED = "otelcol_receiver_refused_metric_points"


def _unique_series(request: int) -> bytes:
    """SERIES_PER_REQUEST gauges no earlier request had: the exporter keeps each until it expires."""
    now = time.time_ns()
    points = [
        metrics_pb2.NumberDataPoint(
            time_unix_nano=now,
            as_double=1.0,
            attributes=[common_pb2.KeyValue(key="series", value=common_pb2.AnyValue(string_value=f"{request}-{i}"))],
        )
        for i in range(SERIES_PER_REQUEST)
    ]
    metric = metrics_pb2.Metric(name="overload.probe", unit="1", gauge=metrics_pb2.Gauge(data_points=points))
    return metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[metrics_pb2.ResourceMetrics(scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[metric])])]
    ).SerializeToString()


def _rss_bytes(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return float(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


@pytest.mark.alone
def test_an_overloaded_collector_refuses_data_and_stays_up(otelcol: conftest.StartCollector) -> None:
    spec = pipeline.BaselinePipelineSpec.model_validate(
        {
            "template": "baseline",
            "parameters": {"metricExpiration": "10m"},
            "collector": {"resources": {"limits": {"memory": f"{CONTAINER_MIB}Mi"}}},
        }
    )

    def rendered(listen: render_pipeline.Listen) -> render_pipeline.RenderedConfig:
        return render_pipeline.render(spec, experiment="overload", variant="baseline", listen=listen)

    # with the environment either runtime gives it
    collector = otelcol(lambda listen: rendered(listen).text, env=rendered(render_pipeline.Listen()).runtime_env)
    telemetry = collector.telemetry_address
    statuses: dict[int, int] = {}
    highest_heap = highest_rss = 0.0
    started_as = collector.process.pid or 0
    deadline = time.monotonic() + SECONDS
    request = 0
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < deadline and statuses.get(503, 0) + statuses.get(429, 0) < 20:
            response = client.post(
                f"{collector.otlp_http_url}/v1/metrics",
                content=_unique_series(request),
                headers={"Content-Type": "application/x-protobuf"},
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            request += 1
            if request % 2 == 0:
                highest_heap = max(highest_heap, otlp.telemetry(telemetry, "otelcol_process_runtime_heap_alloc_bytes"))
                highest_rss = max(highest_rss, _rss_bytes(started_as))
    accepted, refused = otlp.accepted_points(telemetry), otlp.telemetry(telemetry, REFUSED)
    print(f"{request} requests of {SERIES_PER_REQUEST} new series: responses {statuses}, refused points {refused:.0f},")
    print(
        f"highest heap {highest_heap / 2**20:.0f} MiB, RSS {highest_rss / 2**20:.0f} MiB;"
        f" limit {LIMIT_MIB:.0f} MiB in a {CONTAINER_MIB} MiB container"
    )
    refusals = statuses.get(503, 0) + statuses.get(429, 0)
    assert refusals >= 20, f"never refused: {statuses}"
    # every point is accounted for: taken in full, or refused in full and counted where the guardrail reads
    assert accepted == statuses.get(200, 0) * SERIES_PER_REQUEST > 0, statuses
    assert refused == refusals * SERIES_PER_REQUEST
    assert REFUSED in prometheus.VARIANT_QUERIES["refused_points_ratio"][1]
    # what the kernel counts against the container's limit
    assert highest_rss < CONTAINER_MIB * 2**20, "a container with this limit would have been killed"
    # the process that took the flood still runs: never killed, never restarted
    assert (collector.process.pid, collector.process.returncode) == (started_as, None), collector.process.tail()
