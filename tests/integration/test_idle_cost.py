"""What an operator costs the API server while nothing is left to do: finished experiments and LoadSims get no periodic
work, and a running load is observed from its Job's watch events, so in a quiet minute it sends no request about
them, nor any other read or write. Counted by the API server's own audit log. Its watch streams, one per kind for
the whole operator, are not counted: kopf opens one again when the API server ends it, whatever the objects."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration
QUIET_SECONDS = 60
# the test bed's own components and this test's kubectl, which the audit log also records
NOT_THE_OPERATOR = ("kube-controller-manager", "kube-scheduler", "kwok", "kubectl", "kube-apiserver")
FINISHED_LOAD = {
    "conditions": [
        {"type": condition, "status": state, "reason": "Finished", "message": "the load ran to the end",
         "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}
        for condition, state in (("Ready", "False"), ("Succeeded", "True"))
    ]
}  # fmt: skip


def _load_sending(plane: controlplane.ControlPlane, namespace: str, name: str) -> bool:
    found = harness.get(plane, namespace, "lsim", name) or {}
    ready = harness.condition(found, "Ready") or {}
    return ready.get("reason") == "Sending" and bool(found["status"].get("startedAt"))


def test_finished_experiments_and_loadsims_and_a_running_load_cost_no_request_a_minute(tmp_path: Path) -> None:
    audit_log = tmp_path / "audit.log"
    with controlplane.running(tmp_path / "plane", audit_log=audit_log) as plane:
        plane.install_crds()
        namespace = harness.namespace(plane)
        for i in range(3):
            harness.apply(plane, namespace, harness.experiment(f"done-{i}", abort=True))
            load = {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSim", "metadata": {"name": f"load-{i}"},
                    "spec": {"targets": [{"endpoint": "http://collector:4318"}]}}  # fmt: skip
            harness.apply(plane, namespace, load)
            plane.kubectl("patch", "-n", namespace, "loadsim", f"load-{i}", "--subresource=status", "--type=merge",
                          "-p", json.dumps({"status": FINISHED_LOAD}))  # fmt: skip
        # its Job's pod runs until deleted: the fake kubelet never ends it
        running = {"apiVersion": "phoenix.io/v1alpha1", "kind": "LoadSim", "metadata": {"name": "running"},
                   "spec": {"targets": [{"endpoint": "http://collector:4318"}], "duration": "30m"}}  # fmt: skip
        harness.apply(plane, namespace, running)
        with harness.running(plane, namespace, tmp_path, "--prometheus-url", "http://127.0.0.1:9") as operator:
            harness.wait_for("the load Sending", lambda: _load_sending(plane, namespace, "running"), 60, operator.log)

            def all_aborted() -> bool:
                phases = [
                    (harness.get(plane, namespace, "pexp", f"done-{i}") or {}).get("status", {}) for i in range(3)
                ]
                return all(p.get("phase") == "Aborted" for p in phases)

            harness.wait_for("every experiment Aborted", all_aborted, 60, operator.log)
            time.sleep(10)  # its last writes and events land
            since = time.time()
            time.sleep(QUIET_SECONDS)
            requests = [
                f"{e['verb']} {(e.get('objectRef') or {}).get('resource')} ({e.get('userAgent', '').split(' ')[0]})"
                for e in controlplane.audited_requests(audit_log, since, time.time())
                if not e.get("userAgent", "").startswith(NOT_THE_OPERATOR) and e["verb"] != "watch"
            ]
    assert requests == [], f"{len(requests)} requests in a quiet minute: {requests[:20]}"
