"""The analyze() contract: decisions with reasons, fail-closed inputs, clear errors."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from phoenix_analysis import contract, engine, intervals
from phoenix_operator.cli import app
from tests import simulate


def _clear_win(**effects: float) -> dict[str, Any]:
    effects.setdefault("reduction", 0.8)
    return simulate.experiment(np.random.default_rng(42), 240, **effects)  # type: ignore[arg-type]


def test_output_has_every_contract_key() -> None:
    result = engine.analyze(_clear_win())
    for key in (
        "decision",
        "reasons",
        "seriesReduction",
        "datapointReduction",
        "monthlySavingsUsd",
        "fidelity",
        "guardrails",
        "samplesUsed",
        "decidedAtIndex",
    ):
        assert key in result
    assert set(result["seriesReduction"]) == {"estimate", "ciLow", "ciHigh"}
    assert set(result["fidelity"]) >= {"checked", "passed", "worstQuery", "worstError"}
    json.dumps(result, allow_nan=False)


def test_clear_reduction_promotes_early_with_reasons() -> None:
    result = engine.analyze(_clear_win())
    assert result["decision"] == "Promote"
    assert 9 <= result["decidedAtIndex"] < 60
    assert result["seriesReduction"]["ciLow"] > 0.5
    assert any("clears the objective 50%" in r for r in result["reasons"])
    assert result["fidelity"] == {**result["fidelity"], "checked": 1, "passed": 1}
    assert result["monthlySavingsUsd"]["estimate"] > 0
    assert result["samplesUsed"] == result["decidedAtIndex"] + 1


def test_savings_follow_the_price_list() -> None:
    data = _clear_win()
    data["mode"] = "fixed"  # decided at the last sample, so the estimate covers every sample
    data["costModel"] = {
        "usdPerMillionDatapoints": 0.0,
        "usdPerActiveSeriesMonth": 1.0,
        "usdPerCpuCoreMonth": 0.0,
        "usdPerGibMonth": 0.0,
    }
    result = engine.analyze(data)
    saved_series = np.mean(np.array(data["baseline"]["activeSeries"]) - np.array(data["candidate"]["activeSeries"]))
    assert math.isclose(result["monthlySavingsUsd"]["estimate"], saved_series, rel_tol=1e-9)


def test_a_broken_query_vetoes_promotion_and_is_named() -> None:
    data = _clear_win()
    query = data["criticalQueries"][0]
    query["name"] = "cpu-by-executable"
    query["candidate"] = {"": list(np.add(query["baseline"]["a"], query["baseline"]["b"]))}
    result = engine.analyze(data)
    assert result["decision"] == "Reject"
    assert any("cpu-by-executable" in r for r in result["reasons"])
    assert result["fidelity"]["worstQuery"] == "cpu-by-executable"


def test_a_costlier_candidate_is_rejected_with_an_upper_bound_below_zero() -> None:
    data = _clear_win(reduction=-0.3)
    result = engine.analyze(data)
    assert result["decision"] == "Reject"
    assert result["seriesReduction"]["ciHigh"] < 0


def test_cpu_guardrail_breach_rejects() -> None:
    result = engine.analyze(_clear_win(cpu_increase=0.5))
    assert result["decision"] == "Reject"
    cpu = next(g for g in result["guardrails"] if "cpu" in g["name"])
    assert cpu["status"] == "breach"
    assert any("breaches the 10% guardrail" in r for r in result["reasons"])


def test_fixed_mode_decides_only_at_the_end() -> None:
    data = _clear_win()
    data["mode"] = "fixed"
    result = engine.analyze(data)
    assert result["decision"] == "Promote"
    assert result["decidedAtIndex"] is None
    assert result["wilcoxonPValue"] < 0.05


def _mutate(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(_clear_win())
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("baseline.activeSeries", [], "mismatched lengths"),
        ("candidate.activeSeries", [1.0] * 5, "mismatched lengths"),
        (
            "candidate.activeSeries",
            [None] * 240,
            "candidate.activeSeries has 240 missing or NaN samples",
        ),
        ("baseline.activeSeries", [0.0] * 240, "baseline.activeSeries has samples <= 0"),
        ("candidate.activeSeries", [float("inf")] * 240, "candidate.activeSeries has infinite samples"),
        ("baseline.memoryBytes", [1e101] * 240, "samples beyond 1e+100"),
        ("candidate.cpuCores", None, "cpuCores is given for one variant only"),
    ],
)
def test_bad_data_fails_closed(path: str, value: Any, reason: str) -> None:
    result = engine.analyze(_mutate(path, value))
    assert result["decision"] == "Inconclusive"
    assert any(reason in r for r in result["reasons"]), result["reasons"]


def test_too_few_samples_is_inconclusive() -> None:
    data = simulate.experiment(np.random.default_rng(1), 5, reduction=0.9)
    result = engine.analyze(data)
    assert result["decision"] == "Inconclusive"
    assert "too few samples with every figure measured: 5 of 5" in result["reasons"][0]


def test_a_scrape_gap_leaves_the_analysis_and_is_told() -> None:
    data = _clear_win()
    data["mode"] = "fixed"
    data["candidate"]["activeSeries"][100] = None
    result = engine.analyze(data)
    assert result["decision"] == "Promote"
    assert {"index": 100, "variant": "candidate", "pattern": "scrape gap"} in result["anomalies"]["samples"]
    assert result["anomalies"]["excluded"] == 1
    assert result["samplesUsed"] == 240


def test_too_many_anomalies_give_no_verdict_and_say_which() -> None:
    data = _clear_win()
    data["mode"] = "fixed"
    for i in range(100, 120):
        data["candidate"]["datapointsPerMinute"][i] = None
    result = engine.analyze(data)
    assert result["decision"] == "Inconclusive"
    assert result["anomalies"]["share"] > 0.05
    told = [r for r in result["reasons"] if "of the samples are anomalous" in r]
    assert told and "20 scrape gap on the candidate" in told[0], result["reasons"]


def _with_edge_points(data: dict[str, Any], baseline: list[float], candidate: list[float]) -> dict[str, Any]:
    data["baseline"]["edgePoints"], data["candidate"]["edgePoints"] = baseline, candidate
    return data


def test_a_batch_one_variant_missed_leaves_the_analysis_and_is_not_held_against_the_verdict() -> None:
    data = _clear_win()
    data["mode"] = "fixed"
    n = len(data["baseline"]["activeSeries"])
    baseline, candidate = [4000.0] * n, [800.0] * n
    # one host of ten missed: at the window's end, then where the window begins without it
    for index in (0, 100, 111):
        baseline[index] = 3600.0
        for answer in data["criticalQueries"][0]["baseline"].values():
            answer[index] *= 0.9  # what the rate then reads
    unmarked = engine.analyze(copy.deepcopy(data))
    result = engine.analyze(_with_edge_points(data, baseline, candidate))
    assert result["decision"] == "Promote", result["reasons"]
    missed = [s for s in result["anomalies"]["samples"] if s["pattern"] == "missed batch"]
    assert missed == [{"index": i, "variant": "baseline", "pattern": "missed batch"} for i in (0, 100, 111)]
    # left out, and not counted among the anomalies held against a verdict
    assert result["anomalies"]["excluded"] == 3
    assert result["anomalies"]["share"] == unmarked["anomalies"]["share"]
    # the three short readings, left in, are what the query's error would otherwise carry
    assert result["fidelity"]["worstError"] < unmarked["fidelity"]["worstError"]


def test_a_dip_both_variants_share_is_the_load_not_a_missed_batch() -> None:
    data = _clear_win()
    n = len(data["baseline"]["activeSeries"])
    baseline, candidate = [4000.0] * n, [800.0] * n
    baseline[50], candidate[50] = 2000.0, 400.0
    result = engine.analyze(_with_edge_points(data, baseline, candidate))
    assert not [s for s in result["anomalies"]["samples"] if s["pattern"] == "missed batch"]
    assert result["anomalies"]["excluded"] == 0


def test_a_restart_is_flagged_with_its_pattern() -> None:
    data = _clear_win(candidate_restart_at=100)
    data["mode"] = "fixed"
    result = engine.analyze(data)
    restarts = [s for s in result["anomalies"]["samples"] if s["pattern"] == "collector restart"]
    assert [s["index"] for s in restarts][:3] == [100, 101, 102]
    assert {s["variant"] for s in restarts} == {"candidate"}
    assert result["decision"] == "Promote"


def test_unequal_input_blocks_a_promotion_and_says_who_got_less() -> None:
    data = _clear_win()
    data["mode"] = "fixed"  # a 3% difference shows once it exceeds one sample's share of the input
    data["candidate"]["acceptedPoints"] = [0.97 * x for x in data["candidate"]["acceptedPoints"]]
    result = engine.analyze(data)
    assert result["decision"] == "Inconclusive"
    assert result["inputAgreement"]["agrees"] is False
    assert -0.04 < result["inputAgreement"]["difference"] < -0.02
    told = [r for r in result["reasons"] if r.startswith("the variants' inputs differ by")]
    assert told and "the candidate received less" in told[0], result["reasons"]


def test_input_agreement_is_reported_when_it_passes() -> None:
    result = engine.analyze(_clear_win())
    agreement = result["inputAgreement"]
    assert agreement["agrees"] is True
    assert agreement["baselinePoints"] > 0 and abs(agreement["difference"]) < 0.005


def _load_counters(samples: int, lost_every: int | None) -> tuple[list[float], list[float]]:
    """A LoadSim's sent and failed counters for one target, 20 batches a sample, one in `lost_every` failing."""
    attempted = np.arange(samples) * 20.0
    failed = np.floor(attempted / lost_every) if lost_every else np.zeros(samples)
    return (attempted - failed).tolist(), failed.tolist()


