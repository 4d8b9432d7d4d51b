"""The engine's result, as the experiment's `status.results` and `status.verdict`."""

from __future__ import annotations

from datetime import datetime

from phoenix_analysis import contract
from phoenix_operator.models import experiment


def _interval(value: contract.Interval | None) -> experiment.Interval | None:
    if value is None:
        return None
    return experiment.Interval(estimate=value.estimate, ci_low=value.ci_low, ci_high=value.ci_high)


def _figures(variant: contract.VariantSummary | None) -> experiment.VariantFigures:
    if variant is None:
        return experiment.VariantFigures()
    return experiment.VariantFigures(
        active_series=variant.active_series,
        datapoints_per_minute=variant.datapoints_per_minute,
        cpu_cores=variant.cpu_cores,
        memory_bytes=variant.memory_bytes,
        refused_points_ratio=variant.refused_points_ratio,
    )


def results(analysis: contract.Result) -> experiment.Results:
    fidelity = analysis.fidelity
    return experiment.Results(
        baseline=_figures(analysis.variants.get("baseline")),
        candidate=_figures(analysis.variants.get("candidate")),
        series_reduction=_interval(analysis.series_reduction),
        datapoint_reduction=_interval(analysis.datapoint_reduction),
        monthly_savings_usd=_interval(analysis.monthly_savings_usd),
        fidelity=experiment.Fidelity(
            checked=fidelity.checked,
            passed=fidelity.passed,
            worst_query=fidelity.worst_query,
            worst_error=fidelity.worst_error,
        ),
        guardrails=[
            experiment.Guardrail(
                name=g.name,
                passed=g.status == "pass",
                estimate=g.increase.estimate if g.increase else None,
                limit=g.limit,
            )
            for g in analysis.guardrails
            if g.status != "not-measured"
        ],
        samples_used=analysis.samples_used,
        trend=_trend(analysis.series_trend),
        input_agreement=(
            experiment.InputAgreement.model_validate(analysis.input_agreement.model_dump())
            if analysis.input_agreement
            else None
        ),
        anomalies=experiment.Anomalies(
            samples=[
                experiment.AnomalousSample.model_validate(sample.model_dump())
                for sample in analysis.anomalies.samples[: experiment.MAX_ANOMALIES_IN_STATUS]
            ],
            count=len(analysis.anomalies.samples),
            share=analysis.anomalies.share,
            limit=analysis.anomalies.limit,
            excluded=analysis.anomalies.excluded,
        ),
        seconds_to_decide=analysis.seconds_to_decide,
    )


def _trend(trend: contract.Trend | None) -> experiment.Trend | None:
    if trend is None:
        return None
    slope, projected = _interval(trend.slope_per_hour), _interval(trend.projected_at_end)
    assert slope is not None and projected is not None
    return experiment.Trend(
        slope_per_hour=slope,
        projected_at_end=projected,
        crosses_objective_in_seconds=trend.crosses_objective_in_seconds,
        adverse=trend.adverse,
    )


def verdict(analysis: contract.Result, now: datetime) -> experiment.Verdict:
    return experiment.Verdict(decision=analysis.decision, reasons=analysis.reason_texts, decided_at=now)
