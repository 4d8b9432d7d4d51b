"""The analysis contract: the JSON `phoenix analyze` speaks, and the typed values Phoenix passes inside."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from phoenix_analysis import contract, engine
from phoenix_operator.models import experiment, kinds
from phoenix_operator.reconcile import verdict

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "unit" / "golden"
# recorded from `phoenix run --local` on the quickstart; the output is what the engine said then
QUICKSTART_INPUT = REPO / "examples" / "analyze" / "quickstart-input.json"
QUICKSTART_OUTPUT = GOLDEN / "analyze-quickstart-output.json"


def test_phoenix_analyze_answers_the_quickstart_exactly_as_pinned() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "phoenix_operator", "analyze", "-f", str(QUICKSTART_INPUT), "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    printed = json.loads(result.stdout)
    pinned = json.loads(QUICKSTART_OUTPUT.read_text())
    assert printed == pinned
    assert list(printed) == list(pinned), "the keys keep their order"
    assert pinned["decision"] == "Promote"
    schema = json.loads((REPO / "docs" / "analyze-input.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(QUICKSTART_INPUT.read_text()))


def test_each_reason_has_a_kind_and_the_json_keeps_only_the_text() -> None:
    data = json.loads(QUICKSTART_INPUT.read_text())
    result = engine.analyze_input(contract.parse(data))
    assert [r.kind for r in result.reasons] == [contract.ReasonKind.SERIES_CLEARS, contract.ReasonKind.QUERIES_AGREE]
    assert result.to_json()["reasons"] == [r.text for r in result.reasons]
    data["objectives"]["minSeriesReduction"] = 0.9  # the quickstart cuts 83%
    strict = engine.analyze_input(contract.parse(data))
    assert strict.decision == "Reject"
    assert [r.kind for r in strict.reasons] == [contract.ReasonKind.SERIES_BELOW]


def test_the_crd_and_analyze_take_the_same_camel_case_objectives_and_analyze_refuses_snake_case() -> None:
    experiment = kinds.PhoenixExperiment.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixExperiment",
            "metadata": {"name": "e"},
            "spec": {
                "baseline": {"template": "baseline"},
                "candidate": {"template": "candidate"},
                "analysis": {"objectives": {"minSeriesReduction": 0.3}, "costModel": {"usdPerGibMonth": 1}},
            },
        }
    )
    objectives = experiment.spec.analysis.objectives
    assert isinstance(objectives, contract.Objectives) and objectives.min_series_reduction == 0.3
    assert experiment.spec.to_wire()["analysis"]["objectives"]["minSeriesReduction"] == 0.3  # type: ignore[index]
    data = json.loads(QUICKSTART_INPUT.read_text())
    data["objectives"] = {"minSeriesReduction": 0.3}
    assert contract.parse(data).objectives.min_series_reduction == 0.3
    data["objectives"] = {"min_series_reduction": 0.3}
    with pytest.raises(contract.InvalidInput, match=r"objectives\.min_series_reduction: unknown key"):
        contract.parse(data)


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return {k for k, v in value.items() for k in (k, *_keys(v))}
    if isinstance(value, list):
        return {k for item in value for k in _keys(item)}
    return set()


def test_analyze_prints_the_key_style_of_the_status_that_run_and_the_operator_write() -> None:
    printed = json.loads(QUICKSTART_OUTPUT.read_text())
    result = engine.analyze_input(contract.parse(json.loads(QUICKSTART_INPUT.read_text())))
    status = experiment.ExperimentStatus(phase="Completed", results=verdict.results(result)).to_wire()
    assert all("_" not in key for key in _keys(printed) | _keys(status))
    for shared in ("seriesReduction", "datapointReduction", "monthlySavingsUsd", "samplesUsed", "fidelity"):
        assert shared in printed and shared in status["results"], shared  # type: ignore[operator]
    assert printed["seriesReduction"] == status["results"]["seriesReduction"]  # type: ignore[index]
