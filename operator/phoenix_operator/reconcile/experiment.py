"""The experiment's state machine, as a pure step.

Pending -> Initializing -> Running -> Analyzing -> Completed, and Failed or
Aborted from any state. `advance` takes the experiment, what its children
report and the latest analysis, and returns the next status with the events
and teardowns the transition implies. It never talks to the API, so a
restarted operator that replays a step from the stored status reaches the
same result.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from phoenix_analysis import contract
from phoenix_operator import API_VERSION, GROUP
from phoenix_operator.models import common, experiment, kinds, pipeline
from phoenix_operator.reconcile import conditions, objects, promotion, verdict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

TERMINAL: frozenset[experiment.Phase] = frozenset({"Completed", "Failed", "Aborted"})
LIVE_FIELDS = ("abort", "ttlSecondsAfterFinished", "driftWatch")
EventType = Literal["Normal", "Warning"]
# The spec an experiment started with, frozen on the object when it leaves Pending.
ACCEPTED_SPEC = f"{GROUP}/accepted-spec"
# Samples carry the datapoints' own times, so the newest grid points may hold a
# batch one variant was scraped with and the other not yet; they are left out,
# and the verdict waits this many steps for them.
SETTLE_STEPS = 2


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Limits:
    """How often the driver measures, and how long it waits: before giving up, and for data to settle."""

    pipelines_ready: timedelta = timedelta(minutes=10)
    prometheus_unreachable: timedelta = timedelta(minutes=5)
    # time between analysed samples; about the scrape interval
    measure_step: timedelta = timedelta(seconds=15)

    @property
    def settle(self) -> timedelta:
        """The newest samples reach Prometheus a scrape later; the verdict waits for them."""
        return SETTLE_STEPS * self.measure_step


@dataclass(frozen=True)
class Observed:
    """What the experiment's children and Prometheus say right now.

    `analysis` is the engine's output on the data so far; `measurement_problem`
    says why there is none when the experiment expected one.
    """

    pipelines_ready: dict[str, bool] = field(default_factory=dict)
    # when the load started sending, or the mirrored pipeline started copying its input
    load_started_at: datetime | None = None
    # why a pipeline's collectors cannot run, by variant ("collector failed to start: ...")
    pipeline_failures: dict[str, str] = field(default_factory=dict)
    # why the load failed, once it has
    load_failure: str | None = None
    analysis: contract.Result | None = None
    # what the engine was given for `analysis`, for `phoenix run --save-input`
    analysis_input: contract.AnalysisInput | None = None
    measurement_problem: str | None = None
    prometheus_unreachable: bool = False
    # why the `pipelineRef` baseline cannot be copied: nothing was created
    baseline_problem: str | None = None
    # the warmup, when this measurement ended it
    warmup: experiment.WarmupStatus | None = None


@dataclass(frozen=True)
class Step:
    status: experiment.ExperimentStatus
    events: tuple[Event, ...] = ()
    # children to delete: "pipelines", "candidate", "load"
    teardown: frozenset[str] = frozenset()
    promote: bool = False


# What a shadow of a running pipeline leaves out: where its data goes, and whose series it labels.
SHADOW_DROPS = frozenset({"exporters", "experimentRef", "variant"})


def mirror_source(obj: kinds.PhoenixExperiment) -> str | None:
    """The pipeline whose input a mirrored experiment copies to its shadows; None when a LoadSim sends."""
    baseline = obj.spec.baseline
    return baseline.pipeline_ref if obj.spec.mirrored and isinstance(baseline, experiment.PipelineRef) else None


def _load(obj: kinds.PhoenixExperiment) -> str:
    source = mirror_source(obj)
    return "the load" if source is None else f"the mirror from {source}"


def pipeline_name(name: str, variant: str) -> str:
    return f"{name}-{variant}"


def load_name(name: str) -> str:
    return f"{name}-load"


def variant_pipelines(obj: kinds.PhoenixExperiment) -> dict[pipeline.VariantName, str]:
    """Pipeline name of each variant; the experiment creates both, also for a `pipelineRef` baseline."""
    return {v: pipeline_name(obj.metadata.name, v) for v in pipeline.VARIANTS}


def children(
    obj: kinds.PhoenixExperiment, referenced: kinds.PhoenixProcessPipeline | None = None
) -> list[dict[str, Any]]:
    """The pipelines the experiment creates and, unless it mirrors real input, the LoadSim sending to both;
    all owned by it.

    A `pipelineRef` baseline is `referenced`, the pipeline already running:
    the experiment deploys a shadow of its spec, without its extra exporters,
    and runs the candidate as a change to it (its collector settings, and the
    parameters the candidate leaves at their defaults), so the synthetic load
    never reaches that pipeline or its backends. Offline, without it, the
    shadow is left out.
    """
    spec = obj.spec
    name = obj.metadata.name
    owner = [objects.owner_reference(obj)]
    labels = {"phoenix.io/experiment": name}
    variants: dict[str, dict[str, Any]] = {"candidate": spec.candidate.to_wire()}
    if not isinstance(spec.baseline, experiment.PipelineRef):
        variants["baseline"] = spec.baseline.to_wire()
    elif referenced is not None:
        shadow = {k: v for k, v in referenced.spec.to_wire().items() if k not in SHADOW_DROPS}
        variants["baseline"] = shadow
        inherited = promotion.candidate_on(spec.candidate, referenced.spec.parameters.to_wire())
        variants["candidate"] = {**inherited, "collector": referenced.spec.collector.to_wire()}
    created: list[dict[str, Any]] = []
    for variant in pipeline.VARIANTS:
        if variant not in variants:
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
                "spec": {**variants[variant], "experimentRef": name, "variant": variant},
            }
        )
    if spec.mirrored:
        return created  # the shadows get a copy of the referenced pipeline's input instead of a load
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


def _decision_message(analysis: contract.Result) -> str:
    parts = [f"{analysis.decision}: {'; '.join(analysis.reason_texts)}"]
    reduction = analysis.series_reduction
    if reduction:
        told = f"series reduction {reduction.estimate:.1%} [{reduction.ci_low:.1%}, {reduction.ci_high:.1%}]"
        if told not in parts[0]:  # a Promote's reasons already give it
            parts.append(told)
    savings = analysis.monthly_savings_usd
    if savings:
        parts.append(f"savings ${savings.estimate:,.2f}/month [{savings.ci_low:,.2f}, {savings.ci_high:,.2f}]")
    return "; ".join(parts)


def accepted(live: kinds.PhoenixExperiment, frozen: str | None) -> tuple[kinds.PhoenixExperiment, list[str]]:
    """The experiment as it started, and the spec fields edited since.

    Once started an experiment keeps its spec (`frozen`, from `ACCEPTED_SPEC`):
    a verdict must describe one experiment. Only `abort`,
    `ttlSecondsAfterFinished` and `driftWatch`, which say when to stop, when
    to clean up and how to watch the promotion, are read live.
    """
    if frozen is None:
        return live, []
    accepted_spec = json.loads(frozen)
    current = live.spec.to_wire()
    edited = sorted(
        k for k in set(accepted_spec) | set(current) if k not in LIVE_FIELDS and accepted_spec.get(k) != current.get(k)
    )
    live_wire = live.spec.to_wire()
    spec = experiment.ExperimentSpec.model_validate(
        {k: v for k, v in accepted_spec.items() if k not in LIVE_FIELDS}
        | {k: live_wire[k] for k in LIVE_FIELDS if k in live_wire}
    )
    return live.model_copy(update={"spec": spec}), edited


def frozen_spec(obj: kinds.PhoenixExperiment, before: experiment.Phase, after: experiment.Phase) -> str | None:
    """The `ACCEPTED_SPEC` value to store when the experiment leaves Pending, else None."""
    return json.dumps(obj.spec.to_wire(), sort_keys=True) if before == "Pending" and after != "Pending" else None


def spec_accepted(
    status: experiment.ExperimentStatus, edited: Sequence[str], generation: int | None, now: datetime
) -> experiment.ExperimentStatus:
    """`SpecAccepted`: False with the fields whose edits are ignored."""
    if edited:
        fields = ", ".join(f"spec.{name}" for name in edited)
        condition: tuple[str, conditions.Status, str, str] = (
            "SpecAccepted",
            "False",
            "ImmutableWhileRunning",
            f"{fields} changed after the experiment started and is ignored; delete and re-create it to change it",
        )
    else:
        condition = ("SpecAccepted", "True", "Accepted", "the spec is valid")
    return _with(status, generation, now, condition)


class Plan(enum.Enum):
    """What the driver reads before the next step."""

    NOTHING = "nothing"
    CREATE_CHILDREN = "create-children"  # apply the pipelines and the load
    READ_CHILDREN = "read-children"  # are the pipelines ready, has the load started
    MEASURE = "measure"  # query the measurement provider and analyse


def plan(obj: kinds.PhoenixExperiment, now: datetime, limits: Limits, last_measured: datetime | None) -> Plan:
    """What to read this tick, from the experiment's status alone."""
    status = obj.status or experiment.ExperimentStatus()
    if obj.spec.abort or status.phase in TERMINAL:
        return Plan.NOTHING
    if status.phase == "Pending":
        return Plan.CREATE_CHILDREN
    if status.phase == "Initializing":
        return Plan.READ_CHILDREN
    if not measurement_due(obj, status, now, limits) or throttled(obj, status, now, last_measured):
        return Plan.NOTHING
    # until three samples fit there is nothing to analyse, and the throttle is not started
    return Plan.NOTHING if measurement_window(obj, now, limits) is None else Plan.MEASURE