def _with_load(data: dict[str, Any], baseline_lost_every: int | None, candidate_lost_every: int | None) -> None:
    samples = len(data["baseline"]["activeSeries"])
    for variant, lost_every in (("baseline", baseline_lost_every), ("candidate", candidate_lost_every)):
        sent, failed = _load_counters(samples, lost_every)
        data[variant] |= {"loadBatchesSent": sent, "loadBatchesFailed": failed}


def test_batches_the_loadsim_could_not_deliver_to_one_variant_block_a_promotion() -> None:
    data = _clear_win()
    _with_load(data, None, 40)  # the candidate lost 2.5% of its batches; its accepted points say nothing
    result = engine.analyze(data)
    agreement = result["inputAgreement"]
    assert result["decision"] == "Inconclusive" and agreement["agrees"] is False
    assert agreement["baselineBatchesFailed"] == 0 and agreement["candidateBatchesFailed"] > 0
    assert agreement["candidateBatchesSent"] + agreement["candidateBatchesFailed"] == agreement["baselineBatchesSent"]
    told = [r for r in result["reasons"] if "could not deliver" in r]
    assert told and told[0].startswith("the candidate received less"), result["reasons"]


def test_batches_lost_alike_on_both_variants_leave_the_input_paired() -> None:
    data = _clear_win()
    _with_load(data, 40, 40)
    result = engine.analyze(data)
    assert result["decision"] == "Promote", result["reasons"]
    agreement = result["inputAgreement"]
    assert agreement["agrees"] is True
    assert agreement["baselineBatchesFailed"] == agreement["candidateBatchesFailed"] > 0


