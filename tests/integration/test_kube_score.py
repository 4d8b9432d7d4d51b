"""kube-score, a third-party manifest checker, over every overlay and the children the operator makes.

Each example pipeline's ConfigMap, workload, Service and PodDisruptionBudget,
and each example LoadSim's Job, are scored beside the collectors'
NetworkPolicies, as they would run in one experiment namespace. What Phoenix
does not do by choice is annotated on the object, with its reason
(`objects.CHOSEN_EXCEPTIONS`, the operator's Deployment); the requests and
memory limits those annotations also hide from kube-score are asserted here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoenix_operator import binaries
from phoenix_operator.models import kinds
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from tests.harness import controlplane

pytestmark = pytest.mark.integration
KUSTOMIZE = controlplane.REPO / "kustomize"
EXAMPLES = controlplane.REPO / "examples"
OVERLAYS = ("dev", "production", "monitored")
NAMESPACE = "team-a"


def _kustomize(path: Path) -> list[dict[str, Any]]:
    built = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


def _children() -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") not in ("PhoenixProcessPipeline", "LoadSim"):
                continue
            doc["metadata"] = {**doc["metadata"], "namespace": NAMESPACE, "uid": "uid"}
            if doc["kind"] == "PhoenixProcessPipeline":
                pipeline = kinds.PhoenixProcessPipeline.model_validate(doc)
                made += reconcile_pipeline.manifests(pipeline, reconcile_pipeline.render(pipeline))
            else:
                load = kinds.LoadSim.model_validate(doc)
                made.append(reconcile_loadsim.job(load, ["http://p-collector:4318"], "phoenix-operator:0.1.0"))
    return made


def _critical(docs: list[dict[str, Any]], tmp_path: Path) -> list[str]:
    manifest = tmp_path / "manifests.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    scored = subprocess.run(
        [str(binaries.require(binaries.KUBE_SCORE)), "score", "-o", "json", str(manifest)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert scored.stdout, scored.stderr
    findings = []
    for scored_object in json.loads(scored.stdout):
        for check in scored_object["checks"]:
            if check["grade"] <= 1 and not check["skipped"]:  # 1 is CRITICAL
                comments = "; ".join(c["summary"] for c in check.get("comments") or [])
                findings.append(f"{scored_object['object_name']}: {check['check']['name']}: {comments}")
    return findings


def _assert_requests_and_limits(docs: list[dict[str, Any]]) -> None:
    """What the container-resources exception hides from kube-score: only the CPU limit may be missing."""
    templates = [d["spec"]["template"] for d in docs if d["kind"] in ("Deployment", "DaemonSet", "Job")]
    for container in (c for t in templates for c in t["spec"]["containers"]):
        resources = container["resources"]
        assert {"cpu", "memory", "ephemeral-storage"} <= set(resources["requests"]), container["name"]
        assert {"memory", "ephemeral-storage"} <= set(resources["limits"]), container["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_has_no_critical_finding(overlay: str, tmp_path: Path) -> None:
    docs = _kustomize(KUSTOMIZE / "overlays" / overlay)
    assert _critical(docs, tmp_path) == []
    _assert_requests_and_limits(docs)


def test_the_children_of_every_example_have_no_critical_finding(tmp_path: Path) -> None:
    children = _children()
    assert {c["kind"] for c in children} >= {"ConfigMap", "Deployment", "DaemonSet", "Service", "Job"}
    policies = _kustomize(KUSTOMIZE / "components" / "network-policy" / "collectors")
    for policy in policies:
        policy["metadata"]["namespace"] = NAMESPACE
    assert _critical(children + policies, tmp_path) == []
    _assert_requests_and_limits(children)


def test_an_unexplained_finding_is_reported(tmp_path: Path) -> None:
    """The check itself: a child stripped of its NetworkPolicy and annotations fails."""
    job = next(c for c in _children() if c["kind"] == "Job")
    del job["metadata"]["annotations"]
    found = _critical([job], tmp_path)
    assert any("NetworkPolicy" in f for f in found) and any("Image Pull Policy" in f for f in found), found
