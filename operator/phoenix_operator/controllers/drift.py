"""One check of a promoted pipeline's drift watch: measure it, judge it, roll it back if asked.

Like the experiment's step, it returns the status and events for the driver
to write, and acts only through the Store (the rollback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from phoenix_operator import API_VERSION, labels
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.measure import prometheus, promql, providers
from phoenix_operator.models import experiment, kinds, manifests
from phoenix_operator.reconcile import drift, promotion
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.runtime import base as runtime_base


@dataclass(frozen=True)
class Check:
    obj: kinds.PhoenixExperiment  # with the status before the check
    step: drift.Step


def check(
    store: runtime_base.Store, body: dict[str, Any], now: datetime, settings: experiment_controller.Settings
) -> Check | None:
    """The check of an experiment's drift watch, or None when none is due.

    Raises manifests.InvalidManifest for an experiment the models reject.
    """
    live = manifests.parse_stored(body)
    assert isinstance(live, kinds.PhoenixExperiment)
    frozen = (body["metadata"].get("annotations") or {}).get(reconcile_experiment.ACCEPTED_SPEC)
    obj, _ = reconcile_experiment.accepted(live, frozen)
    obj = obj.model_copy(update={"status": manifests.stored_status(body, experiment.ExperimentStatus)})
    if not drift.due(obj, now, settings.limits.settle):
        return None
    step = drift.judge(obj, _observe(store, obj, now, settings), now)
    if step.rollback:
        step = drift.rolled_back(step, obj, rollback(store, obj), now)
    return Check(obj, step)


def _observe(
    store: runtime_base.Store, obj: kinds.PhoenixExperiment, now: datetime, settings: experiment_controller.Settings
) -> drift.Observation:
    namespace = obj.metadata.namespace or "default"
    status = obj.status or experiment.ExperimentStatus()
    assert status.promotion is not None  # only a promotion is watched
    found = store.get(API_VERSION, "PhoenixProcessPipeline", namespace, status.promotion.target)
    if found is None:
        return drift.Observation(problem=f"the promoted pipeline {status.promotion.target} no longer exists")
    try:
        target = manifests.parse_stored(found)
    except manifests.InvalidManifest as error:
        return drift.Observation(problem=f"the promoted pipeline {status.promotion.target} is invalid: {error}")
    assert isinstance(target, kinds.PhoenixProcessPipeline)
    watch_interval = drift.interval(obj)
    try:
        client = providers.client_for(
            obj.spec.analysis,
            lambda ref: store.secret_value(namespace, ref.name, ref.key),
            settings.default_prometheus,
        )
        expected = baseline_cpu = baseline_memory = None
        window = drift.expected_window(obj, watch_interval)
        known = status.drift or experiment.DriftStatus()
        name = obj.metadata.name

        def over_the_experiment(query: str) -> list[float]:
            assert window is not None
            return [float(v) for values in client.range_query(query, window).values() for v in values]

        if window is not None and known.expected_kept_ratio is None:
            expected = over_the_experiment(prometheus.kept_ratio_query(name, "candidate", window.step))
        if window is not None and known.cpu_seconds_per_point_limit is None:
            baseline_cpu = over_the_experiment(prometheus.cpu_per_point_query(name, "baseline", window.step))
        if window is not None and known.memory_bytes_limit is None:
            baseline_memory = over_the_experiment(prometheus.memory_query(name, "baseline"))
        at = (now - settings.limits.settle).timestamp()
        identity = reconcile_pipeline.identity(target)
        scoped = labels.of_variant(*identity)
        seconds = watch_interval.total_seconds()
        kept = client.instant_query(prometheus.kept_ratio_query(*identity, seconds), at)
        cpu = client.instant_query(prometheus.cpu_per_point_query(*identity, seconds), at)
        memory = client.instant_query(prometheus.memory_query(*identity), at)
        results = {
            query.name: [series for series, _ in client.instant_query(promql.scope(query.query, scoped), at)]
            for query in obj.spec.analysis.critical_queries
        }
    except (providers.Unavailable, runtime_base.SecretUnreadable, prometheus.PrometheusError) as error:
        return drift.Observation(problem=str(error))
    except promql.QueryError as error:
        return drift.Observation(problem=f"critical query: {error}")
    return drift.Observation(
        kept_ratio=_finite(kept),
        cpu_seconds_per_point=_finite(cpu),
        memory_bytes=_finite(memory),
        query_results=results,
        expected=expected,
        baseline_cpu_seconds_per_point=baseline_cpu,
        baseline_memory_bytes=baseline_memory,
    )


def _finite(answer: list[tuple[dict[str, str], float]]) -> float | None:
    """An instant query's one value; no input over the interval makes a ratio NaN: nothing to judge."""
    return answer[0][1] if answer and math.isfinite(answer[0][1]) else None


def rollback(store: runtime_base.Store, obj: kinds.PhoenixExperiment) -> str | None:
    """Give the target back its spec from before the promotion; why not, if it could not."""
    namespace = obj.metadata.namespace or "default"
    record = (obj.status or experiment.ExperimentStatus()).promotion
    try:
        current = store.get(API_VERSION, "PhoenixProcessPipeline", namespace, record.target) if record else None
        refusal = promotion.rollback_refusal(record, current)
        if refusal is not None:
            return refusal
        assert record is not None and current is not None
        patch = promotion.rollback_patch(record, current)
        if patch is None:
            store.delete(API_VERSION, "PhoenixProcessPipeline", namespace, record.target)
        else:
            store.patch_spec(API_VERSION, "PhoenixProcessPipeline", namespace, record.target, patch)
    except runtime_base.StoreError as error:
        return str(error)
    return None
