"""The drift watch's pure steps: when a check is due, what it expects, what breaches, and the rollback."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import promql_parser
import pytest

from phoenix_operator.controllers import drift as drift_controller
from phoenix_operator.measure import prometheus, promql
from phoenix_operator.models import experiment, kinds
from phoenix_operator.reconcile import conditions, drift, promotion
from phoenix_operator.runtime import memory

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PROMOTED = T0 + timedelta(minutes=30)
SETTLE = timedelta(seconds=30)
WATCH = {"duration": "1h", "interval": "5m", "tolerance": 0.2}
QUERY = {"name": "cpu-by-executable", "query": "topk(5, sum by (process_executable_name) (rate(cpu[5m])))"}
PRODUCTION = {"template": "baseline", "parameters": {"metricExpiration": "5m"}}


def _watched(watch: dict[str, Any] | None = None, **status: Any) -> kinds.PhoenixExperiment:
    record = promotion.record("production", {"spec": PRODUCTION}, PROMOTED)
    return kinds.PhoenixExperiment.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixExperiment",
            "metadata": {"name": "lean", "namespace": "ns", "generation": 1},
            "spec": {
                "baseline": {"pipelineRef": "production"},
                "candidate": {"template": "candidate"},
                "duration": "20m",
                "warmup": "2m",
                "analysis": {"criticalQueries": [QUERY]},
                "driftWatch": WATCH if watch is None else watch,
            },
            "status": experiment.ExperimentStatus.model_validate(
                {
                    "phase": "Completed",
                    "startedAt": T0.isoformat(),
                    "analyzingSince": (T0 + timedelta(minutes=20)).isoformat(),
                    "promotion": record.to_wire(),
                    **status,
                }
            ).to_wire(),
        }
    )


def _holding(kept: float = 0.1) -> drift.Observation:
    return drift.Observation(kept_ratio=kept, query_results={QUERY["name"]: [{"process_executable_name": "postgres"}]})


def test_checks_start_an_interval_after_the_promotion_and_stay_an_interval_apart() -> None:
    obj = _watched()
    first = PROMOTED + timedelta(minutes=5) + SETTLE
    assert not drift.due(obj, first - timedelta(seconds=1), SETTLE)
    assert drift.due(obj, first, SETTLE)
    checked = _watched(drift={"checkedAt": first.isoformat()})
    assert not drift.due(checked, first + timedelta(minutes=4), SETTLE)
    assert drift.due(checked, first + timedelta(minutes=5), SETTLE)
    # a suspected breach is checked again after half an interval
    suspected = drift.judge(_watched(drift=_expected()), _holding(0.5), first).status
    assert not drift.due(_watched(**suspected.to_wire()), first + timedelta(minutes=2), SETTLE)
    assert drift.due(_watched(**suspected.to_wire()), first + timedelta(minutes=2.5), SETTLE)
    # the watch ends after its duration, and with a rollback
    assert not drift.due(checked, PROMOTED + timedelta(hours=1), SETTLE)
    rolled_back = promotion.record("production", {"spec": PRODUCTION}, PROMOTED).model_copy(
        update={"rolled_back_at": first}
    )
    assert not drift.due(_watched(promotion=rolled_back.to_wire()), first + timedelta(minutes=10), SETTLE)
    obj = _watched()
    unwatched = obj.model_copy(update={"spec": obj.spec.model_copy(update={"drift_watch": None})})
    assert not drift.due(unwatched, first, SETTLE)


def test_the_expected_range_spans_the_candidates_ratios_widened_by_the_tolerance() -> None:
    window = drift.expected_window(_watched(), timedelta(minutes=5))
    assert window is not None
    # from the end of the warmup plus one interval to the start of the analysis, an interval apart
    assert window.start == (T0 + timedelta(minutes=7)).timestamp()
    assert window.end == (T0 + timedelta(minutes=20)).timestamp() and window.step == 300
    expected = drift.expected_range([0.09, float("nan"), 0.11, 0.1], 0.2)
    assert expected is not None
    assert expected.low == pytest.approx(0.072) and expected.high == pytest.approx(0.132)
    assert drift.expected_range([float("nan")], 0.2) is None


@pytest.mark.parametrize(
    ("query", "labels"),
    [
        ("sum by (a, b) (rate(x[5m]))", ["a", "b"]),
        ("topk(3, (sum by (a) (x)))", ["a"]),
        ("sum without (pid) (x)", []),
        ("rate(x[5m])", []),
    ],
)
def test_the_labels_a_query_groups_by_are_its_outermost_by(query: str, labels: list[str]) -> None:
    assert drift.grouping_labels(query) == labels


def test_a_holding_pipeline_reports_its_ratio_within_the_range() -> None:
    step = drift.judge(_watched(), replace(_holding(0.1), expected=[0.09, 0.11]), PROMOTED)
    condition = conditions.find(step.status.conditions, drift.CONDITION)
    assert condition is not None and (condition.status, condition.reason) == ("False", "Holding")
    assert step.status.drift is not None and step.status.drift.kept_ratio == 0.1
    assert step.status.drift.expected_kept_ratio == experiment.Range(low=0.09 * 0.8, high=0.11 * 1.2)
    assert step.events == () and not step.rollback


def _expected() -> dict[str, Any]:
    return {"expectedKeptRatio": {"low": 0.08, "high": 0.12}}


@pytest.mark.parametrize(
    ("seen", "named"),
    [
        (_holding(0.035), "kept points ratio 0.035 is outside the expected [0.08, 0.12]"),
        (drift.Observation(kept_ratio=0.1, query_results={}), "critical query cpu-by-executable returns no data"),
        (
            drift.Observation(kept_ratio=0.1, query_results={QUERY["name"]: [{"other": "x"}]}),
            "critical query cpu-by-executable lost the label process_executable_name it groups by",
        ),
    ],
)
def test_a_breach_sets_drifted_names_it_warns_once_and_rolls_back_only_when_asked(
    seen: drift.Observation, named: str
) -> None:
    manual = _watched(drift=_expected())
    once = drift.judge(manual, seen, PROMOTED)
    suspected = conditions.find(once.status.conditions, drift.CONDITION)
    assert suspected is not None and (suspected.status, suspected.reason) == ("Unknown", "Suspected")
    assert named in suspected.message and once.events == () and not once.rollback
    later = PROMOTED + timedelta(minutes=5)
    step = drift.judge(manual.model_copy(update={"status": once.status}), seen, later)
    condition = conditions.find(step.status.conditions, drift.CONDITION)
    assert condition is not None and condition.status == "True" and named in condition.message
    assert [(e.type, e.reason) for e in step.events] == [("Warning", "Drifted")] and not step.rollback
    # still drifted at the next check: no second event
    again = drift.judge(manual.model_copy(update={"status": step.status}), seen, later + timedelta(minutes=5))
    assert again.events == ()
    auto = _watched({**WATCH, "rollback": "auto"}, drift=_expected())
    assert drift.judge(
        auto.model_copy(update={"status": drift.judge(auto, seen, PROMOTED).status}), seen, later
    ).rollback


def test_cpu_per_point_and_memory_are_held_to_the_guardrails_over_the_baselines_highest() -> None:
    """maxCpuIncrease and maxMemoryIncrease default to 10%; the tolerance here is 20%."""
    baseline = {"baseline_cpu_seconds_per_point": [2e-6, 4e-6], "baseline_memory_bytes": [90 * 2**20, 100 * 2**20]}
    first = drift.judge(_watched(), replace(_holding(), expected=[0.1], **baseline), PROMOTED)
    assert first.status.drift is not None
    assert first.status.drift.cpu_seconds_per_point_limit == pytest.approx(4e-6 * 1.1 * 1.2)
    assert first.status.drift.memory_bytes_limit == pytest.approx(100 * 2**20 * 1.1 * 1.2)
    watched = _watched(drift=first.status.drift.to_wire())
    within = drift.judge(watched, replace(_holding(), cpu_seconds_per_point=5e-6, memory_bytes=120 * 2**20), PROMOTED)
    condition = conditions.find(within.status.conditions, drift.CONDITION)
    assert condition is not None and condition.reason == "Holding"
    assert "collector CPU per received point 5 µs (limit 5.28 µs)" in condition.message
    assert "collector memory 120 MiB (limit 132 MiB)" in condition.message
    # a drop is no breach; a rise past the limit is, for each resource on its own
    lower = replace(_holding(), cpu_seconds_per_point=1e-7, memory_bytes=2**20)
    assert conditions.find(drift.judge(watched, lower, PROMOTED).status.conditions, drift.CONDITION).reason == (  # type: ignore[union-attr]
        "Holding"
    )
    for heavier, named in (
        (replace(_holding(), cpu_seconds_per_point=6e-6, memory_bytes=2**20), "collector CPU per received point 6 µs"),
        (replace(_holding(), cpu_seconds_per_point=1e-7, memory_bytes=200 * 2**20), "collector memory 200 MiB"),
    ):
        condition = conditions.find(drift.judge(watched, heavier, PROMOTED).status.conditions, drift.CONDITION)
        assert condition is not None and condition.reason == "Suspected"
        assert f"{named} (limit" in condition.message and "is above its limit" in condition.message


def test_a_breach_seen_once_and_gone_at_the_next_check_never_drifts() -> None:
    manual = _watched(drift=_expected())
    once = drift.judge(manual, _holding(0.5), PROMOTED)
    step = drift.judge(
        manual.model_copy(update={"status": once.status}), _holding(0.1), PROMOTED + timedelta(minutes=5)
    )
    condition = conditions.find(step.status.conditions, drift.CONDITION)
    assert condition is not None and (condition.status, condition.reason) == ("False", "Holding")
    assert step.events == ()


def test_an_unmeasured_check_is_unknown_and_never_rolls_back() -> None:
    auto = _watched({**WATCH, "rollback": "auto"}, drift=_expected())
    step = drift.judge(auto, drift.Observation(problem="Prometheus at http://p is unreachable"), PROMOTED)
    condition = conditions.find(step.status.conditions, drift.CONDITION)
    assert condition is not None and (condition.status, condition.reason) == ("Unknown", "NotMeasured")
    assert not step.rollback and step.events == ()
    no_input = drift.judge(auto, drift.Observation(query_results=_holding().query_results), PROMOTED)
    assert conditions.find(no_input.status.conditions, drift.CONDITION).status == "Unknown"  # type: ignore[union-attr]


def test_an_automatic_rollback_restores_the_spec_from_before_the_promotion() -> None:
    store = memory.MemoryStore()
    store.apply(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "production", "namespace": "ns"},
            "spec": {"template": "candidate", "parameters": {"dropMetrics": ["process.memory.virtual"]}},
        }
    )
    auto = _watched({**WATCH, "rollback": "auto"}, drift=_expected())
    once = drift.judge(auto, _holding(0.5), PROMOTED)
    step = drift.judge(auto.model_copy(update={"status": once.status}), _holding(0.5), PROMOTED)
    assert step.rollback
    failure = drift_controller.rollback(store, auto)
    assert failure is None
    live = store.get("phoenix.io/v1alpha1", "PhoenixProcessPipeline", "ns", "production")
    assert live is not None and live["spec"] == PRODUCTION
    done = drift.rolled_back(step, auto, failure, PROMOTED)
    assert done.status.promotion is not None and done.status.promotion.rolled_back_at == PROMOTED
    assert [e.reason for e in done.events] == ["Drifted", "RolledBack"]
    # a second rollback is refused in one line: the record says it happened
    assert drift_controller.rollback(store, auto.model_copy(update={"status": done.status})) == (
        "the promotion to production was already rolled back"
    )


@pytest.mark.parametrize("seconds", [22.7042, 30.0, 0.5, 300])
def test_the_watchs_queries_over_a_span_of_any_length_are_promql(seconds: float) -> None:
    # a verdict soon after the warmup leaves a measured span shorter than the interval, in fractions of a second
    for query in (
        prometheus.kept_ratio_query("lean", "candidate", seconds),
        prometheus.cpu_per_point_query("lean", "baseline", seconds),
        *prometheus.variant_queries("lean", "candidate", seconds / 4).values(),
    ):
        promql_parser.parse(query)


@pytest.mark.parametrize("query", ["rate(cpu[1500ms])", "cpu offset 500ms", "max_over_time(cpu[5m:500ms])"])
def test_a_query_with_a_duration_in_fractions_of_a_second_is_refused_not_changed(query: str) -> None:
    with pytest.raises(promql.QueryError, match="not whole seconds"):
        promql.scope(query, {"phoenix_variant": "candidate"})
