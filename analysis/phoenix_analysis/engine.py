"""The verdict: reduction, fidelity, guardrails and cost combined into a decision.

The design is paired: both variants receive the same input at the same
time, so each metric is compared per timestamp (1 - candidate/baseline for
reductions, candidate/baseline - 1 for overheads) and the interval is on the
mean of that paired series (see `intervals`).

Decision rule (Kayenta-like, critical objectives veto):
- Promote only when the series reduction's lower bound clears
  minSeriesReduction, every critical query's error is bounded below
  maxQueryError, the collector's CPU and memory were measured on both
  variants, and no guardrail can exceed its limit.
- Reject when the reduction's upper bound is below the objective, a query's
  error is bounded above maxQueryError, or a guardrail is bounded above its
  limit.
Guardrails: the candidate's CPU and memory increase over the baseline, and
the share of its points the candidate refused or failed to export (a
candidate that sheds data must not win on fewer series); that last one
passes only while no single sample exceeds its limit either.
- Otherwise Inconclusive.
Requiring every query to pass is an intersection-union test, so it keeps the
level alpha without a multiplicity correction. In sequential mode the rule is
checked at every sample against confidence sequences and the first final
decision stands (anytime-valid early stopping). In fixed mode it is checked
once, at the last sample. The engine fails closed: missing, NaN, infinite, absurdly
large (beyond 1e100), mismatched or too few samples give Inconclusive with a
reason, never Promote.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from phoenix_analysis import anomalies, contract, cost, fidelity, intervals, pairing, trend

Floats = npt.NDArray[np.float64]
Bounds = tuple[Floats, Floats, Floats]
MIN_SAMPLES = 10
# Guardrails whose figures must be measured for a Promote: a candidate is not proven light on a collector
# nobody watched. A candidate's refused points, when not reported, are judged by nothing else.
MUST_MEASURE = ("cpu_cores", "memory_bytes")
# The figures a guardrail watches, with its name
GUARDED = {
    "cpu_cores": "collector cpu cores increase",
    "memory_bytes": "collector memory bytes increase",
    "refused_points_ratio": "candidate points refused or failed",
}
# Figures that tell what happened to a variant (its input, its restarts) and are not compared themselves
DIAGNOSTIC = ("accepted_points", "uptime_seconds", "load_batches_sent", "load_batches_failed", "edge_points")
VARIANT_NAMES: tuple[anomalies.VariantName, ...] = ("baseline", "candidate")
# how far ahead the time to a decision is looked for, in multiples of the samples so far
MAX_GROWTH = 100


@dataclass
class _Check:
    """A paired quantity with its running bounds and the side that must hold."""

    name: str
    bounds: Bounds
    limit: float
    passes_below: bool  # True: pass when the upper bound < limit; False: when the lower bound > limit
    topk_overlap: float | None = None
    # where a structural rule (a query's label coverage) fails regardless of the bounds
    broken: npt.NDArray[np.bool_] | None = None
    coverage: float | None = None
    digits: int = 1  # in the reasons' percentages; a limit of 0.1% needs more than one
    # where the check cannot pass whatever the bounds say (it may still fail on them)
    unproven: npt.NDArray[np.bool_] | None = None

    def passed(self) -> npt.NDArray[np.bool_]:
        within = self.bounds[2] < self.limit if self.passes_below else self.bounds[1] > self.limit
        if self.unproven is not None:
            within = within & ~self.unproven
        return within if self.broken is None else within & ~self.broken

    def failed(self) -> npt.NDArray[np.bool_]:
        beyond = self.bounds[1] > self.limit if self.passes_below else self.bounds[2] < self.limit
        return beyond if self.broken is None else beyond | self.broken

    def at(self, index: int) -> intervals.Interval:
        mean, low, high = self.bounds
        return intervals.Interval(float(mean[index]), float(low[index]), float(high[index]))


def _array(values: list[float | None]) -> Floats:
    return np.array(values, dtype=np.float64)  # None becomes NaN


def _input_problems(spec: contract.AnalysisInput) -> tuple[dict[str, Floats], list[str]]:
    arrays: dict[str, Floats] = {}
    for variant_name in ("baseline", "candidate"):
        variant = getattr(spec, variant_name)
        for key in ("active_series", "datapoints_per_minute", *GUARDED, *DIAGNOSTIC):
            values = getattr(variant, key)
            if values is not None:
                arrays[f"{variant_name}.{key}"] = _array(values)
    problems = []
    lengths = {k: len(v) for k, v in arrays.items()}
    n = lengths["baseline.active_series"]
    mismatched = [f"{contract.wire_path(k)} has {length}" for k, length in lengths.items() if length != n]
    if mismatched:
        problems.append(f"mismatched lengths: baseline.activeSeries has {n}, " + ", ".join(mismatched))
    for key in ("cpu_cores", "memory_bytes", *DIAGNOSTIC):
        # refused points are the candidate's alone; the baseline's are reported only
        if (f"baseline.{key}" in arrays) != (f"candidate.{key}" in arrays):
            problems.append(f"{contract.wire_path(key)} is given for one variant only")
    problems.extend(
        f"{contract.wire_path(key)} has infinite samples or samples beyond {fidelity.MAX_MAGNITUDE:g}"
        for key, values in arrays.items()
        if np.any(np.abs(values) > fidelity.MAX_MAGNITUDE)
    )
    for key in ("baseline.active_series", "baseline.datapoints_per_minute"):
        if key in arrays and np.any(arrays[key][~np.isnan(arrays[key])] <= 0):
            problems.append(f"{contract.wire_path(key)} has samples <= 0, so no reduction can be computed")
    if not problems:
        kept = int(np.sum(~_gaps(arrays)))
        if kept < MIN_SAMPLES:
            missing = [
                f"{contract.wire_path(key)} has {int(np.isnan(values).sum())} missing or NaN samples"
                for key, values in arrays.items()
                if key.split(".")[1] not in DIAGNOSTIC and np.isnan(values).any()
            ]
            problems.append(
                f"too few samples with every figure measured: {kept} of {n} (at least {MIN_SAMPLES} are needed)"
                + "".join(f"; {m}" for m in missing)
            )
    return arrays, problems


def _gaps(arrays: dict[str, Floats]) -> npt.NDArray[np.bool_]:
    """Samples where a figure the verdict uses has no value on either variant."""
    judged = [values for key, values in arrays.items() if key.split(".")[1] not in DIAGNOSTIC]
    gaps: npt.NDArray[np.bool_] = np.any(np.isnan(np.vstack(judged)), axis=0)
    return gaps


def _without_gaps(spec: contract.AnalysisInput, kept: npt.NDArray[np.int64]) -> contract.AnalysisInput:
    """The input with only the kept samples, in every series of the right length."""
    n = len(spec.baseline.active_series)

    def cut(values: contract.Samples) -> contract.Samples:
        return [values[i] for i in kept] if len(values) == n else values

    def cut_variant(variant: contract.Variant) -> contract.Variant:
        fields = {key: cut(value) for key, value in variant if isinstance(value, list)}
        return variant.model_copy(update=fields)

    def cut_answer(answer: contract.Samples | contract.LabelledSamples) -> contract.Samples | contract.LabelledSamples:
        return {key: cut(values) for key, values in answer.items()} if isinstance(answer, dict) else cut(answer)

    queries = [
        query.model_copy(update={"baseline": cut_answer(query.baseline), "candidate": cut_answer(query.candidate)})
        for query in spec.critical_queries
    ]
    return spec.model_copy(
        update={
            "baseline": cut_variant(spec.baseline),
            "candidate": cut_variant(spec.candidate),
            "critical_queries": queries,
        }
    )


def _fmt(value: intervals.Interval, digits: int = 1) -> str:
    return f"{value.estimate:.{digits}%} [{value.low:.{digits}%}, {value.high:.{digits}%}]"


def _contract_interval(value: intervals.Interval) -> contract.Interval:
    return contract.Interval(estimate=value.estimate, ci_low=value.low, ci_high=value.high)


def _interval_at(bounds: Bounds, index: int) -> contract.Interval:
    return contract.Interval(
        estimate=float(bounds[0][index]), ci_low=float(bounds[1][index]), ci_high=float(bounds[2][index])
    )


def analyze_input(spec: contract.AnalysisInput) -> contract.Result:
    """The verdict on typed input; see the module docstring for the rule."""
    full, problems = _input_problems(spec)
    if problems:
        return contract.Result(
            mode=spec.mode,
            samples_used=len(full["baseline.active_series"]),
            reasons=[contract.Reason(kind=contract.ReasonKind.NO_DECISION, text="no decision: " + p) for p in problems],
        )
    n = len(full["baseline.active_series"])
    flags = anomalies.detect(
        {
            v: anomalies.VariantSeries(
                figures={
                    k.split(".")[1]: x
                    for k, x in full.items()
                    if k.startswith(f"{v}.") and k.split(".")[1] not in DIAGNOSTIC
                },
                accepted_points=full.get(f"{v}.accepted_points"),
                uptime_seconds=full.get(f"{v}.uptime_seconds"),
                edge_points=full.get(f"{v}.edge_points"),
            )
            for v in VARIANT_NAMES
        },
        n,
    )
    missed = np.isin(np.arange(n), [f.index for f in flags if f.pattern == anomalies.MISSED])
    kept = np.flatnonzero(~_gaps(full) & ~missed)
    spec = _without_gaps(spec, kept) if len(kept) < n else spec
    arrays = {k: v[kept] for k, v in full.items()}
    alpha = spec.alpha
    tightest_at = spec.planned_samples or n  # the sequences' tuning: from the plan, never the data
    planned = max(tightest_at, n)

    def bound(x: Floats, alpha: float) -> Bounds:
        if spec.mode == "sequential":
            return intervals.running_confidence_sequence(x, alpha, tightest_at)
        return intervals.running_fixed_interval(x, alpha)

    a = arrays
    series_reduction = 1 - a["candidate.active_series"] / a["baseline.active_series"]
    objective = spec.objectives.min_series_reduction
    wilcoxon_p_value = None
    if spec.mode == "fixed":
        hodges_lehmann, wilcoxon_p_value = intervals.hodges_lehmann_interval(series_reduction, alpha, objective)
        series_bounds = _constant_bounds(hodges_lehmann, len(series_reduction))
    else:
        series_bounds = bound(series_reduction, alpha)
    series = _Check("series reduction", series_bounds, objective, False)
    planned_end = float(planned - 1)
    fits = trend.fits(series_reduction, kept.astype(np.float64), planned_end, alpha, tightest_at)
    projection_clears = fits.projected_low > objective
    dpm = bound(1 - a["candidate.datapoints_per_minute"] / a["baseline.datapoints_per_minute"], alpha)
    costs = {
        v: cost.monthly_cost(
            spec.cost_model,
            a[f"{v}.active_series"],
            a[f"{v}.datapoints_per_minute"],
            a.get(f"{v}.cpu_cores"),
            a.get(f"{v}.memory_bytes"),
        )
        for v in ("baseline", "candidate")
    }
    savings = bound(costs["baseline"] - costs["candidate"], alpha)

    query_checks, query_problems = _query_checks(spec, bound, len(series_reduction))
    guard_checks, guard_reports = _guardrail_checks(spec, arrays, bound)
    last = len(series_reduction) - 1
    vetoes = [*query_checks, *guard_checks]
    promote = series.passed() & np.all([c.passed() for c in vetoes], axis=0) if vetoes else series.passed()
    reject = series.failed() | np.any([c.failed() for c in vetoes], axis=0) if vetoes else series.failed()
    unmeasured = [key for key in MUST_MEASURE if _guarded_series(arrays, key) is None]
    if query_problems or unmeasured:
        promote = np.zeros_like(promote)  # a query without data, or an unwatched collector, can never be proven
    inputs = None
    if "baseline.accepted_points" in full:
        inputs = pairing.agreement(
            full["baseline.accepted_points"],
            full["candidate.accepted_points"],
            spec.objectives.max_input_difference,
            alpha,
            tightest_at,
        )
    delivered = None
    if "baseline.load_batches_sent" in full and "baseline.load_batches_failed" in full:
        delivered = pairing.delivery(
            {v: full[f"{v}.load_batches_sent"] for v in VARIANT_NAMES},
            {v: full[f"{v}.load_batches_failed"] for v in VARIANT_NAMES},
            spec.objectives.max_input_difference,
        )
    flagged_so_far = np.cumsum(np.isin(np.arange(n), [f.index for f in flags if f.pattern != anomalies.MISSED]))[kept]
    share = flagged_so_far / (kept + 1)
    too_many_anomalies = share > spec.objectives.max_anomaly_share
    blocked_promote = ~projection_clears | too_many_anomalies
    if inputs is not None:
        blocked_promote |= inputs.differs[kept]
    if delivered is not None:
        blocked_promote |= delivered.differs[kept]
    decided_at = _decision_index(promote & ~blocked_promote, reject & ~too_many_anomalies, spec.mode, last)
    # The first final decision stands, so every figure is reported as it was then.
    at = last if decided_at is None else decided_at
    decision: contract.Decision = "Inconclusive"
    if decided_at is not None:
        decision = "Promote" if promote[decided_at] and not blocked_promote[decided_at] else "Reject"
    used = slice(0, at + 1)
    sample_at = int(kept[at])  # the decision's sample in the input, gaps included
    trend_report = _trend_report(fits, at, objective, spec.interval_seconds, planned_end, sample_at)
    input_report = _input_report(inputs, delivered, sample_at, spec.objectives.max_input_difference)
    anomaly_report = contract.Anomalies(
        samples=[
            contract.AnomalousSample(index=f.index, variant=f.variant, pattern=f.pattern)
            for f in flags
            if f.index <= sample_at
        ],
        share=float(share[at]),
        limit=spec.objectives.max_anomaly_share,
        excluded=int(sample_at + 1 - (at + 1)),
    )
    reasons = _reasons(decision, series, query_checks, query_problems, guard_checks, at, spec)
    seconds_to_decide = None
    more = None
    if decision == "Inconclusive" and not (query_problems or unmeasured):
        blocking = _interval(trend_report.projected_at_end) if not projection_clears[at] else None
        more = _samples_to_decide(
            [series, *vetoes], blocking, objective, at, planned_end, _critical_values(spec.mode, alpha, tightest_at)
        )
    if more is not None:
        seconds_to_decide = more * spec.interval_seconds
        reasons.append(_time_to_decide_reason(seconds_to_decide, at + more > planned_end))
    if decision != "Reject":
        reasons += _trust_reasons(
            decision,
            bool(series.passed()[at]) and not bool(projection_clears[at]),
            trend_report,
            input_report,
            anomaly_report,
            objective,
        )
    return contract.Result(
        decision=decision,
        reasons=reasons + _unmeasured_reasons(decision, unmeasured, spec),
        series_reduction=_contract_interval(series.at(at)),
        datapoint_reduction=_interval_at(dpm, at),
        monthly_savings_usd=_interval_at(savings, at),
        fidelity=_fidelity_report(spec, query_checks, query_problems, at),
        guardrails=guard_reports(at),
        variants={
            v: contract.VariantSummary(
                active_series=float(np.mean(a[f"{v}.active_series"][used])),
                datapoints_per_minute=float(np.mean(a[f"{v}.datapoints_per_minute"][used])),
                cpu_cores=float(np.mean(a[f"{v}.cpu_cores"][used])) if f"{v}.cpu_cores" in a else None,
                memory_bytes=float(np.mean(a[f"{v}.memory_bytes"][used])) if f"{v}.memory_bytes" in a else None,
                refused_points_ratio=(
                    float(np.mean(a[f"{v}.refused_points_ratio"][used])) if f"{v}.refused_points_ratio" in a else None
                ),
                monthly_cost_usd=float(np.mean(costs[v][used])),
            )
            for v in ("baseline", "candidate")
        },
        series_trend=trend_report,
        input_agreement=input_report,
        anomalies=anomaly_report,
        seconds_to_decide=seconds_to_decide,
        samples_used=sample_at + 1,
        decided_at_index=sample_at if decided_at is not None and spec.mode == "sequential" else None,
        mode=spec.mode,
        wilcoxon_p_value=wilcoxon_p_value,
        series_reduction_sequence=contract.ConfidenceSequence(
            sample=kept.tolist(),
            estimate=series.bounds[0].tolist(),
            ci_low=series.bounds[1].tolist(),
            ci_high=series.bounds[2].tolist(),
        ),
    )


def _input_report(
    inputs: pairing.Agreement | None, delivered: pairing.Delivery | None, at: int, tolerance: float
) -> contract.InputAgreement | None:
    if inputs is None:
        return None
    batches: dict[str, int] = {}
    if delivered is not None:
        for variant in VARIANT_NAMES:
            batches[f"{variant}_batches_sent"] = int(delivered.sent[variant][at])
            batches[f"{variant}_batches_failed"] = int(delivered.failed[variant][at])
    return contract.InputAgreement(
        baseline_points=float(inputs.baseline[at]),
        candidate_points=float(inputs.candidate[at]),
        difference=float(inputs.difference[at]),
        tolerance=tolerance,
        agrees=not (inputs.differs[at] or (delivered is not None and delivered.differs[at])),
        **batches,
    )


def _trend_report(
    fits: trend.Fits, index: int, objective: float, interval_seconds: float, planned_end: float, sample: int
) -> contract.Trend:
    slope, level_now, projected = fits.at(index)
    per_hour = 3600 / interval_seconds
    crosses = None
    if slope.estimate < 0 and level_now > objective:
        crosses = (level_now - objective) / -slope.estimate * interval_seconds
    return contract.Trend(
        slope_per_hour=contract.Interval(
            estimate=slope.estimate * per_hour, ci_low=slope.low * per_hour, ci_high=slope.high * per_hour
        ),
        projected_at_end=_contract_interval(projected),
        crosses_objective_in_seconds=crosses,
        adverse=slope.high < 0,
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _trust_reasons(
    decision: contract.Decision,
    trend_blocks: bool,
    trend_report: contract.Trend,
    inputs: contract.InputAgreement | None,
    anomaly_report: contract.Anomalies,
    objective: float,
) -> list[contract.Reason]:
    """What else stands between an Inconclusive and a Promote: the trend, unequal input, anomalies.

    An adverse trend that still projects above the objective is told only while undecided: a Promote's
    reasons are what it rests on, and its trend is in the result whatever its sign.
    """
    kinds = contract.ReasonKind
    reasons = []
    if trend_blocks or (trend_report.adverse and decision == "Inconclusive"):
        slope = trend_report.slope_per_hour
        text = (
            f"series reduction's trend {slope.estimate:+.1%}/h [{slope.ci_low:+.1%}, {slope.ci_high:+.1%}] projects"
            f" it at {_fmt(_interval(trend_report.projected_at_end))} by the run's end"
        )
        text += f", not shown above the objective {objective:.0%}" if trend_blocks else ""
        if trend_report.crosses_objective_in_seconds is not None:
            crossing = _duration(trend_report.crosses_objective_in_seconds)
            text += f"; at this rate it falls through the objective in about {crossing}"
        elif trend_report.adverse:
            text += "; its line is already below the objective"
        reasons.append(contract.Reason(kind=kinds.TREND_NOT_SHOWN, text=text))
    if inputs is not None and not inputs.agrees:
        reasons.append(contract.Reason(kind=kinds.INPUTS_DIFFER, text=_inputs_differ(inputs)))
    if anomaly_report.share > anomaly_report.limit:
        counts: dict[str, int] = {}
        for sample in anomaly_report.samples:
            if sample.pattern == anomalies.MISSED:
                continue
            label = f"{sample.pattern} on the {sample.variant}"
            counts[label] = counts.get(label, 0) + 1
        told = ", ".join(f"{count} {label}" for label, count in counts.items())
        reasons.append(
            contract.Reason(
                kind=kinds.TOO_MANY_ANOMALIES,
                text=f"{anomaly_report.share:.1%} of the samples are anomalous ({told}), above the"
                f" {anomaly_report.limit:.0%} allowed: the paired difference is not trusted",
            )
        )
    return reasons


def _inputs_differ(inputs: contract.InputAgreement) -> str:
    """Which variant received less: by the LoadSim's lost batches when they differ beyond the tolerance, else points."""
    allowed = f"beyond the {inputs.tolerance:.1%} allowed: no Promote on unequal input"
    lost = {
        variant: (failed, sent + failed)
        for variant, sent, failed in (
            ("baseline", inputs.baseline_batches_sent, inputs.baseline_batches_failed),
            ("candidate", inputs.candidate_batches_sent, inputs.candidate_batches_failed),
        )
        if sent is not None and failed is not None
    }
    shares = {variant: failed / max(attempted, 1) for variant, (failed, attempted) in lost.items()}
    if len(shares) == 2 and abs(shares["candidate"] - shares["baseline"]) > inputs.tolerance:
        short, other = (
            ("candidate", "baseline") if shares["candidate"] > shares["baseline"] else ("baseline", "candidate")
        )
        return (
            f"the {short} received less: the LoadSim could not deliver {lost[short][0]} of {lost[short][1]} batches"
            f" to it and {lost[other][0]} of {lost[other][1]} to the {other}"
            f" ({shares[short] - shares[other]:.1%} more lost), {allowed}"
        )
    short = "candidate" if inputs.difference < 0 else "baseline"
    return (
        f"the variants' inputs differ by {abs(inputs.difference):.1%} (the {short} received less:"
        f" {inputs.baseline_points:.0f} points on the baseline, {inputs.candidate_points:.0f} on the"
        f" candidate), {allowed}"
    )


