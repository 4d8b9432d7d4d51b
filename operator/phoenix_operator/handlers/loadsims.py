"""LoadSim: the controller's step on creation, on resume and every few seconds until the load ends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import GROUP, VERSION
from phoenix_operator.controllers import loadsim as loadsim_controller
from phoenix_operator.handlers import context, metrics, status
from phoenix_operator.models import kinds, loadsim, manifests
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.runtime import base as runtime_base

PLURAL = "loadsims"
OBSERVE_SECONDS = 5.0


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _step(body, patch, memo)


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    # a load runs once: once it has ended its timer stops, and costs nothing
    succeeded = [c for c in status.get("conditions") or [] if c.get("type") == "Succeeded"]
    return not succeeded or succeeded[0].get("status") == "Unknown"


@kopf.timer(GROUP, VERSION, PLURAL, interval=OBSERVE_SECONDS, initial_delay=OBSERVE_SECONDS, when=_unfinished)
def observe(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _step(body, patch, memo)


def _step(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    with metrics.reconciling("LoadSim"):
        now = datetime.now(UTC)
        obj = status.parsed(body, patch, kinds.LoadSim, loadsim.LoadSimStatus, "Ready", now)
        if obj is None:
            return
        ctx = context.context(memo)
        previous = manifests.stored_status(body, loadsim.LoadSimStatus)
        try:
            outcome = loadsim_controller.step(ctx.store, ctx.runtime, obj, previous, now)
        except runtime_base.StoreError as error:
            raise status.retry_later(error) from None
        if outcome is not None and status.write(body, patch, outcome.status) and outcome.failure:
            kopf.warn(body, reason=outcome.failure.reason, message=outcome.failure.message)


def watch_loads(runtime: runtime_base.Runtime) -> None:
    """Register how a load's run reaches the runtime, which depends on the runtime.

    A process runtime stops a deleted LoadSim's process; in Kubernetes the
    garbage collector removes its Job, and the Job's watch events keep its
    state, so observing a running load sends no request.
    """
    if isinstance(runtime, runtime_base.ProcessRuntime):
        processes = runtime

        async def deleted(event: kopf.RawEvent, **_: Any) -> None:
            obj = status.deleted_object(event)
            if isinstance(obj, kinds.LoadSim):
                await asyncio.to_thread(processes.delete_load, obj)

        kopf.on.event(GROUP, VERSION, PLURAL)(deleted)
    elif isinstance(runtime, runtime_base.WorkloadRuntime):
        workloads = runtime

        async def job_changed(event: kopf.RawEvent, **_: Any) -> None:
            workloads.record_job(str(event["type"]), dict(event["object"]))

        kopf.on.event("batch", "v1", "jobs", labels=reconcile_loadsim.JOB_LABELS)(job_changed)
