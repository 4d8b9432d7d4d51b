"""PhoenixExperiment: one timer drives the state machine of each experiment.

A single timer (not separate create and update handlers) means one writer per
experiment, so the steps of the state machine never race each other. The spec
is frozen into an annotation when the experiment leaves Pending; later edits
are refused with a condition, and only `abort` is still read from the live
spec.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_analysis import engine
from phoenix_operator import API_VERSION, GROUP, VERSION
from phoenix_operator.handlers import context, metrics, status
from phoenix_operator.measure import adapter
from phoenix_operator.measure import prometheus as prom
from phoenix_operator.models import common, experiment, kinds, manifests, pipeline
from phoenix_operator.reconcile import conditions, promotion
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.runtime import kubernetes as runtime_kubernetes

PLURAL = "phoenixexperiments"
TICK_SECONDS = 2.0
ACCEPTED_SPEC = f"{GROUP}/accepted-spec"
NO_PROMETHEUS = "no Prometheus: set spec.analysis.prometheus.url or start the operator with --prometheus-url"


def _accepted(body: kopf.Body) -> tuple[kinds.PhoenixExperiment, list[str]]:
    """The experiment with the spec it was started with and the live `abort`,
    and the spec fields edited since it started."""
    live = context.parse(body)
    assert isinstance(live, kinds.PhoenixExperiment)
    frozen = body.get("metadata", {}).get("annotations", {}).get(ACCEPTED_SPEC)
    if frozen is None:
        return live, []
    accepted = json.loads(frozen)
    current = live.spec.to_wire()
    edited = sorted(k for k in set(accepted) | set(current) if k != "abort" and accepted.get(k) != current.get(k))
    spec = experiment.ExperimentSpec.model_validate({**accepted, "abort": live.spec.abort})
    return live.model_copy(update={"spec": spec}), edited


def _spec_accepted(
    status: experiment.ExperimentStatus, edited: list[str], generation: int | None, now: datetime
) -> experiment.ExperimentStatus:
    condition: tuple[conditions.Status, str, str]
    if edited:
        fields = ", ".join(f"spec.{name}" for name in edited)
        condition = (
            "False",
            "ImmutableWhileRunning",
            f"{fields} changed after the experiment started and is ignored; delete and re-create it to change it",
        )
    else:
        condition = ("True", "Accepted", "the spec is valid")
    state, reason, message = condition
    updated = conditions.set_condition(status.conditions, "SpecAccepted", state, reason, message, generation, now)
    return status.model_copy(update={"conditions": updated})


def _pipelines_ready(ctx: context.Context, obj: kinds.PhoenixExperiment) -> dict[str, bool]:
    ready = {}
    for variant, name in reconcile_experiment.variant_pipelines(obj).items():
        found = ctx.api.get(API_VERSION, "PhoenixProcessPipeline", obj.metadata.namespace or "default", name)
        try:
            found_status = pipeline.PipelineStatus.model_validate((found or {}).get("status") or {})
        except ValueError:
            found_status = pipeline.PipelineStatus()
        condition = conditions.find(found_status.conditions, "Ready")
        ready[variant] = condition is not None and condition.status == "True"
    return ready


def _load_started_at(ctx: context.Context, obj: kinds.PhoenixExperiment) -> datetime | None:
    name = reconcile_experiment.load_name(obj.metadata.name)
    found = ctx.api.get(API_VERSION, "LoadSim", obj.metadata.namespace or "default", name)
    started = ((found or {}).get("status") or {}).get("startedAt")
    return datetime.fromisoformat(started) if started else None


def _client(ctx: context.Context, obj: kinds.PhoenixExperiment) -> prom.Client | None:
    settings = obj.spec.analysis.prometheus
    if settings is None:
        return prom.Client(ctx.prometheus_url) if ctx.prometheus_url else None
    token = None
    if settings.secret_ref is not None:
        ref = settings.secret_ref
        token = ctx.api.secret_value(obj.metadata.namespace or "default", ref.name, ref.key).strip()
    return prom.Client(settings.url, bearer_token=token)


def _measure(
    ctx: context.Context, obj: kinds.PhoenixExperiment, started: datetime, now: float
) -> reconcile_experiment.Observed:
    try:
        client = _client(ctx, obj)
    except runtime_kubernetes.SecretUnreadable as error:
        # like an unreachable Prometheus: a condition now, Failed after the limit
        return reconcile_experiment.Observed(measurement_problem=str(error), prometheus_unreachable=True)
    if client is None:
        return reconcile_experiment.Observed(
            measurement_problem=NO_PROMETHEUS,
            prometheus_unreachable=True,
        )
    step = ctx.measure_step_seconds
    spec = obj.spec
    begin = started.timestamp() + common.duration_seconds(spec.warmup)
    end = min(now - adapter.SETTLE_STEPS * step, started.timestamp() + common.duration_seconds(spec.duration))
    grid = prom.Grid(math.ceil(begin / step) * step, math.floor(end / step) * step, step)
    if grid.end < grid.start + 2 * step:
        return reconcile_experiment.Observed()
    measurement = adapter.measure(client, obj.metadata.name, spec, grid)
    if measurement.analysis_input is None:
        return reconcile_experiment.Observed(
            measurement_problem=measurement.message, prometheus_unreachable=measurement.phase == "Error"
        )
    analysis = engine.analyze(measurement.analysis_input)
    metrics.LAST_ANALYSIS.set(time.time())
    return reconcile_experiment.Observed(analysis=analysis)


def _observe(ctx: context.Context, obj: kinds.PhoenixExperiment, now: datetime) -> reconcile_experiment.Observed:
    current = obj.status or experiment.ExperimentStatus()
    if obj.spec.abort or current.phase in reconcile_experiment.TERMINAL:
        return reconcile_experiment.Observed()
    if current.phase == "Pending":
        for child in reconcile_experiment.children(obj):
            ctx.api.apply(child)
        return reconcile_experiment.Observed()
    if current.phase == "Initializing":
        return reconcile_experiment.Observed(
            pipelines_ready=_pipelines_ready(ctx, obj), load_started_at=_load_started_at(ctx, obj)
        )
    if not reconcile_experiment.measurement_due(obj, current, now, ctx.limits) or current.started_at is None:
        return reconcile_experiment.Observed()
    key = obj.metadata.uid or obj.metadata.name
    interval = common.duration_seconds(obj.spec.analysis_interval)
    if current.phase == "Running" and time.time() - ctx.last_measured.get(key, 0.0) < interval:
        return reconcile_experiment.Observed()
    ctx.last_measured[key] = time.time()
    return _measure(ctx, obj, current.started_at, now.timestamp())


def _teardown(ctx: context.Context, obj: kinds.PhoenixExperiment, what: frozenset[str]) -> None:
    namespace = obj.metadata.namespace or "default"
    if "load" in what:
        ctx.api.delete(API_VERSION, "LoadSim", namespace, reconcile_experiment.load_name(obj.metadata.name))
    created = {
        v: n for v, n in reconcile_experiment.variant_pipelines(obj).items() if n.startswith(obj.metadata.name + "-")
    }
    for variant, name in created.items():
        if "pipelines" in what or (variant == "candidate" and "candidate" in what):
            ctx.api.delete(API_VERSION, "PhoenixProcessPipeline", namespace, name)


def _promote(ctx: context.Context, obj: kinds.PhoenixExperiment) -> None:
    namespace = obj.metadata.namespace or "default"
    target = promotion.target_name(obj)  # the model requires targetPipelineRef with policy auto
    ctx.api.patch_spec(API_VERSION, "PhoenixProcessPipeline", namespace, target, promotion.promoted_spec(obj))


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_SECONDS)
def tick(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    with metrics.reconciling("PhoenixExperiment"):
        now = datetime.now(UTC)
        try:
            obj, edited = _accepted(body)
        except manifests.InvalidManifest as error:
            message = status.invalid_message(error)
            status.report_invalid(body, patch, experiment.ExperimentStatus, "SpecAccepted", message, now)
            return
        ctx = context.context(memo)
        previous = status.previous(body, experiment.ExperimentStatus)
        obj = obj.model_copy(update={"status": previous})
        observed = _observe(ctx, obj, now)
        step = reconcile_experiment.advance(obj, observed, now, ctx.limits)
        if step.teardown:
            _teardown(ctx, obj, step.teardown)
        if step.promote:
            _promote(ctx, obj)
        if previous.phase == "Pending" and step.status.phase != "Pending":
            annotations = patch.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[ACCEPTED_SPEC] = json.dumps(obj.spec.to_wire(), sort_keys=True)
        new = _spec_accepted(step.status, edited, obj.metadata.generation, now)
        if status.write(body, patch, new) and edited and previous.conditions != new.conditions:
            kopf.warn(body, reason="ImmutableWhileRunning", message=f"edits to {', '.join(edited)} are ignored")
        for event in step.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        if step.status.verdict and not previous.verdict:
            metrics.DECISIONS.labels(step.status.verdict.decision).inc()
        ctx.phases[obj.metadata.uid or obj.metadata.name] = step.status.phase
        metrics.count_phases(ctx.phases.values())
        decision = step.status.verdict.decision if step.status.verdict else None
        namespace = obj.metadata.namespace or "default"
        metrics.record_experiment(namespace, obj.metadata.name, step.status.phase, observed.analysis, decision)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    metadata = body.get("metadata", {})
    ctx.phases.pop(metadata.get("uid"), None)
    metrics.count_phases(ctx.phases.values())
    metrics.forget_experiment(metadata.get("namespace", "default"), metadata.get("name", ""))