def _interval(value: contract.Interval) -> intervals.Interval:
    return intervals.Interval(value.estimate, value.ci_low, value.ci_high)


def _unmeasured_reasons(decision: str, unmeasured: list[str], spec: contract.AnalysisInput) -> list[contract.Reason]:
    if decision == "Reject":
        return []  # a Reject stands on what was measured
    limits = {"cpu_cores": spec.objectives.max_cpu_increase, "memory_bytes": spec.objectives.max_memory_increase}
    return [
        contract.Reason(
            kind=contract.ReasonKind.GUARDRAIL_NOT_MEASURED,
            text=f"{GUARDED[key]} was not measured on both variants, so its {limits[key]:.0%} guardrail cannot"
            " be shown: no Promote without it",
        )
        for key in unmeasured
    ]


def _constant_bounds(value: intervals.Interval, n: int) -> Bounds:
    return (np.full(n, value.estimate), np.full(n, value.low), np.full(n, value.high))


def _critical_values(mode: str, alpha: float, tightest_at: int) -> Callable[[Floats], Floats]:
    """The margin in standard errors at k samples: the sequence's, which grows slowly, or the fixed z."""
    if mode == "sequential":
        return lambda k: intervals.sequence_critical_value(k, alpha, tightest_at)
    z = float(stats.norm.ppf(1 - alpha / 2))
    return lambda k: np.full(len(k), z)


