"""Mirrored input: what a mirrored experiment creates, which copies a pipeline's config carries, and that a
copy ends with its experiment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from phoenix_operator import API_VERSION
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.controllers import mirror as mirror_controller
from phoenix_operator.models import experiment, kinds
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.reconcile import mirror as reconcile_mirror
from phoenix_operator.runtime import memory

T0 = datetime(2026, 1, 1, tzinfo=UTC)
URLS = {
    "baseline": "http://exp-baseline-collector.ns.svc:4318",
    "candidate": "http://exp-candidate-collector.ns.svc:4318",
}


def _mirrored(status: experiment.ExperimentStatus | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "PhoenixExperiment",
        "metadata": {"name": "exp", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "baseline": {"pipelineRef": "production"},
            "candidate": {"template": "candidate", "parameters": {"aggregateAwayAttributes": ["process.pid"]}},
            "load": {"source": "mirror", "mirror": {"fraction": 0.25}},
            "duration": "10m",
            **spec,
        },
        **({"status": status.to_wire()} if status else {}),
    }


def _parsed(body: dict[str, Any]) -> kinds.PhoenixExperiment:
    return kinds.PhoenixExperiment.model_validate(body)


def test_a_mirrored_experiment_creates_its_shadows_and_no_load() -> None:
    obj = _parsed(_mirrored())
    production = kinds.PhoenixProcessPipeline.model_validate(
        {"apiVersion": API_VERSION, "kind": "PhoenixProcessPipeline",
         "metadata": {"name": "production", "namespace": "ns"}, "spec": {"template": "baseline"}}
    )  # fmt: skip
    created = reconcile_experiment.children(obj, production)
    assert [(c["kind"], c["metadata"]["name"]) for c in created] == [
        ("PhoenixProcessPipeline", "exp-baseline"),
        ("PhoenixProcessPipeline", "exp-candidate"),
    ]
    step = reconcile_experiment.advance(obj, reconcile_experiment.Observed(), T0)
    assert (step.status.phase, step.status.load_source, step.status.load_sim) == ("Initializing", "mirror", None)
    assert obj.spec.describe_load() == "mirrored: 25%, by host.name, of the real input of pipeline production"


def test_a_mirror_that_never_starts_fails_the_experiment_naming_the_pipeline() -> None:
    started = reconcile_experiment.advance(_parsed(_mirrored()), reconcile_experiment.Observed(), T0).status
    obj = _parsed(_mirrored(started))
    limit = reconcile_experiment.Limits().pipelines_ready
    ready = {"baseline": True, "candidate": True}
    step = reconcile_experiment.advance(obj, reconcile_experiment.Observed(pipelines_ready=ready), T0 + 2 * limit)
    failed = next(c for c in step.status.conditions if c.type == "Succeeded")
    assert (step.status.phase, failed.reason) == ("Failed", "LoadNotStarted")
    assert failed.message.startswith("the mirror from production did not start within")
    assert "load" in step.teardown


@pytest.mark.parametrize(
    ("case", "body", "uid"),
    [
        ("deleted", None, "uid-1"),
        ("re-created", _mirrored(), "uid-0"),
        ("ended", _mirrored(experiment.ExperimentStatus(phase="Completed")), "uid-1"),
        ("aborted", _mirrored(abort=True), "uid-1"),
        ("mirrors another", _mirrored(baseline={"pipelineRef": "elsewhere"}), "uid-1"),
        ("not mirrored", _mirrored(load={"source": "loadSim"}), "uid-1"),
        ("being deleted", {**_mirrored(), "metadata": {**_mirrored()["metadata"], "deletionTimestamp": T0}}, "uid-1"),
    ],
)
def test_an_annotation_whose_experiment_no_longer_mirrors_the_pipeline_is_stale(
    case: str, body: dict[str, Any] | None, uid: str
) -> None:
    found = _parsed(body) if body else None
    assert reconcile_mirror.judge("production", uid, found, URLS) == (None, True), case


def test_a_live_request_copies_to_both_shadows_once_they_have_addresses() -> None:
    found = _parsed(_mirrored(experiment.ExperimentStatus(phase="Initializing")))
    assert reconcile_mirror.judge("production", "uid-1", found, {"baseline": URLS["baseline"]}) == (None, False)
    # an address that is not a shadow's plain OTLP/HTTP URL is never copied to
    odd = {**URLS, "candidate": "http://elsewhere.example:4318/v1/metrics?x"}
    assert reconcile_mirror.judge("production", "uid-1", found, odd) == (None, False)
    mirror, stale = reconcile_mirror.judge("production", "uid-1", found, URLS)
    assert not stale and mirror is not None
    assert mirror.targets == (("baseline", URLS["baseline"]), ("candidate", URLS["candidate"]))
    assert (mirror.fraction, mirror.sample_by, mirror.component) == (0.25, "host.name", "mirror-exp")
    assert mirror.drop_condition() == 'Murmur3Hash(resource.attributes["host.name"]) >= "40000000"'


def _store_with_production() -> memory.MemoryStore:
    store = memory.MemoryStore()
    store.apply(
        {"apiVersion": API_VERSION, "kind": "PhoenixProcessPipeline",
         "metadata": {"name": "production", "namespace": "ns"}, "spec": {"template": "baseline"}}
    )  # fmt: skip
    return store


def _annotations(store: memory.MemoryStore) -> dict[str, str]:
    found = store.get(API_VERSION, "PhoenixProcessPipeline", "ns", "production")
    assert found is not None
    annotations: dict[str, str] = found["metadata"].get("annotations", {})
    return annotations


def test_the_copy_is_asked_for_by_annotation_and_read_back_from_the_shadows() -> None:
    store = _store_with_production()
    running = _mirrored(experiment.ExperimentStatus(phase="Running"))
    applied = store.apply(running)
    for variant, url in URLS.items():
        store.apply({"apiVersion": API_VERSION, "kind": "PhoenixProcessPipeline",
                     "metadata": {"name": f"exp-{variant}", "namespace": "ns"},
                     "spec": {"template": "baseline", "experimentRef": "exp", "variant": variant}})  # fmt: skip
        shadow = store.get(API_VERSION, "PhoenixProcessPipeline", "ns", f"exp-{variant}")
        assert shadow is not None
        store.patch_status_if_unchanged(API_VERSION, "PhoenixProcessPipeline", shadow["metadata"],
                                        {"endpoints": {"otlpHttp": url}})  # fmt: skip
    store.patch_status_if_unchanged(API_VERSION, "PhoenixExperiment", applied["metadata"], running["status"])
    obj = _parsed({**running, "metadata": applied["metadata"]})
    mirror_controller.request(store, obj, "production")
    assert _annotations(store) == {"mirror.phoenix.io/exp": applied["metadata"]["uid"]}
    production = kinds.PhoenixProcessPipeline.model_validate(
        store.get(API_VERSION, "PhoenixProcessPipeline", "ns", "production")
    )
    mirrors, stale = mirror_controller.attached(store, production)
    assert stale == [] and [m.experiment for m in mirrors] == ["exp"]
    assert dict(mirrors[0].targets) == URLS


@pytest.mark.parametrize("ending", ["abort", "deleted"])
def test_the_copy_ends_with_its_experiment(ending: str) -> None:
    store = _store_with_production()
    running = _mirrored(experiment.ExperimentStatus(phase="Running", started_at=T0))
    store.annotate(API_VERSION, "PhoenixProcessPipeline", "ns", "production", {"mirror.phoenix.io/exp": "uid-1"})
    store.annotate(API_VERSION, "PhoenixProcessPipeline", "ns", "production", {"team": "sre"})
    if ending == "abort":
        running["spec"]["abort"] = True
        ticked = experiment_controller.step(store, running, T0, experiment_controller.Settings(),
                                            experiment_controller.Memory())  # fmt: skip
        assert ticked.step.status.phase == "Aborted"
    else:
        mirror_controller.end_deleted(store, running)
    assert _annotations(store) == {"team": "sre"}, "only the experiment's own annotation is removed"
