"""The parts an experiment stands on failing under it.

The API server killed for 20 s while the experiment is Initializing and again while it is Running, then
restarted on the same etcd; then etcd killed and restarted; then Prometheus killed. The operator runs real
collectors, LoadSim and Prometheus with the local runtime, and the objects live in the test bed's real API
server. Whatever was in flight, the experiment ends with one verdict, the status it had written, and nothing
left behind."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import test_one_driver
from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
OUTAGE_SECONDS = 20
NAME = "chaos"


def _status(plane: controlplane.ControlPlane, namespace: str) -> dict[str, Any]:
    found = harness.get(plane, namespace, "pexp", NAME)
    status: dict[str, Any] = (found or {}).get("status") or {}
    return status


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _outage(plane: controlplane.ControlPlane, name: str, seconds: float) -> float:
    """`name` down for `seconds`, then serving again; how long it was unreachable in all."""
    began = time.monotonic()
    plane.crash(name)
    time.sleep(seconds)
    plane.revive(name)
    return time.monotonic() - began


def test_the_api_server_etcd_and_prometheus_dying_mid_experiment_lose_no_status_and_leave_one_verdict(
    control_plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    namespace = harness.namespace(control_plane)
    manifest = test_one_driver.small_quickstart()
    manifest["metadata"] = {"name": NAME}
    workdir = tmp_path / "runtime"
    flags = ("--runtime", "local", *test_one_driver.MEASURE_STEP, "--workdir", str(workdir))
    outages = {}
    with harness.running(control_plane, namespace, tmp_path, *flags) as operator:
        harness.apply(control_plane, namespace, manifest)
        harness.wait_for("Initializing", lambda: _status(control_plane, namespace).get("phase") == "Initializing", 60)
        outages["kube-apiserver while Initializing"] = _outage(control_plane, "kube-apiserver", OUTAGE_SECONDS)
        harness.wait_for(
            "Running", lambda: _status(control_plane, namespace).get("phase") == "Running", 120, operator.log
        )
        written = _status(control_plane, namespace)
        outages["kube-apiserver while Running"] = _outage(control_plane, "kube-apiserver", OUTAGE_SECONDS)
        after = _status(control_plane, namespace)
        assert after["startedAt"] == written["startedAt"] and after["phase"] in ("Running", "Analyzing"), after
        outages["etcd while Running"] = _outage(control_plane, "etcd", 2)
        # the runtime starts the Prometheus it lost again, on its port with its TSDB, as its StatefulSet would
        killed = _prometheus(workdir / "processes.json")
        os.kill(killed, signal.SIGKILL)
        harness.wait_for(
            "a verdict",
            lambda: _status(control_plane, namespace).get("phase") in ("Completed", "Failed"),
            300,
            operator.log,
        )
        final = _status(control_plane, namespace)
        # every collector and load it started (the runtime's own Prometheus aside) stops with the experiment
        registry: dict[str, str] = json.loads((workdir / "processes.json").read_text())
        children = [int(pid) for pid, program in registry.items() if Path(program).name != "prometheus"]
        # no duplicate: one collector per variant and one load, each started once through every outage
        programs = sorted(Path(program).name for program in registry.values())
        expected = ["otelcol-phoenix", "otelcol-phoenix", Path(sys.executable).name, "prometheus", "prometheus"]
        assert programs == sorted(expected), registry
        assert _prometheus(workdir / "processes.json") != killed
        harness.wait_for(
            "the experiment's processes to stop", lambda: not any(_alive(pid) for pid in children), 60, operator.log
        )
    print("outages (s):", {what: round(seconds, 1) for what, seconds in outages.items()})
    assert final["phase"] == "Completed", json.dumps(final, indent=1)
    assert final["startedAt"] == written["startedAt"]
    # the outages cost no samples but the few Prometheus missed: the quickstart still promotes on every query
    gaps = [s for s in final["results"]["anomalies"]["samples"] if s["pattern"] == "scrape gap"]
    print("samples:", final["results"]["samplesUsed"], "scrape gaps:", len(gaps))
    assert final["verdict"]["decision"] == "Promote", final["verdict"]
    assert final["results"]["fidelity"]["passed"] == final["results"]["fidelity"]["checked"] == 3
    events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    decisions = ("Promote", "Reject", "Inconclusive")
    verdicts = [e for e in events if e["involvedObject"]["name"] == NAME and e["reason"] in decisions]
    assert len(verdicts) == 1 and verdicts[0].get("count", 1) == 1, verdicts
    # no orphan: the experiment's children are gone too
    for kind in ("ppp", "lsim"):
        left = json.loads(control_plane.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
        assert all(item["metadata"].get("deletionTimestamp") for item in left), (kind, left)


def _prometheus(registry: Path) -> int:
    """The pid of the run's Prometheus that is alive now."""
    started: dict[str, str] = json.loads(registry.read_text())
    alive = [int(pid) for pid, program in started.items() if Path(program).name == "prometheus" and _alive(int(pid))]
    assert len(alive) == 1, started
    return alive[0]
