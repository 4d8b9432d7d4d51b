"""One turn of an adaptive pipeline's control loop: observe it, decide, and say whether to roll a new config.

Like the other controllers it returns the status and events for the driver to
write; the actuator is the pipeline's own deploy, which renders the keep list
the status holds. So the operator's handler and `run --local` share this turn
and only decide when to call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from phoenix_operator import API_VERSION
from phoenix_operator.controllers import mirror as mirror_controller
from phoenix_operator.measure import adaptive as measure_adaptive
from phoenix_operator.measure import prometheus
from phoenix_operator.models import kinds, manifests, pipeline
from phoenix_operator.recommend import usage
from phoenix_operator.reconcile import adaptive, conditions
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import base as runtime_base


@dataclass(frozen=True)
class Turn:
    obj: kinds.PhoenixProcessPipeline
    status: pipeline.PipelineStatus
    events: tuple[tuple[str, str, str], ...]
    # the keep list or the protected attributes changed: the pipeline must be deployed again
    changed: bool


def turn(store: runtime_base.Store, body: dict[str, Any], now: datetime, default_prometheus: str | None) -> Turn | None:
    """The loop's turn for an adaptive pipeline when one is due, else None.

    Raises manifests.InvalidManifest for a pipeline the models reject.
    """
    obj = manifests.parse_stored(body)
    assert isinstance(obj, kinds.PhoenixProcessPipeline)
    if not isinstance(obj.spec, pipeline.AdaptivePipelineSpec):
        return None
    parameters = obj.spec.parameters
    status = manifests.stored_status(body, pipeline.PipelineStatus)
    if not adaptive.due(parameters, status.adaptive, now):
        return None
    protected = sorted(_protected(store, obj))
    before = status.adaptive or pipeline.AdaptiveStatus(series_budget=parameters.series_budget)
    chosen = before.model_copy(update={"protected_attributes": protected})
    mirrors, _ = mirror_controller.attached(store, obj)
    observation = _observe(obj, parameters, status, chosen, mirrors, now, default_prometheus)
    decision = adaptive.decide(parameters, chosen, status.conditions, observation, obj.metadata.generation, now)
    changed = decision.changed or before.protected_attributes != protected
    new = status.model_copy(update={"adaptive": decision.status, "conditions": decision.conditions})
    return Turn(obj, new, decision.events, changed)


def _protected(store: runtime_base.Store, obj: kinds.PhoenixProcessPipeline) -> frozenset[str]:
    """The process attributes the critical queries of the pipeline's experiment need, whatever K is."""
    if obj.spec.experiment_ref is None:
        return frozenset()
    found = store.get(API_VERSION, "PhoenixExperiment", obj.metadata.namespace or "default", obj.spec.experiment_ref)
    queries = [
        q.get("query", "") for q in ((found or {}).get("spec", {}).get("analysis", {}).get("criticalQueries", []))
    ]
    return usage.process_attributes_needed(queries)


def _observe(
    obj: kinds.PhoenixProcessPipeline,
    parameters: pipeline.AdaptiveParameters,
    status: pipeline.PipelineStatus,
    chosen: pipeline.AdaptiveStatus,
    mirrors: tuple[render_pipeline.Mirror, ...],
    now: datetime,
    default_prometheus: str | None,
) -> adaptive.Observation:
    """What the pipeline exported, once the collectors run the config of the loop's last choice."""
    try:
        expected = reconcile_pipeline.render(obj, chosen, mirrors).config_hash
    except render_pipeline.RenderError as error:
        return adaptive.Observation(problem=str(error))
    ready = conditions.find(status.conditions, "Ready")
    if status.config_hash != expected or ready is None or ready.status != "True":
        return adaptive.Observation(problem=f"waiting for the collectors to run config {expected}")
    window = adaptive.window_seconds(parameters)
    if (now - ready.last_transition_time).total_seconds() < window:
        return adaptive.Observation(problem=f"config {expected} has not run for a whole {window:g}s window yet")
    if default_prometheus is None:
        return adaptive.Observation(problem="no Prometheus: start the operator with --prometheus-url")
    experiment, variant = reconcile_pipeline.identity(obj)
    client = prometheus.Client(default_prometheus)
    rate_window = adaptive.rate_window_seconds(parameters)
    return measure_adaptive.observe(client, experiment, variant, window, rate_window, now.timestamp())


def write(store: runtime_base.Store, body: dict[str, Any], turned: Turn) -> bool:
    """Patch the turn's status unless the pipeline changed since `body` was read, then post its events.

    False when it changed: the turn is not recorded, so the next one is due at once.
    """
    wire = turned.status.to_wire()
    if wire == (body.get("status") or {}):
        return True
    if not store.patch_status_if_unchanged(API_VERSION, body["kind"], body["metadata"], wire):
        return False
    for event in turned.events:
        store.post_event(body, *event)
    return True