def _samples_to_decide(
    checks: list[_Check],
    projection: intervals.Interval | None,
    objective: float,
    index: int,
    planned_end: float,
    critical: Callable[[Floats], Floats],
) -> int | None:
    """About how many more samples the undecided checks need, if their means and variances stay as they are.

    A mean's margin shrinks as critical(k) / sqrt(k); the trend's projection
    (given while it still blocks a Promote) as its standard error does, the
    planned end held. A check whose mean lies on the failing side can only
    end in a Reject, and the first of those to cross decides; otherwise a
    Promote waits for the last one to clear. None when a mean sits on its
    limit, or the answer is over MAX_GROWTH times away.
    """
    k = index + 1
    ahead = np.arange(k + 1, k * MAX_GROWTH + 2, dtype=np.float64)
    by_critical = critical(ahead) / critical(np.array([float(k)]))[0]
    shrink = by_critical * np.sqrt(k / ahead)

    def first(margin: float, distance: float, shrinking: Floats) -> int | None:
        reached = np.nonzero(margin * shrinking < distance)[0]
        return int(ahead[reached[0]]) - k if len(reached) else None

    to_pass: list[int | None] = []
    to_fail: list[int | None] = []
    for check in checks:
        if check.passed()[index] or check.failed()[index]:
            continue
        now = check.at(index)
        passing_side = now.estimate < check.limit if check.passes_below else now.estimate > check.limit
        margin = (now.high - now.estimate) if passing_side == check.passes_below else (now.estimate - now.low)
        samples = first(margin, abs(check.limit - now.estimate), shrink)
        if passing_side and check.unproven is not None and check.unproven[index]:
            samples = None  # no time clears a limit already reached
        (to_pass if passing_side else to_fail).append(samples)
    if to_fail:
        known = [samples for samples in to_fail if samples is not None]
        return min(known) if known else None
    if projection is not None:
        if projection.estimate <= objective:
            return None

        def projection_se(samples: Floats) -> Floats:
            end = np.maximum(planned_end, samples - 1)
            spread = samples * (samples**2 - 1) / 12
            return np.asarray(np.sqrt(1 / samples + (end - (samples - 1) / 2) ** 2 / spread), dtype=np.float64)

        now_se = projection_se(np.array([float(k)]))[0]
        to_pass.append(first(projection.estimate - projection.low, projection.estimate - objective,
                             by_critical * projection_se(ahead) / now_se))  # fmt: skip
    return None if not to_pass or None in to_pass else max(s for s in to_pass if s is not None)


