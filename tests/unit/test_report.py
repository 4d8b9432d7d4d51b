"""The HTML report of a local run, drawn from a recorded quickstart measurement."""

from __future__ import annotations

import json
from pathlib import Path

from phoenix_analysis import contract, engine
from phoenix_operator.cli import report
from phoenix_operator.measure import base as measure_base
from phoenix_operator.models import experiment, kinds

REPO = Path(__file__).resolve().parents[2]
QUICKSTART_INPUT = REPO / "examples" / "analyze" / "quickstart-input.json"
SEQUENCE_TITLE = "Series reduction: estimate and confidence sequence"


def _spec() -> experiment.ExperimentSpec:
    manifest = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": "quickstart"},
        "spec": {"baseline": {"template": "baseline"}, "candidate": {"template": "candidate"}},
    }
    return kinds.PhoenixExperiment.model_validate(manifest).spec


def _page(data: dict[str, object]) -> str:
    parsed = contract.parse(data)
    measured = measure_base.Measurement(
        phase="Successful",
        baseline=parsed.baseline,
        candidate=parsed.candidate,
        critical_queries=list(parsed.critical_queries),
        timestamps=[i * parsed.interval_seconds for i in range(len(parsed.baseline.active_series))],
    )
    result = engine.analyze_input(parsed)
    objective = parsed.objectives.min_series_reduction
    return report.from_run("quickstart", _spec(), experiment.ExperimentStatus(), result, measured, objective)


def test_the_report_draws_the_series_the_sequence_and_each_critical_query() -> None:
    data = json.loads(QUICKSTART_INPUT.read_text())
    page = _page(data)
    assert page.count("<svg") == 2 + len(data["criticalQueries"])
    assert SEQUENCE_TITLE in page


def test_a_sample_missing_a_figure_leaves_the_sequence_chart_in_the_report() -> None:
    data = json.loads(QUICKSTART_INPUT.read_text())
    data["candidate"]["activeSeries"][5] = None  # a scrape the busy machine did not answer
    result = engine.analyze_input(contract.parse(data))
    assert result.series_reduction_sequence is not None
    assert 5 not in result.series_reduction_sequence.sample
    page = _page(data)
    assert page.count("<svg") == 2 + len(data["criticalQueries"])
    assert SEQUENCE_TITLE in page
