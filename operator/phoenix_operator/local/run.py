"""`phoenix run --local`: the operator's controllers, stepped in memory, with local processes.

The experiment and the pipelines and load it creates live in a MemoryStore
instead of the API server; the same controllers the operator runs step them,
against the same local runtime as the operator's `--runtime local`. So the
state machine, the measurement window, the settle wait, the LoadSim
arguments and the Prometheus lookback are the operator's, and only this loop
(when to step, where to write) is the command's own.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from phoenix_analysis import contract
from phoenix_operator import API_VERSION
from phoenix_operator.controllers import adaptive as adaptive_controller
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.controllers import loadsim as loadsim_controller
from phoenix_operator.controllers import pipeline as pipeline_controller
from phoenix_operator.measure import base as measure_base
from phoenix_operator.models import common, experiment, kinds, loadsim, manifests
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.runtime import local as runtime_local
from phoenix_operator.runtime import memory, process

# Local collectors start in seconds or not at all.
PIPELINES_READY = timedelta(minutes=1)


class LocalRunError(Exception):
    """The run could not start; the message says why."""


@dataclass(frozen=True)
class Options:
    duration_seconds: float | None = None
    measure_step_seconds: float = 2.0  # between analysed samples, one scrape
    prometheus_port: int = 0
    workdir: Path | None = None
    tick_seconds: float = 1.0


@dataclass(frozen=True)
class Progress:
    """Something worth a line: an event, or a measurement and what the engine made of it."""

    elapsed_seconds: float
    event: tuple[str, str, str] | None = None  # type, reason, message
    measurement: measure_base.Measurement | None = None
    analysis: contract.Result | None = None


@dataclass
class Outcome:
    status: experiment.ExperimentStatus = field(default_factory=experiment.ExperimentStatus)
    # the newest analysis, and the measurement it was made from
    analysis: contract.Result | None = None
    measurement: measure_base.Measurement | None = None
    analysis_input: contract.AnalysisInput | None = None  # what the engine was given for `analysis`
    last_problem: str = ""
    interrupted: bool = False
    workdir: Path | None = None


def _with_duration(obj: kinds.PhoenixExperiment, seconds: float | None) -> kinds.PhoenixExperiment:
    """`--duration`: the warmup and the analysis interval shrink with it when they would not fit."""
    if seconds is None:
        return obj
    spec = obj.spec
    warmup = min(common.duration_seconds(spec.warmup), seconds / 2)
    interval = min(common.duration_seconds(spec.analysis_interval), seconds)
    shorter = spec.model_copy(
        update={"duration": f"{seconds:g}s", "warmup": f"{warmup:g}s", "analysis_interval": f"{interval:g}s"}
    )
    return obj.model_copy(update={"spec": shorter})


def run(
    obj: kinds.PhoenixExperiment,
    options: Options,
    on_progress: Callable[[Progress], None],
    stop: threading.Event,
) -> Outcome:
    """Run the experiment until it ends: a verdict, a failure, or `stop` (which aborts it)."""
    if isinstance(obj.spec.baseline, experiment.PipelineRef):
        raise LocalRunError("run --local needs a baseline given as a template, not a pipelineRef")
    if options.prometheus_port and process.port_open(options.prometheus_port):
        raise LocalRunError(f"port {options.prometheus_port} is already in use")
    obj = _with_duration(obj, options.duration_seconds)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix=f"phoenix-run-{obj.metadata.name}-"))
    began = time.monotonic()
    outcome = Outcome(workdir=workdir)

    def on_event(_: dict[str, Any], type_: str, reason: str, message: str) -> None:
        on_progress(Progress(time.monotonic() - began, event=(type_, reason, message)))

    store = memory.MemoryStore(on_event)
    try:
        runtime = runtime_local.LocalRuntime.start(
            workdir,
            load_interval_seconds=obj.spec.load.load_sim.interval_seconds,
            prometheus_port=options.prometheus_port,
        )
    except process.StartupError as error:
        raise LocalRunError(f"Prometheus failed to start: {error}") from None
    try:
        _drive(obj, options, store, runtime, outcome, stop, lambda: time.monotonic() - began, on_progress)
    finally:
        runtime.stop()
    return outcome


def _drive(
    obj: kinds.PhoenixExperiment,
    options: Options,
    store: memory.MemoryStore,
    runtime: runtime_local.LocalRuntime,
    outcome: Outcome,
    stop: threading.Event,
    elapsed: Callable[[], float],
    on_progress: Callable[[Progress], None],
) -> None:
    name, namespace = obj.metadata.name, obj.metadata.namespace or "default"
    store.apply({"apiVersion": API_VERSION, "kind": obj.kind, "metadata": {"name": name, "namespace": namespace},
                 "spec": obj.spec.to_wire()})  # fmt: skip
    settings = experiment_controller.Settings(
        reconcile_experiment.Limits(
            pipelines_ready=PIPELINES_READY, measure_step=timedelta(seconds=options.measure_step_seconds)
        ),
        runtime.prometheus_url,
    )
    remembered = experiment_controller.Memory()
    applied: dict[str, int] = {}
    while True:
        if stop.is_set() and not outcome.interrupted:
            outcome.interrupted = True
            store.patch_spec(API_VERSION, obj.kind, namespace, name, {"abort": True})
        now = datetime.now(UTC)
        step_objects(store, runtime, applied, now)
        body = store.get(API_VERSION, obj.kind, namespace, name)
        assert body is not None
        ticked = experiment_controller.step(store, body, now, settings, remembered)
        measurement = ticked.measurement
        if measurement is not None:
            analysis = ticked.observed.analysis
            if analysis is not None:
                outcome.analysis, outcome.measurement = analysis, measurement
                outcome.analysis_input = ticked.observed.analysis_input
            outcome.last_problem = measurement.message or outcome.last_problem
            on_progress(Progress(elapsed(), measurement=measurement, analysis=analysis))
        _write_experiment(store, body, ticked)
        outcome.status = ticked.step.status
        if outcome.status.phase in reconcile_experiment.TERMINAL:
            _stop_deleted(store, runtime)
            return
        stop.wait(options.tick_seconds)


def _write_experiment(store: memory.MemoryStore, body: dict[str, Any], ticked: experiment_controller.Tick) -> None:
    metadata = body["metadata"]
    if ticked.accepted_spec is not None:
        store.annotate(API_VERSION, body["kind"], metadata["namespace"], metadata["name"],
                       {reconcile_experiment.ACCEPTED_SPEC: ticked.accepted_spec})  # fmt: skip
        metadata = store.get(API_VERSION, body["kind"], metadata["namespace"], metadata["name"])["metadata"]  # type: ignore[index]
    wire = ticked.step.status.to_wire()
    if wire != (body.get("status") or {}):
        store.patch_status_if_unchanged(API_VERSION, body["kind"], metadata, wire)
    for event in ticked.step.events:
        store.post_event(body, event.type, event.reason, event.message)


def step_objects(
    store: memory.MemoryStore, runtime: runtime_local.LocalRuntime, applied: dict[str, int], now: datetime
) -> None:
    """One round of what the operator's pipeline and LoadSim handlers do, for the objects in `store`.

    `applied` remembers each pipeline's deployed generation between rounds.
    """
    _step_pipelines(store, runtime, applied, now)
    _step_loads(store, runtime, now)
    _stop_deleted(store, runtime)


def _step_pipelines(
    store: memory.MemoryStore, runtime: runtime_local.LocalRuntime, applied: dict[str, int], now: datetime
) -> None:
    """Deploy each new generation once, as the operator's work queue does, and observe the rest.

    An adaptive pipeline's loop takes its turn first; a new keep list is
    deployed like a new generation.
    """
    for body in store.of_kind("PhoenixProcessPipeline"):
        metadata = body["metadata"]
        try:
            turned = adaptive_controller.turn(store, body, now, runtime.prometheus_url)
        except manifests.InvalidManifest:
            turned = None  # reported by its deploy
        if turned is not None and adaptive_controller.write(store, body, turned) and turned.changed:
            applied.pop(metadata["uid"], None)  # deployed again until it succeeds, like a new generation
        generation = metadata["generation"]
        apply = applied.get(metadata["uid"]) != generation
        if pipeline_controller.deploy(store, runtime, metadata["namespace"], metadata["name"], apply) and apply:
            applied[metadata["uid"]] = generation


def _step_loads(store: memory.MemoryStore, runtime: runtime_local.LocalRuntime, now: datetime) -> None:
    for body in store.of_kind("LoadSim"):
        obj = manifests.parse_stored(body)
        assert isinstance(obj, kinds.LoadSim)
        previous = manifests.stored_status(body, loadsim.LoadSimStatus)
        outcome = loadsim_controller.step(store, runtime, obj, previous, now)
        if outcome is None or outcome.status.to_wire() == (body.get("status") or {}):
            continue
        written = store.patch_status_if_unchanged(API_VERSION, "LoadSim", body["metadata"], outcome.status.to_wire())
        if written and outcome.failure:
            store.post_event(body, "Warning", outcome.failure.reason, outcome.failure.message)


def _stop_deleted(store: memory.MemoryStore, runtime: runtime_local.LocalRuntime) -> None:
    """What a DELETED watch event does for the operator's local runtime."""
    for body in store.drain_deleted():
        obj = manifests.parse_stored(body)
        if isinstance(obj, kinds.PhoenixProcessPipeline):
            runtime.delete_pipeline(obj)
        elif isinstance(obj, kinds.LoadSim):
            runtime.delete_load(obj)