def _time_to_decide_reason(seconds: float, beyond_the_plan: bool) -> contract.Reason:
    text = f"at the current variance, about {_duration(seconds)} more would decide it"
    if beyond_the_plan:
        text += ", longer than the run plans"
    return contract.Reason(kind=contract.ReasonKind.TIME_TO_DECIDE, text=text)


def _decision_index(promote: npt.NDArray[np.bool_], reject: npt.NDArray[np.bool_], mode: str, last: int) -> int | None:
    if mode == "fixed":
        return last if (promote[last] or reject[last]) else None
    final = np.nonzero((promote | reject)[MIN_SAMPLES - 1 :])[0]
    return int(final[0]) + MIN_SAMPLES - 1 if len(final) else None


def _query_checks(
    spec: contract.AnalysisInput, bound: Callable[[Floats, float], Bounds], samples: int
) -> tuple[list[_Check], dict[str, str]]:
    checks, problems = [], {}
    for query in spec.critical_queries:
        errors = fidelity.query_errors(query.baseline, query.candidate, samples)
        if errors.errors is None:
            problems[query.name] = errors.problem or "no data"
            continue
        bounds = bound(errors.errors, spec.alpha)
        assert errors.coverage is not None
        running_coverage = np.cumsum(errors.coverage) / np.arange(1, samples + 1)
        broken = running_coverage < fidelity.MIN_COVERAGE
        check = _Check(query.name, bounds, spec.objectives.max_query_error, True, errors.topk_overlap, broken)
        checks.append(dataclasses.replace(check, coverage=float(np.mean(errors.coverage))))
    return checks, problems


