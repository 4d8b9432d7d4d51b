"""One step of an experiment: read what the plan asks for, advance the state machine, act.

The step reads and acts through the Store (children, teardown, promotion)
and a measurement provider. It does not write the experiment's own status,
annotation or events: it returns them, and the driver writes them where its
objects live, in one patch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from phoenix_operator import API_VERSION
from phoenix_operator.controllers import mirror as mirror_controller
from phoenix_operator.measure import base as measure_base
from phoenix_operator.measure import prometheus, providers
from phoenix_operator.models import experiment, kinds, loadsim, manifests, pipeline
from phoenix_operator.reconcile import conditions, promotion
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import mirror as reconcile_mirror
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.runtime import base as runtime_base


@dataclass(frozen=True)
class Settings:
    limits: reconcile_experiment.Limits = field(default_factory=reconcile_experiment.Limits)
    # the Prometheus of experiments that name none
    default_prometheus: str | None = None


@dataclass
class Memory:
    """What a driver keeps between steps besides the status: when it last measured each
    experiment, and the samples it fetched.

    Lost with the driver, which costs at most one early measurement and one full fetch.
    """

    last_measured: dict[str, datetime] = field(default_factory=dict)
    histories: dict[str, prometheus.History] = field(default_factory=dict)
    # by experiment, the endpoint its LoadSim sends each variant to: a pipeline keeps its endpoint
    load_targets: dict[str, dict[str, str]] = field(default_factory=dict)

    def forget(self, key: str) -> None:
        self.last_measured.pop(key, None)
        self.histories.pop(key, None)
        self.load_targets.pop(key, None)


@dataclass(frozen=True)
class Tick:
    obj: kinds.PhoenixExperiment  # with the spec it started with and the status before the step
    step: reconcile_experiment.Step  # its status carries SpecAccepted
    edited: list[str]  # spec fields edited since the start, and ignored
    accepted_spec: str | None  # the annotation to store now, when the experiment leaves Pending
    observed: reconcile_experiment.Observed
    measurement: measure_base.Measurement | None


def step(store: runtime_base.Store, body: dict[str, Any], now: datetime, settings: Settings, memory: Memory) -> Tick:
    """Raises manifests.InvalidManifest for an experiment the models reject."""
    live = manifests.parse_stored(body)
    assert isinstance(live, kinds.PhoenixExperiment)
    frozen = (body["metadata"].get("annotations") or {}).get(reconcile_experiment.ACCEPTED_SPEC)
    obj, edited = reconcile_experiment.accepted(live, frozen)
    previous = manifests.stored_status(body, experiment.ExperimentStatus)
    obj = obj.model_copy(update={"status": previous})
    key = obj.metadata.uid or obj.metadata.name
    plan = reconcile_experiment.plan(obj, now, settings.limits, memory.last_measured.get(key))
    measurement = None
    if plan is reconcile_experiment.Plan.CREATE_CHILDREN:
        referenced, problem = _referenced_baseline(store, obj)
        if problem is None:
            for child in reconcile_experiment.children(obj, referenced):
                store.apply(child)
        observed = reconcile_experiment.Observed(baseline_problem=problem)
    elif plan is reconcile_experiment.Plan.READ_CHILDREN:
        ready, failures = _pipelines_state(store, obj)
        started_at, failure = _input_state(store, obj, all(ready.values()), now)
        observed = reconcile_experiment.Observed(
            pipelines_ready=ready, pipeline_failures=failures, load_started_at=started_at, load_failure=failure
        )
    elif plan is reconcile_experiment.Plan.MEASURE:
        memory.last_measured[key] = now
        _, failure = _input_state(store, obj, False, now)
        history = memory.histories.setdefault(key, prometheus.History())
        if len(memory.load_targets.get(key, {})) < len(pipeline.VARIANTS):
            memory.load_targets[key] = _load_targets(store, obj)
        observed, measurement = _measure(store, obj, now, settings, history, memory.load_targets[key])
        observed = replace(observed, load_failure=failure)
    else:
        observed = reconcile_experiment.Observed()
    advanced = reconcile_experiment.advance(obj, observed, now, settings.limits)
    if advanced.status.phase in reconcile_experiment.TERMINAL:
        memory.forget(key)
    _teardown(store, obj, advanced.teardown)
    if advanced.promote:
        advanced = reconcile_experiment.promoted(advanced, obj, *promote(store, obj), now)
    status = reconcile_experiment.spec_accepted(advanced.status, edited, obj.metadata.generation, now)
    return Tick(
        obj,
        replace(advanced, status=status),
        edited,
        reconcile_experiment.frozen_spec(obj, previous.phase, advanced.status.phase),
        observed,
        measurement,
    )


def _namespace(obj: kinds.PhoenixExperiment) -> str:
    return obj.metadata.namespace or "default"


def _referenced_baseline(
    store: runtime_base.Store, obj: kinds.PhoenixExperiment
) -> tuple[kinds.PhoenixProcessPipeline | None, str | None]:
    """The running pipeline a `pipelineRef` baseline names, or why it cannot be shadowed."""
    baseline = obj.spec.baseline
    if not isinstance(baseline, experiment.PipelineRef):
        return None, None
    found = store.get(API_VERSION, "PhoenixProcessPipeline", _namespace(obj), baseline.pipeline_ref)
    where = f"baseline.pipelineRef: pipeline {baseline.pipeline_ref} in namespace {_namespace(obj)}"
    if found is None:
        return None, f"{where} does not exist"
    try:
        referenced = manifests.parse_stored(found)
    except manifests.InvalidManifest as error:
        return None, f"{where} is invalid: {error}"
    assert isinstance(referenced, kinds.PhoenixProcessPipeline)
    return referenced, None


def _pipelines_state(store: runtime_base.Store, obj: kinds.PhoenixExperiment) -> tuple[dict[str, bool], dict[str, str]]:
    """Whether each variant's pipeline is Ready, and why the collectors of any cannot run."""
    ready: dict[str, bool] = {}
    failures: dict[str, str] = {}
    for variant, name in reconcile_experiment.variant_pipelines(obj).items():
        found = store.get(API_VERSION, "PhoenixProcessPipeline", _namespace(obj), name)
        found_status = manifests.stored_status(found or {}, pipeline.PipelineStatus)
        condition = conditions.find(found_status.conditions, "Ready")
        ready[variant] = condition is not None and condition.status == "True"
        if condition is not None and condition.reason in reconcile_pipeline.FINAL_READY_REASONS:
            failures[variant] = condition.message
    return ready, failures


