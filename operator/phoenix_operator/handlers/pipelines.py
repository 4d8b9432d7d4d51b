"""PhoenixProcessPipeline: render, deploy through the runtime, report readiness."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import API_VERSION, GROUP, VERSION
from phoenix_operator.handlers import context, metrics, status
from phoenix_operator.models import kinds, manifests, pipeline
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import kubernetes as runtime_kubernetes

PLURAL = "phoenixprocesspipelines"
# How often local collectors are checked; Kubernetes workloads are watched instead.
OBSERVE_SECONDS = 5.0
COLLECTOR_LABELS = {"app.kubernetes.io/managed-by": "phoenix", "app.kubernetes.io/name": "otelcol"}


def _parse(body: Any, patch: kopf.Patch, now: datetime) -> kinds.PhoenixProcessPipeline | None:
    try:
        obj = context.parse(body)
    except manifests.InvalidManifest as error:
        status.report_invalid(body, patch, pipeline.PipelineStatus, "ConfigValid", status.invalid_message(error), now)
        return None
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    return obj


# Two handlers, which kopf runs one per cycle with a status patch after each:
# users see ConfigValid, or why not, before the slower applies have run.
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def render(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    now = datetime.now(UTC)
    obj = _parse(body, patch, now)
    if obj is None:
        return
    previous = status.previous(body, pipeline.PipelineStatus)
    try:
        rendered = reconcile_pipeline.render(obj)
    except render_pipeline.RenderError as error:
        new = reconcile_pipeline.invalid_status(obj, previous, obj.metadata.generation, str(error), now)
        if status.write(body, patch, new):
            kopf.warn(body, reason="InvalidSpec", message=str(error))
        return
    context.context(memo).rendered[obj.metadata.uid or ""] = (obj.metadata.generation, rendered)
    if previous.config_hash != rendered.config_hash:
        kopf.info(body, reason="Rendered", message=f"config {rendered.config_hash}, deploying")
    status.write(body, patch, reconcile_pipeline.rendered_status(obj, previous, rendered.config_hash, now))


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def deploy(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    with metrics.reconciling("PhoenixProcessPipeline"):
        ctx = context.context(memo)
        try:
            obj = context.parse(body)
            assert isinstance(obj, kinds.PhoenixProcessPipeline)
            generation, rendered = ctx.rendered.pop(obj.metadata.uid or "", (None, None))
            if rendered is None or generation != obj.metadata.generation:
                # after a restart between the two handlers; rendering is deterministic
                rendered = reconcile_pipeline.render(obj)
        except (manifests.InvalidManifest, render_pipeline.RenderError):
            return  # reported by render, and nothing is deployed
        observed = ctx.runtime.apply_pipeline(obj, rendered)
        previous = status.previous(body, pipeline.PipelineStatus)
        now = datetime.now(UTC)
        status.write(body, patch, reconcile_pipeline.status(obj, previous, rendered.config_hash, observed, now))


def _observed_status(ctx: context.Context, body: Any) -> pipeline.PipelineStatus | None:
    """The status the runtime's newest observation gives, if the pipeline is deployed."""
    previous = status.previous(body, pipeline.PipelineStatus)
    if previous.config_hash is None:
        return None  # never deployed: invalid, or the create handler has not run yet
    try:
        obj = context.parse(body)
    except manifests.InvalidManifest:
        return None
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    observed = ctx.runtime.observe_pipeline(obj)
    if observed is None:
        return None
    return reconcile_pipeline.status(obj, previous, previous.config_hash, observed, datetime.now(UTC))


def _polls_readiness(memo: kopf.Memo, **_: Any) -> bool:
    return context.context(memo).runtime.polls_readiness


def _watches_workloads(memo: kopf.Memo, **_: Any) -> bool:
    return not context.context(memo).runtime.polls_readiness


@kopf.timer(GROUP, VERSION, PLURAL, interval=OBSERVE_SECONDS, initial_delay=OBSERVE_SECONDS, when=_polls_readiness)
def observe(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    new = _observed_status(context.context(memo), body)
    if new is not None:
        status.write(body, patch, new)


async def _sync_readiness(ctx: context.Context, body: Any) -> None:
    """Write what the newest workload event says, unless the pipeline changed meanwhile.

    A conflict needs no retry: the change that caused it is itself an event,
    and the pipeline's event handler syncs again from that newer state.
    """
    new = _observed_status(ctx, body)
    if new is not None and new.to_wire() != dict(body.get("status") or {}):
        await asyncio.to_thread(
            ctx.api.patch_status_if_unchanged,
            API_VERSION,
            runtime_kubernetes.PIPELINE_KIND,
            dict(body["metadata"]),
            new.to_wire(),
        )


@kopf.on.event("apps", "v1", "deployments", labels=COLLECTOR_LABELS, when=_watches_workloads)
@kopf.on.event("apps", "v1", "daemonsets", labels=COLLECTOR_LABELS, when=_watches_workloads)
async def workload_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    assert isinstance(ctx.runtime, runtime_kubernetes.KubernetesRuntime)
    workload: dict[str, Any] = dict(event["object"])
    event_type = str(event["type"])
    owner = ctx.runtime.record_workload(event_type, workload)
    if owner is not None and event_type != "DELETED":
        namespace = workload["metadata"]["namespace"]
        found = await asyncio.to_thread(ctx.api.get, API_VERSION, runtime_kubernetes.PIPELINE_KIND, namespace, owner)
        if found is not None:
            await _sync_readiness(ctx, found)


# Event handlers are async: kopf runs them before every cycle's handlers, and
# in its thread pool they would queue behind slow applies.
@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    obj = context.deleted_object(event)
    if isinstance(obj, kinds.PhoenixProcessPipeline):
        ctx.rendered.pop(obj.metadata.uid or "", None)
        await asyncio.to_thread(ctx.runtime.delete_pipeline, obj)
    elif event["type"] == "MODIFIED" and not ctx.runtime.polls_readiness:
        # the deploy handler's status may predate a workload event seen meanwhile
        await _sync_readiness(ctx, event["object"])
