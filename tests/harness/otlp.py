"""Minimal OTLP/HTTP metric requests for component tests, and what a collector says it accepted."""

from __future__ import annotations

import time

import httpx
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2


def gauge_request(name: str, value: float, resource: dict[str, str]) -> bytes:
    now = time.time_ns()
    point = metrics_pb2.NumberDataPoint(time_unix_nano=now, as_double=value)
    metric = metrics_pb2.Metric(name=name, unit="1", gauge=metrics_pb2.Gauge(data_points=[point]))
    attributes = [common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v)) for k, v in resource.items()]
    request = metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=resource_pb2.Resource(attributes=attributes),
                scope_metrics=[metrics_pb2.ScopeMetrics(metrics=[metric])],
            )
        ]
    )
    return request.SerializeToString()


def post(url: str, body: bytes) -> int:
    response = httpx.post(
        f"{url}/v1/metrics",
        content=body,
        headers={"Content-Type": "application/x-protobuf"},
        timeout=10,
    )
    return response.status_code


def telemetry(telemetry_address: str, name: str) -> float:
    """The sum of a collector's own counter or gauge `name` over its label sets, from its telemetry at host:port."""
    exposition = httpx.get(f"http://{telemetry_address}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith((name + "{", name + " "))
    )


def accepted_points(telemetry_address: str) -> float:
    """Points a collector's receivers accepted."""
    return telemetry(telemetry_address, "otelcol_receiver_accepted_metric_points")