def _load_state(store: runtime_base.Store, obj: kinds.PhoenixExperiment) -> tuple[datetime | None, str | None]:
    """When the load started, and why it failed if it has."""
    found = store.get(API_VERSION, "LoadSim", _namespace(obj), reconcile_experiment.load_name(obj.metadata.name))
    load_status = manifests.stored_status(found or {}, loadsim.LoadSimStatus)
    succeeded = conditions.find(load_status.conditions, "Succeeded")
    failure = succeeded.message if succeeded and succeeded.reason == "LoadFailed" else None
    started = datetime.fromisoformat(load_status.started_at) if load_status.started_at else None
    return started, failure


def _input_state(
    store: runtime_base.Store, obj: kinds.PhoenixExperiment, shadows_ready: bool, now: datetime
) -> tuple[datetime | None, str | None]:
    """When both variants started receiving input, and why that input stopped if it has."""
    source = reconcile_experiment.mirror_source(obj)
    return _load_state(store, obj) if source is None else _mirror_state(store, obj, source, shadows_ready, now)


def _mirror_state(
    store: runtime_base.Store, obj: kinds.PhoenixExperiment, source: str, shadows_ready: bool, now: datetime
) -> tuple[datetime | None, str | None]:
    """Once the shadows are ready, ask `source` for a copy of its input; it has started once the
    collectors run the config with the copy."""
    found = store.get(API_VERSION, "PhoenixProcessPipeline", _namespace(obj), source)
    if found is None:
        return None, f"pipeline {source} was deleted"
    if not shadows_ready:
        return None, None
    key = reconcile_mirror.annotation_key(obj.metadata.name)
    if (found["metadata"].get("annotations") or {}).get(key) != (obj.metadata.uid or ""):
        mirror_controller.request(store, obj, source)
        return None, None
    found_status = manifests.stored_status(found, pipeline.PipelineStatus)
    ready = conditions.find(found_status.conditions, "Ready")
    if ready is not None and ready.reason == reconcile_pipeline.CONFIG_REJECTED:
        return None, ready.message
    running = ready is not None and ready.status == "True" and obj.metadata.name in found_status.mirrors
    return (now if running else None), None


