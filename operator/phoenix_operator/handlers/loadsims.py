"""LoadSim: once its target pipelines are ready, run the load and mirror its state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import API_VERSION, GROUP, VERSION
from phoenix_operator.handlers import context, metrics, status
from phoenix_operator.models import kinds, loadsim, manifests, pipeline
from phoenix_operator.reconcile import conditions
from phoenix_operator.reconcile import loadsim as reconcile_loadsim

PLURAL = "loadsims"
OBSERVE_SECONDS = 5.0


def _ready_endpoints(ctx: context.Context, obj: kinds.LoadSim) -> dict[str, str | None]:
    endpoints: dict[str, str | None] = {}
    for target in obj.spec.targets:
        if not isinstance(target, loadsim.PipelineTarget):
            continue
        found = ctx.api.get(
            API_VERSION, "PhoenixProcessPipeline", obj.metadata.namespace or "default", target.pipeline_ref
        )
        try:
            pipeline_status = pipeline.PipelineStatus.model_validate((found or {}).get("status") or {})
        except ValueError:
            pipeline_status = pipeline.PipelineStatus()
        ready = conditions.find(pipeline_status.conditions, "Ready")
        endpoints[target.pipeline_ref] = (
            pipeline_status.endpoints.get("otlpHttp") if ready and ready.status == "True" else None
        )
    return endpoints


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(body, patch, memo)


@kopf.timer(GROUP, VERSION, PLURAL, interval=OBSERVE_SECONDS, initial_delay=OBSERVE_SECONDS)
def observe(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _reconcile(body, patch, memo)


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    with metrics.reconciling("LoadSim"):
        now = datetime.now(UTC)
        try:
            obj = context.parse(body)
        except manifests.InvalidManifest as error:
            status.report_invalid(body, patch, loadsim.LoadSimStatus, "Ready", status.invalid_message(error), now)
            return
        assert isinstance(obj, kinds.LoadSim)
        previous = status.previous(body, loadsim.LoadSimStatus)
        succeeded = conditions.find(previous.conditions, "Succeeded")
        if succeeded and succeeded.status != "Unknown":
            return  # a load runs once
        ctx = context.context(memo)
        try:
            targets = reconcile_loadsim.resolve_targets(obj, _ready_endpoints(ctx, obj))
            observed = ctx.runtime.apply_load(obj, targets)
        except reconcile_loadsim.TargetsNotReady as waiting:
            status.write(body, patch, reconcile_loadsim.status(obj, previous, None, str(waiting), now))
            return
        new = reconcile_loadsim.status(obj, previous, observed, "", now)
        if status.write(body, patch, new) and observed.failed:
            kopf.warn(body, reason="LoadFailed", message=observed.message or "the load run failed")


@kopf.on.event(GROUP, VERSION, PLURAL)
async def deleted(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = context.deleted_object(event)
    if isinstance(obj, kinds.LoadSim):
        await asyncio.to_thread(context.context(memo).runtime.delete_load, obj)