def measurement_due(
    obj: kinds.PhoenixExperiment, status: experiment.ExperimentStatus, now: datetime, limits: Limits
) -> bool:
    """Whether there is data worth measuring: the load runs (during the warmup, to see whether the
    pipelines have settled) and, for the verdict, the samples up to the decision have settled."""
    if status.phase not in ("Running", "Analyzing") or status.started_at is None:
        return False
    return not (status.phase == "Analyzing" and status.analyzing_since and now < status.analyzing_since + limits.settle)


def throttled(
    obj: kinds.PhoenixExperiment, status: experiment.ExperimentStatus, now: datetime, last_measured: datetime | None
) -> bool:
    """While Running, a measurement at most every `analysisInterval`; the verdict's own is never held back."""
    if status.phase != "Running" or last_measured is None:
        return False
    return now - last_measured < timedelta(seconds=common.duration_seconds(obj.spec.analysis_interval))


@dataclass(frozen=True)
class Window:
    """Sample times from `start` to `end`, `step` apart, in Unix seconds."""

    start: float
    end: float
    step: float

    @property
    def timestamps(self) -> npt.NDArray[np.float64]:
        import numpy as np  # here: `phoenix validate` and `render` use this module and need no numpy

        count = int(np.floor((self.end - self.start) / self.step + 1e-9)) + 1
        return np.asarray(self.start + self.step * np.arange(count), dtype=np.float64)


