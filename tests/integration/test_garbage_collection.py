"""Deleting experiments in the test bed: the garbage collector removes everything they owned.

The operator sets owner references (experiment → pipelines and load →
ConfigMaps, Deployments, Services, Jobs) and the controllers add theirs
(Deployment → ReplicaSets → Pods, Job → Pods, Service → EndpointSlices);
deleting the experiments must leave none of those objects behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration
EXPERIMENTS = 50
# everything an experiment comes to own, directly or through its children
OWNED_KINDS = ("ppp", "lsim", "configmap", "deployment", "replicaset", "pod", "service", "endpointslice", "job", "pdb")


def _objects(plane: controlplane.ControlPlane, namespace: str) -> list[dict[str, Any]]:
    return [found for kind in OWNED_KINDS for found in harness.listed(plane, namespace, kind)]


def _owned(objects: list[dict[str, Any]], roots: set[str]) -> list[dict[str, Any]]:
    """The objects whose owner references lead to one of the `roots` uids."""
    owners = {o["metadata"]["uid"]: [r["uid"] for r in o["metadata"].get("ownerReferences") or []] for o in objects}

    def leads_to_root(uid: str, seen: frozenset[str] = frozenset()) -> bool:
        return uid in roots or any(
            leads_to_root(owner, seen | {uid}) for owner in owners.get(uid, []) if owner not in seen
        )

    return [o for o in objects if leads_to_root(o["metadata"]["uid"]) and o["metadata"]["uid"] not in roots]


def _labelled(objects: list[dict[str, Any]], names: set[str]) -> list[dict[str, Any]]:
    return [o for o in objects if (o["metadata"].get("labels") or {}).get("phoenix.io/experiment") in names]


def test_deleting_fifty_experiments_leaves_nothing_they_owned(
    control_plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    namespace = harness.namespace(control_plane)
    names = {f"gc-{index}" for index in range(EXPERIMENTS)}
    flags = ("--image", "registry.example/phoenix-operator:test", "--prometheus-url", "http://127.0.0.1:9")
    with harness.running(control_plane, namespace, tmp_path, *flags) as operator:
        for name in sorted(names):
            harness.apply(control_plane, namespace, harness.experiment(name, duration="10m", analysisInterval="5s"))

        def every_load_running() -> list[dict[str, Any]] | None:
            objects = _objects(control_plane, namespace)
            pods = [o for o in objects if o["kind"] == "Pod" and o["status"].get("phase") == "Running"]
            # two collectors and one load pod per experiment, all started
            return objects if len(pods) == 3 * EXPERIMENTS else None

        before = harness.wait_for("every experiment's pods running", every_load_running, 300, operator.log)
        experiments = json.loads(control_plane.kubectl("get", "pexp", "-n", namespace, "-o", "json").stdout)["items"]
        roots = {e["metadata"]["uid"] for e in experiments}
        owned = _owned(before, roots)
        kinds = {o["kind"] for o in owned}
        assert kinds >= {"PhoenixProcessPipeline", "LoadSim", "ConfigMap", "Deployment", "ReplicaSet", "Pod",
                         "Service", "EndpointSlice", "Job", "PodDisruptionBudget"}, kinds  # fmt: skip
        assert len(owned) >= 16 * EXPERIMENTS, len(owned)
        print(f"\n{len(owned)} objects owned by {EXPERIMENTS} experiments ({len(_labelled(before, names))} labelled)")

        control_plane.kubectl("delete", "pexp", "-n", namespace, "--all", "--wait=false")

        owned_uids = {o["metadata"]["uid"] for o in owned}

        def nothing_left() -> bool:
            objects = _objects(control_plane, namespace)
            remaining = [o for o in objects if o["metadata"]["uid"] in owned_uids]
            # and anything created since, owned through them
            return not remaining and not _owned(objects, roots | owned_uids) and not _labelled(objects, names)

        harness.wait_for("the garbage collector to remove everything", nothing_left, 180, operator.log)
        left = _objects(control_plane, namespace)
        assert left == [], [f"{o['kind']}/{o['metadata']['name']}" for o in left]
        assert json.loads(control_plane.kubectl("get", "pexp", "-n", namespace, "-o", "json").stdout)["items"] == []
