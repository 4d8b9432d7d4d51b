"""Mirrored input through the Store: which copies a pipeline's config carries, and asking for one or ending it.

Shared by the pipeline controller, which renders the copies, the adaptive
loop, which must expect the same config, and the experiment controller,
which asks for a copy and ends it.
"""

from __future__ import annotations

from typing import Any

from phoenix_operator import API_VERSION
from phoenix_operator.models import experiment, kinds, manifests, pipeline
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import mirror as reconcile_mirror
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import base as runtime_base

PIPELINE = "PhoenixProcessPipeline"


def _experiment(store: runtime_base.Store, namespace: str, name: str) -> kinds.PhoenixExperiment | None:
    body = store.get(API_VERSION, "PhoenixExperiment", namespace, name)
    return None if body is None else _as_started(body)


def _as_started(body: dict[str, Any]) -> kinds.PhoenixExperiment | None:
    """The experiment with the spec it started with, or None when it is invalid."""
    try:
        live = manifests.parse_stored(body)
    except manifests.InvalidManifest:
        return None
    assert isinstance(live, kinds.PhoenixExperiment)
    frozen = (body["metadata"].get("annotations") or {}).get(reconcile_experiment.ACCEPTED_SPEC)
    obj, _ = reconcile_experiment.accepted(live, frozen)
    return obj.model_copy(update={"status": manifests.stored_status(body, experiment.ExperimentStatus)})


def attached(
    store: runtime_base.Store, obj: kinds.PhoenixProcessPipeline
) -> tuple[tuple[render_pipeline.Mirror, ...], list[str]]:
    """The copies the pipeline's config carries now, and the annotation keys that ask for none any more."""
    namespace = obj.metadata.namespace or "default"
    mirrors: list[render_pipeline.Mirror] = []
    stale: list[str] = []
    for name, uid in sorted(reconcile_mirror.requested(obj.metadata.annotations).items()):
        found = _experiment(store, namespace, name)
        urls: dict[str, str | None] = {}
        if found is not None:
            for variant, shadow in reconcile_experiment.variant_pipelines(found).items():
                body = store.get(API_VERSION, PIPELINE, namespace, shadow) or {}
                urls[variant] = manifests.stored_status(body, pipeline.PipelineStatus).endpoints.get("otlpHttp")
        mirror, is_stale = reconcile_mirror.judge(obj.metadata.name, uid, found, urls)
        if is_stale:
            stale.append(reconcile_mirror.annotation_key(name))
        elif mirror is not None:
            mirrors.append(mirror)
    return tuple(mirrors), stale


def request(store: runtime_base.Store, obj: kinds.PhoenixExperiment, source: str) -> None:
    """Ask `source` for a copy of its input; its pipeline controller adds it once the shadows have addresses."""
    key = reconcile_mirror.annotation_key(obj.metadata.name)
    store.annotate(API_VERSION, PIPELINE, obj.metadata.namespace or "default", source, {key: obj.metadata.uid or ""})


def end(store: runtime_base.Store, obj: kinds.PhoenixExperiment) -> None:
    """Stop copying the input to the experiment's shadows; nothing to do for one that is not mirrored."""
    source = reconcile_experiment.mirror_source(obj)
    if source is not None:
        key = reconcile_mirror.annotation_key(obj.metadata.name)
        store.annotate(API_VERSION, PIPELINE, obj.metadata.namespace or "default", source, {key: None})


def end_deleted(store: runtime_base.Store, body: dict[str, Any]) -> None:
    """What a deleted experiment leaves to do: stop the copy it asked for."""
    obj = _as_started(body)
    if obj is not None:
        end(store, obj)