def measurement_window(obj: kinds.PhoenixExperiment, now: datetime, limits: Limits) -> Window | None:
    """The samples to measure, up to the duration's end, without the unsettled newest: from the load's
    start while the warmup lasts, then from its end.

    Aligned on multiples of the step, so successive measurements share their
    sample times. None while fewer than three samples fit.
    """
    status = obj.status or experiment.ExperimentStatus()
    if status.started_at is None:
        return None
    started = status.started_at
    step = limits.measure_step.total_seconds()
    begin = status.warmup.ended_at.timestamp() if status.warmup else started.timestamp()
    end = min(now.timestamp() - SETTLE_STEPS * step, started.timestamp() + common.duration_seconds(obj.spec.duration))
    window = Window(math.ceil(begin / step) * step, math.floor(end / step) * step, step)
    return window if window.end >= window.start + 2 * step else None


def analysis_input(
    spec: experiment.ExperimentSpec,
    baseline: contract.Variant,
    candidate: contract.Variant,
    queries: list[contract.CriticalQuery],
    step_seconds: float,
    warmup: float,
) -> contract.AnalysisInput:
    """The engine's input: what was measured, with the experiment's objectives and prices."""
    return contract.AnalysisInput(
        interval_seconds=step_seconds,
        baseline=baseline,
        candidate=candidate,
        critical_queries=queries,
        objectives=spec.analysis.objectives,
        cost_model=spec.analysis.cost_model,
        alpha=spec.analysis.alpha,
        mode=spec.analysis.mode,
        planned_samples=planned_samples(spec, step_seconds, warmup),
    )


