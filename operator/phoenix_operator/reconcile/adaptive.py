"""The adaptive pipeline's control loop, as a pure decision: observe, decide, and what to actuate.

The knob is the keep list: the executables whose processes keep per-process
detail, while every other process is summed into one `other` series per host
and metric. The list is chosen by executable, fewest processes first, filled
while the budget affords it. By executable, because that is what people name
in a dashboard ("is postgres healthy?") and it stays stable while pids churn.
Fewest processes first, because that gives the most executables their
detail for the series spent: a pool of two hundred identical workers is what
summing is for, while the one postgres or sshd process is where per-process
detail answers questions. It also makes K follow the load: when each
process costs more, fewer executables fit. The cost is measured, not
modelled: a kept executable's exported series are counted, and one summed
into `other` is priced by its process count times what one of its processes
cost when it (or else the kept ones, on average) kept detail. Before
anything is kept, the loop keeps the smallest executable once, to learn that
price.

Five guards keep the loop from oscillating on a steady load:
- a hysteresis band: nothing changes while the exported series lie within
  [budget x (1 - band), budget], and a change aims at the band's middle;
- a reading is acted on only when the reading before missed the band on
  the same side too, unless it is over the budget by more than half the
  band's width: cutting cost is urgent, adding detail can wait a turn, so a
  single low reading (the load stalled, a scrape came back short) adds
  nothing;
- a bounded step: at most `maxStep` executables join or leave at once;
- a minimum time between changes: one adjust interval, longer than the
  measurement window, so no observation after a change sees the old config;
  and growing waits until the rates it prices executables by no longer span
  the last change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from phoenix_operator.models import common, pipeline
from phoenix_operator.reconcile import conditions

CONDITION = "BudgetMet"
OTHER = "other"
# a measurement window never shorter than a few scrapes, never longer than a minute
MIN_WINDOW_SECONDS = 5
MAX_WINDOW_SECONDS = 60
# how many executables' measured costs the status remembers
MAX_LEARNED = 200


@dataclass(frozen=True)
class Executable:
    """One executable's share of the pipeline's input, over the measurement window."""

    name: str
    # how many processes it runs: the rate of its process-seconds
    processes: float
    # process series the pipeline exports labelled with this executable: 0 while summed into `other`
    exported_series: int = 0


@dataclass(frozen=True)
class Observation:
    """What the pipeline exported over the last window; `problem` says why nothing was measured."""

    exported_series: int | None = None
    executables: Sequence[Executable] = ()
    problem: str | None = None


@dataclass(frozen=True)
class Decision:
    status: pipeline.AdaptiveStatus
    conditions: list[common.Condition]
    # (type, reason, message) of the event a change posts
    events: tuple[tuple[str, str, str], ...] = ()
    changed: bool = False


@dataclass
class _Plan:
    keep: list[str]
    predicted: float
    reason: str = ""
    moved: list[str] = field(default_factory=list)


def interval(parameters: pipeline.AdaptiveParameters) -> timedelta:
    return timedelta(seconds=parameters.adjust_interval_seconds)


def window_seconds(parameters: pipeline.AdaptiveParameters) -> int:
    """How far back an observation looks: half an interval in whole seconds (PromQL's), from 5 s to a minute."""
    return min(max(parameters.adjust_interval_seconds // 2, MIN_WINDOW_SECONDS), MAX_WINDOW_SECONDS)


def rate_window_seconds(parameters: pipeline.AdaptiveParameters) -> int:
    """Rates take two windows: two of the collector's reports, whatever their phase."""
    return 2 * window_seconds(parameters)


def _rates_settled(parameters: pipeline.AdaptiveParameters, status: pipeline.AdaptiveStatus, now: datetime) -> bool:
    """Whether the rate window began after the last change's collector restart, with a window to spare.

    Until then a process count mixes two collectors and the outage between
    them, so it prices no executable; a reading over budget still acts, on
    series alone.
    """
    change = status.last_adjustment
    if change is None:
        return True
    return (now - change.at).total_seconds() >= rate_window_seconds(parameters) + window_seconds(parameters)


def due(parameters: pipeline.AdaptiveParameters, status: pipeline.AdaptiveStatus | None, now: datetime) -> bool:
    """Whether the loop should observe now: once per adjust interval."""
    if status is None or status.observed_at is None:
        return True
    return now - status.observed_at >= interval(parameters)


def _learned(
    observation: Observation, keep: Sequence[str], known: dict[str, float], rates_settled: bool
) -> dict[str, float]:
    """Series per process of each kept executable as measured now, over what was learned before.

    A rate that spans a change reads low, so until rates settle a reading may
    only raise a price. Bounded: executables not seen for a while fall off
    the end first.
    """
    measured = {e.name: e.exported_series / e.processes for e in observation.executables
                if e.name in keep and e.processes > 0 and e.exported_series > 0}  # fmt: skip
    if not rates_settled:
        measured = {name: price for name, price in measured.items() if price > known.get(name, 0.0)}
    merged = {**{k: v for k, v in known.items() if k not in measured}, **measured}
    return dict(list(merged.items())[-MAX_LEARNED:])


def _series_per_process(observation: Observation, keep: Sequence[str]) -> float | None:
    """What a process of an executable never kept costs: the kept ones' average, if any."""
    kept = [e for e in observation.executables if e.name in keep and e.processes > 0]
    processes = sum(e.processes for e in kept)
    return sum(e.exported_series for e in kept) / processes if processes > 0 else None


def _ranked(observation: Observation) -> list[Executable]:
    """Fewest processes first; a name breaks ties, so the same input always gives the same order."""
    return sorted((e for e in observation.executables if e.name != OTHER), key=lambda e: (e.processes, e.name))


def _shrink(parameters: pipeline.AdaptiveParameters, keep: list[str], observation: Observation, target: float) -> _Plan:
    """Drop the kept executables that a fill in ranking order under the target would not keep.

    The fill skips an executable that does not fit, so one that costs more
    than its process count said leaves while the cheaper ones behind it
    stay. The costliest go first when `maxStep` bounds the change.
    """
    measured = {e.name: e.exported_series for e in observation.executables if e.name in keep}
    series = float(observation.exported_series or 0)
    predicted = series - sum(measured.values())  # nothing kept
    fill: list[str] = []
    for executable in _ranked(observation):
        cost = measured.get(executable.name)
        if cost is not None and (predicted + cost <= target or len(fill) < parameters.min_k):
            fill.append(executable.name)
            predicted += cost
    leaving = sorted((name for name in keep if name not in fill), key=lambda name: -measured.get(name, 0))
    leaving = leaving[: min(parameters.max_step, max(0, len(keep) - parameters.min_k))]
    plan = _Plan([name for name in keep if name not in leaving], series - sum(measured.get(n, 0) for n in leaving))
    plan.moved = leaving
    return plan


def _grow(
    parameters: pipeline.AdaptiveParameters,
    keep: list[str],
    observation: Observation,
    target: float,
    per_process: float | None,
    learned: dict[str, float],
    required: int,
) -> _Plan:
    """Add summed executables, in ranking order, whose predicted cost still fits under the target.

    The cost of one kept before is what it cost then; of one never kept, the
    kept ones' average. So an executable dropped for costing more than
    expected is not added back on the average's word.

    The first `required` (to reach minK) join whatever they cost. One that
    does not fit is skipped, so a single heavy executable does not block the
    lighter ones behind it.
    """
    plan = _Plan(list(keep), float(observation.exported_series or 0))
    for executable in _ranked(observation):
        if len(plan.moved) >= parameters.max_step or len(plan.keep) >= parameters.max_k:
            break
        if executable.name in plan.keep or executable.processes <= 0:
            continue
        unit = learned.get(executable.name, per_process)
        cost = executable.processes * unit if unit is not None else None
        if len(plan.moved) >= required and (cost is None or plan.predicted + cost > target):
            continue
        plan.keep.append(executable.name)
        plan.moved.append(executable.name)
        plan.predicted += cost or 0.0
    return plan


def _probe(parameters: pipeline.AdaptiveParameters, keep: list[str], observation: Observation, series: int) -> _Plan:
    """Keep the executable with the fewest processes: what it then exports prices every other one."""
    running = [e for e in observation.executables if e.name not in keep and e.name != OTHER and e.processes > 0]
    if not running or len(keep) >= parameters.max_k:
        return _Plan(list(keep), float(series))
    cheapest = min(running, key=lambda e: (e.processes, e.name))
    return _Plan([*keep, cheapest.name], float(series), moved=[cheapest.name])


def _side(series: int, lower: float, budget: int) -> int:
    """+1 over the budget, -1 under the band, 0 within it."""
    return 1 if series > budget else -1 if series < lower else 0


def _confirmed(
    series: int, side: int, previous: pipeline.AdaptiveStatus | None, lower: float, budget: int, band: float
) -> bool:
    """Whether a reading outside the band is worth a change.

    One over the budget by more than half the band's width is. Any other is
    only acted on when the reading before it, taken with the same keep list,
    missed on the same side too: a steady load's noise rarely does that twice.
    """
    if series > budget + band * budget / 2:
        return True
    if previous is None or previous.current_series is None or previous.observed_at is None:
        return False
    if previous.last_adjustment is not None and previous.last_adjustment.at >= previous.observed_at:
        return False  # the reading before was taken with the keep list the change replaced
    return _side(previous.current_series, lower, budget) == side


def decide(
    parameters: pipeline.AdaptiveParameters,
    previous: pipeline.AdaptiveStatus | None,
    previous_conditions: Sequence[common.Condition],
    observation: Observation,
    generation: int | None,
    now: datetime,
) -> Decision:
    """One turn of the loop: the new keep list (or the same one), the status and the BudgetMet condition.

    Fails safe: without a measurement the keep list stays as it is.
    """
    budget = parameters.series_budget
    keep = list((previous.keep_executables if previous else [])[: parameters.max_k])
    state = (previous or pipeline.AdaptiveStatus(series_budget=budget)).model_copy(
        update={"series_budget": budget, "observed_at": now, "keep_executables": keep, "k": len(keep)}
    )

    def condition(status: conditions.Status, reason: str, message: str) -> list[common.Condition]:
        return conditions.set_condition(previous_conditions, CONDITION, status, reason, message, generation, now)

    if observation.problem is not None or observation.exported_series is None:
        problem = observation.problem or "no series measured"
        held = f"the keep list ({len(keep)} executables) stays as it is: {problem}"
        return Decision(state, condition("Unknown", "NotMeasured", held))
    series = observation.exported_series
    rates_settled = _rates_settled(parameters, state, now)
    learned = _learned(observation, keep, state.series_per_process, rates_settled)
    state = state.model_copy(update={"current_series": series, "series_per_process": learned})
    lower, target = budget * (1 - parameters.hysteresis_band), budget * (1 - parameters.hysteresis_band / 2)
    figures = f"{series} series against a budget of {budget}, {len(keep)} executables keep detail"
    side = _side(series, lower, budget)
    if side and not _confirmed(series, side, previous, lower, budget, parameters.hysteresis_band):
        return Decision(state, condition("True" if series <= budget else "False", "Confirming",
                                         f"{figures}; acting if the next reading agrees"))  # fmt: skip
    if series < lower and not rates_settled:
        return Decision(state, condition("True", "Settling", f"{figures}; pricing waits for rates since the change"))
    if len(keep) < parameters.min_k:
        plan = _grow(parameters, keep, observation, target, None, {}, parameters.min_k - len(keep))
        plan.reason = f"minK is {parameters.min_k}"
    elif series > budget:
        plan = _shrink(parameters, keep, observation, target)
        plan.reason = f"{series} series are over the budget of {budget}"
    elif series < lower and _series_per_process(observation, keep) is None and not learned:
        plan = _probe(parameters, keep, observation, series)
        plan.reason = f"{series} series leave room under the budget of {budget}; learning what detail costs"
    elif series < lower:
        per_process = _series_per_process(observation, keep)
        plan = _grow(parameters, keep, observation, target, per_process, learned, 0)
        plan.reason = f"{series} series leave room under the budget of {budget}"
    else:
        return Decision(state, condition("True", "WithinBand", figures))
    if not plan.moved:
        if series > budget:
            return Decision(state, condition("False", "AtMinK", f"{figures}, and minK is {parameters.min_k}"))
        return Decision(state, condition("True", "NothingMoreFits", f"{figures}; no other executable fits"))
    verb = "adding" if len(plan.keep) > len(keep) else "removing"
    reason = f"{plan.reason}: {verb} {', '.join(plan.moved)} (about {plan.predicted:.0f} series expected)"
    adjustment = pipeline.Adjustment(at=now, from_k=len(keep), to_k=len(plan.keep), reason=reason)
    state = state.model_copy(update={"keep_executables": plan.keep, "k": len(plan.keep), "last_adjustment": adjustment})
    met: conditions.Status = "False" if series > budget else "True"
    return Decision(
        state,
        condition(met, "OverBudget" if series > budget else "Adjusting", f"{figures}; {reason}"),
        (("Normal", "Adjusted", f"keep list {len(keep)} -> {len(plan.keep)} executables: {reason}"),),
        changed=True,
    )
