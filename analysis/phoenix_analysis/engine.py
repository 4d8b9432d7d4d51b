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
once, at the last sample. The engine fails closed: missing, NaN, mismatched or
too few samples give Inconclusive with a reason, never Promote.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from phoenix_analysis import anomalies, contract, cost, fidelity, intervals

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
        for key in ("active_series", "datapoints_per_minute", *GUARDED):
            values = getattr(variant, key)
            if values is not None:
                arrays[f"{variant_name}.{key}"] = _array(values)
    problems = []
    lengths = {k: len(v) for k, v in arrays.items()}
    n = lengths["baseline.active_series"]
    mismatched = [f"{k} has {length}" for k, length in lengths.items() if length != n]
    if mismatched:
        problems.append(f"mismatched lengths: baseline.active_series has {n}, " + ", ".join(mismatched))
    for key in ("cpu_cores", "memory_bytes"):
        # refused points are the candidate's alone; the baseline's are reported only
        if (f"baseline.{key}" in arrays) != (f"candidate.{key}" in arrays):
            problems.append(f"{key} is given for one variant only")
    for key, values in arrays.items():
        missing = int(np.isnan(values).sum())
        if missing:
            problems.append(f"{key} has {missing} missing or NaN samples")
    for key in ("baseline.active_series", "baseline.datapoints_per_minute"):
        if key in arrays and np.any(arrays[key][~np.isnan(arrays[key])] <= 0):
            problems.append(f"{key} has samples <= 0, so no reduction can be computed")
    if not problems and n < MIN_SAMPLES:
        problems.append(f"too few samples: {n} (at least {MIN_SAMPLES} are needed)")
    return arrays, problems


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
    arrays, problems = _input_problems(spec)
    if problems:
        return contract.Result(
            mode=spec.mode,
            samples_used=len(arrays["baseline.active_series"]),
            reasons=[contract.Reason(kind=contract.ReasonKind.NO_DECISION, text="no decision: " + p) for p in problems],
        )
    bound: Callable[[Floats, float], Bounds] = (
        intervals.running_confidence_sequence if spec.mode == "sequential" else intervals.running_fixed_interval
    )
    alpha = spec.alpha
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

    decided_at = _decision_index(promote, reject, spec.mode, last)
    # The first final decision stands, so every figure is reported as it was then.
    at = last if decided_at is None else decided_at
    decision: contract.Decision = "Inconclusive"
    if decided_at is not None:
        decision = "Promote" if promote[decided_at] else "Reject"
    used = slice(0, at + 1)
    return contract.Result(
        decision=decision,
        reasons=_reasons(decision, series, query_checks, query_problems, guard_checks, at, spec)
        + _unmeasured_reasons(decision, unmeasured, spec),
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
        anomalies={"series_reduction": anomalies.flagged(series_reduction)},
        samples_used=at + 1,
        decided_at_index=decided_at if spec.mode == "sequential" else None,
        mode=spec.mode,
        wilcoxon_p_value=wilcoxon_p_value,
        series_reduction_sequence={
            name: values.tolist() for name, values in zip(("estimate", "ci_low", "ci_high"), series.bounds, strict=True)
        },
    )


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