def test_a_falling_reduction_is_not_promoted_and_the_reason_gives_the_slope() -> None:
    data = _clear_win(reduction=0.9, reduction_at_end=0.3)
    result = engine.analyze(data)
    assert result["decision"] != "Promote"
    trend = result["seriesTrend"]
    assert trend["slopePerHour"]["ciHigh"] < 0 and trend["adverse"]
    told = [r for r in result["reasons"] if r.startswith("series reduction's trend")]
    assert told and "already below the objective" in told[0], result["reasons"]
    earlier = engine.analyze(simulate.prefix(data, 60))  # the run planned for 240 samples, a quarter through
    assert earlier["decision"] == "Inconclusive"
    assert earlier["seriesTrend"]["crossesObjectiveInSeconds"] > 0
    told = [r for r in earlier["reasons"] if r.startswith("series reduction's trend")]
    assert told and "falls through the objective in about" in told[0], earlier["reasons"]


def test_a_promote_on_a_gently_falling_reduction_reports_the_trend_but_rests_only_on_what_decided_it() -> None:
    # 90% falling to 80% over the run: adverse, and still far above the 50% objective at its end
    result = engine.analyze(_clear_win(reduction=0.9, reduction_at_end=0.8))
    assert result["decision"] == "Promote"
    assert result["seriesTrend"]["adverse"] and result["seriesTrend"]["projectedAtEnd"]["ciLow"] > 0.5
    assert not [r for r in result["reasons"] if r.startswith("series reduction's trend")], result["reasons"]


