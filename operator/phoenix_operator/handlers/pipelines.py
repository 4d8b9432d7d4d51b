"""PhoenixProcessPipeline: render, deploy through the runtime, report readiness."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from phoenix_operator import GROUP, VERSION
from phoenix_operator.handlers import context, metrics, status
from phoenix_operator.models import kinds, manifests, pipeline
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline

PLURAL = "phoenixprocesspipelines"
# Readiness of the collectors is polled: their workloads are not watched.
OBSERVE_SECONDS = 5.0


def _parse(body: Any, patch: kopf.Patch, now: datetime) -> kinds.PhoenixProcessPipeline | None:
    try:
        obj = context.parse(body)
    except manifests.InvalidManifest as error:
        status.report_invalid(body, patch, pipeline.PipelineStatus, "ConfigValid", status.invalid_message(error), now)
        return None
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    return obj


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
def reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    with metrics.reconciling("PhoenixProcessPipeline"):
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
        observed = context.context(memo).runtime.apply_pipeline(obj, rendered)
        if previous.config_hash != rendered.config_hash:
            kopf.info(body, reason="Rendered", message=f"config {rendered.config_hash} applied")
        status.write(body, patch, reconcile_pipeline.status(obj, previous, rendered.config_hash, observed, now))


@kopf.timer(GROUP, VERSION, PLURAL, interval=OBSERVE_SECONDS, initial_delay=OBSERVE_SECONDS)
def observe(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    previous = status.previous(body, pipeline.PipelineStatus)
    if previous.config_hash is None:
        return  # never deployed: invalid, or the create handler has not run yet
    try:
        obj = context.parse(body)
    except manifests.InvalidManifest:
        return
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    observed = context.context(memo).runtime.observe_pipeline(obj)
    if observed is not None:
        new = reconcile_pipeline.status(obj, previous, previous.config_hash, observed, datetime.now(UTC))
        status.write(body, patch, new)


@kopf.on.event(GROUP, VERSION, PLURAL)
def deleted(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    obj = context.deleted_object(event)
    if isinstance(obj, kinds.PhoenixProcessPipeline):
        context.context(memo).runtime.delete_pipeline(obj)
