"""Two replicas with kopf peering, as the production overlay runs them: one reconciles, the other stands by;
the active one is SIGKILLed while an experiment runs, and the standby finishes it. Each transition, and the
verdict, is written once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests import conftest
from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = pytest.mark.integration
PEERING = controlplane.REPO / "kustomize" / "overlays" / "production" / "kopf-peering.yaml"
NAME = "failover"
HANDOVER_LIMIT_SECONDS = 30
PEERS_SEEN_SECONDS = 5  # a replica sees another's record within a watch event of its write


def _active(replica: harness.Operator) -> bool:
    """Whether the replica's latest word on peering is that it resumed."""
    log = replica.log()
    return log.rfind("Resuming operations") > log.rfind("Pausing operations")


def test_the_standby_takes_over_a_killed_active_replica_and_every_transition_is_written_once(
    control_plane: controlplane.ControlPlane, prometheus: conftest.StartPrometheus, tmp_path: Path
) -> None:
    # the peering object needs its CRD established first, as the README's "apply it twice" says
    control_plane.kubectl("apply", "--server-side", "-f", str(PEERING), check=False)
    control_plane.kubectl("wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev")
    control_plane.kubectl("apply", "--server-side", "-f", str(PEERING))
    namespace = harness.namespace(control_plane)
    flags = ("--peering", "phoenix", "--prometheus-url", prometheus([]).url, "--measure-step", "1s")
    # cluster-wide, as the production overlay runs them: they elect through the ClusterKopfPeering
    with (
        harness.running(control_plane, None, tmp_path / "a", *flags) as first,
        harness.running(control_plane, None, tmp_path / "b", *flags) as second,
    ):
        replicas = (first, second)
        # each starts paused until it has seen its peers; the one of higher (random) priority resumes, and
        # when that is the second to start, the first pauses in its favour on seeing it
        harness.wait_for("a replica to become active", lambda: any(_active(r) for r in replicas), 30, first.log)
        time.sleep(PEERS_SEEN_SECONDS)
        harness.never("a second active replica", lambda: all(_active(r) for r in replicas))
        (active,) = [r for r in replicas if _active(r)]
        standby = first if active is second else second
        # an empty Prometheus: the experiment runs to its end and is Inconclusive for want of data
        experiment = harness.experiment(NAME, duration="45s")
        harness.apply(control_plane, namespace, experiment)
        harness.wait_for("Running", lambda: harness.phase(control_plane, namespace, NAME) == "Running", 60, active.log)
        assert not _active(standby)
        active.kill()
        killed = time.monotonic()
        harness.wait_for("the standby to take over", lambda: _active(standby), 60, standby.log)
        handover = time.monotonic() - killed
        harness.wait_for(
            "Completed", lambda: harness.phase(control_plane, namespace, NAME) == "Completed", 120, standby.log
        )
        found = harness.get(control_plane, namespace, "pexp", NAME)
    print(f"handover: {handover:.1f} s after SIGKILL")
    assert handover <= HANDOVER_LIMIT_SECONDS
    assert found is not None and found["status"]["verdict"]["decision"] == "Inconclusive", found
    events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    mine = [e for e in events if e["involvedObject"]["name"] == NAME]
    for reason in ("Initializing", "Running", "Inconclusive"):  # the last is the verdict, written on completion
        written = [e for e in mine if e["reason"] == reason]
        assert len(written) == 1 and written[0].get("count", 1) == 1, (reason, [e["reason"] for e in mine])
    # the load ran once: one Job, never a second from the other replica
    jobs = json.loads(control_plane.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]
    assert len([j for j in jobs if not j["metadata"].get("deletionTimestamp")]) <= 1
