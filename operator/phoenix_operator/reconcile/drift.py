"""The drift watch of a promoted pipeline, as pure steps.

After a promotion the experiment keeps checking the pipeline it promoted
into, every `driftWatch.interval` until `driftWatch.duration` has passed:
- the share of its received points it exports, against the range the
  candidate showed during the experiment (widened by the tolerance). A share,
  not a count, so growth of the real input is not mistaken for drift, while a
  change in its make-up (more processes per host, new metrics) is caught;
- each critical query still returns data, with every label it groups by;
- the collector's CPU seconds per received point and its memory, against
  the guardrails: the baseline's highest figure during the experiment, raised
  by `maxCpuIncrease` or `maxMemoryIncrease` and the tolerance. Only a rise
  breaches. CPU is per point, so more of the same input is not drift; memory
  is compared as it is.

A breach seen once is `Drifted=Unknown` (`Suspected`); seen at the next check
too, it sets `Drifted=True` naming what drifted, posts a Warning event and,
with `rollback: auto`, asks the driver to restore the target's spec from
before the promotion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import promql_parser

from phoenix_operator.models import common, experiment, kinds
from phoenix_operator.reconcile import conditions
from phoenix_operator.reconcile import experiment as reconcile_experiment

CONDITION = "Drifted"


@dataclass(frozen=True)
class Observation:
    """What Prometheus says about the promoted pipeline over the last interval.

    `expected` holds the candidate's kept ratios from the experiment, fetched
    only while the status has no expected range yet. `problem` says why
    nothing could be measured.
    """

    kept_ratio: float | None = None
    cpu_seconds_per_point: float | None = None
    memory_bytes: float | None = None
    # each critical query's result at the check: the label set of every series
    query_results: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    expected: Sequence[float] | None = None
    # the baseline's figures during the experiment, fetched with `expected`
    baseline_cpu_seconds_per_point: Sequence[float] | None = None
    baseline_memory_bytes: Sequence[float] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Step:
    status: experiment.ExperimentStatus
    events: tuple[reconcile_experiment.Event, ...] = ()
    rollback: bool = False


def watch_ends(obj: kinds.PhoenixExperiment) -> datetime | None:
    """When the watch of the experiment's promotion ends; None if there is nothing to watch."""
    status = obj.status or experiment.ExperimentStatus()
    watch = obj.spec.drift_watch
    record = status.promotion
    if watch is None or status.phase != "Completed" or record is None or record.rolled_back_at is not None:
        return None
    return record.promoted_at + timedelta(seconds=common.duration_seconds(watch.duration))


def interval(obj: kinds.PhoenixExperiment) -> timedelta:
    assert obj.spec.drift_watch is not None
    return timedelta(seconds=common.duration_seconds(obj.spec.drift_watch.interval))


def due(obj: kinds.PhoenixExperiment, now: datetime, settle: timedelta) -> bool:
    """Whether a check is due: the watch runs, its first whole interval after the promotion has
    settled, and the last check is an interval old."""
    ends = watch_ends(obj)
    status = obj.status or experiment.ExperimentStatus()
    if ends is None or now >= ends or status.promotion is None:
        return False
    if now < status.promotion.promoted_at + interval(obj) + settle:
        return False
    checked = status.drift.checked_at if status.drift else None
    suspected = conditions.find(status.conditions, CONDITION)
    # a suspected breach is looked at again sooner, so confirming it costs half an interval, not a whole one
    wait = interval(obj) / 2 if suspected is not None and suspected.reason == "Suspected" else interval(obj)
    return checked is None or now - checked >= wait


def expected_window(obj: kinds.PhoenixExperiment, watch_interval: timedelta) -> reconcile_experiment.Window | None:
    """Sample times over the experiment's measured span, an interval apart (the whole span if shorter)."""
    status = obj.status or experiment.ExperimentStatus()
    end = status.analyzing_since or (status.verdict.decided_at if status.verdict else None)
    if status.started_at is None or end is None:
        return None
    begin = status.started_at.timestamp() + reconcile_experiment.warmup_seconds(obj)
    span = end.timestamp() - begin
    if span <= 0:
        return None
    step = min(watch_interval.total_seconds(), span)
    return reconcile_experiment.Window(begin + step, end.timestamp(), step)


def expected_range(samples: Sequence[float], tolerance: float) -> experiment.Range | None:
    """The candidate's kept ratios, from the lowest to the highest, widened by `tolerance` each way."""
    finite = [s for s in samples if math.isfinite(s)]
    if not finite:
        return None
    return experiment.Range(low=min(finite) * (1 - tolerance), high=max(finite) * (1 + tolerance))


def resource_limit(samples: Sequence[float] | None, increase: float, tolerance: float) -> float | None:
    """The baseline's highest figure, raised by the guardrail's allowed increase and the tolerance."""
    finite = [s for s in samples or () if math.isfinite(s)]
    return max(finite) * (1 + increase) * (1 + tolerance) if finite else None


def grouping_labels(query: str) -> list[str]:
    """The labels a query's result is grouped by: its outermost `by`, through topk-like wrappers."""
    node: object = promql_parser.parse(query)
    while True:
        if isinstance(node, promql_parser.ParenExpr):
            node = node.expr
        elif isinstance(node, promql_parser.AggregateExpr):
            modifier = node.modifier
            if modifier is not None:
                return list(modifier.labels) if modifier.type == promql_parser.AggModifierType.By else []
            node = node.expr  # topk, bottomk and friends keep their operand's labels
        else:
            return []


def _cpu(seconds: float) -> str:
    return f"{seconds * 1e6:.3g} µs"


def _memory(size: float) -> str:
    return f"{size / 2**20:.0f} MiB"


