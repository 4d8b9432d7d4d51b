"""The operator with `--runtime local`, killed mid-experiment and started again: one experiment, one verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import test_one_driver
from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_a_killed_local_operator_resumes_and_completes_with_one_verdict(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Killed while Running, and again while Analyzing, on the small quickstart: it tests resuming, not the numbers."""
    workdir = tmp_path / "runtime"
    flags = ("--runtime", "local", "--measure-step", "2s", "--workdir", str(workdir))
    harness.apply(control_plane, namespace, test_one_driver.small_quickstart())
    with harness.running(control_plane, namespace, tmp_path, *flags) as first:
        harness.wait_for(
            "Running", lambda: harness.phase(control_plane, namespace, "quickstart") == "Running", 120, first.log
        )
        harness.wait_for(
            "the load",
            lambda: (
                (
                    harness.condition(harness.get(control_plane, namespace, "lsim", "quickstart-load"), "Ready") or {}
                ).get("status")
                == "True"
            ),
            60,
            first.log,
        )
        started_at = harness.get(control_plane, namespace, "pexp", "quickstart")["status"]["startedAt"]  # type: ignore[index]
        left_behind = [int(pid) for pid in json.loads((workdir / "processes.json").read_text())]
        first.kill()
    assert all(_alive(pid) for pid in left_behind), "SIGKILL leaves the children running"
    with harness.running(control_plane, namespace, tmp_path, *flags) as second:
        assert not any(_alive(pid) for pid in left_behind), "the restarted operator reaps what the killed one left"
        phase = harness.wait_for(
            "Analyzing",
            lambda: (
                (p := harness.phase(control_plane, namespace, "quickstart")) in ("Analyzing", "Completed", "Failed")
                and p
            ),
            420,
            second.log,
        )
        assert phase == "Analyzing", "the verdict waits for the last samples, so Analyzing lasts long enough to see"
        second.kill()
    with harness.running(control_plane, namespace, tmp_path, *flags) as third:
        harness.wait_for(
            "a verdict",
            lambda: harness.phase(control_plane, namespace, "quickstart") in ("Completed", "Failed"),
            120,
            third.log,
        )
        found = harness.get(control_plane, namespace, "pexp", "quickstart")
        assert found is not None
        assert found["status"]["phase"] == "Completed", json.dumps(found["status"], indent=1)
        assert found["status"]["startedAt"] == started_at
        # two kills lost no samples: the quickstart still promotes, every query agreeing
        assert found["status"]["verdict"]["decision"] == "Promote", found["status"]["verdict"]
        assert (
            found["status"]["results"]["fidelity"]["passed"] == found["status"]["results"]["fidelity"]["checked"] == 3
        )
        events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        decisions = [
            e
            for e in events
            if e["involvedObject"]["name"] == "quickstart" and e["reason"] in ("Promote", "Reject", "Inconclusive")
        ]
        assert len(decisions) == 1 and decisions[0].get("count", 1) == 1
        pipelines = json.loads(control_plane.kubectl("get", "ppp", "-n", namespace, "-o", "json").stdout)["items"]
        assert pipelines == [] or all(p["metadata"].get("deletionTimestamp") for p in pipelines)
    assert harness.started_under(str(workdir)) == [], "a collector, load or Prometheus outlived the operators"
