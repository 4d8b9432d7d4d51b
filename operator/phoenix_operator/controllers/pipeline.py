"""One step of a pipeline: render its newest spec, deploy it if asked, and report what runs.

When a collector binary is installed, it judges each new config first: one it
rejects is never deployed. The config carries a copy of the input for each
live experiment that mirrors the pipeline, and loses it once that one ends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from phoenix_operator import API_VERSION
from phoenix_operator.controllers import mirror as mirror_controller
from phoenix_operator.models import kinds, manifests, pipeline
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import collector
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import base as runtime_base

KIND = "PhoenixProcessPipeline"


def deploy(store: runtime_base.Store, runtime: runtime_base.Runtime, namespace: str, name: str, apply: bool) -> bool:
    """Render the pipeline's newest spec, apply it if asked, and write the status it gives.

    False when the pipeline changed before its status was written: the
    caller runs it again from that newer state.
    """
    body = store.get(API_VERSION, KIND, namespace, name)
    if body is None:
        return True  # deleted: owner references remove the children, the deletion watch the local processes
    try:
        obj = manifests.parse_stored(body)
    except manifests.InvalidManifest:
        return True  # reported when it was accepted, and nothing is deployed
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    previous = manifests.stored_status(body, pipeline.PipelineStatus)
    mirrors, stale = mirror_controller.attached(store, obj)
    if stale:
        # an ended or deleted experiment's copy: removed, and the config without it deployed now
        store.annotate(API_VERSION, KIND, namespace, name, dict.fromkeys(stale))
        return deploy(store, runtime, namespace, name, apply=True)
    try:
        rendered = reconcile_pipeline.render(obj, previous.adaptive, mirrors)
    except render_pipeline.RenderError as error:
        now = datetime.now(UTC)
        new = reconcile_pipeline.invalid_status(obj, previous, obj.metadata.generation, str(error), now)
        return _write(store, body, new, ("Warning", "InvalidSpec", str(error)))
    # a config already deployed was judged before it was
    judged = rendered.config_hash == previous.config_hash or not collector.installed()
    refusal = None if judged else collector.refusal(reconcile_pipeline.shape(obj, previous.adaptive, mirrors))
    if refusal is not None:
        # never deployed: the ConfigMap the running collectors would reload stays as it is
        new = reconcile_pipeline.rejected_status(obj, previous, refusal, datetime.now(UTC))
        return _write(store, body, new, ("Warning", "CollectorRejected", refusal))
    # the same spec rendering another config with a copy, before or now: its shadows' addresses moved
    # (a restarted local runtime's new ports), and the copy follows them
    moved = rendered.config_hash != previous.config_hash and bool(rendered.mirrors or previous.mirrors)
    observed = runtime.apply_pipeline(obj, rendered) if apply or moved else runtime.observe_pipeline(obj)
    now = datetime.now(UTC)
    if observed is None:
        new = reconcile_pipeline.rendered_status(obj, previous, rendered, now)
    else:
        new = reconcile_pipeline.status(obj, previous, rendered, observed, now)
    return _write(store, body, new, None)


def _write(
    store: runtime_base.Store,
    body: dict[str, Any],
    new: pipeline.PipelineStatus,
    event: tuple[str, str, str] | None,
) -> bool:
    """Patch a changed status, and only then post `event`, so a resync repeats no event.

    False if the pipeline changed since `body` was read.
    """
    wire = new.to_wire()
    if wire == (body.get("status") or {}):
        return True
    written = store.patch_status_if_unchanged(API_VERSION, KIND, body["metadata"], wire)
    if written and event is not None:
        store.post_event(body, *event)
    return written