def resources(drift: experiment.DriftStatus) -> list[tuple[str, float, float, str]]:
    """Each resource judged at this check: its name, its value and limit, and both as shown to a user."""
    judged = []
    cpu, cpu_limit = drift.cpu_seconds_per_point, drift.cpu_seconds_per_point_limit
    if cpu is not None and cpu_limit is not None:
        judged.append(("collector CPU per received point", cpu, cpu_limit, f"{_cpu(cpu)} (limit {_cpu(cpu_limit)})"))
    memory, memory_limit = drift.memory_bytes, drift.memory_bytes_limit
    if memory is not None and memory_limit is not None:
        shown = f"{_memory(memory)} (limit {_memory(memory_limit)})"
        judged.append(("collector memory", memory, memory_limit, shown))
    return judged


def breaches(obj: kinds.PhoenixExperiment, drift: experiment.DriftStatus, seen: Observation) -> list[str]:
    """What no longer holds, one line each."""
    found = []
    ratio, expected = seen.kept_ratio, drift.expected_kept_ratio
    if expected is not None and ratio is not None and not expected.low <= ratio <= expected.high:
        found.append(f"kept points ratio {ratio:.4g} is outside the expected [{expected.low:.4g}, {expected.high:.4g}]")
    found += [f"{name} {shown} is above its limit" for name, value, limit, shown in resources(drift) if value > limit]
    for query in obj.spec.analysis.critical_queries:
        results = seen.query_results.get(query.name, [])
        if not results:
            found.append(f"critical query {query.name} returns no data")
            continue
        lost = [label for label in grouping_labels(query.query) if any(not r.get(label) for r in results)]
        if lost:
            found.append(f"critical query {query.name} lost the label {', '.join(lost)} it groups by")
    return found


def judge(obj: kinds.PhoenixExperiment, seen: Observation, now: datetime) -> Step:
    """The status after one check, the events of a change, and whether to roll back."""
    watch = obj.spec.drift_watch
    assert watch is not None
    status = obj.status or experiment.ExperimentStatus()
    previous = status.drift or experiment.DriftStatus()
    expected = previous.expected_kept_ratio
    if expected is None and seen.expected is not None:
        expected = expected_range(seen.expected, watch.tolerance)
    objectives = obj.spec.analysis.objectives
    cpu_limit = previous.cpu_seconds_per_point_limit or resource_limit(
        seen.baseline_cpu_seconds_per_point, objectives.max_cpu_increase, watch.tolerance
    )
    memory_limit = previous.memory_bytes_limit or resource_limit(
        seen.baseline_memory_bytes, objectives.max_memory_increase, watch.tolerance
    )
    checked = {
        "expected_kept_ratio": expected,
        "kept_ratio": seen.kept_ratio,
        "cpu_seconds_per_point_limit": cpu_limit,
        "cpu_seconds_per_point": seen.cpu_seconds_per_point,
        "memory_bytes_limit": memory_limit,
        "memory_bytes": seen.memory_bytes,
        "checked_at": now,
    }
    drift = previous.model_copy(update=checked)
    status = status.model_copy(update={"drift": drift})
    was = conditions.find(status.conditions, CONDITION)
    if seen.problem is not None:
        return Step(_with(obj, status, now, "Unknown", "NotMeasured", seen.problem))
    found = breaches(obj, drift, seen)
    if found:
        message = "; ".join(found)
        held = was is not None and (was.status, was.reason) in (("True", "Drifted"), ("Unknown", "Suspected"))
        if not held:
            # where one interval's edges fall among the input's batches can throw its figures off:
            # a breach counts once it holds at two checks in a row
            suspected = f"{message} (drifted if it holds at the next check)"
            return Step(_with(obj, status, now, "Unknown", "Suspected", suspected))
        status = _with(obj, status, now, "True", "Drifted", message)
        if was is not None and was.status == "True":
            return Step(status)
        event = reconcile_experiment.Event("Warning", "Drifted", message)
        return Step(status, (event,), rollback=watch.rollback == "auto")
    if expected is None or seen.kept_ratio is None:
        missing = "no expected range: the candidate's figures are gone" if expected is None else "no input"
        return Step(_with(obj, status, now, "Unknown", "NotMeasured", f"kept points ratio not judged: {missing}"))
    queries = len(obj.spec.analysis.critical_queries)
    judged = "".join(f"; {name} {shown}" for name, _, _, shown in resources(drift))
    message = (
        f"kept points ratio {seen.kept_ratio:.4g} within [{expected.low:.4g}, {expected.high:.4g}]{judged};"
        f" every critical query ({queries}) returns data with its labels"
    )
    return Step(_with(obj, status, now, "False", "Holding", message))


def rolled_back(step: Step, obj: kinds.PhoenixExperiment, failure: str | None, now: datetime) -> Step:
    """The drifted step, with what the automatic rollback did."""
    status = step.status
    target = status.promotion.target if status.promotion else "the target"
    if failure is not None:
        event = reconcile_experiment.Event("Warning", "RollbackFailed", f"could not roll back {target}: {failure}")
        return replace(step, events=(*step.events, event))
    assert status.promotion is not None
    record = status.promotion.model_copy(update={"rolled_back_at": now})
    message = f"{target} runs its spec from before the promotion again"
    return replace(
        step,
        status=status.model_copy(update={"promotion": record}),
        events=(*step.events, reconcile_experiment.Event("Normal", "RolledBack", message)),
    )


def _with(
    obj: kinds.PhoenixExperiment,
    status: experiment.ExperimentStatus,
    now: datetime,
    state: conditions.Status,
    reason: str,
    message: str,
) -> experiment.ExperimentStatus:
    updated = conditions.set_condition(
        status.conditions, CONDITION, state, reason, message, obj.metadata.generation, now
    )
    return status.model_copy(update={"conditions": updated})
