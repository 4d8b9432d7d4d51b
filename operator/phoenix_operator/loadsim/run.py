"""One LoadSim run: evolve the fleet, encode each tick once, fan it out, report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from phoenix_operator.loadsim import encode, fleet, sender
from phoenix_operator.models import loadsim


@dataclass(frozen=True)
class Progress:
    tick: int
    ticks: int
    points_generated: int
    unique_series: int
    send_errors: int


@dataclass
class Summary:
    profile: str
    hosts: int
    processes_per_host: int
    batches: int
    points_per_batch: int
    unique_series: int
    elapsed_seconds: float
    targets: list[sender.TargetStats]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def _run(
    spec: loadsim.LoadProfileSpec,
    targets: Sequence[str],
    paced: bool,
    on_progress: Callable[[Progress], None],
    stop: asyncio.Event,
) -> Summary:
    population = fleet.Fleet(spec, start_unix_nano=time.time_ns())
    encoder = encode.FleetEncoder(population)
    senders = [sender.TargetSender(t) for t in targets]
    workers = [asyncio.create_task(s.run()) for s in senders]
    loop = asyncio.get_running_loop()
    started = loop.time()
    ticks_sent = points_sent = 0
    for tick in range(population.ticks):
        if stop.is_set():
            break
        if tick:
            encoder.advance()
        points_per_host = population.running * fleet.POINTS_PER_PROCESS
        for host, body in enumerate(encoder.batch()):
            for target in senders:
                if paced:
                    target.offer(body, points_per_host, host)
                else:
                    await target.put(body, points_per_host, host)
        ticks_sent += 1
        points_sent += spec.hosts * points_per_host
        unique = population.processes_started * fleet.POINTS_PER_PROCESS
        sender.UNIQUE_SERIES.set(unique)
        on_progress(
            Progress(
                tick + 1,
                population.ticks,
                points_sent,
                unique,
                sum(s.stats.send_errors for s in senders),
            )
        )
        if paced and tick + 1 < population.ticks:
            delay = started + (tick + 1) * spec.interval_seconds - loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, delay))
    drain_deadline = max(5.0, 2 * spec.interval_seconds)
    await asyncio.gather(*(s.drain(w, drain_deadline) for s, w in zip(senders, workers, strict=True)))
    return Summary(
        profile=spec.profile,
        hosts=spec.hosts,
        processes_per_host=population.running,
        batches=ticks_sent,
        points_per_batch=spec.hosts * population.running * fleet.POINTS_PER_PROCESS,
        unique_series=population.processes_started * fleet.POINTS_PER_PROCESS,
        elapsed_seconds=round(loop.time() - started, 3),
        targets=[s.stats for s in senders],
    )


def run(
    spec: loadsim.LoadProfileSpec,
    targets: Sequence[str],
    *,
    paced: bool = True,
    on_progress: Callable[[Progress], None] = lambda _: None,
    stop: asyncio.Event | None = None,
) -> Summary:
    """Send the whole load to every target; checks each is reachable first."""
    for target in targets:
        sender.check_reachable(target)

    async def main() -> Summary:
        stopping = stop or asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C ends the run after the current batch, so the summary still prints.
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stopping.set)
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        return await _run(spec, targets, paced, on_progress, stopping)

    return asyncio.run(main())