def _measure(
    store: runtime_base.Store,
    obj: kinds.PhoenixExperiment,
    now: datetime,
    settings: Settings,
    history: prometheus.History,
    load_targets: dict[str, str],
) -> tuple[reconcile_experiment.Observed, measure_base.Measurement | None]:
    window = reconcile_experiment.measurement_window(obj, now, settings.limits)
    assert window is not None  # the plan measures only when there is one
    try:
        provider = providers.provider_for(
            obj.spec.analysis,
            lambda ref: store.secret_value(_namespace(obj), ref.name, ref.key),
            settings.default_prometheus,
            history,
        )
    except (providers.Unavailable, runtime_base.SecretUnreadable) as error:
        # like an unreachable Prometheus: a condition now, Failed after the limit
        return reconcile_experiment.Observed(measurement_problem=str(error), prometheus_unreachable=True), None
    measurement = provider.measure(obj.metadata.name, obj.spec.analysis.critical_queries, window, load_targets)
    if measurement.baseline is None or measurement.candidate is None:
        observed = reconcile_experiment.Observed(
            measurement_problem=measurement.message, prometheus_unreachable=measurement.unreachable
        )
        return observed, measurement
    if obj.status is None or obj.status.warmup is None:
        settled = {
            f"{variant}.{figure}": getattr(figures, figure)
            for variant, figures in (("baseline", measurement.baseline), ("candidate", measurement.candidate))
            for figure in ("active_series", "datapoints_per_minute")
        }
        warmup = reconcile_experiment.warmup_end(obj, measurement.timestamps, settled)
        return reconcile_experiment.Observed(warmup=warmup), measurement
    analysis_input = reconcile_experiment.analysis_input(
        obj.spec,
        measurement.baseline,
        measurement.candidate,
        measurement.critical_queries,
        window.step,
        reconcile_experiment.warmup_seconds(obj),
    )
    # here, not at import: the engine's scipy is ~70 MB an operator that only deploys pipelines never needs
    from phoenix_analysis import engine

    observed = reconcile_experiment.Observed(
        analysis=engine.analyze_input(analysis_input), analysis_input=analysis_input
    )
    return observed, measurement


def _load_targets(store: runtime_base.Store, obj: kinds.PhoenixExperiment) -> dict[str, str]:
    """The endpoint the experiment's LoadSim sends each variant to, as it resolved it: the pipeline's OTLP/HTTP
    endpoint; none for a mirrored experiment, which has no LoadSim."""
    if obj.spec.mirrored:
        return {}
    targets: dict[str, str] = {}
    for variant, name in reconcile_experiment.variant_pipelines(obj).items():
        found = store.get(API_VERSION, "PhoenixProcessPipeline", _namespace(obj), name)
        endpoint = manifests.stored_status(found or {}, pipeline.PipelineStatus).endpoints.get("otlpHttp")
        if endpoint:
            targets[variant] = endpoint
    return targets


def _teardown(store: runtime_base.Store, obj: kinds.PhoenixExperiment, what: frozenset[str]) -> None:
    if "load" in what and obj.spec.mirrored:
        mirror_controller.end(store, obj)
    elif "load" in what:
        store.delete(API_VERSION, "LoadSim", _namespace(obj), reconcile_experiment.load_name(obj.metadata.name))
    for variant, name in reconcile_experiment.variant_pipelines(obj).items():
        if "pipelines" in what or (variant == "candidate" and "candidate" in what):
            store.delete(API_VERSION, "PhoenixProcessPipeline", _namespace(obj), name)


def promote(store: runtime_base.Store, obj: kinds.PhoenixExperiment) -> tuple[str | None, dict[str, Any] | None]:
    """Put the candidate into the target pipeline.

    Returns why it could not, if it could not, else the target as it was before.
    """
    target = promotion.target_name(obj)  # the model requires targetPipelineRef with policy auto
    try:
        found = store.get(API_VERSION, "PhoenixProcessPipeline", _namespace(obj), target)
        if found is None:
            return "the pipeline does not exist", None
        store.patch_spec(
            API_VERSION, "PhoenixProcessPipeline", _namespace(obj), target, promotion.spec_patch(obj, found)
        )
    except runtime_base.StoreError as error:
        return str(error), None
    return None, found