def _guardrail_checks(
    spec: contract.AnalysisInput,
    arrays: dict[str, Floats],
    bound: Callable[[Floats, float], Bounds],
) -> tuple[list[_Check], Callable[[int], list[contract.Guardrail]]]:
    limits = {
        "cpu_cores": spec.objectives.max_cpu_increase,
        "memory_bytes": spec.objectives.max_memory_increase,
        "refused_points_ratio": spec.objectives.max_refused_points_ratio,
    }
    checks = {}
    for key, limit in limits.items():
        watched = _guarded_series(arrays, key)
        if watched is None:
            continue
        check = _Check(GUARDED[key], bound(watched, spec.alpha), limit, True, digits=_digits(limit))
        if key == "refused_points_ratio":
            # Shedding comes in bursts, so its mean's bounds run low until a burst is
            # seen (a CLT bound on right-skewed data); passing also needs every
            # interval so far under the limit. Calibrated in test_calibration.
            check.unproven = np.maximum.accumulate(watched) >= limit
        checks[key] = check

    def report(index: int) -> list[contract.Guardrail]:
        out = []
        for key, limit in limits.items():
            check = checks.get(key)
            if check is None:
                out.append(contract.Guardrail(name=GUARDED[key], status="not-measured", increase=None, limit=limit))
                continue
            status = "pass" if check.passed()[index] else "breach" if check.failed()[index] else "undetermined"
            out.append(
                contract.Guardrail(
                    name=check.name, status=status, increase=_contract_interval(check.at(index)), limit=limit
                )
            )
        return out

    return list(checks.values()), report


