"""The ArgoCD health checks, run by Lua 5.1 (the dialect of ArgoCD's gopher-lua) on objects in every state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ARGOCD = Path(__file__).resolve().parents[2] / "kustomize" / "components" / "argocd"


def _health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((ARGOCD / "health" / f"{kind.lower()}.lua").read_text())
    return str(result["status"]), str(result["message"])


def _conditions(*entries: tuple[str, str, str, str]) -> list[dict[str, str]]:
    return [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in entries]


def _experiment(phase: str | None, *conditions: tuple[str, str, str, str], **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"generation": 1}}
    if phase is not None:
        body["status"] = {"phase": phase, "conditions": _conditions(*conditions), **status}
    return body


PROMOTE = {"decision": "Promote", "reasons": ["series reduction 83.0% clears the objective 50%"]}


@pytest.mark.parametrize(
    ("obj", "expected", "message"),
    [
        (_experiment(None), "Progressing", "Waiting for the Phoenix operator"),
        (_experiment("Pending"), "Progressing", "Pending: "),
        (
            _experiment("Running", ("Succeeded", "Unknown", "Running", "sending load and measuring")),
            "Progressing",
            "Running: sending load and measuring",
        ),
        (_experiment("Analyzing", ("Succeeded", "Unknown", "Analyzing", "x")), "Progressing", "Analyzing: x"),
        (
            _experiment("Completed", ("Succeeded", "True", "Promote", "done"), verdict=PROMOTE),
            "Healthy",
            "Completed: Promote; series reduction 83.0% clears the objective 50%",
        ),
        (
            _experiment(
                "Completed",
                ("Succeeded", "True", "Promote", "done"),
                ("Promoted", "False", "PromotionFailed", "could not promote the candidate to production: gone"),
                verdict=PROMOTE,
            ),
            "Degraded",
            "PromotionFailed: could not promote the candidate to production: gone",
        ),
        (
            _experiment(
                "Completed",
                ("Succeeded", "True", "Promote", "done"),
                ("Drifted", "True", "Drifted", "kept points ratio 0.035 is outside the expected [0.08, 0.12]"),
                verdict=PROMOTE,
            ),
            "Degraded",
            "Drifted: kept points ratio 0.035 is outside the expected [0.08, 0.12]",
        ),
        (
            _experiment(
                "Completed",
                ("Succeeded", "True", "Promote", "done"),
                ("Drifted", "False", "Holding", "kept points ratio 0.1 within [0.08, 0.12]"),
                verdict=PROMOTE,
            ),
            "Healthy",
            "Completed: Promote; series reduction 83.0% clears the objective 50%",
        ),
        (
            _experiment("Failed", ("Succeeded", "False", "PrometheusUnreachable", "for 5m")),
            "Degraded",
            "Failed: PrometheusUnreachable: for 5m",
        ),
        (_experiment("Aborted", ("Succeeded", "False", "Aborted", "spec.abort")), "Suspended", "Aborted: spec.abort"),
        (
            _experiment("Running", ("SpecAccepted", "False", "ImmutableWhileRunning", "delete and re-create")),
            "Degraded",
            "ImmutableWhileRunning: delete and re-create",
        ),
    ],
)
def test_experiment_health(obj: dict[str, Any], expected: str, message: str) -> None:
    assert _health("PhoenixExperiment", obj) == (expected, message)


def _pipeline(observed: int | None, *conditions: tuple[str, str, str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"generation": 2}}
    if observed is not None:
        body["status"] = {"observedGeneration": observed, "conditions": _conditions(*conditions)}
    return body


@pytest.mark.parametrize(
    ("obj", "expected", "message"),
    [
        (_pipeline(None), "Progressing", "Waiting for the Phoenix operator"),
        (_pipeline(1, ("Ready", "True", "CollectorsReady", "1/1")), "Progressing", "Waiting for the Phoenix operator"),
        (
            _pipeline(2, ("ConfigValid", "False", "InvalidSpec", "unknown template")),
            "Degraded",
            "Invalid config: unknown template",
        ),
        (
            _pipeline(
                2, ("ConfigValid", "True", "Rendered", "c"), ("Ready", "False", "Deploying", "deploying config c")
            ),
            "Progressing",
            "deploying config c",
        ),
        (
            _pipeline(2, ("ConfigValid", "True", "Rendered", "c"), ("Ready", "True", "CollectorsReady", "2/2 ready")),
            "Healthy",
            "2/2 ready",
        ),
    ],
)
def test_pipeline_health(obj: dict[str, Any], expected: str, message: str) -> None:
    assert _health("PhoenixProcessPipeline", obj) == (expected, message)


def _load(*conditions: tuple[str, str, str, str]) -> dict[str, Any]:
    return {"metadata": {"generation": 1}, "status": {"conditions": _conditions(*conditions)}}


@pytest.mark.parametrize(
    ("obj", "expected", "message"),
    [
        ({"metadata": {}}, "Progressing", "Waiting for the Phoenix operator"),
        (
            _load(
                ("Ready", "False", "WaitingForTargets", "pipeline b is not ready"), ("Succeeded", "Unknown", "N", "")
            ),
            "Progressing",
            "pipeline b is not ready",
        ),
        (_load(("Ready", "True", "Sending", "sending load")), "Progressing", "sending load"),
        (
            _load(("Ready", "False", "Finished", "done"), ("Succeeded", "True", "Finished", "the load ran to the end")),
            "Healthy",
            "the load ran to the end",
        ),
        (
            _load(("Ready", "False", "LoadFailed", "x"), ("Succeeded", "False", "LoadFailed", "deadline exceeded")),
            "Degraded",
            "LoadFailed: deadline exceeded",
        ),
        (
            _load(("Ready", "False", "InvalidSpec", "hosts: must be > 0")),
            "Degraded",
            "Invalid spec: hosts: must be > 0",
        ),
    ],
)
def test_loadsim_health(obj: dict[str, Any], expected: str, message: str) -> None:
    assert _health("LoadSim", obj) == (expected, message)


def test_the_config_map_carries_every_script_under_argocds_key() -> None:
    kustomization = yaml.safe_load((ARGOCD / "kustomization.yaml").read_text())
    files = kustomization["configMapGenerator"][0]["files"]
    keys = {entry.split("=", 1)[0] for entry in files}
    assert keys == {
        f"resource.customizations.health.phoenix.io_{kind}"
        for kind in ("PhoenixExperiment", "PhoenixProcessPipeline", "LoadSim")
    }
