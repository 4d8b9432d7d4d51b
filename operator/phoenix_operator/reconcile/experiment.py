"""The experiment's state machine, as a pure step.

Pending -> Initializing -> Running -> Analyzing -> Completed, and Failed or
Aborted from any state. `advance` takes the experiment, what its children
report and the latest analysis, and returns the next status with the events
and teardowns the transition implies. It never talks to the API, so a
restarted operator that replays a step from the stored status reaches the
same result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from phoenix_operator import API_VERSION
from phoenix_operator.models import common, experiment, kinds
from phoenix_operator.reconcile import conditions, verdict
from phoenix_operator.reconcile import pipeline as reconcile_pipeline

TERMINAL: frozenset[experiment.Phase] = frozenset({"Completed", "Failed", "Aborted"})
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Limits:
    """How long the operator waits: before giving up, and for data to settle."""

    pipelines_ready: timedelta = timedelta(minutes=10)
    prometheus_unreachable: timedelta = timedelta(minutes=5)
    # the newest samples reach Prometheus a scrape later; the verdict waits for them
    settle: timedelta = timedelta(0)


@dataclass(frozen=True)
class Observed:
    """What the experiment's children and Prometheus say right now.

    `analysis` is the engine's output on the data so far; `measurement_problem`
    says why there is none when the experiment expected one.
    """

    pipelines_ready: dict[str, bool] = field(default_factory=dict)
    load_started_at: datetime | None = None
    analysis: dict[str, Any] | None = None
    measurement_problem: str | None = None
    prometheus_unreachable: bool = False


@dataclass(frozen=True)
class Step:
    status: experiment.ExperimentStatus
    events: tuple[Event, ...] = ()
    # children to delete: "pipelines", "candidate", "load"
    teardown: frozenset[str] = frozenset()
    promote: bool = False


def pipeline_name(name: str, variant: str) -> str:
    return f"{name}-{variant}"


def load_name(name: str) -> str:
    return f"{name}-load"


def variant_pipelines(obj: kinds.PhoenixExperiment) -> dict[str, str]:
    """Pipeline name of each variant; a `pipelineRef` baseline names an existing pipeline."""
    spec = obj.spec
    name = obj.metadata.name
    baseline = (
        spec.baseline.pipeline_ref
        if isinstance(spec.baseline, experiment.PipelineRef)
        else pipeline_name(name, "baseline")
    )
    return {"baseline": baseline, "candidate": pipeline_name(name, "candidate")}


def children(obj: kinds.PhoenixExperiment) -> list[dict[str, Any]]:
    """The pipelines the experiment creates and the LoadSim sending to both, owned by it."""
    spec = obj.spec
    name = obj.metadata.name
    owner = [reconcile_pipeline.owner_reference(obj)]
    labels = {"phoenix.io/experiment": name}
    created: list[dict[str, Any]] = []
    for variant, variant_spec in (("baseline", spec.baseline), ("candidate", spec.candidate)):
        if isinstance(variant_spec, experiment.PipelineRef):
            continue
        created.append(
            {
                "apiVersion": API_VERSION,
                "kind": "PhoenixProcessPipeline",
                "metadata": {
                    "name": pipeline_name(name, variant),
                    "namespace": obj.metadata.namespace,
                    "labels": labels,
                    "ownerReferences": owner,
                },
                "spec": {**variant_spec.to_wire(), "experimentRef": name, "variant": variant},
            }
        )
    load = spec.load.load_sim.model_copy(update={"duration": spec.duration})
    created.append(
        {
            "apiVersion": API_VERSION,
            "kind": "LoadSim",
            "metadata": {
                "name": load_name(name),
                "namespace": obj.metadata.namespace,
                "labels": labels,
                "ownerReferences": owner,
            },
            "spec": {
                **load.to_wire(),
                "targets": [{"pipelineRef": p} for p in variant_pipelines(obj).values()],
            },
        }
    )
    return created


def _with(
    status: experiment.ExperimentStatus,
    generation: int | None,
    now: datetime,
    condition: tuple[str, conditions.Status, str, str],
    **changes: Any,
) -> experiment.ExperimentStatus:
    type_, state, reason, message = condition
    updated = conditions.set_condition(status.conditions, type_, state, reason, message, generation, now)
    return status.model_copy(update={"conditions": updated, **changes})


def _finish(
    status: experiment.ExperimentStatus,
    generation: int | None,
    now: datetime,
    phase: experiment.Phase,
    reason: str,
    message: str,
    **changes: Any,
) -> experiment.ExperimentStatus:
    succeeded: conditions.Status = "True" if phase == "Completed" else "False"
    return _with(status, generation, now, ("Succeeded", succeeded, reason, message), phase=phase, **changes)


def _failed(
    status: experiment.ExperimentStatus,
    generation: int | None,
    now: datetime,
    reason: str,
    message: str,
    teardown: frozenset[str] = frozenset({"pipelines", "load"}),
    **changes: Any,
) -> Step:
    return Step(
        _finish(status, generation, now, "Failed", reason, message, **changes),
        (Event("Warning", reason, message),),
        teardown,
    )


def _decision_message(analysis: dict[str, Any]) -> str:
    parts = [f"{analysis['decision']}: {'; '.join(analysis['reasons'])}"]
    reduction = analysis.get("series_reduction")
    if reduction:
        parts.append(
            f"series reduction {reduction['estimate']:.1%} [{reduction['ci_low']:.1%}, {reduction['ci_high']:.1%}]"
        )
    savings = analysis.get("monthly_savings_usd")
    if savings:
        parts.append(f"savings ${savings['estimate']:,.2f}/month [{savings['ci_low']:,.2f}, {savings['ci_high']:,.2f}]")
    return "; ".join(parts)


def measurement_due(
    obj: kinds.PhoenixExperiment, status: experiment.ExperimentStatus, now: datetime, limits: Limits
) -> bool:
    """Whether there is data worth measuring: the warmup is over and, for the
    verdict, the samples up to the decision have settled."""
    if status.phase not in ("Running", "Analyzing") or status.started_at is None:
        return False
    if status.phase == "Analyzing" and status.analyzing_since and now < status.analyzing_since + limits.settle:
        return False
    return now >= status.started_at + timedelta(seconds=common.duration_seconds(obj.spec.warmup))


def advance(obj: kinds.PhoenixExperiment, observed: Observed, now: datetime, limits: Limits = Limits()) -> Step:
    status = (obj.status or experiment.ExperimentStatus()).model_copy(
        update={"observed_generation": obj.metadata.generation}
    )
    generation = obj.metadata.generation
    spec = obj.spec
    if status.phase in TERMINAL:
        return Step(status)
    if spec.abort:
        message = "spec.abort is set; every child was removed"
        return Step(
            _finish(status, generation, now, "Aborted", "Aborted", message),
            (Event("Warning", "Aborted", message),),
            frozenset({"pipelines", "load"}),
        )
    if status.phase == "Pending":
        pipelines = variant_pipelines(obj)
        status = _with(
            status,
            generation,
            now,
            ("PipelinesReady", "False", "Creating", "waiting for both pipelines to become ready"),
            phase="Initializing",
            baseline_pipeline=pipelines["baseline"],
            candidate_pipeline=pipelines["candidate"],
            load_sim=load_name(obj.metadata.name),
        )
        status = _with(status, generation, now, ("Succeeded", "Unknown", "Initializing", "creating the pipelines"))
        return Step(status, (Event("Normal", "Initializing", "created the pipelines and the load"),))
    if status.phase == "Initializing":
        return _initializing(obj, status, observed, now, limits)
    return _measuring(obj, status, observed, now, limits)


def _initializing(
    obj: kinds.PhoenixExperiment,
    status: experiment.ExperimentStatus,
    observed: Observed,
    now: datetime,
    limits: Limits,
) -> Step:
    generation = obj.metadata.generation
    waiting = sorted(v for v in ("baseline", "candidate") if not observed.pipelines_ready.get(v))
    if not waiting and observed.load_started_at is not None:
        # time counts from the load's start: the warmup and duration are about what it sends
        status = _with(
            status,
            generation,
            now,
            ("PipelinesReady", "True", "Ready", "both pipelines are ready"),
            phase="Running",
            started_at=observed.load_started_at,
        )
        status = _with(status, generation, now, ("Succeeded", "Unknown", "Running", "sending load and measuring"))
        return Step(status, (Event("Normal", "Running", "both pipelines are ready and the load runs; measuring"),))
    since = conditions.find(status.conditions, "Succeeded")
    if since and now - since.last_transition_time > limits.pipelines_ready:
        if waiting:
            message = f"the {' and '.join(waiting)} pipeline never became ready within {limits.pipelines_ready}"
            return _failed(status, generation, now, "PipelinesNotReady", message)
        return _failed(
            status, generation, now, "LoadNotStarted", f"the load did not start within {limits.pipelines_ready}"
        )
    return Step(status)


def _measuring(
    obj: kinds.PhoenixExperiment,
    status: experiment.ExperimentStatus,
    observed: Observed,
    now: datetime,
    limits: Limits,
) -> Step:
    generation = obj.metadata.generation
    analysis = observed.analysis
    if analysis is None:
        if observed.measurement_problem is None:
            return Step(status)
        reason = "PrometheusUnreachable" if observed.prometheus_unreachable else "NoData"
        status = _with(status, generation, now, ("MeasurementAvailable", "False", reason, observed.measurement_problem))
        since = conditions.find(status.conditions, "MeasurementAvailable")
        if (
            observed.prometheus_unreachable
            and since
            and now - since.last_transition_time > limits.prometheus_unreachable
        ):
            message = (
                f"Prometheus stayed unreachable for more than {limits.prometheus_unreachable}: "
                f"{observed.measurement_problem}"
            )
            return _failed(status, generation, now, "PrometheusUnreachable", message)
        return Step(status)
    status = _with(
        status,
        generation,
        now,
        ("MeasurementAvailable", "True", "Measured", f"{analysis['samples_used']} samples analysed"),
        results=verdict.results(analysis),
    )
    breached = [g["name"] for g in analysis["guardrails"] if g["status"] == "breach"]
    if breached:
        message = f"the candidate breached {', '.join(breached)}; it was torn down"
        rejected = experiment.Verdict(decision="Reject", reasons=analysis["reasons"], decided_at=now)
        return _failed(
            status, generation, now, "GuardrailBreached", message, frozenset({"candidate", "load"}), verdict=rejected
        )
    started = status.started_at or now
    over = now >= started + timedelta(seconds=common.duration_seconds(obj.spec.duration))
    decided = analysis["decided_at_index"] is not None
    if status.phase == "Running":
        if not (decided or over):
            return Step(status)
        why = "a final sequential decision" if decided and not over else "the end of the duration"
        status = _with(
            status,
            generation,
            now,
            ("Succeeded", "Unknown", "Analyzing", f"reached {why}"),
            phase="Analyzing",
            analyzing_since=now,
        )
        return Step(status, (Event("Normal", "Analyzing", f"reached {why}; writing the verdict"),))
    message = _decision_message(analysis)
    promote = analysis["decision"] == "Promote" and obj.spec.promotion.policy == "auto"
    return Step(
        _finish(
            status, generation, now, "Completed", analysis["decision"], message, verdict=verdict.verdict(analysis, now)
        ),
        (Event("Normal", analysis["decision"], message),),
        frozenset({"pipelines", "load"}),
        promote,
    )
