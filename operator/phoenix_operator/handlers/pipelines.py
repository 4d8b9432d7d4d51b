"""PhoenixProcessPipeline: acknowledge at once, then render, deploy and report from a work queue.

kopf's handler only parses the spec and writes the first status, so a user
sees within moments that the pipeline was accepted, or why not. Rendering,
the three server-side applies and the readiness they lead to run from the
rate-limited work queue, which also takes every workload event: one writer
of the deployed state, always from the pipeline's newest spec.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import GROUP, VERSION
from phoenix_operator.controllers import adaptive as adaptive_controller
from phoenix_operator.controllers import pipeline as pipeline_controller
from phoenix_operator.handlers import context, metrics, status, workqueue
from phoenix_operator.models import kinds, manifests, pipeline
from phoenix_operator.reconcile import mirror as reconcile_mirror
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.runtime import base as runtime_base

PLURAL = "phoenixprocesspipelines"
# How often local collectors are checked; Kubernetes workloads are watched instead.
OBSERVE_SECONDS = 5.0
COLLECTOR_LABELS = {"app.kubernetes.io/managed-by": "phoenix", "app.kubernetes.io/name": "otelcol"}
# How often an adaptive pipeline's loop looks whether its next turn is due; turns are adjustIntervalSeconds apart.
ADAPT_TICK_SECONDS = 5.0
# Each deploy mostly waits on the API server's answers (a read, the applies, a
# status), so several run at once; one blocked on a slow API server or a
# starting local collector does not hold up the rest. The work queue's rate
# limit, not this, bounds the load on the API server. They get threads of
# their own: asyncio's shared pool has CPUs + 4 (six on two cores), and the
# experiments' handlers wait on Prometheus in it.
WORKERS = 16


def _key(body: Any) -> workqueue.Key:
    return body["metadata"].get("namespace") or "default", body["metadata"]["name"]


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def accept(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    now = datetime.now(UTC)
    obj = status.parsed(body, patch, kinds.PhoenixProcessPipeline, pipeline.PipelineStatus, "ConfigValid", now)
    if obj is None:
        return
    previous = manifests.stored_status(body, pipeline.PipelineStatus)
    status.write(body, patch, reconcile_pipeline.accepted_status(obj, previous, now))
    context.context(memo).deploys.add(_key(body), apply=True)


@kopf.on.update(GROUP, VERSION, PLURAL, field="metadata.annotations")
async def remirror(old: Any, new: Any, memo: kopf.Memo, body: kopf.Body, **_: Any) -> None:
    """An experiment asked for a copy of the pipeline's input, or ended one: its config changes."""
    if reconcile_mirror.requested(old or {}) != reconcile_mirror.requested(new or {}):
        context.context(memo).deploys.add(_key(body), apply=True)


async def _deploy(ctx: context.Context, key: workqueue.Key, apply: bool) -> bool:
    with metrics.reconciling("PhoenixProcessPipeline"):
        return await asyncio.get_running_loop().run_in_executor(
            ctx.deploy_threads, pipeline_controller.deploy, ctx.store, ctx.runtime, *key, apply
        )


@kopf.on.startup()
async def start_deploying(memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    metrics.DEPLOY_QUEUE.set_function(lambda: len(ctx.deploys))
    ctx.deploy_threads = concurrent.futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="deploy")
    ctx.deploy_workers = [
        asyncio.create_task(ctx.deploys.work(lambda key, apply: _deploy(ctx, key, apply))) for _ in range(WORKERS)
    ]


@kopf.on.cleanup()
async def stop_deploying(memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    for worker in ctx.deploy_workers:
        worker.cancel()
    if ctx.deploy_threads is not None:
        ctx.deploy_threads.shutdown(wait=False, cancel_futures=True)


def _adaptive(spec: kopf.Spec, **_: Any) -> bool:
    return spec.get("template") == "adaptive"


@kopf.timer(GROUP, VERSION, PLURAL, interval=ADAPT_TICK_SECONDS, when=_adaptive)
async def adapt(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """The adaptive loop's turn; a new keep list is rolled out by the deploy queue, like a new spec."""
    ctx = context.context(memo)
    with metrics.reconciling("PhoenixProcessPipeline"):
        try:
            turned = await asyncio.to_thread(
                adaptive_controller.turn, ctx.store, dict(body), datetime.now(UTC), ctx.experiments.default_prometheus
            )
            if turned is None:
                return
            written = await asyncio.to_thread(adaptive_controller.write, ctx.store, dict(body), turned)
        except manifests.InvalidManifest:
            return  # reported when it was accepted
        except runtime_base.StoreError as error:
            raise status.retry_later(error) from None
    if not written:
        return
    if turned.status.adaptive is not None:
        metrics.record_adaptive(turned.obj.metadata.namespace or "default", turned.obj.metadata.name,
                                turned.status.adaptive)  # fmt: skip
    if turned.changed:
        ctx.deploys.add(_key(body), apply=True)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(body: kopf.Body, **_: Any) -> None:
    metadata = body.get("metadata", {})
    metrics.forget_pipeline(metadata.get("namespace", "default"), metadata.get("name", ""))


def watch_readiness(runtime: runtime_base.Runtime) -> None:
    """Register how readiness reaches the work queue, which depends on the runtime.

    Workloads report their readiness in watch events. A process runtime's
    collectors send none, so they are polled, and stopped when their pipeline
    is deleted; in Kubernetes the garbage collector follows the owner
    references. Registered only for the runtime in use: kopf would otherwise
    evaluate a filter on every event.
    """
    if isinstance(runtime, runtime_base.ProcessRuntime):
        processes = runtime

        async def observe(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
            context.context(memo).deploys.add(_key(body), apply=False)

        async def deleted(event: kopf.RawEvent, **_: Any) -> None:
            obj = status.deleted_object(event)
            if isinstance(obj, kinds.PhoenixProcessPipeline):
                await asyncio.to_thread(processes.delete_pipeline, obj)

        kopf.timer(GROUP, VERSION, PLURAL, interval=OBSERVE_SECONDS, initial_delay=OBSERVE_SECONDS)(observe)
        kopf.on.event(GROUP, VERSION, PLURAL)(deleted)
    elif isinstance(runtime, runtime_base.WorkloadRuntime):
        workloads = runtime

        async def workload_changed(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
            workload: dict[str, Any] = dict(event["object"])
            owner = workloads.record_workload(str(event["type"]), workload)
            if owner is not None:
                context.context(memo).deploys.add((workload["metadata"]["namespace"], owner), apply=False)

        kopf.on.event("apps", "v1", "deployments", labels=COLLECTOR_LABELS)(workload_changed)
        kopf.on.event("apps", "v1", "daemonsets", labels=COLLECTOR_LABELS)(workload_changed)
        # the EndpointSlice controller copies the Service's labels onto its slices
        kopf.on.event("discovery.k8s.io", "v1", "endpointslices", labels=COLLECTOR_LABELS)(workload_changed)