def test_a_steady_reduction_reports_a_flat_trend() -> None:
    trend = engine.analyze(_clear_win())["seriesTrend"]
    assert trend["slopePerHour"]["ciLow"] < 0 < trend["slopePerHour"]["ciHigh"]
    assert trend["projectedAtEnd"]["ciLow"] > 0.5
    assert not trend["adverse"]


def test_a_query_without_data_never_promotes() -> None:
    data = _clear_win()
    data["criticalQueries"][0]["baseline"] = {}
    data["criticalQueries"][0]["candidate"] = {}
    result = engine.analyze(data)
    assert result["decision"] == "Inconclusive"
    assert result["fidelity"]["queries"][0]["status"] == "no-data"


@pytest.mark.parametrize(
    ("mutation", "problem"),
    [
        ({"surprise": 1}, "surprise: unknown key"),
        ({"alpha": "small"}, "alpha: Input should be a valid number"),
        ({"mode": "bayes"}, "mode: Input should be 'sequential' or 'fixed'"),
        (
            {"baseline": {"activeSeries": "many"}},
            "baseline.activeSeries: Input should be a valid list",
        ),
    ],
)
def test_wrong_shapes_raise_one_problem_per_line(mutation: dict[str, Any], problem: str) -> None:
    data = {**_clear_win(), **mutation}
    with pytest.raises(contract.InvalidInput) as error:
        engine.analyze(data)
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


runner = CliRunner()


def test_cli_analyze_prints_json(tmp_path: Any) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(_clear_win()))
    result = runner.invoke(app.app, ["analyze", "-f", str(path), "-o", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["decision"] == "Promote"


def test_cli_analyze_table_names_the_decision(tmp_path: Any) -> None:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(_clear_win()))
    result = runner.invoke(app.app, ["analyze", "-f", str(path)])
    assert result.exit_code == 0
    assert "Promote" in result.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "invalid JSON"),
        (
            '{"intervalSeconds": 15, "baseline": {}, "candidate": {}, "extra": 1}',
            "extra: unknown key",
        ),
        ("[1, 2]", "Input should be a valid dictionary"),
    ],
)
def test_cli_analyze_bad_input(tmp_path: Any, content: str, expected: str) -> None:
    path = tmp_path / "input.json"
    path.write_text(content)
    result = runner.invoke(app.app, ["analyze", "-f", str(path)])
    assert result.exit_code == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    if "extra" in content:
        assert len(result.stderr.strip().splitlines()) == 5  # 4 missing keys and the unknown one


