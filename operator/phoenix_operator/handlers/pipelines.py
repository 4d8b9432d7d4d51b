"""PhoenixProcessPipeline: acknowledge at once, then render, deploy and report from a work queue.

kopf's handler only parses the spec and writes the first status, so a user
sees within moments that the pipeline was accepted, or why not. Rendering,
the three server-side applies and the readiness they lead to run from the
rate-limited work queue, which also takes every workload event: one writer
of the deployed state, always from the pipeline's newest spec.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import API_VERSION, GROUP, VERSION
from phoenix_operator.handlers import context, metrics, status, workqueue
from phoenix_operator.models import kinds, manifests, pipeline
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import kubernetes as runtime_kubernetes

PLURAL = "phoenixprocesspipelines"
# How often local collectors are checked; Kubernetes workloads are watched instead.
OBSERVE_SECONDS = 5.0
COLLECTOR_LABELS = {"app.kubernetes.io/managed-by": "phoenix", "app.kubernetes.io/name": "otelcol"}
# Applies may block on a slow API server or a starting local collector; one
# such pipeline must not hold up the rest.
WORKERS = 2


def _key(body: Any) -> workqueue.Key:
    return body["metadata"].get("namespace") or "default", body["metadata"]["name"]


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def accept(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    now = datetime.now(UTC)
    try:
        obj = context.parse(body)
    except manifests.InvalidManifest as error:
        status.report_invalid(body, patch, pipeline.PipelineStatus, "ConfigValid", status.invalid_message(error), now)
        return
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    previous = status.previous(body, pipeline.PipelineStatus)
    status.write(body, patch, reconcile_pipeline.accepted_status(obj, previous, now))
    context.context(memo).deploys.add(_key(body), apply=True)


async def _deploy(ctx: context.Context, key: workqueue.Key, apply: bool) -> bool:
    """Render the pipeline's newest spec, apply it if asked, and write the status it gives.

    False when the pipeline changed before its status was written: the queue
    runs it again from that newer state.
    """
    body = await asyncio.to_thread(ctx.api.get, API_VERSION, runtime_kubernetes.PIPELINE_KIND, *key)
    if body is None:
        return True  # deleted: owner references remove the children, a watch event the local processes
    try:
        obj = context.parse(body)
    except manifests.InvalidManifest:
        return True  # reported by accept, and nothing is deployed
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    previous = status.previous(body, pipeline.PipelineStatus)
    with metrics.reconciling("PhoenixProcessPipeline"):
        try:
            rendered = reconcile_pipeline.render(obj)
        except render_pipeline.RenderError as error:
            now = datetime.now(UTC)
            new = reconcile_pipeline.invalid_status(obj, previous, obj.metadata.generation, str(error), now)
            return await _write(ctx, body, new, ("Warning", "InvalidSpec", str(error)))
        if apply:
            observed: reconcile_pipeline.Observed | None = await asyncio.to_thread(
                ctx.runtime.apply_pipeline, obj, rendered
            )
        else:
            observed = ctx.runtime.observe_pipeline(obj)
    now = datetime.now(UTC)
    if observed is None:
        new = reconcile_pipeline.rendered_status(obj, previous, rendered.config_hash, now)
    else:
        new = reconcile_pipeline.status(obj, previous, rendered.config_hash, observed, now)
    return await _write(ctx, body, new, None)


async def _write(
    ctx: context.Context, body: dict[str, Any], new: pipeline.PipelineStatus, event: tuple[str, str, str] | None
) -> bool:
    """Patch a changed status, and only then post `event`, so a resync repeats no event.

    False if the pipeline changed since `body` was read.
    """
    wire = new.to_wire()
    if wire == (body.get("status") or {}):
        return True
    written = await asyncio.to_thread(
        ctx.api.patch_status_if_unchanged, API_VERSION, runtime_kubernetes.PIPELINE_KIND, body["metadata"], wire
    )
    if written and event is not None:
        await asyncio.to_thread(ctx.api.post_event, body, *event)
    return written


@kopf.on.startup()
async def start_deploying(memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    metrics.DEPLOY_QUEUE.set_function(lambda: len(ctx.deploys))
    ctx.deploy_workers = [
        asyncio.create_task(ctx.deploys.work(lambda key, apply: _deploy(ctx, key, apply))) for _ in range(WORKERS)
    ]


@kopf.on.cleanup()
async def stop_deploying(memo: kopf.Memo, **_: Any) -> None:
    for worker in context.context(memo).deploy_workers:
        worker.cancel()


async def observe(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    context.context(memo).deploys.add(_key(body), apply=False)


async def workload_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    assert isinstance(ctx.runtime, runtime_kubernetes.KubernetesRuntime)
    workload: dict[str, Any] = dict(event["object"])
    owner = ctx.runtime.record_workload(str(event["type"]), workload)
    if owner is not None:
        ctx.deploys.add((workload["metadata"]["namespace"], owner), apply=False)


async def deleted(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = context.deleted_object(event)
    if isinstance(obj, kinds.PhoenixProcessPipeline):
        await asyncio.to_thread(context.context(memo).runtime.delete_pipeline, obj)


def watch_readiness(runtime: context.Runtime) -> None:
    """Register how readiness reaches the work queue, which depends on the runtime.

    Kubernetes workloads are watched. Local processes send no events, so they
    are polled, and stopped when their pipeline is deleted; in Kubernetes the
    garbage collector follows the owner references. Registered only for the
    runtime in use: kopf would otherwise evaluate a filter on every event.
    """
    if runtime.polls_readiness:
        kopf.timer(GROUP, VERSION, PLURAL, interval=OBSERVE_SECONDS, initial_delay=OBSERVE_SECONDS)(observe)
        kopf.on.event(GROUP, VERSION, PLURAL)(deleted)
    else:
        kopf.on.event("apps", "v1", "deployments", labels=COLLECTOR_LABELS)(workload_changed)
        kopf.on.event("apps", "v1", "daemonsets", labels=COLLECTOR_LABELS)(workload_changed)
