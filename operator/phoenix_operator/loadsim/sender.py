"""Fan-out of the same request bytes to every target, isolated per target.

Each target has its own bounded queue and worker, so a slow or dead target
drops its own batches (counted) instead of slowing the others. Transient
failures are retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.parse
from dataclasses import dataclass, field

import httpx
import prometheus_client

REGISTRY = prometheus_client.CollectorRegistry()
POINTS = prometheus_client.Counter("phoenix_loadsim_points_sent", "Datapoints delivered", ["target"], registry=REGISTRY)
BATCHES = prometheus_client.Counter(
    "phoenix_loadsim_batches_sent", "Requests the target accepted", ["target"], registry=REGISTRY
)
BYTES = prometheus_client.Counter(
    "phoenix_loadsim_bytes_sent", "Request bytes delivered", ["target"], registry=REGISTRY
)
ERRORS = prometheus_client.Counter(
    "phoenix_loadsim_send_errors",
    "Requests that failed after retries",
    ["target"],
    registry=REGISTRY,
)
DROPPED = prometheus_client.Counter(
    "phoenix_loadsim_batches_dropped",
    "Requests dropped because the target's queue was full",
    ["target"],
    registry=REGISTRY,
)
UNIQUE_SERIES = prometheus_client.Gauge(
    "phoenix_loadsim_unique_series", "Unique series generated so far", registry=REGISTRY
)


class UnreachableTarget(Exception):
    pass


def count_from_zero(target: str) -> None:
    """Every counter of `target` reads 0 from now on, so a scrape tells "none failed" from "not scraped"."""
    for counter in (POINTS, BATCHES, BYTES, ERRORS, DROPPED):
        counter.labels(target)


def metrics_url(target: str) -> str:
    base = target.rstrip("/")
    return base if base.endswith("/v1/metrics") else f"{base}/v1/metrics"


def check_reachable(target: str, timeout: float = 3.0) -> None:
    """Fail fast, before any load is generated, when a target does not accept connections."""
    parsed = urllib.parse.urlsplit(target)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise UnreachableTarget(f"target {target!r} is not an http(s) URL")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            pass
    except OSError as error:
        raise UnreachableTarget(f"target {target} is unreachable: {error.strerror or error}") from None


@dataclass
class TargetStats:
    target: str
    points_sent: int = 0
    bytes_sent: int = 0
    requests: int = 0
    send_errors: int = 0
    batches_dropped: int = 0
    retries: int = 0


@dataclass
class TargetSender:
    """Sends to one target through `lanes` connections at once.

    A host's requests always take the same lane, so one host's batches arrive
    in order (cumulative counters need that) while hosts go out in parallel.
    """

    target: str
    lanes: int = 4
    queue_size: int = 64
    max_retries: int = 3
    timeout: float = 5.0
    stats: TargetStats = field(init=False)
    _queues: list[asyncio.Queue[tuple[bytes, int] | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.stats = TargetStats(self.target)
        self._queues = [asyncio.Queue(maxsize=self.queue_size) for _ in range(self.lanes)]
        self._url = metrics_url(self.target)
        count_from_zero(self.target)

    def offer(self, body: bytes, points: int, host: int) -> None:
        """Queue a request without waiting; a full queue drops it and counts the drop."""
        try:
            self._queues[host % self.lanes].put_nowait((body, points))
        except asyncio.QueueFull:
            self.stats.batches_dropped += 1
            DROPPED.labels(self.target).inc()

    async def put(self, body: bytes, points: int, host: int) -> None:
        """Queue a request, waiting for room: back-pressure for the unpaced mode."""
        await self._queues[host % self.lanes].put((body, points))

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(max_connections=self.lanes)) as client:
            await asyncio.gather(*(self._lane(client, queue) for queue in self._queues))

    async def _lane(self, client: httpx.AsyncClient, queue: asyncio.Queue[tuple[bytes, int] | None]) -> None:
        headers = {"Content-Type": "application/x-protobuf"}
        while (item := await queue.get()) is not None:
            body, points = item
            await self._send(client, body, points, headers)

    async def drain(self, worker: asyncio.Task[None], deadline: float) -> None:
        """Let queued requests go out until `deadline` seconds pass; drop the rest, counted."""
        for queue in self._queues:
            await queue.put(None)
        done, _ = await asyncio.wait({worker}, timeout=deadline)
        if done:
            return
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        # Requests in flight when cancelled failed; queued ones were never sent.
        self.stats.send_errors += 1
        ERRORS.labels(self.target).inc()
        for queue in self._queues:
            while not queue.empty():
                if queue.get_nowait() is not None:
                    self.stats.batches_dropped += 1
                    DROPPED.labels(self.target).inc()

    async def _send(self, client: httpx.AsyncClient, body: bytes, points: int, headers: dict[str, str]) -> None:
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
            with contextlib.suppress(httpx.HTTPError):
                response = await client.post(self._url, content=body, headers=headers)
                if response.status_code < 300:
                    self.stats.requests += 1
                    BATCHES.labels(self.target).inc()
                    self.stats.points_sent += points
                    self.stats.bytes_sent += len(body)
                    POINTS.labels(self.target).inc(points)
                    BYTES.labels(self.target).inc(len(body))
                    return
                if response.status_code not in {429, 502, 503, 504}:
                    break
        self.stats.send_errors += 1
        ERRORS.labels(self.target).inc()