def planned_samples(spec: experiment.ExperimentSpec, step_seconds: float, warmup_seconds: float) -> int:
    """The samples from the warmup's end to the duration's, as `measurement_window` takes them."""
    span = common.duration_seconds(spec.duration) - warmup_seconds
    return max(int(span // step_seconds) + 1, 1)


def warmup_seconds(obj: kinds.PhoenixExperiment) -> float:
    """How long the warmup lasted, or may last while it is not over."""
    status = obj.status or experiment.ExperimentStatus()
    return status.warmup.seconds if status.warmup else common.duration_seconds(obj.spec.warmup)


_RANGE = re.compile(r"\[((?:\d+(?:ms|[smhdwy]))+)(?::[^\]]*)?\]")
_RANGE_UNIT = re.compile(r"(\d+)(ms|[smhdwy])")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def longest_range_seconds(queries: Iterable[str]) -> float:
    """The longest range selector or subquery range in `queries`, in seconds (0 without any)."""
    ranges = [
        sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _RANGE_UNIT.findall(found))
        for query in queries
        for found in _RANGE.findall(query)
    ]
    return float(max(ranges, default=0))


def warmup_end(
    obj: kinds.PhoenixExperiment, timestamps: Sequence[float], figures: Mapping[str, Sequence[float | None]]
) -> experiment.WarmupStatus | None:
    """Whether the warmup is over, given the figures measured since the load's start (see
    `phoenix_analysis.warmup`): at the sample after the pipelines settled, or at `spec.warmup` when the
    samples reach it unsettled; None while neither has happened."""
    from phoenix_analysis import warmup  # numpy, loaded only by a driver that measures

    started = (obj.status or experiment.ExperimentStatus()).started_at
    if started is None or len(timestamps) < 2:
        return None
    step = timestamps[1] - timestamps[0]
    limit = started.timestamp() + common.duration_seconds(obj.spec.warmup)
    # until a critical query's rate window has filled, the variants' answers differ by how Prometheus
    # extrapolates a partial window, more for many small series than for their aggregate
    filled = started.timestamp() + longest_range_seconds(q.query for q in obj.spec.analysis.critical_queries)
    earliest = max(math.ceil((filled - timestamps[0]) / step), 0)
    # an adaptive loop may move again after a steady spell: it gets the whole warmup
    adaptive = isinstance(obj.spec.candidate, pipeline.AdaptiveVariant)
    first = None if adaptive else warmup.first_analysed(figures, earliest)
    if first is not None and timestamps[0] + first * step <= limit:
        ended, settled = timestamps[0] + first * step, True
    elif timestamps[-1] >= limit:
        ended, settled = math.ceil(limit / step) * step, False
    else:
        return None
    return experiment.WarmupStatus(
        ended_at=datetime.fromtimestamp(ended, tz=started.tzinfo),
        seconds=round(ended - started.timestamp(), 3),
        settled=settled,
    )


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
    if status.phase == "Pending" and observed.baseline_problem is not None:
        return _failed(status, generation, now, "BaselineNotFound", observed.baseline_problem)
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
            load_sim=None if spec.mirrored else load_name(obj.metadata.name),
            load_source=spec.load.source,
        )
        status = _with(status, generation, now, ("Succeeded", "Unknown", "Initializing", "creating the pipelines"))
        return Step(status, (Event("Normal", "Initializing", "created the pipelines and the load"),))
    if observed.load_failure is not None and status.phase in ("Initializing", "Running"):
        return _failed(status, generation, now, "LoadFailed", f"{_load(obj)} failed: {observed.load_failure}")
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
    if observed.pipeline_failures:
        message = "; ".join(f"the {v} {why}" for v, why in sorted(observed.pipeline_failures.items()))
        return _failed(status, generation, now, "PipelinesNotReady", message)
    waiting = sorted(v for v in pipeline.VARIANTS if not observed.pipelines_ready.get(v))
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
            status, generation, now, "LoadNotStarted", f"{_load(obj)} did not start within {limits.pipelines_ready}"
        )
    return Step(status)


def _over(
    obj: kinds.PhoenixExperiment,
    status: experiment.ExperimentStatus,
    now: datetime,
    grace: timedelta = timedelta(0),
) -> bool:
    started = status.started_at or now
    return now >= started + timedelta(seconds=common.duration_seconds(obj.spec.duration)) + grace