def _guarded_series(arrays: dict[str, Floats], key: str) -> Floats | None:
    """The per-sample quantity a guardrail bounds, or None when it was not measured."""
    candidate = arrays.get(f"candidate.{key}")
    if key == "refused_points_ratio":
        return candidate  # shedding is judged on its own: any of it loses data
    baseline = arrays.get(f"baseline.{key}")
    if baseline is None or candidate is None or np.any(baseline <= 0):
        return None
    return candidate / baseline - 1


def _digits(limit: float) -> int:
    """Decimals of a percentage that still show the limit: 10% needs none, 0.1% one."""
    return max(1, -math.floor(math.log10(limit * 100)) + 1) if limit > 0 else 1


def _fidelity_report(
    spec: contract.AnalysisInput, checks: list[_Check], problems: dict[str, str], index: int
) -> contract.Fidelity:
    queries = []
    for check in checks:
        status = "pass" if check.passed()[index] else "fail" if check.failed()[index] else "undetermined"
        queries.append(
            contract.QueryFidelity(
                name=check.name,
                status=status,
                error=_contract_interval(check.at(index)),
                topk_overlap=check.topk_overlap,
                label_coverage=check.coverage,
                problem=None,
            )
        )
    for name, problem in problems.items():
        queries.append(
            contract.QueryFidelity(
                name=name, status="no-data", error=None, topk_overlap=None, label_coverage=None, problem=problem
            )
        )
    worst = max(checks, key=lambda c: c.bounds[0][index], default=None)
    return contract.Fidelity(
        checked=len(spec.critical_queries),
        passed=sum(q.status == "pass" for q in queries),
        worst_query=worst.name if worst else (next(iter(problems), None)),
        worst_error=float(worst.bounds[0][index]) if worst else None,
        queries=queries,
    )


