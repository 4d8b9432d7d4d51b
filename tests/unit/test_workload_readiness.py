"""How many collectors of a workload count as ready, from the status its controller writes."""

from __future__ import annotations

from typing import Any, cast

from phoenix_operator.models import kinds
from phoenix_operator.runtime import kubernetes


def _daemonset(**status: int) -> dict[str, Any]:
    return {
        "kind": "DaemonSet",
        "metadata": {"generation": 2},
        "spec": {"template": {"metadata": {"annotations": {"phoenix.io/config-hash": "new"}}}},
        "status": {"observedGeneration": 2, **status},
    }


def test_pods_of_the_old_config_are_not_ready_collectors() -> None:
    # three pods ready, one of them on the new template: a rollout with OnDelete, or caught mid-way
    rolling = _daemonset(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=1)
    assert kubernetes._readiness(rolling) == (3, 1, "new")
    rolled = _daemonset(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=3)
    assert kubernetes._readiness(rolled) == (3, 3, "new")


def test_a_status_older_than_the_spec_names_no_config() -> None:
    stale = _daemonset(desiredNumberScheduled=3, numberReady=3, updatedNumberScheduled=3)
    stale["status"]["observedGeneration"] = 1
    assert kubernetes._readiness(stale)[2] is None


def _deployment(ready: int) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "p-collector",
            "namespace": "ns",
            "generation": 1,
            "ownerReferences": [{"kind": "PhoenixProcessPipeline", "name": "p"}],
        },
        "spec": {"replicas": 2, "template": {"metadata": {"annotations": {"phoenix.io/config-hash": "h"}}}},
        "status": {"observedGeneration": 1, "readyReplicas": ready, "updatedReplicas": ready},
    }


def _endpoint_slice(name: str, *ready: bool | None) -> dict[str, Any]:
    return {
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "ns", "labels": {"phoenix.io/pipeline": "p"}},
        "endpoints": [{"addresses": [f"10.0.0.{i}"], "conditions": {"ready": r}} for i, r in enumerate(ready)],
    }


def test_a_collector_is_ready_only_once_its_service_routes_to_it() -> None:
    runtime = kubernetes.KubernetesRuntime(cast(kubernetes.Api, None), "image")
    pipeline = kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"template": "baseline"},
        }
    )
    assert runtime.record_workload("ADDED", _deployment(ready=2)) == "p"
    observed = runtime.observe_pipeline(pipeline)
    assert observed is not None and observed.ready_replicas == 0  # no EndpointSlice lists them yet
    # one slice: one endpoint ready, one not yet; unset means ready, as the API defines it
    assert runtime.record_workload("ADDED", _endpoint_slice("p-collector-abc", True, False)) == "p"
    assert runtime.observe_pipeline(pipeline).ready_replicas == 1  # type: ignore[union-attr]
    assert runtime.record_workload("MODIFIED", _endpoint_slice("p-collector-abc", True, None)) == "p"
    assert runtime.observe_pipeline(pipeline).ready_replicas == 2  # type: ignore[union-attr]
    assert runtime.record_workload("MODIFIED", _endpoint_slice("p-collector-abc", None, True)) is None
    assert runtime.record_workload("DELETED", _endpoint_slice("p-collector-abc")) == "p"
    assert runtime.observe_pipeline(pipeline).ready_replicas == 0  # type: ignore[union-attr]


def _pipeline() -> kinds.PhoenixProcessPipeline:
    return kinds.PhoenixProcessPipeline.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"template": "baseline"},
        }
    )


def test_the_applied_workload_is_observed_before_its_watch_event_arrives() -> None:
    # a deploy whose status write lost to another write runs again, observing only: it must read the
    # children it has just applied, or it reports the pipeline still deploying until an event comes
    runtime = kubernetes.KubernetesRuntime(cast(kubernetes.Api, None), "image")
    answer = _deployment(ready=0)
    answer["status"] = {}  # the apply's answer: the controller has not seen the spec yet
    runtime._remember_applied(("ns", "p"), answer)
    observed = runtime.observe_pipeline(_pipeline())
    assert observed is not None and (observed.desired_replicas, observed.config_hash) == (2, None)
    # the same state in the watch event changes no readiness, so it queues no second deploy
    assert runtime.record_workload("ADDED", answer) is None


def test_an_applied_answer_never_replaces_a_newer_state_from_the_watch() -> None:
    runtime = kubernetes.KubernetesRuntime(cast(kubernetes.Api, None), "image")
    assert runtime.record_workload("MODIFIED", _deployment(ready=2)) == "p"  # rolled out: config "h"
    late = _deployment(ready=0)
    late["status"] = {}
    runtime._remember_applied(("ns", "p"), late)  # the same generation, answered before that event
    assert runtime.observe_pipeline(_pipeline()).config_hash == "h"  # type: ignore[union-attr]
    newer = _deployment(ready=0)
    newer["metadata"]["generation"] = 2  # a new config applied: its rollout has not begun
    runtime._remember_applied(("ns", "p"), newer)
    assert runtime.observe_pipeline(_pipeline()).config_hash is None  # type: ignore[union-attr]


def test_a_running_load_is_observed_from_its_jobs_watch_events_without_a_request() -> None:
    runtime = kubernetes.KubernetesRuntime(cast(kubernetes.Api, None), "image")  # any request would fail
    load = kinds.LoadSim.model_validate(
        {
            "apiVersion": "phoenix.io/v1alpha1",
            "kind": "LoadSim",
            "metadata": {"name": "l", "namespace": "ns"},
            "spec": {"targets": [{"endpoint": "http://collector:4318"}]},
        }
    )
    job = {
        "metadata": {"name": "l-load", "namespace": "ns"},
        "status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"},
    }
    runtime.record_job("ADDED", job)
    observed = runtime.observe_load(load)
    assert observed is not None and observed.active and observed.started_at == "2026-01-01T00:00:00Z"