def _measuring(
    obj: kinds.PhoenixExperiment,
    status: experiment.ExperimentStatus,
    observed: Observed,
    now: datetime,
    limits: Limits,
) -> Step:
    generation = obj.metadata.generation
    analysis = observed.analysis
    if observed.warmup is not None and status.warmup is None:
        status = status.model_copy(update={"warmup": observed.warmup})
        return Step(status, (Event("Normal", "WarmupEnded", _warmup_message(obj, observed.warmup)),))
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
        if not observed.prometheus_unreachable and _over(obj, status, now, limits.settle):
            # Prometheus answers and never had the data: the duration ends the experiment, undecided
            message = f"Inconclusive: no data by the end of the duration: {observed.measurement_problem}"
            undecided = experiment.Verdict(
                decision="Inconclusive", reasons=[f"no data: {observed.measurement_problem}"], decided_at=now
            )
            return Step(
                _finish(status, generation, now, "Completed", "Inconclusive", message, verdict=undecided),
                (Event("Normal", "Inconclusive", message),),
                frozenset({"pipelines", "load"}),
            )
        return Step(status)
    status = _with(
        status,
        generation,
        now,
        ("MeasurementAvailable", "True", "Measured", f"{analysis.samples_used} samples analysed"),
        results=verdict.results(analysis),
    )
    breached = analysis.breached_guardrails
    if breached:
        message = f"the candidate breached {', '.join(breached)}; it was torn down"
        rejected = experiment.Verdict(decision="Reject", reasons=analysis.reason_texts, decided_at=now)
        return _failed(
            status, generation, now, "GuardrailBreached", message, frozenset({"candidate", "load"}), verdict=rejected
        )
    over = _over(obj, status, now)
    decided = analysis.decided_at_index is not None
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
    promote = analysis.decision == "Promote" and obj.spec.promotion.policy == "auto"
    return Step(
        _finish(
            status, generation, now, "Completed", analysis.decision, message, verdict=verdict.verdict(analysis, now)
        ),
        (Event("Normal", analysis.decision, message),),
        frozenset({"pipelines", "load"}),
        promote,
    )


def _warmup_message(obj: kinds.PhoenixExperiment, ended: experiment.WarmupStatus) -> str:
    from phoenix_analysis import warmup

    if isinstance(obj.spec.candidate, pipeline.AdaptiveVariant):
        return f"the adaptive candidate's loop had the whole {obj.spec.warmup} warmup to settle; analysing from here"
    if not ended.settled:
        return f"the pipelines did not settle within the {obj.spec.warmup} warmup; analysing from its end"
    return (
        f"both pipelines settled after {ended.seconds:.0f}s: over their last {warmup.SETTLED_SAMPLES} samples, their"
        f" series counts and datapoint rates were within {warmup.SETTLED_TOLERANCE:.0%} of the {warmup.SETTLED_SAMPLES}"
        " before; analysing from here"
    )


def promoted(
    step: Step, obj: kinds.PhoenixExperiment, failure: str | None, previous: dict[str, Any] | None, now: datetime
) -> Step:
    """The completing step, with what auto-promotion did: a Promoted condition, an event, and
    on success the record of the target as it was (`previous`), for a rollback.

    Promotion runs once, on the step that completes the experiment; a target
    that is missing or refuses the spec is reported there, not retried.
    """
    target = promotion.target_name(obj)
    if failure is None:
        condition: tuple[str, conditions.Status, str, str] = (
            "Promoted",
            "True",
            "Promoted",
            f"{target} now runs the candidate",
        )
        event = Event("Normal", "Promoted", condition[3])
    else:
        condition = ("Promoted", "False", "PromotionFailed", f"could not promote the candidate to {target}: {failure}")
        event = Event("Warning", "PromotionFailed", condition[3])
    status = _with(step.status, obj.metadata.generation, now, condition)
    if failure is None:
        status = status.model_copy(update={"promotion": promotion.record(target, previous, now)})
    return replace(step, status=status, events=(*step.events, event))


def seconds_until_expiry(obj: kinds.PhoenixExperiment, now: datetime) -> float | None:
    """How long a finished experiment with `ttlSecondsAfterFinished` has left; None if it never expires.

    It finished when its `Succeeded` condition last changed, which it does on the step that ends it.
    """
    status = obj.status or experiment.ExperimentStatus()
    ttl = obj.spec.ttl_seconds_after_finished
    finished = conditions.find(status.conditions, "Succeeded")
    if ttl is None or status.phase not in TERMINAL or finished is None:
        return None
    return max(0.0, (finished.last_transition_time + timedelta(seconds=ttl) - now).total_seconds())