def _reasons(
    decision: str,
    series: _Check,
    queries: list[_Check],
    query_problems: dict[str, str],
    guardrails: list[_Check],
    index: int,
    spec: contract.AnalysisInput,
) -> list[contract.Reason]:
    kinds = contract.ReasonKind
    objective = spec.objectives.min_series_reduction
    reduction = series.at(index)
    reasons: list[tuple[contract.ReasonKind, str]] = []
    if series.passed()[index]:
        reasons.append(
            (kinds.SERIES_CLEARS, f"series reduction {_fmt(reduction)} clears the objective {objective:.0%}")
        )
    elif series.failed()[index]:
        reasons.append(
            (kinds.SERIES_BELOW, f"series reduction {_fmt(reduction)} is below the objective {objective:.0%}")
        )
    else:
        reasons.append(
            (
                kinds.SERIES_UNDETERMINED,
                f"series reduction {_fmt(reduction)} is not yet distinguishable from the objective {objective:.0%}",
            )
        )
    limit = spec.objectives.max_query_error
    for check in queries:
        error = check.at(index)
        if check.broken is not None and check.broken[index]:
            text = (
                f"critical query {check.name} lost label sets: the candidate's answer covers only "
                f"{check.coverage:.0%} of the baseline's (a label it groups by is gone)"
            )
            reasons.append((kinds.QUERY_LOST_LABELS, text))
        elif check.failed()[index]:
            text = f"critical query {check.name} differs by {_fmt(error)}, above the {limit:.1%} allowed"
            reasons.append((kinds.QUERY_DIFFERS, text))
        elif not check.passed()[index]:
            text = f"critical query {check.name} error {_fmt(error)} is not yet shown below {limit:.1%}"
            reasons.append((kinds.QUERY_UNDETERMINED, text))
    for name, problem in query_problems.items():
        reasons.append((kinds.QUERY_NO_DATA, f"critical query {name}: {problem}"))
    if queries and all(c.passed()[index] for c in queries) and not query_problems:
        reasons.append((kinds.QUERIES_AGREE, f"all {len(queries)} critical queries agree within {limit:.1%}"))
    for check in guardrails:
        limit_text = f"{check.limit:.{check.digits - 1}%}"
        if check.failed()[index]:
            text = f"{check.name} {_fmt(check.at(index), check.digits)} breaches the {limit_text} guardrail"
            reasons.append((kinds.GUARDRAIL_BREACHED, text))
        elif not check.passed()[index]:
            text = f"{check.name} {_fmt(check.at(index), check.digits)} is not yet shown within {limit_text}"
            reasons.append((kinds.GUARDRAIL_UNDETERMINED, text))
    if decision == "Promote":
        reasons = [r for r in reasons if r[0] not in contract.UNDETERMINED]
    elif decision == "Reject":
        reasons = [r for r in reasons if r[0] in contract.REJECTING]
    return [contract.Reason(kind=kind, text=text) for kind, text in reasons]


def analyze(data: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON contract: `contract.AnalysisInput` in, `contract.Result` out, both as dicts."""
    return analyze_input(contract.parse(data)).to_json()
