"""PhoenixExperiment: one kopf timer steps each unfinished experiment's controller.

A single timer (not separate create and update handlers) means one writer per
experiment, so the steps of the state machine never race each other. The step
itself is `controllers.experiment.step`, shared with `phoenix run --local`;
this module only writes its result through kopf and records the metrics.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import API_VERSION, GROUP, VERSION
from phoenix_operator.controllers import drift as drift_controller
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.controllers import mirror as mirror_controller
from phoenix_operator.handlers import context, metrics, status
from phoenix_operator.models import experiment, kinds, manifests
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.runtime import base as runtime_base

PLURAL = "phoenixexperiments"
TICK_SECONDS = 2.0
# how often a drift watch looks whether its next check is due; the checks are driftWatch.interval apart
DRIFT_TICK_SECONDS = TICK_SECONDS


def _unfinished(status: kopf.Status, **_: Any) -> bool:
    # a finished experiment has nothing left to step: its timer stops, and costs nothing
    return status.get("phase") not in reconcile_experiment.TERMINAL


def _expiring(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return status.get("phase") in reconcile_experiment.TERMINAL and spec.get("ttlSecondsAfterFinished") is not None


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_SECONDS, when=_unfinished)
def tick(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    with metrics.reconciling("PhoenixExperiment"):
        now = datetime.now(UTC)
        ctx = context.context(memo)
        try:
            ticked = experiment_controller.step(ctx.store, dict(body), now, ctx.experiments, ctx.memory)
        except manifests.InvalidManifest as error:
            message = "; ".join(str(p) for p in error.problems)
            status.report_invalid(body, patch, experiment.ExperimentStatus, "SpecAccepted", message, now)
            return
        except runtime_base.StoreError as error:
            raise status.retry_later(error) from None
        _write(body, patch, ticked)
        _record(ctx, ticked)


def _write(body: kopf.Body, patch: kopf.Patch, ticked: experiment_controller.Tick) -> None:
    if ticked.accepted_spec is not None:
        annotations = patch.setdefault("metadata", {}).setdefault("annotations", {})
        annotations[reconcile_experiment.ACCEPTED_SPEC] = ticked.accepted_spec
    previous = ticked.obj.status or experiment.ExperimentStatus()
    new = ticked.step.status
    if status.write(body, patch, new) and ticked.edited and previous.conditions != new.conditions:
        kopf.warn(body, reason="ImmutableWhileRunning", message=f"edits to {', '.join(ticked.edited)} are ignored")
    for event in ticked.step.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _record(ctx: context.Context, ticked: experiment_controller.Tick) -> None:
    obj, new = ticked.obj, ticked.step.status
    previous = obj.status or experiment.ExperimentStatus()
    if ticked.observed.analysis is not None:
        metrics.LAST_ANALYSIS.set(time.time())
    if new.verdict and not previous.verdict:
        metrics.DECISIONS.labels(new.verdict.decision).inc()
    ctx.phases[obj.metadata.uid or obj.metadata.name] = new.phase
    metrics.count_phases(ctx.phases.values())
    decision = new.verdict.decision if new.verdict else None
    namespace = obj.metadata.namespace or "default"
    metrics.record_experiment(namespace, obj.metadata.name, new.phase, ticked.observed.analysis, decision)


def _watching(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    # a promoted, completed experiment with a drift watch; the check itself decides whether one is due
    promoted = status.get("promotion") or {}
    return (
        status.get("phase") == "Completed"
        and spec.get("driftWatch") is not None
        and bool(promoted)
        and promoted.get("rolledBackAt") is None
    )


@kopf.timer(GROUP, VERSION, PLURAL, interval=DRIFT_TICK_SECONDS, when=_watching)
def watch_drift(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    with metrics.reconciling("PhoenixExperiment"):
        ctx = context.context(memo)
        try:
            checked = drift_controller.check(ctx.store, dict(body), datetime.now(UTC), ctx.experiments)
        except manifests.InvalidManifest:
            return  # reported by the experiment's own step
        except runtime_base.StoreError as error:
            raise status.retry_later(error) from None
        if checked is None:
            return
        status.write(body, patch, checked.step.status)
        for event in checked.step.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        obj = checked.obj
        metrics.record_drift(obj.metadata.namespace or "default", obj.metadata.name, checked.step.status)


@kopf.daemon(GROUP, VERSION, PLURAL, when=_expiring, cancellation_timeout=5)
async def expire(body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any) -> None:
    """Delete a finished experiment once its ttlSecondsAfterFinished has passed; it sleeps until then."""
    try:
        live = manifests.parse_stored(dict(body))
    except manifests.InvalidManifest:
        return  # an experiment the models reject never started, so never finished
    assert isinstance(live, kinds.PhoenixExperiment)
    obj = live.model_copy(update={"status": manifests.stored_status(dict(body), experiment.ExperimentStatus)})
    left = reconcile_experiment.seconds_until_expiry(obj, datetime.now(UTC))
    if left is None:
        return
    await stopped.wait(left)
    if stopped:
        return  # the ttl was edited, or the experiment is already going
    namespace = obj.metadata.namespace or "default"
    store = context.context(memo).store
    await asyncio.to_thread(store.delete, API_VERSION, "PhoenixExperiment", namespace, obj.metadata.name)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def deleted(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A deleted mirrored experiment's copy is ended at once; an operator that was down then ends it when it
    resumes, as the pipeline's own deploy drops a copy whose experiment is gone."""
    if event["type"] == "DELETED":
        store = context.context(memo).store
        try:
            await asyncio.to_thread(mirror_controller.end_deleted, store, dict(event["object"]))
        except runtime_base.StoreError as error:
            raise status.retry_later(error) from None


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    ctx = context.context(memo)
    metadata = body.get("metadata", {})
    ctx.phases.pop(metadata.get("uid"), None)
    ctx.memory.forget(metadata.get("uid"))
    metrics.count_phases(ctx.phases.values())
    metrics.forget_experiment(metadata.get("namespace", "default"), metadata.get("name", ""))
