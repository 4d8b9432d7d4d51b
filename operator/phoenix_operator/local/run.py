"""`phoenix run --local`: the experiment's full data path, as local processes.

Same templates, LoadSim, measurement, analysis and decision as the operator;
only where the processes run differs. Every child is started inside one
ExitStack, so each exit path (verdict, timeout, Ctrl-C, a child failing)
stops all of them.
"""

from __future__ import annotations

import contextlib
import math
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phoenix_analysis import engine
from phoenix_operator.measure import adapter
from phoenix_operator.measure import prometheus as prom
from phoenix_operator.models import common, kinds
from phoenix_operator.render import experiment as render_experiment
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components, process


class LocalRunError(Exception):
    """The run could not start or a component failed; the message says which and why."""


@dataclass(frozen=True)
class Options:
    duration_seconds: float | None = None
    # Faster than any load interval, so no batch is replaced in the exporter
    # before Prometheus has scraped it; samples keep the datapoints' own times,
    # so scraping often only re-reads the same samples.
    scrape_interval_seconds: int = 2
    step_seconds: int = 5  # between analysed samples
    prometheus_port: int = 0
    workdir: Path | None = None


@dataclass(frozen=True)
class Snapshot:
    """What one analysis interval saw."""

    elapsed_seconds: float
    measurement: adapter.Measurement
    analysis: dict[str, Any] | None


@dataclass
class Outcome:
    snapshots: list[Snapshot] = field(default_factory=list)
    interrupted: bool = False
    workdir: Path | None = None

    @property
    def analysis(self) -> dict[str, Any] | None:
        return next((s.analysis for s in reversed(self.snapshots) if s.analysis), None)

    @property
    def measurement(self) -> adapter.Measurement | None:
        return next((s.measurement for s in reversed(self.snapshots) if s.analysis), None)

    @property
    def last_problem(self) -> str:
        return next((s.measurement.message for s in reversed(self.snapshots) if s.measurement.message), "")


def _port_free(port: int) -> bool:
    return port == 0 or not process.port_open(port)


def _start_collectors(
    name: str, obj: kinds.PhoenixExperiment, workdir: Path, stack: contextlib.ExitStack
) -> dict[str, local_components.LocalCollector]:
    listens = {v: local_components.loopback_listen() for v in adapter.VARIANTS}
    try:
        rendered = render_experiment.render_variants(name, obj.spec, listens)
    except render_pipeline.RenderError as error:
        raise LocalRunError(str(error)) from None
    collectors = {}
    for variant, config in rendered.items():
        collector = local_components.LocalCollector(variant, config.text, listens[variant], workdir)
        stack.callback(collector.stop)
        try:
            collector.start()
        except process.StartupError as error:
            raise LocalRunError(f"the {variant} collector failed to start: {error}") from None
        collectors[variant] = collector
    return collectors


def _scrape_targets(
    name: str, collectors: dict[str, local_components.LocalCollector]
) -> list[local_components.ScrapeTarget]:
    targets = []
    for variant, collector in collectors.items():
        labels = {"phoenix_experiment": name, "phoenix_variant": variant}
        targets.append(
            local_components.ScrapeTarget(
                f"{variant}-export",
                collector.metrics_address,
                {**labels, "phoenix_scrape": "export"},
                honor_labels=True,
            )
        )
        targets.append(
            local_components.ScrapeTarget(
                f"{variant}-telemetry",
                collector.telemetry_address,
                {**labels, "phoenix_scrape": "telemetry"},
            )
        )
    return targets


def lookback_seconds(obj: kinds.PhoenixExperiment, options: Options) -> int:
    """How long a sample stays current in instant queries.

    The collectors send the datapoints' own timestamps, so both variants store
    identical sample times whatever their scrape phase; Prometheus then writes
    no staleness markers, and this lookback is what lets the series of a
    process that ended disappear, instead of lingering for the default 5m.
    """
    return math.ceil(3 * max(options.scrape_interval_seconds, obj.spec.load.load_sim.interval_seconds))


def _loadsim_argv(obj: kinds.PhoenixExperiment, duration: float, targets: list[str]) -> list[str]:
    load = obj.spec.load.load_sim
    argv = [
        sys.executable,
        "-m",
        "phoenix_operator",
        "loadsim",
        "run",
        "--profile",
        load.profile,
        "--hosts",
        str(load.hosts),
        "--processes-per-host",
        str(load.processes_per_host),
        "--churn-per-minute",
        str(load.churn_per_minute),
        "--interval",
        f"{load.interval_seconds}s",
        "--duration",
        f"{duration}s",
        "--seed",
        str(load.seed),
    ]
    for target in targets:
        argv += ["--target", target]
    return argv


def run(
    obj: kinds.PhoenixExperiment,
    options: Options,
    on_snapshot: Callable[[Snapshot], None],
    stop: threading.Event,
) -> Outcome:
    """Run the experiment until a final sequential verdict, its duration, or `stop`."""
    spec = obj.spec
    name = obj.metadata.name
    if "baseline" not in render_experiment.variant_specs(spec):
        raise LocalRunError("run --local needs a baseline given as a template, not a pipelineRef")
    if not _port_free(options.prometheus_port):
        raise LocalRunError(f"port {options.prometheus_port} is already in use")
    duration = options.duration_seconds or common.duration_seconds(spec.duration)
    warmup = min(common.duration_seconds(spec.warmup), duration / 2)
    interval = common.duration_seconds(spec.analysis_interval)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix=f"phoenix-run-{name}-"))
    outcome = Outcome(workdir=workdir)
    with contextlib.ExitStack() as stack:
        collectors = _start_collectors(name, obj, workdir, stack)
        server = local_components.LocalPrometheus(
            _scrape_targets(name, collectors),
            workdir / "prometheus",
            f"{options.scrape_interval_seconds}s",
            options.prometheus_port,
            [f"--query.lookback-delta={lookback_seconds(obj, options)}s"],
        )
        stack.callback(server.stop)
        try:
            server.start()
        except process.StartupError as error:
            raise LocalRunError(f"Prometheus failed to start: {error}") from None
        loadsim = process.ManagedProcess(
            "loadsim",
            _loadsim_argv(obj, duration, [c.otlp_http_url for c in collectors.values()]),
            workdir / "loadsim.log",
        )
        stack.callback(loadsim.stop)
        loadsim.start()
        client = prom.Client(server.url)
        started = time.time()
        step = options.step_seconds
        next_check = started + max(interval, warmup + (2 + adapter.SETTLE_STEPS) * step)
        while True:
            if stop.wait(timeout=max(0.0, next_check - time.time())):
                outcome.interrupted = True
                break
            if not loadsim.running() and loadsim.returncode not in (0, None):
                raise LocalRunError(f"LoadSim failed (exit {loadsim.returncode}); its output:\n{loadsim.tail()}")
            now = time.time()
            first = (started + warmup) // step * step + step
            grid = prom.Grid(first, (now - adapter.SETTLE_STEPS * step) // step * step, step)
            measurement = adapter.measure(client, name, spec, grid)
            analysis = engine.analyze(measurement.analysis_input) if measurement.analysis_input else None
            snapshot = Snapshot(now - started, measurement, analysis)
            outcome.snapshots.append(snapshot)
            on_snapshot(snapshot)
            decided = analysis is not None and analysis["decided_at_index"] is not None
            if decided or now - started >= duration:
                break
            next_check = min(next_check + interval, started + duration)
    return outcome
