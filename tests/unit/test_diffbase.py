"""The operator's diff base: the essence kopf compares handlers' changes on, built without copying the whole body."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf
import pytest

from phoenix_operator import GROUP
from phoenix_operator.handlers import loadsims, pipelines, startup
from phoenix_operator.runtime import kubernetes as runtime_kubernetes

FIELD = "status.lastHandledConfiguration"


def _pipeline() -> dict[str, Any]:
    """A pipeline as the API server returns it after the operator wrote its status."""
    return {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {
            "name": "p1",
            "namespace": "ns",
            "uid": "0b1c",
            "resourceVersion": "42",
            "generation": 2,
            "labels": {"team": "sre"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
                "kopf.phoenix.io/accept": '{"started": "2026-12-07T00:00:00Z"}',
                "phoenix.io/mirror-to": "exp-a",
            },
            "finalizers": ["phoenix.io/finalizer"],
            "managedFields": [{"manager": f"m{i}", "fieldsV1": {"f:status": {"f:x": {}}}} for i in range(3)],
        },
        "spec": {"template": "baseline", "parameters": {"dropMetrics": ["a", "b"]}, "collector": {"replicas": 1}},
        "status": {
            "phase": "Ready",
            "lastHandledConfiguration": '{"spec": {"template": "baseline"}}',
            "conditions": [{"type": "Ready", "status": "True"}],
            "endpoints": {"otlpHttp": "http://p1:4318"},
        },
    }


BODIES = {
    "written": _pipeline(),
    "new": {k: v for k, v in _pipeline().items() if k != "status"},
    "bare": {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSim", "metadata": {"name": "x"}, "spec": {}},
    "no metadata": {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSim", "spec": {"a": 1}},
}
EXTRA_FIELDS: list[list[Any]] = [
    [],
    [("spec",), ("metadata", "annotations")],
    [("status", "phase"), ("metadata", "labels", "team")],
    ["status.endpoints.otlpHttp", ("metadata", "finalizers")],
    [("status",), "metadata.uid"],
    [("metadata",), ("status", "absent")],
]


@pytest.mark.parametrize("extra_fields", EXTRA_FIELDS, ids=repr)
@pytest.mark.parametrize("name", BODIES)
def test_the_essence_is_the_one_kopf_builds(name: str, extra_fields: list[Any]) -> None:
    raw = BODIES[name]
    before = copy.deepcopy(raw)
    ours = startup.DiffBaseStorage(field=FIELD).build(body=kopf.Body(raw), extra_fields=extra_fields)  # type: ignore[arg-type]
    kopfs = kopf.StatusDiffBaseStorage(field=FIELD).build(body=kopf.Body(raw), extra_fields=extra_fields)  # type: ignore[arg-type]
    assert ours == kopfs
    assert raw == before  # the body is read, never changed


def test_the_essence_is_a_copy_a_later_change_of_the_body_leaves_alone() -> None:
    raw = _pipeline()
    essence: Any = startup.DiffBaseStorage(field=FIELD).build(body=kopf.Body(raw))  # type: ignore[arg-type]
    raw["spec"]["parameters"]["dropMetrics"].append("c")
    raw["metadata"]["labels"]["team"] = "ops"
    assert essence["spec"]["parameters"]["dropMetrics"] == ["a", "b"]
    assert essence["metadata"]["labels"] == {"team": "sre"}


def test_a_workload_watched_for_readiness_gets_an_empty_essence() -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "p1-collector", "labels": {"app.kubernetes.io/managed-by": "phoenix"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "otelcol", "image": "otelcol"}]}}},
    }
    essence = startup.DiffBaseStorage(field=FIELD).build(body=kopf.Body(deployment))  # type: ignore[arg-type]
    assert essence == {}


def test_only_phoenix_kinds_have_the_handlers_kopf_compares_essences_for() -> None:
    """The empty essence above is safe while kopf passes other kinds' events to event handlers alone."""
    # registering reads the runtime's type only, so it needs no API server
    runtime = runtime_kubernetes.KubernetesRuntime(cast(runtime_kubernetes.Api, None), "phoenix-operator:test")
    pipelines.watch_readiness(runtime)
    loadsims.watch_loads(runtime)
    registry = kopf.get_default_registry()
    watched = {handler.selector.group for handler in registry._watching.get_all_handlers()}
    compared = {
        handler.selector.group
        for handlers in (registry._changing, registry._spawning)
        for handler in handlers.get_all_handlers()
    }
    assert {"apps", "discovery.k8s.io", "batch"} <= watched  # the workloads are registered
    assert compared == {GROUP}