def test_a_topk_swap_at_the_boundary_is_not_an_error() -> None:
    """Rank 5 and 6 trading places between variants is noise, not a changed answer."""
    data = _clear_win()
    n = len(data["baseline"]["activeSeries"])
    top = {f"exe{i}": [100.0 - i] * n for i in range(4)}
    fifth, sixth = [50.0] * n, [49.9] * n
    swapped = [i % 7 == 0 for i in range(n)]
    data["criticalQueries"] = [{
        "name": "top5",
        "baseline": {**top, "exe4": fifth},
        "candidate": {**top, "exe4": [None if s else v for s, v in zip(swapped, fifth, strict=True)],
                      "exe5": [v if s else None for s, v in zip(swapped, sixth, strict=True)]},
    }]  # fmt: skip
    result = engine.analyze(data)
    assert result["decision"] == "Promote", result["reasons"]
    assert result["fidelity"]["queries"][0]["labelCoverage"] > 0.9


def test_lost_labels_fail_on_coverage_even_when_totals_agree() -> None:
    data = _clear_win()
    n = len(data["baseline"]["activeSeries"])
    data["criticalQueries"] = [{
        "name": "by-executable",
        "baseline": {"exe=java": [3.0] * n, "exe=node": [1.0] * n},
        "candidate": {"": [4.0] * n},
    }]  # fmt: skip
    result = engine.analyze(data)
    assert result["decision"] == "Reject"
    assert any("by-executable lost label sets" in r for r in result["reasons"])
    assert result["fidelity"]["queries"][0]["labelCoverage"] == 0.0


def test_the_input_and_anomaly_limits_are_the_objectives_given() -> None:
    data = _clear_win()
    data["mode"] = "fixed"
    data["candidate"]["acceptedPoints"] = [0.97 * x for x in data["candidate"]["acceptedPoints"]]
    data["objectives"]["maxInputDifference"] = 0.05  # a 3% difference is now within the tolerance
    assert engine.analyze(data)["inputAgreement"]["agrees"] is True
    for i in range(100, 110):
        data["candidate"]["activeSeries"][i] = None
    data["objectives"]["maxAnomalyShare"] = 0.01
    assert engine.analyze(data)["decision"] == "Inconclusive"
    data["objectives"]["maxAnomalyShare"] = 0.1
    assert engine.analyze(data)["decision"] == "Promote"


def test_an_inconclusive_says_about_how_much_longer_it_needs_and_a_verdict_does_not() -> None:
    data = simulate.experiment(np.random.default_rng(6), 240, reduction=0.56)
    early = engine.analyze_input(contract.parse(simulate.prefix(data, 20)))
    assert early.decision == "Inconclusive"
    assert early.seconds_to_decide is not None and early.seconds_to_decide > 0
    told = [r.text for r in early.reasons if r.kind == contract.ReasonKind.TIME_TO_DECIDE]
    assert told and told[0].startswith("at the current variance, about "), early.reason_texts
    assert "more would decide it" in told[0]
    assert engine.analyze(_clear_win())["secondsToDecide"] is None


def test_a_skewed_series_bound_is_widened_on_its_long_tail_side_by_its_skewness() -> None:
    rng = np.random.default_rng(3)
    right_skewed = rng.lognormal(0.0, 0.8, 60)
    skewness = intervals.running_skewness(right_skewed)
    assert np.allclose(skewness[2:], [stats.skew(right_skewed[:k]) for k in range(3, 61)])
    mean, low, high = intervals.running_confidence_sequence(right_skewed, 0.05, 60)
    assert np.all((high - mean)[9:] > (mean - low)[9:])
    # mirrored, the long tail is on the other side, and so is the wider margin
    mirrored_mean, mirrored_low, mirrored_high = intervals.running_confidence_sequence(-right_skewed, 0.05, 60)
    assert np.allclose(mirrored_mean - mirrored_low, high - mean)
    assert np.allclose(mirrored_high - mirrored_mean, mean - low)
