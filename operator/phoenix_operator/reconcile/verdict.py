"""The analysis output, as the experiment's `status.results` and `status.verdict`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from phoenix_operator.models import experiment


def _interval(value: dict[str, float] | None) -> experiment.Interval | None:
    if value is None:
        return None
    return experiment.Interval(estimate=value["estimate"], ci_low=value["ci_low"], ci_high=value["ci_high"])


def _figures(variant: dict[str, float | None]) -> experiment.VariantFigures:
    return experiment.VariantFigures(
        active_series=variant.get("active_series"),
        datapoints_per_minute=variant.get("datapoints_per_minute"),
        cpu_cores=variant.get("cpu_cores"),
        memory_bytes=variant.get("memory_bytes"),
    )


def results(analysis: dict[str, Any]) -> experiment.Results:
    variants = analysis.get("variants") or {}
    fidelity = analysis["fidelity"]
    return experiment.Results(
        baseline=_figures(variants.get("baseline", {})),
        candidate=_figures(variants.get("candidate", {})),
        series_reduction=_interval(analysis["series_reduction"]),
        datapoint_reduction=_interval(analysis["datapoint_reduction"]),
        monthly_savings_usd=_interval(analysis["monthly_savings_usd"]),
        fidelity=experiment.Fidelity(
            checked=fidelity["checked"],
            passed=fidelity["passed"],
            worst_query=fidelity["worst_query"],
            worst_error=fidelity["worst_error"],
        ),
        guardrails=[
            experiment.Guardrail(
                name=g["name"],
                passed=g["status"] == "pass",
                estimate=(g["increase"] or {}).get("estimate"),
                limit=g["limit"],
            )
            for g in analysis["guardrails"]
            if g["status"] != "not-measured"
        ],
        samples_used=analysis["samples_used"],
    )


def verdict(analysis: dict[str, Any], now: datetime) -> experiment.Verdict:
    return experiment.Verdict(decision=analysis["decision"], reasons=analysis["reasons"], decided_at=now)
