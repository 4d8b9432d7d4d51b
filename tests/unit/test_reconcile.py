"""The pure reconcile functions: children, the experiment's state machine, statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from phoenix_analysis import contract, engine, warmup
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.models import experiment, kinds, loadsim, pipeline
from phoenix_operator.reconcile import conditions, promotion, verdict
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import memory
from tests import simulate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _experiment(status: experiment.ExperimentStatus | None = None, **spec: Any) -> kinds.PhoenixExperiment:
    return kinds.PhoenixExperiment.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixExperiment",
            "metadata": {"name": "exp", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {
                "baseline": {"template": "baseline"},
                "candidate": {"template": "candidate"},
                "duration": "10m",
                "warmup": "1m",
                **spec,
            },
            "status": status.to_wire() if status else None,
        }
    )


def _step(
    obj: kinds.PhoenixExperiment, observed: reconcile_experiment.Observed, now: datetime
) -> reconcile_experiment.Step:
    return reconcile_experiment.advance(obj, observed, now, reconcile_experiment.Limits())


def _analysis(reduction: float = 0.8, cpu_increase: float = 0.0, n: int = 200) -> contract.Result:
    data = simulate.experiment(np.random.default_rng(7), n, reduction, cpu_increase=cpu_increase)
    return engine.analyze_input(contract.parse({**data, "alpha": 0.05, "mode": "sequential"}))


def _running(at: datetime = T0) -> experiment.ExperimentStatus:
    return experiment.ExperimentStatus(phase="Running", started_at=at)


def test_children_are_both_pipelines_and_the_load_owned_by_the_experiment() -> None:
    children = reconcile_experiment.children(_experiment())
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("PhoenixProcessPipeline", "exp-baseline"),
        ("PhoenixProcessPipeline", "exp-candidate"),
        ("LoadSim", "exp-load"),
    ]
    for child in children:
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("PhoenixExperiment", "uid-1", True)
    load = children[2]["spec"]
    assert load["duration"] == "10m"
    assert load["targets"] == [{"pipelineRef": "exp-baseline"}, {"pipelineRef": "exp-candidate"}]
    for child in children[:2]:
        kinds.PhoenixProcessPipeline.model_validate(child)  # what the operator creates, its own models accept


def test_a_referenced_baseline_is_shadowed_and_never_receives_the_load() -> None:
    production = kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "production", "namespace": "default"},
            "spec": {
                "template": "baseline",
                "parameters": {"batchTimeout": "5s"},
                "collector": {"replicas": 3, "image": "registry.example/otelcol:1"},
                "exporters": [{"name": "vendor", "type": "otlphttp", "endpoint": "https://otlp.vendor.example"}],
            },
        }
    )
    obj = _experiment(baseline={"pipelineRef": "production"})
    children = reconcile_experiment.children(obj, production)
    assert [c["metadata"]["name"] for c in children] == ["exp-baseline", "exp-candidate", "exp-load"]
    shadow, candidate, load = (c["spec"] for c in children)
    # the production pipeline's spec, labelled as the experiment's, without its destinations
    assert shadow["parameters"]["batchTimeout"] == "5s" and shadow["collector"] == production.spec.collector.to_wire()
    assert "exporters" not in shadow and (shadow["experimentRef"], shadow["variant"]) == ("exp", "baseline")
    # the candidate runs on the same collector, as a change to the production pipeline: what it leaves at its
    # defaults, here the batch timeout, is the production pipeline's
    assert candidate["collector"] == production.spec.collector.to_wire() and candidate["template"] == "candidate"
    assert candidate["parameters"]["batchTimeout"] == "5s"
    assert load["targets"] == [{"pipelineRef": "exp-baseline"}, {"pipelineRef": "exp-candidate"}]
    # offline, without the production pipeline at hand, only the candidate can be rendered
    offline = reconcile_experiment.children(obj)
    assert [c["metadata"]["name"] for c in offline] == ["exp-candidate", "exp-load"]


def test_the_candidate_is_a_change_to_the_pipeline_it_tests_and_promotes_as_one() -> None:
    production = {
        "template": "candidate",
        "parameters": {"memoryLimitMib": 2048, "batchTimeout": "5s", "dropMetrics": ["process.memory.virtual"]},
    }
    obj = _experiment(
        baseline={"pipelineRef": "production"},
        candidate={"template": "candidate", "parameters": {"aggregateAwayAttributes": ["process.pid"],
                                                           "batchTimeout": "2s"}},
    )  # fmt: skip
    tested = promotion.candidate_on(obj.spec.candidate, production["parameters"])
    # what it says wins; what it leaves at the defaults is the running pipeline's, drops included
    assert tested["parameters"] == {
        **pipeline.CandidateParameters().to_wire(),
        "memoryLimitMib": 2048,
        "batchTimeout": "2s",
        "dropMetrics": ["process.memory.virtual"],
        "aggregateAwayAttributes": ["process.pid"],
    }
    target = {"metadata": {"name": "production", "namespace": "ns"}, "spec": production}
    assert promotion.promoted_pipeline(obj, target)["spec"]["parameters"] == tested["parameters"]
    # another template takes only what it has too: a baseline has no drops
    onto_baseline = promotion.candidate_on(pipeline.BaselineVariant(template="baseline"), production["parameters"])
    assert onto_baseline["parameters"] == {**pipeline.BaselineParameters().to_wire(), "memoryLimitMib": 2048,
                                           "batchTimeout": "5s"}  # fmt: skip


def test_a_missing_referenced_baseline_fails_at_once_and_creates_nothing() -> None:
    obj = _experiment(baseline={"pipelineRef": "production"})
    problem = "baseline.pipelineRef: pipeline production in namespace default does not exist"
    step = _step(obj, reconcile_experiment.Observed(baseline_problem=problem), T0)
    assert step.status.phase == "Failed"
    failed = conditions.find(step.status.conditions, "Succeeded")
    assert failed is not None and (failed.reason, failed.message) == ("BaselineNotFound", problem)


def test_the_happy_path_goes_through_every_phase() -> None:
    step = _step(_experiment(), reconcile_experiment.Observed(), T0)
    assert step.status.phase == "Initializing"
    step = _step(_experiment(step.status), reconcile_experiment.Observed({"baseline": True, "candidate": False}), T0)
    assert step.status.phase == "Initializing"
    ready = {"baseline": True, "candidate": True}
    step = _step(_experiment(step.status), reconcile_experiment.Observed(ready), T0)
    assert step.status.phase == "Initializing", "the load has not started yet"
    load_start = T0 + timedelta(seconds=5)
    step = _step(_experiment(step.status), reconcile_experiment.Observed(ready, load_start), T0 + timedelta(seconds=6))
    assert (step.status.phase, step.status.started_at) == ("Running", load_start)
    decided = _analysis()
    assert decided.decided_at_index is not None
    step = _step(_experiment(step.status), reconcile_experiment.Observed(analysis=decided), T0 + timedelta(minutes=3))
    assert step.status.phase == "Analyzing" and step.status.verdict is None
    step = _step(_experiment(step.status), reconcile_experiment.Observed(analysis=decided), T0 + timedelta(minutes=3))
    assert step.status.phase == "Completed"
    assert step.status.verdict is not None and step.status.verdict.decision == "Promote"
    assert step.teardown == {"pipelines", "load"} and not step.promote
    succeeded = conditions.find(step.status.conditions, "Succeeded")
    assert succeeded is not None and (succeeded.status, succeeded.reason) == ("True", "Promote")
    (event,) = step.events
    assert event.reason == "Promote" and "savings $" in event.message
    assert event.message.count("series reduction") == 1, event.message  # once, in the reason that clears it


def test_an_undecided_run_keeps_running_until_its_duration() -> None:
    undecided = _analysis(reduction=0.5, n=30)
    assert undecided.decided_at_index is None
    early = _step(_experiment(_running()), reconcile_experiment.Observed(analysis=undecided), T0 + timedelta(minutes=5))
    assert early.status.phase == "Running" and early.status.results is not None
    late = _step(_experiment(_running()), reconcile_experiment.Observed(analysis=undecided), T0 + timedelta(minutes=10))
    assert late.status.phase == "Analyzing"


def test_auto_promotion_patches_only_on_promote() -> None:
    auto = {"promotion": {"policy": "auto", "targetPipelineRef": "production"}}
    analyzing = experiment.ExperimentStatus(phase="Analyzing", started_at=T0)
    promoted = _step(_experiment(analyzing, **auto), reconcile_experiment.Observed(analysis=_analysis()), T0)
    assert promoted.promote
    rejected = _step(_experiment(analyzing, **auto), reconcile_experiment.Observed(analysis=_analysis(0.3)), T0)
    assert rejected.status.phase == "Completed" and not rejected.promote


def _production(parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "production", "namespace": "ns"},
        "spec": {"template": "adaptive", "parameters": parameters, "collector": {"replicas": 3}},
    }


def test_promotion_leaves_exactly_the_spec_the_dry_run_prints() -> None:
    candidate = {"template": "candidate", "parameters": {"dropMetrics": ["process.memory.virtual"]}}
    obj = _experiment(candidate=candidate, promotion={"policy": "auto", "targetPipelineRef": "production"})
    store = memory.MemoryStore()
    target = store.apply(_production({"seriesBudget": 5000, "minK": 2, "dropMetrics": ["a", "b"]}))
    printed = promotion.promoted_pipeline(obj, target)
    failure, before = experiment_controller.promote(store, obj)
    assert failure is None and before == target
    live = store.get("phoenix.io/v1alpha1", "PhoenixProcessPipeline", "ns", "production")
    assert live is not None
    assert live["spec"] == printed["spec"]
    # the adaptive template's seriesBudget and minK are gone; the target's collector stays
    assert live["spec"]["template"] == "candidate" and live["spec"]["collector"] == {"replicas": 3}
    assert live["spec"]["parameters"]["dropMetrics"] == ["process.memory.virtual"]
    assert not {"seriesBudget", "minK"} & set(live["spec"]["parameters"])
    # the status keeps the target as it was; the rollback patch restores it exactly
    record = promotion.record("production", before, T0)
    patch = promotion.rollback_patch(record, live)
    assert patch is not None  # the target existed before: patched back, not deleted
    store.patch_spec("phoenix.io/v1alpha1", "PhoenixProcessPipeline", "ns", "production", patch)
    restored = store.get("phoenix.io/v1alpha1", "PhoenixProcessPipeline", "ns", "production")
    assert restored is not None and restored["spec"] == target["spec"]


def test_auto_promotion_records_the_target_it_changed() -> None:
    auto = {"promotion": {"policy": "auto", "targetPipelineRef": "production"}}
    obj = _experiment(experiment.ExperimentStatus(phase="Analyzing", started_at=T0), **auto)
    completing = _step(obj, reconcile_experiment.Observed(analysis=_analysis()), T0)
    before = _production({"seriesBudget": 5000})
    step = reconcile_experiment.promoted(completing, obj, None, before, T0)
    assert step.status.promotion is not None
    assert step.status.promotion.target == "production" and step.status.promotion.promoted_at == T0
    assert json.loads(step.status.promotion.previous_spec or "") == before["spec"]


def test_auto_promotion_to_a_missing_target_is_reported_once_not_retried() -> None:
    auto = {"promotion": {"policy": "auto", "targetPipelineRef": "production"}}
    obj = _experiment(experiment.ExperimentStatus(phase="Analyzing", started_at=T0), **auto)
    completing = _step(obj, reconcile_experiment.Observed(analysis=_analysis()), T0)
    failure, before = experiment_controller.promote(memory.MemoryStore(), obj)
    assert failure == "the pipeline does not exist" and before is None
    step = reconcile_experiment.promoted(completing, obj, failure, before, T0)
    assert step.status.promotion is None
    assert step.status.phase == "Completed"
    condition = conditions.find(step.status.conditions, "Promoted")
    assert condition is not None and (condition.status, condition.reason) == ("False", "PromotionFailed")
    assert condition.message == "could not promote the candidate to production: the pipeline does not exist"
    assert [e.reason for e in step.events] == ["Promote", "PromotionFailed"]
    # the next step starts from Completed: nothing is promoted again
    again = _step(_experiment(step.status, **auto), reconcile_experiment.Observed(), T0 + timedelta(seconds=2))
    assert not again.promote and again.events == ()


def test_a_finished_experiment_expires_its_ttl_after_the_end() -> None:
    running = _experiment(_running(), ttlSecondsAfterFinished=60)
    assert reconcile_experiment.seconds_until_expiry(running, T0) is None
    ended = _step(_experiment(_running(), abort=True, ttlSecondsAfterFinished=60), reconcile_experiment.Observed(), T0)
    finished = _experiment(ended.status, ttlSecondsAfterFinished=60)
    assert finished.status is not None and finished.status.phase == "Aborted"
    assert reconcile_experiment.seconds_until_expiry(finished, T0 + timedelta(seconds=45)) == 15
    assert reconcile_experiment.seconds_until_expiry(finished, T0 + timedelta(hours=1)) == 0
    assert reconcile_experiment.seconds_until_expiry(_experiment(ended.status), T0) is None  # no ttl, kept


def test_the_ttl_and_drift_watch_are_read_live_while_the_rest_stays_frozen() -> None:
    started = _experiment(_running())
    frozen = reconcile_experiment.frozen_spec(started, "Pending", "Initializing")
    assert frozen is not None
    watch = {"interval": "1m", "rollback": "auto"}
    edited = _experiment(_running(), ttlSecondsAfterFinished=30, duration="20m", driftWatch=watch)
    obj, changed = reconcile_experiment.accepted(edited, frozen)
    assert changed == ["duration"]
    assert obj.spec.ttl_seconds_after_finished == 30 and obj.spec.duration == "10m"
    assert obj.spec.drift_watch is not None
    assert (obj.spec.drift_watch.interval, obj.spec.drift_watch.rollback) == ("1m", "auto")


def test_a_guardrail_breach_fails_and_tears_the_candidate_down() -> None:
    costly = _analysis(cpu_increase=0.5)
    assert costly.breached_guardrails
    step = _step(_experiment(_running()), reconcile_experiment.Observed(analysis=costly), T0 + timedelta(minutes=2))
    assert step.status.phase == "Failed"
    assert step.teardown == {"candidate", "load"}
    succeeded = conditions.find(step.status.conditions, "Succeeded")
    assert succeeded is not None and succeeded.reason == "GuardrailBreached"
    assert step.status.verdict is not None and step.status.verdict.decision == "Reject"


def test_prometheus_down_gives_a_condition_then_fails_after_the_limit() -> None:
    down = reconcile_experiment.Observed(
        measurement_problem="Prometheus at http://p is unreachable", prometheus_unreachable=True
    )
    first = _step(_experiment(_running()), down, T0 + timedelta(minutes=2))
    assert first.status.phase == "Running" and first.status.verdict is None
    condition = conditions.find(first.status.conditions, "MeasurementAvailable")
    assert condition is not None and (condition.status, condition.reason) == ("False", "PrometheusUnreachable")
    still = _step(_experiment(first.status), down, T0 + timedelta(minutes=6))
    assert still.status.phase == "Running"
    failed = _step(_experiment(first.status), down, T0 + timedelta(minutes=7, seconds=1))
    assert failed.status.phase == "Failed" and failed.teardown == {"pipelines", "load"}
    back = _step(
        _experiment(first.status),
        reconcile_experiment.Observed(analysis=_analysis(0.5, n=30)),
        T0 + timedelta(minutes=6),
    )
    recovered = conditions.find(back.status.conditions, "MeasurementAvailable")
    assert back.status.phase == "Running" and recovered is not None and recovered.status == "True"


def test_pipelines_that_never_get_ready_fail_the_experiment() -> None:
    initializing = _step(_experiment(), reconcile_experiment.Observed(), T0).status
    waiting = reconcile_experiment.Observed({"baseline": True, "candidate": False})
    assert _step(_experiment(initializing), waiting, T0 + timedelta(minutes=9)).status.phase == "Initializing"
    failed = _step(_experiment(initializing), waiting, T0 + timedelta(minutes=11))
    assert failed.status.phase == "Failed"
    assert "candidate pipeline never became ready" in failed.events[0].message
    no_load = _step(
        _experiment(initializing),
        reconcile_experiment.Observed({"baseline": True, "candidate": True}),
        T0 + timedelta(minutes=11),
    )
    assert no_load.status.phase == "Failed" and no_load.events[0].reason == "LoadNotStarted"


@pytest.mark.parametrize("phase", ["Pending", "Initializing", "Running", "Analyzing"])
def test_abort_ends_any_running_phase(phase: experiment.Phase) -> None:
    step = _step(_experiment(experiment.ExperimentStatus(phase=phase), abort=True), reconcile_experiment.Observed(), T0)
    assert step.status.phase == "Aborted" and step.teardown == {"pipelines", "load"}


def test_terminal_phases_never_change() -> None:
    done = experiment.ExperimentStatus(phase="Completed")
    step = _step(_experiment(done, abort=True), reconcile_experiment.Observed(analysis=_analysis()), T0)
    assert step.status.phase == "Completed" and not step.events and not step.teardown


def test_conditions_keep_their_transition_time_while_unchanged() -> None:
    first = conditions.set_condition([], "Ready", "False", "Waiting", "0/1", 1, T0)
    same = conditions.set_condition(first, "Ready", "False", "Waiting", "0/1 still", 2, T0 + timedelta(minutes=1))
    flipped = conditions.set_condition(same, "Ready", "True", "Ready", "1/1", 2, T0 + timedelta(minutes=2))
    assert same[0].last_transition_time == T0 and same[0].message == "0/1 still"
    assert flipped[0].last_transition_time == T0 + timedelta(minutes=2)


def test_a_loadsim_job_sends_to_ready_pipelines_only() -> None:
    obj = kinds.LoadSim.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "LoadSim",
            "metadata": {"name": "load", "namespace": "ns", "uid": "u"},
            "spec": {"targets": [{"pipelineRef": "a"}, {"endpoint": "http://vendor:4318"}], "duration": "2m"},
        }
    )
    with pytest.raises(reconcile_loadsim.TargetsNotReady, match="pipeline a is not ready"):
        reconcile_loadsim.resolve_targets(obj, {"a": None})
    targets = reconcile_loadsim.resolve_targets(obj, {"a": "http://a:4318"})
    job = reconcile_loadsim.job(obj, targets, "img")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["phoenix", "loadsim", "run"]
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--target"] == [
        "http://a:4318",
        "http://vendor:4318",
    ]
    # its counters, for the experiment's pairing check, on the port Prometheus is told to scrape
    (port,) = job["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert port["name"] == "metrics" and command[command.index("--metrics-port") + 1] == str(port["containerPort"])
    assert command[command.index("--metrics-address") + 1] == "0.0.0.0"  # noqa: S104
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 120 + reconcile_loadsim.JOB_GRACE_SECONDS
    done = reconcile_loadsim.status(
        obj, loadsim.LoadSimStatus(), reconcile_loadsim.Observed(False, True, False), "", T0
    )
    succeeded = conditions.find(done.conditions, "Succeeded")
    assert succeeded is not None and succeeded.status == "True"


def test_a_load_that_lost_batches_is_told_apart_from_one_that_failed() -> None:
    obj = kinds.LoadSim.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "LoadSim",
            "metadata": {"name": "load", "namespace": "ns", "uid": "u"},
            "spec": {"targets": [{"endpoint": "http://a:4318"}, {"endpoint": "http://b:4318"}]},
        }
    )
    lossy = reconcile_loadsim.Delivery(
        10, {"http://a:4318": 30, "http://b:4318": 27}, {"http://a:4318": 0, "http://b:4318": 3}
    )
    ended = reconcile_loadsim.Observed(False, False, True, message="LoadSim exited with 2", delivery=lossy)
    lost = conditions.find(
        reconcile_loadsim.status(obj, loadsim.LoadSimStatus(), ended, "", T0).conditions, "Succeeded"
    )
    assert lost is not None and (lost.status, lost.reason) == ("False", "BatchesLost")
    assert lost.message == "batches not delivered: 3 of 30 to http://b:4318"
    crashed = reconcile_loadsim.Observed(False, False, True, message="LoadSim exited with 1: Traceback")
    failed = conditions.find(
        reconcile_loadsim.status(obj, loadsim.LoadSimStatus(), crashed, "", T0).conditions, "Succeeded"
    )
    assert failed is not None and (failed.reason, failed.message) == ("LoadFailed", "LoadSim exited with 1: Traceback")


def test_a_config_change_changes_only_the_pod_template_hash() -> None:
    def pipeline(timeout: str) -> kinds.PhoenixProcessPipeline:
        return kinds.PhoenixProcessPipeline.model_validate(
            {
                "apiVersion": "phoenix.io/v1alpha1",
                "kind": "PhoenixProcessPipeline",
                "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
                "spec": {"template": "baseline", "parameters": {"batchTimeout": timeout}},
            }
        )

    one, two = (pipeline(t) for t in ("1s", "2s"))
    first = reconcile_pipeline.manifests(one, reconcile_pipeline.render(one))
    second = reconcile_pipeline.manifests(two, reconcile_pipeline.render(two))
    hashes = [m[1]["spec"]["template"]["metadata"]["annotations"]["phoenix.io/config-hash"] for m in (first, second)]
    assert hashes[0] != hashes[1]
    assert first[2] == second[2]  # the Service does not change
    assert reconcile_pipeline.manifests(one, reconcile_pipeline.render(one)) == first  # rendering is deterministic


def test_the_collector_container_collects_garbage_harder_near_the_memory_limiters_limit() -> None:
    obj = kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"template": "baseline", "collector": {"resources": {"limits": {"memory": "512Mi"}}}},
        }
    )
    rendered = reconcile_pipeline.render(obj)
    container = reconcile_pipeline.manifests(obj, rendered)[1]["spec"]["template"]["spec"]["containers"][0]
    limiter = rendered.config["processors"]["memory_limiter"]["limit_mib"]
    assert {"name": "GOMEMLIMIT", "value": f"{limiter}MiB"} in container["env"]


def test_a_pipeline_is_valid_once_rendered_and_ready_only_with_its_own_config() -> None:
    obj = kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "generation": 2},
            "spec": {"template": "baseline"},
        }
    )
    old, new = (render_pipeline.RenderedConfig("", {}, h, (), 512) for h in ("old", "new"))
    ready_on_old = reconcile_pipeline.status(
        obj.model_copy(update={"metadata": obj.metadata.model_copy(update={"generation": 1})}),
        pipeline.PipelineStatus(),
        old,
        reconcile_pipeline.Observed(1, 1, {}, "old"),
        T0,
    )
    assert conditions.find(ready_on_old.conditions, "Ready").status == "True"  # type: ignore[union-attr]
    # a new generation is acknowledged as not Ready before it is rendered
    accepted = reconcile_pipeline.accepted_status(obj, ready_on_old, T0)
    assert conditions.find(accepted.conditions, "Ready").reason == "Deploying"  # type: ignore[union-attr]
    assert (accepted.config_hash, accepted.observed_generation) == ("old", 2)
    assert reconcile_pipeline.accepted_status(obj, accepted, T0) == accepted  # resumed: nothing to say
    rendered = reconcile_pipeline.rendered_status(obj, ready_on_old, new, T0)
    assert conditions.find(rendered.conditions, "ConfigValid").status == "True"  # type: ignore[union-attr]
    assert conditions.find(rendered.conditions, "Ready").reason == "Deploying"  # type: ignore[union-attr]
    assert (rendered.config_hash, rendered.observed_generation, rendered.ready_replicas) == ("new", 2, 0)
    # the old pods are ready, but they run the old config
    rolling = reconcile_pipeline.status(obj, rendered, new, reconcile_pipeline.Observed(1, 1, {}, "old"), T0)
    assert conditions.find(rolling.conditions, "Ready").status == "False"  # type: ignore[union-attr]
    rolled = reconcile_pipeline.status(obj, rolling, new, reconcile_pipeline.Observed(1, 1, {}, "new"), T0)
    assert conditions.find(rolled.conditions, "Ready").status == "True"  # type: ignore[union-attr]
    assert rolled.ready_replicas == 1
    # the same config again changes nothing
    assert reconcile_pipeline.rendered_status(obj, rolled, new, T0) == rolled


def test_the_verdict_waits_for_the_last_samples_to_settle() -> None:
    limits = reconcile_experiment.Limits(measure_step=timedelta(seconds=5))
    assert limits.settle == timedelta(seconds=10)
    analyzing = experiment.ExperimentStatus(phase="Analyzing", started_at=T0, analyzing_since=T0 + timedelta(minutes=3))
    obj = _experiment(analyzing)
    assert not reconcile_experiment.measurement_due(obj, analyzing, T0 + timedelta(minutes=3, seconds=5), limits)
    assert reconcile_experiment.measurement_due(obj, analyzing, T0 + timedelta(minutes=3, seconds=10), limits)
    # while Running it measures from the start: the warmup ends once the pipelines settle
    running = _experiment(_running())
    assert reconcile_experiment.measurement_due(running, _running(), T0 + timedelta(seconds=15), limits)


def test_the_plan_reads_only_what_the_phase_needs() -> None:
    limits = reconcile_experiment.Limits()
    plan = reconcile_experiment.plan
    Plan = reconcile_experiment.Plan
    assert plan(_experiment(), T0, limits, None) is Plan.CREATE_CHILDREN
    assert plan(_experiment(experiment.ExperimentStatus(phase="Initializing")), T0, limits, None) is Plan.READ_CHILDREN
    # three 15 s samples have not settled yet; then it measures, to see whether the pipelines have settled
    assert plan(_experiment(_running()), T0 + timedelta(seconds=30), limits, None) is Plan.NOTHING
    assert plan(_experiment(_running()), T0 + timedelta(seconds=61), limits, None) is Plan.MEASURE
    assert plan(_experiment(_running()), T0 + timedelta(minutes=2), limits, None) is Plan.MEASURE
    assert plan(_experiment(_running(), abort=True), T0 + timedelta(minutes=2), limits, None) is Plan.NOTHING
    done = experiment.ExperimentStatus(phase="Completed", started_at=T0)
    assert plan(_experiment(done), T0 + timedelta(minutes=2), limits, None) is Plan.NOTHING


def test_measurements_while_running_are_at_least_an_analysis_interval_apart() -> None:
    obj = _experiment(_running(), analysisInterval="30s")
    measured = T0 + timedelta(minutes=2)
    assert reconcile_experiment.throttled(obj, _running(), measured + timedelta(seconds=29), measured)
    assert not reconcile_experiment.throttled(obj, _running(), measured + timedelta(seconds=30), measured)
    assert not reconcile_experiment.throttled(obj, _running(), measured, None)
    analyzing = experiment.ExperimentStatus(phase="Analyzing", started_at=T0)
    assert not reconcile_experiment.throttled(obj, analyzing, measured + timedelta(seconds=1), measured)


def test_the_window_starts_after_the_warmup_ends_at_the_duration_and_leaves_the_newest_out() -> None:
    limits = reconcile_experiment.Limits(measure_step=timedelta(seconds=5))
    started = T0 + timedelta(seconds=2)  # off the step grid
    ended = experiment.WarmupStatus(ended_at=started + timedelta(seconds=60), seconds=60.0, settled=False)
    obj = _experiment(_running(started).model_copy(update={"warmup": ended}))  # duration 10m
    assert reconcile_experiment.measurement_window(obj, started + timedelta(seconds=70), limits) is None
    window = reconcile_experiment.measurement_window(obj, started + timedelta(minutes=3), limits)
    assert window is not None
    start, end = T0.timestamp() + 65, T0.timestamp() + 170  # 62 s rounded up; 182 - 2 x 5 s rounded down
    assert (window.start, window.end, window.step) == (start, end, 5)
    assert window.timestamps[0] == start and window.timestamps[-1] == end and len(window.timestamps) == 22
    late = reconcile_experiment.measurement_window(obj, started + timedelta(hours=1), limits)
    assert late is not None and late.end == T0.timestamp() + 600  # the duration's last sample, 602 s rounded down


def test_a_started_experiment_keeps_its_spec_and_names_the_edits() -> None:
    live = _experiment(_running(), duration="20m", abort=True)
    started_with = reconcile_experiment.frozen_spec(_experiment(), "Pending", "Initializing")
    assert started_with is not None
    assert reconcile_experiment.frozen_spec(_experiment(), "Initializing", "Running") is None
    accepted, edited = reconcile_experiment.accepted(live, started_with)
    assert accepted.spec.duration == "10m" and accepted.spec.abort, "only abort is read live"
    assert edited == ["duration"]
    status = reconcile_experiment.spec_accepted(experiment.ExperimentStatus(), edited, 2, T0)
    condition = conditions.find(status.conditions, "SpecAccepted")
    assert condition is not None and (condition.status, condition.reason) == ("False", "ImmutableWhileRunning")
    assert "spec.duration" in condition.message
    assert reconcile_experiment.accepted(live, None) == (live, [])


def test_a_failed_load_fails_the_experiment() -> None:
    failed = _step(
        _experiment(_running()),
        reconcile_experiment.Observed(load_failure="LoadSim exited with 1"),
        T0 + timedelta(minutes=2),
    )
    assert failed.status.phase == "Failed" and failed.teardown == {"pipelines", "load"}
    succeeded = conditions.find(failed.status.conditions, "Succeeded")
    assert succeeded is not None and succeeded.reason == "LoadFailed" and "exited with 1" in succeeded.message


def test_a_collector_that_cannot_start_fails_the_experiment_at_once() -> None:
    initializing = _step(_experiment(), reconcile_experiment.Observed(), T0).status
    failed = _step(
        _experiment(initializing),
        reconcile_experiment.Observed(
            {"baseline": False, "candidate": True},
            pipeline_failures={"baseline": "collector failed to start: exited (code 3)"},
        ),
        T0 + timedelta(seconds=5),
    )
    assert failed.status.phase == "Failed"
    assert failed.events[0].reason == "PipelinesNotReady"
    assert failed.events[0].message == "the baseline collector failed to start: exited (code 3)"


def test_no_data_until_the_end_of_the_duration_completes_undecided() -> None:
    no_data = reconcile_experiment.Observed(measurement_problem="no series exported by the candidate pipeline yet")
    running = _step(_experiment(_running()), no_data, T0 + timedelta(minutes=9))
    condition = conditions.find(running.status.conditions, "MeasurementAvailable")
    assert running.status.phase == "Running" and condition is not None and condition.reason == "NoData"
    # the last samples settle for two measure steps (30 s by default)
    assert _step(_experiment(running.status), no_data, T0 + timedelta(minutes=10)).status.phase == "Running"
    ended = _step(_experiment(running.status), no_data, T0 + timedelta(minutes=10, seconds=30))
    assert ended.status.phase == "Completed" and ended.teardown == {"pipelines", "load"}
    assert ended.status.verdict is not None and ended.status.verdict.decision == "Inconclusive"
    assert ended.status.verdict.reasons == ["no data: no series exported by the candidate pipeline yet"]
    unreachable = reconcile_experiment.Observed(measurement_problem="timed out", prometheus_unreachable=True)
    waiting = _step(_experiment(_running()), unreachable, T0 + timedelta(minutes=10))
    assert waiting.status.phase == "Running", "an unreachable Prometheus gets its own limit"


def test_a_week_long_experiment_with_fifty_failing_queries_keeps_its_status_small() -> None:
    """The status carries summaries, never per-sample series: etcd refuses objects over 1.5 MiB."""
    rng = np.random.default_rng(3)
    samples = 7 * 24 * 3600 // 15
    data = simulate.experiment(rng, samples, reduction=0.7)
    baseline = np.asarray(data["baseline"]["activeSeries"])
    data["criticalQueries"] = [
        {
            "name": f"dashboard-panel-query-with-a-long-name-{index:02d}",
            "baseline": {f"host-{j}": (baseline / (j + 2)).tolist() for j in range(10)},
            # every query disagrees, so each one adds its own reason
            "candidate": {f"host-{j}": (baseline / (j + 2) * 1.5).tolist() for j in range(10)},
        }
        for index in range(50)
    ]
    analysis = engine.analyze_input(contract.parse({**data, "alpha": 0.05, "mode": "sequential"}))
    assert analysis.decision == "Reject" and len(analysis.reasons) == 50
    obj = _experiment(experiment.ExperimentStatus(phase="Analyzing", started_at=T0))
    status = _step(obj, reconcile_experiment.Observed(analysis=analysis), T0).status
    assert status.phase == "Completed"
    assert len(json.dumps(status.to_wire())) < 32 * 1024


def test_the_status_holds_the_trend_the_input_agreement_and_the_anomalies() -> None:
    data = simulate.experiment(np.random.default_rng(8), 200, 0.8, candidate_restart_at=30)
    data["mode"] = "fixed"
    results = verdict.results(engine.analyze_input(contract.parse(data)))
    assert results.trend is not None and results.trend.slope_per_hour.ci_low < results.trend.slope_per_hour.ci_high
    assert results.input_agreement is not None and results.input_agreement.agrees
    assert results.anomalies is not None and results.anomalies.excluded == 2
    assert {s.pattern for s in results.anomalies.samples} == {"collector restart"}
    written = experiment.ExperimentStatus(phase="Completed", results=results).model_dump(by_alias=True, mode="json")
    assert written["results"]["inputAgreement"]["agrees"] is True
    assert written["results"]["anomalies"]["samples"][0] == {
        "index": 30,
        "variant": "candidate",
        "pattern": "collector restart",
    }


def test_an_undecided_status_says_how_long_it_still_needs() -> None:
    data = simulate.experiment(np.random.default_rng(6), 240, reduction=0.56)
    early = engine.analyze_input(contract.parse(simulate.prefix(data, 20)))
    assert early.decision == "Inconclusive" and early.seconds_to_decide is not None
    written = experiment.ExperimentStatus(phase="Running", results=verdict.results(early)).to_wire()
    assert written["results"]["secondsToDecide"] == early.seconds_to_decide


def test_the_engine_is_told_the_samples_the_run_plans() -> None:
    spec = _experiment().spec.model_copy(update={"duration": "4m", "warmup": "2m"})
    assert reconcile_experiment.planned_samples(spec, 5.0, 120.0) == 25  # 120 s after the warmup, both ends
    data = simulate.experiment(np.random.default_rng(9), 20, 0.8)
    variants = contract.parse(data)
    # a warmup that ended after 40 s leaves 200 s to plan for
    built = reconcile_experiment.analysis_input(spec, variants.baseline, variants.candidate, [], 5.0, 40.0)
    assert built.planned_samples == 41


def _warming(values: dict[str, list[float | None]], step: float = 2.0) -> tuple[list[float], dict[str, Any]]:
    length = len(next(iter(values.values())))
    return [T0.timestamp() + step * (i + 1) for i in range(length)], values


def test_the_warmup_field_states_the_rule_the_analysis_applies() -> None:
    # written out, not formatted from the constants: the models stay importable without numpy for offline commands
    described = experiment.ExperimentSpec.model_fields["warmup"].description or ""
    assert f"over its last {warmup.SETTLED_SAMPLES} samples" in described
    assert f"within {warmup.SETTLED_TOLERANCE:.0%} of the mean over the {warmup.SETTLED_SAMPLES} before" in described


def test_the_warmup_ends_after_both_pipelines_settle_or_at_its_limit() -> None:
    obj = _experiment(_running(), warmup="30s", duration="2m")
    ramp = [10.0, 40.0, 70.0, 95.0, 100.0, 101.0, 99.0, 100.0, 102.0, 100.0, 100.0, 99.0, 100.0, 101.0]
    steady = [1000.0] * len(ramp)
    times, figures = _warming({"baseline.active_series": steady, "baseline.datapoints_per_minute": ramp})
    ended = reconcile_experiment.warmup_end(obj, times, figures)
    # the means of samples 3..6 and 7..10 (8 s to 22 s in) are the first to agree within 5%: analysis begins at 24 s
    assert ended == experiment.WarmupStatus(ended_at=T0 + timedelta(seconds=24), seconds=24.0, settled=True)
    # a critical query's 40 s rate window has not filled by then: the limit ends it, unsettled
    query = {"name": "q", "query": "sum(rate(process_cpu_time_seconds_total[40s]))"}
    windowed = _experiment(_running(), warmup="30s", duration="2m", analysis={"criticalQueries": [query]})
    times_30s = [*times, T0.timestamp() + 30]
    figures_30s = {name: [*values, values[-1]] for name, values in figures.items()}
    waited = reconcile_experiment.warmup_end(windowed, times_30s, figures_30s)
    assert waited is not None and (waited.seconds, waited.settled) == (30.0, False)
    # steady long before the window fills: analysis begins as it fills
    longer = _experiment(_running(), warmup="90s", duration="3m", analysis={"criticalQueries": [query]})
    times, figures = _warming({"baseline.active_series": [1000.0] * 30})
    filled = reconcile_experiment.warmup_end(longer, times, figures)
    assert filled == experiment.WarmupStatus(ended_at=T0 + timedelta(seconds=40), seconds=40.0, settled=True)
    assert reconcile_experiment.longest_range_seconds(["max_over_time(rate(x[30s])[5m:1m])", "y"]) == 300
    # still rising at the newest sample: not over, until the samples reach the limit
    rising = [10.0 * (i + 1) for i in range(11)]
    times, figures = _warming({"baseline.active_series": steady[:11], "baseline.datapoints_per_minute": rising})
    assert reconcile_experiment.warmup_end(obj, times, figures) is None
    times, figures = _warming({"x": [10.0 * (i + 1) for i in range(15)]})
    limited = reconcile_experiment.warmup_end(obj, times, figures)
    assert limited == experiment.WarmupStatus(ended_at=T0 + timedelta(seconds=30), seconds=30.0, settled=False)


def test_the_measurement_window_begins_at_the_load_while_warming_up_then_at_the_warmup_end() -> None:
    limits = reconcile_experiment.Limits(measure_step=timedelta(seconds=2))
    now = T0 + timedelta(seconds=40)
    warming = reconcile_experiment.measurement_window(_experiment(_running()), now, limits)
    assert warming is not None and warming.start == T0.timestamp()
    ended = experiment.WarmupStatus(ended_at=T0 + timedelta(seconds=22), seconds=22.0, settled=True)
    after = reconcile_experiment.measurement_window(
        _experiment(_running().model_copy(update={"warmup": ended})), now, limits
    )
    assert after is not None and after.start == (T0 + timedelta(seconds=22)).timestamp()


def test_the_warmup_an_experiment_used_is_written_once_with_an_event() -> None:
    obj = _experiment(_running(), warmup="1m")
    ended = experiment.WarmupStatus(ended_at=T0 + timedelta(seconds=22), seconds=22.0, settled=True)
    now = T0 + timedelta(seconds=30)
    step = reconcile_experiment.advance(obj, reconcile_experiment.Observed(warmup=ended), now)
    assert step.status.warmup == ended and step.status.phase == "Running"
    (event,) = step.events
    assert event.reason == "WarmupEnded" and event.message.startswith("both pipelines settled after 22s")
    later = experiment.WarmupStatus(ended_at=T0 + timedelta(seconds=40), seconds=40.0, settled=True)
    again = reconcile_experiment.advance(
        obj.model_copy(update={"status": step.status}), reconcile_experiment.Observed(warmup=later), now
    )
    assert again.status.warmup == ended and not again.events
    unsettled = experiment.WarmupStatus(ended_at=T0 + timedelta(minutes=1), seconds=60.0, settled=False)
    limited = reconcile_experiment.advance(obj, reconcile_experiment.Observed(warmup=unsettled), now)
    assert limited.events[0].message == "the pipelines did not settle within the 1m warmup; analysing from its end"


def test_an_adaptive_candidate_gets_the_whole_warmup_and_the_spec_states_the_rule() -> None:
    adaptive = {"template": "adaptive", "parameters": {"seriesBudget": 500}}
    obj = _experiment(_running(), warmup="30s", duration="2m", candidate=adaptive)
    times, figures = _warming({"baseline.active_series": [1000.0] * 12})
    assert reconcile_experiment.warmup_end(obj, times, figures) is None
    times, figures = _warming({"baseline.active_series": [1000.0] * 15})
    ended = reconcile_experiment.warmup_end(obj, times, figures)
    assert ended is not None and (ended.seconds, ended.settled) == (30.0, False)
    described = experiment.ExperimentSpec.model_fields["warmup"].description or ""
    assert f"last {warmup.SETTLED_SAMPLES} samples is within {warmup.SETTLED_TOLERANCE:.0%}" in described
